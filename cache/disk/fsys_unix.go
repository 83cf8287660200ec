//go:build unix

package disk

import (
	"errors"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// createTemp is os.CreateTemp without what os.OpenFile spends on every regular file it opens:
// it tries to register the file with the network poller, which takes no regular file, setting
// the file non-blocking before and blocking again after (four fcntl and a failing epoll_ctl).
// os.NewFile asks the file's flags once (one fcntl) and leaves it as it is: blocking, as
// regular files are read and written anyway.
func createTemp(dir, pattern string) (*os.File, error) {
	prefix, suffix, _ := strings.Cut(pattern, "*")
	for try := 0; ; try++ {
		var num [16]byte
		var b strings.Builder // the name in one allocation
		b.Grow(len(dir) + 1 + len(prefix) + len(num) + len(suffix))
		b.WriteString(dir)
		b.WriteByte(filepath.Separator)
		b.WriteString(prefix)
		b.Write(strconv.AppendUint(num[:0], rand.Uint64(), 36))
		b.WriteString(suffix)
		name := b.String()
		fd, err := syscall.Open(name, syscall.O_RDWR|syscall.O_CREAT|syscall.O_EXCL|syscall.O_CLOEXEC, 0o600)
		switch {
		case err == nil:
			return os.NewFile(uintptr(fd), name), nil
		case errors.Is(err, syscall.EINTR), errors.Is(err, syscall.EEXIST) && try < 10000:
			continue
		}
		return nil, &fs.PathError{Op: "createtemp", Path: filepath.Join(dir, pattern), Err: err}
	}
}

// rename renames the file oldpath to newpath, replacing a file there. It is os.Rename without
// the stat of newpath that os.Rename makes to refuse replacing a directory: newpath is an
// entry's path, where the tier puts no directory, and it is new (the stat fails) for every
// object stored.
func rename(oldpath, newpath string) error {
	if err := syscall.Rename(oldpath, newpath); err != nil {
		return &os.LinkError{Op: "rename", Old: oldpath, New: newpath, Err: err}
	}
	return nil
}
