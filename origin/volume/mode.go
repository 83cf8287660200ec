package volume

import (
	"errors"
	"fmt"
	"io/fs"

	"github.com/fedicache/fedicache/origin"
)

var (
	errNotRegular = errors.New("not a regular file")
	errHidden     = errors.New("not readable by others (hidden)")
)

// servable returns nil when the volume serves the file info describes, else an error wrapping
// origin.ErrNotFound that says why not.
func servable(info fs.FileInfo) error {
	if err := regular(info); err != nil {
		return err
	}
	if hidden(info) {
		return fmt.Errorf("%w: %w", origin.ErrNotFound, errHidden)
	}
	return nil
}

// regular returns nil for a regular file, else an error wrapping origin.ErrNotFound.
func regular(info fs.FileInfo) error {
	if !info.Mode().IsRegular() {
		return fmt.Errorf("%w: %w", origin.ErrNotFound, errNotRegular)
	}
	return nil
}

// hidden reports whether a file is hidden (see origin.Hidden). The volume may well run as the
// files' owner, so it looks at the mode itself rather than relying on the open failing.
func hidden(info fs.FileInfo) bool { return origin.Hidden(info.Mode()) }
