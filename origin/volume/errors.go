package volume

import (
	"errors"
	"fmt"
	"io/fs"
	"syscall"

	"github.com/fedicache/fedicache/origin"
)

// errPathEscapes is the text of the error os.Root returns when a name or a symbolic link leads
// out of the root. The os package does not export the error itself.
const errPathEscapes = "path escapes from parent"

// wrap names the operation and key in err, and makes err wrap origin.ErrNotFound when it means
// that the volume holds no servable file under key (see absent).
func wrap(op, key string, err error) error {
	if absent(err) && !errors.Is(err, origin.ErrNotFound) {
		return fmt.Errorf("volume: %s %q: %w: %w", op, key, origin.ErrNotFound, err)
	}
	return fmt.Errorf("volume: %s %q: %w", op, key, err)
}

// absent reports whether err says that the volume holds nothing servable under a key: the file
// or a directory on its path is missing or is a file, the process may not read it, a symbolic
// link on the path leads out of the root or into a loop, the name is too long to exist, the file
// is a socket or a device without a driver (ENXIO, should one replace a file as it is opened), or
// the file is not one the volume serves.
func absent(err error) bool {
	switch {
	case errors.Is(err, origin.ErrNotFound),
		errors.Is(err, fs.ErrNotExist),
		errors.Is(err, fs.ErrPermission),
		errors.Is(err, syscall.ENOTDIR),
		errors.Is(err, syscall.ELOOP),
		errors.Is(err, syscall.ENAMETOOLONG),
		errors.Is(err, syscall.ENXIO):
		return true
	}
	for e := err; e != nil; e = errors.Unwrap(e) {
		if e.Error() == errPathEscapes {
			return true
		}
	}
	return false
}
