//go:build linux

package volume

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io/fs"
	"os"
	"slices"
	"sync"

	"golang.org/x/sys/unix"
)

// dirHandle is a directory the walk holds open: a raw descriptor, read with getdents(2) and
// closed by the walk itself, without an os.File's allocation, finalizer and fcntl. Should a
// directory the walk holds be moved out of the volume, the walk may pass fn the names and stats
// beneath it as keys; their bytes stay out of reach, since OpenFile resolves every key from the
// volume's directory.
type dirHandle = int

// noDir is a dirHandle that holds no directory.
const noDir dirHandle = -1

// walkDirFlags open a directory to read its entries, failing on anything else (ENOTDIR) and on
// a symbolic link in the last element (ELOOP), as a name read from a directory is when a link
// replaced a subdirectory since.
const walkDirFlags = unix.O_RDONLY | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC | unix.O_LARGEFILE

// walkDirBuf is the size of the buffer each goroutine of a walk reads directories into: the
// entries of a thousand attachments' directories in one getdents(2), as glibc's readdir reads.
const walkDirBuf = 32 << 10

// openWalkDir opens the directory key ("" for the volume's) for the walk, resolved from the
// volume's directory: one openat2 where the Volume can, else through os.Root, whose descriptor
// is duplicated for the walk to own. Either refuses a symbolic link in the last element.
func (v *Volume) openWalkDir(key string) (dirHandle, error) {
	name := key
	if name == "" {
		name = "."
	}
	if fd, err := v.beneath.openDirFD(name); !errors.Is(err, errNoBeneath) {
		return fd, err
	}
	if key != "" {
		// Refuse a link in the last element as O_NOFOLLOW does, where os.Root would follow it.
		info, err := v.root.Lstat(name)
		if err != nil {
			return noDir, err
		}
		if info.Mode()&fs.ModeSymlink != 0 {
			return noDir, &fs.PathError{Op: "open", Path: name, Err: unix.ELOOP}
		}
	}
	f, err := v.root.OpenFile(name, os.O_RDONLY|unix.O_DIRECTORY, 0) // a FIFO fails, never blocks
	if err != nil {
		return noDir, err
	}
	defer f.Close()
	rc, err := f.SyscallConn()
	if err != nil {
		return noDir, err
	}
	fd, derr := noDir, error(nil)
	if err := rc.Control(func(d uintptr) { fd, derr = unix.FcntlInt(d, unix.F_DUPFD_CLOEXEC, 0) }); err != nil {
		return noDir, err
	}
	if derr != nil {
		return noDir, &fs.PathError{Op: "fcntl", Path: name, Err: derr}
	}
	return fd, nil
}

// openDirIn opens the directory key for the walk beneath parent, the open directory whose entry
// it is (key[base:] its name): one openat(2) of that name, which a symbolic link fails. Where the
// walk holds no parent (noDir), it resolves key from the volume's directory.
func (v *Volume) openDirIn(parent dirHandle, key string, base int) (dirHandle, error) {
	if parent == noDir {
		return v.openWalkDir(key)
	}
	for {
		fd, err := unix.Openat(parent, key[base:], walkDirFlags, 0)
		switch {
		case err == unix.EINTR:
			continue
		case err != nil:
			return noDir, &fs.PathError{Op: "openat", Path: key, Err: err}
		}
		return fd, nil
	}
}

// closeDir closes d, unless it is noDir.
func closeDir(d dirHandle) {
	if d != noDir {
		unix.Close(d)
	}
}

// dirBufs holds the buffers of goroutines that finished their walks, for the next ones.
var dirBufs = sync.Pool{New: func() any { b := make([]byte, walkDirBuf); return &b }}

// dirReader reads directories for one goroutine of a walk.
type dirReader struct {
	v   *Volume
	buf *[]byte
}

func newDirReader(v *Volume) *dirReader {
	return &dirReader{v: v, buf: dirBufs.Get().(*[]byte)}
}

// release returns r's buffer; r is not used again.
func (r *dirReader) release() { dirBufs.Put(r.buf) }

// The layout of struct linux_dirent64, which getdents64 fills: the inode number, the offset of
// the next entry, the entry's length, its type and its name, ended by a NUL.
const (
	direntIno    = 0
	direntReclen = 16
	direntType   = 18
	direntName   = 19
)

// read reads the entries of the directory dir, open as d, into out (emptied first), sorted by
// compareEntries.
func (r *dirReader) read(d dirHandle, dir string, out []walkEntry) ([]walkEntry, error) {
	out = out[:0]
	buf := *r.buf
	for {
		n, err := unix.Getdents(d, buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return out, wrap("walk", dir, &fs.PathError{Op: "getdents", Path: dir, Err: err})
		}
		if n <= 0 {
			break
		}
		for b := buf[:n]; len(b) > 0; {
			reclen := int(binary.NativeEndian.Uint16(b[direntReclen:]))
			if reclen <= direntName || reclen > len(b) {
				return out, wrap("walk", dir, &fs.PathError{Op: "getdents", Path: dir, Err: errBadDirent})
			}
			rec := b[:reclen]
			b = b[reclen:]
			name := rec[direntName:]
			if i := bytes.IndexByte(name, 0); i >= 0 {
				name = name[:i]
			}
			if binary.NativeEndian.Uint64(rec[direntIno:]) == 0 || string(name) == "." || string(name) == ".." {
				continue
			}
			if out, err = r.add(out, d, dir, name, rec[direntType]); err != nil {
				return out, err
			}
		}
	}
	slices.SortFunc(out, compareEntries)
	return out, nil
}

// errBadDirent is the error of a directory entry longer than what getdents returned.
var errBadDirent = errors.New("malformed directory entry")

// add appends the entry name of the directory dir, open as d, of type typ (d_type), to out:
// a directory as it is; a regular file described beneath d (one fstatat); a symbolic link
// resolved through the volume, followed only within it, and described as the file it leads
// to; any other entry, or one of unknown type, described beneath d and added as what it is.
// It leaves out names that are not valid keys, what is not a regular file or a directory, and
// what vanished or may not be read.
func (r *dirReader) add(out []walkEntry, d dirHandle, dir string, name []byte, typ byte) ([]walkEntry, error) {
	switch typ {
	case unix.DT_DIR, unix.DT_REG, unix.DT_LNK, unix.DT_UNKNOWN:
	default:
		return out, nil // a FIFO, a socket or a device
	}
	var key string
	if dir == "" {
		key = string(name)
	} else {
		key = dir + "/" + string(name) // one allocation: the conversion is not kept
	}
	base := len(key) - len(name)
	// dir is a valid key already, and a name read from a directory holds no slash: the name
	// decides.
	if !validKey(key[base:]) {
		return out, nil
	}
	if typ == unix.DT_DIR {
		return append(out, walkEntry{key: key, base: base, dir: true}), nil
	}
	var info fs.FileInfo
	var err error
	if typ != unix.DT_LNK {
		var s *statInfo
		if s, err = statAt(d, key[base:]); err == nil {
			switch s.st.Mode & unix.S_IFMT {
			case unix.S_IFDIR:
				return append(out, walkEntry{key: key, base: base, dir: true}), nil
			case unix.S_IFLNK:
				typ = unix.DT_LNK
			default:
				info = s
			}
		}
	}
	if typ == unix.DT_LNK {
		info, err = r.v.stat(key)
	}
	if err == nil {
		err = regular(info)
	}
	if err != nil {
		if absent(err) {
			return out, nil
		}
		return out, wrap("walk", key, err)
	}
	return append(out, walkEntry{key: key, base: base, info: info}), nil
}
