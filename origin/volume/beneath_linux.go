//go:build linux

package volume

import (
	"errors"
	"io/fs"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// beneath resolves keys beneath the volume's directory in one system call, Linux's openat2(2)
// (5.6 and later) with RESOLVE_BENEATH, where os.Root opens and closes every directory on the
// path. The kernel refuses as os.Root does: a ".." out of the directory, an absolute symbolic
// link or one that leads out of it fail with EXDEV, reported as the error os.Root returns; links
// that stay inside are followed, the last element's too. RESOLVE_NO_MAGICLINKS refuses links
// such as /proc/self/fd/N (ELOOP). The kernel follows up to 40 links on a path, os.Root 8.
type beneath struct {
	dir *os.File // the volume's directory, opened through the root
	// raw holds dir's descriptor open while a call uses it, so that a concurrent Close cannot
	// let the number be reused for another file under the call.
	raw    syscall.RawConn
	prefix string // what the names of opened files start with: the directory's, and a slash
}

// openat2 is unix.Openat2; tests replace it to play a system that refuses the call.
var openat2 = unix.Openat2

// resolve is how every key is resolved.
const resolve = unix.RESOLVE_BENEATH | unix.RESOLVE_NO_MAGICLINKS

// maxRetries bounds the attempts after EAGAIN, which openat2 returns when a rename or a mount
// raced with a ".." in a link; os.Root then resolves the key.
const maxRetries = 3

// newBeneath returns a resolver for root's directory, or nil when the system has no openat2 or
// refuses it (ENOSYS before Linux 5.6; EPERM from a seccomp filter that predates the call, as in
// some container runtimes; EINVAL): one call at Open decides for the Volume's life, and os.Root
// resolves every key of a Volume without a resolver.
func newBeneath(root *os.Root, name string) *beneath {
	if rootOnly.Load() {
		return nil
	}
	dir, err := root.Open(".")
	if err != nil {
		return nil
	}
	raw, err := dir.SyscallConn()
	if err != nil {
		dir.Close()
		return nil
	}
	prefix := name
	if !os.IsPathSeparator(prefix[len(prefix)-1]) {
		prefix += "/"
	}
	b := &beneath{dir: dir, raw: raw, prefix: prefix}
	fd, err := b.openat2(".", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC)
	if err != nil {
		dir.Close()
		return nil
	}
	unix.Close(fd)
	return b
}

// close closes the directory. Like os.Root's, a second close returns nil.
func (b *beneath) close() error {
	if b == nil {
		return nil
	}
	if err := b.dir.Close(); !errors.Is(err, fs.ErrClosed) {
		return err
	}
	return nil
}

// beneathOpenFlags open a file for reading without blocking (a FIFO opened so returns at once) and
// without making a terminal the process's controlling terminal; O_LARGEFILE, which a 64-bit
// kernel adds itself, for 32-bit systems.
const beneathOpenFlags = unix.O_RDONLY | unix.O_NONBLOCK | unix.O_NOCTTY | unix.O_CLOEXEC | unix.O_LARGEFILE

// open opens key's file for reading. Unlike the os.Root path it opens before it can look at the
// file's type: a FIFO does not block (O_NONBLOCK), a socket fails (ENXIO), and a device node,
// which only a privileged process can make, is opened for the caller to close. It returns
// errNoBeneath when the Volume has no resolver or openat2 kept failing with EAGAIN.
func (b *beneath) open(key string) (*os.File, error) {
	if b == nil {
		return nil, errNoBeneath
	}
	fd, err := b.openat2(key, beneathOpenFlags)
	if err != nil {
		return nil, b.pathError(key, err)
	}
	return os.NewFile(uintptr(fd), b.prefix+key), nil
}

// openDirFD opens the directory key for a walk to read its entries, as open does a file, but
// refusing a symbolic link in the last element (see walkDirFlags), and returns the descriptor
// for the walk to close.
func (b *beneath) openDirFD(key string) (int, error) {
	if b == nil {
		return -1, errNoBeneath
	}
	fd, err := b.openat2(key, walkDirFlags)
	if err != nil {
		return -1, b.pathError(key, err)
	}
	return fd, nil
}

// stat describes key's file, following links as open does. It does not open the file (O_PATH):
// it needs no permission to read it and never opens a FIFO or a device.
func (b *beneath) stat(key string) (fs.FileInfo, error) {
	if b == nil {
		return nil, errNoBeneath
	}
	fd, err := b.openat2(key, unix.O_PATH|unix.O_CLOEXEC)
	if err != nil {
		return nil, b.pathError(key, err)
	}
	f := os.NewFile(uintptr(fd), b.prefix+key)
	info, err := f.Stat()
	f.Close()
	return info, err
}

// openat2 opens name beneath the directory with flags, retrying after EINTR, and after EAGAIN
// up to maxRetries times.
func (b *beneath) openat2(name string, flags int) (fd int, err error) {
	how := unix.OpenHow{Flags: uint64(flags), Resolve: resolve}
	ctlErr := b.raw.Control(func(dirfd uintptr) {
		for again := 0; ; {
			fd, err = openat2(int(dirfd), name, &how)
			switch {
			case err == unix.EINTR:
				continue
			case err == unix.EAGAIN && again < maxRetries:
				again++
				continue
			}
			return
		}
	})
	if ctlErr != nil {
		return -1, fs.ErrClosed // the Volume is closed
	}
	return fd, err
}

// pathError makes err, from openat2 of key, an error like os.Root's: EXDEV becomes the error
// os.Root returns for a name that escapes (see absent), EAGAIN errNoBeneath.
func (b *beneath) pathError(key string, err error) error {
	switch err {
	case unix.EXDEV:
		err = errEscapes
	case unix.EAGAIN:
		return errNoBeneath
	}
	return &fs.PathError{Op: "openat2", Path: key, Err: err}
}

// errEscapes is the error of a key or link that leads out of the directory.
var errEscapes = errors.New(errPathEscapes)
