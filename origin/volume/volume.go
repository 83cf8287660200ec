// Package volume owns the old media volume (Mastodon's public/system directory) as an
// origin.Origin: it serves the regular files under one directory, confined to that directory so
// that no key, symbolic link or encoding reaches a file outside it, and walks them in key order for
// the backfill. On Linux one openat2 call with RESOLVE_BENEATH resolves a key (beneath_linux.go);
// os.Root, which opens every directory on the path in turn, does elsewhere and where the system
// refuses openat2.
package volume

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sync/atomic"
	"time"

	"github.com/fedicache/fedicache/origin"
)

// Volume serves the regular files under one directory. Its methods are safe for concurrent use.
//
// A key names a file by its slash-separated path relative to the directory. A key that is not
// such a path, a file that is not regular (directories, FIFOs, devices, sockets), a symbolic link
// that leads out of the directory and a file the process may not read all look absent: the
// error wraps origin.ErrNotFound. So does a hidden file, one that neither its group nor others
// may read: Mastodon hides the media of a suspended account by making its files mode 0600.
type Volume struct {
	root *os.Root
	// beneath resolves keys in one system call; nil where the system has no such call or
	// refuses it, and then root resolves them.
	beneath *beneath
}

// rootOnly makes Open leave keys to os.Root even where openat2 is available, so that the tests
// run on both paths.
var rootOnly atomic.Bool

// errNoBeneath says that a Volume's beneath did not resolve a key: os.Root is to.
var errNoBeneath = errors.New("volume: no openat2")

// Open opens the directory dir as a Volume. It fails, naming dir, when dir is missing or is not a
// directory. The Volume keeps the directory open until Close.
func Open(dir string) (*Volume, error) {
	info, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("volume: open %q: %w", dir, err)
	}
	if !info.IsDir() {
		return nil, fmt.Errorf("volume: open %q: not a directory", dir)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("volume: open %q: %w", dir, err)
	}
	return &Volume{root: root, beneath: newBeneath(root, dir)}, nil
}

// Close closes the directory. Bodies returned by Get stay readable until they are closed.
func (v *Volume) Close() error {
	return errors.Join(v.beneath.close(), v.root.Close())
}

// Stat implements origin.Origin.
func (v *Volume) Stat(ctx context.Context, key string) (origin.Meta, error) {
	if err := ctx.Err(); err != nil {
		return origin.Meta{}, fmt.Errorf("volume: stat %q: %w", key, err)
	}
	if !validKey(key) {
		return origin.Meta{}, fmt.Errorf("volume: stat %q: %w", key, origin.ErrNotFound)
	}
	info, err := v.stat(key)
	if err == nil {
		err = servable(info)
	}
	if err != nil {
		return origin.Meta{}, wrap("stat", key, err)
	}
	return meta(key, info), nil
}

// Get implements origin.Origin. Without a range the body is the *os.File itself, so that a
// server can hand it to sendfile. With a range the body reads only the range's bytes, from the
// file's offset; a range that selects nothing fails with origin.ErrRangeNotSatisfiable and the
// object's Meta, so that the caller can name the object's size in its answer.
func (v *Volume) Get(ctx context.Context, key string, r *origin.Range) (io.ReadCloser, origin.Meta, error) {
	if err := ctx.Err(); err != nil {
		return nil, origin.Meta{}, fmt.Errorf("volume: get %q: %w", key, err)
	}
	f, info, err := v.open(key)
	if err != nil {
		return nil, origin.Meta{}, wrap("get", key, err)
	}
	m := meta(key, info)
	if r == nil {
		return f, m, nil
	}
	first, last, ok := r.Resolve(info.Size())
	if !ok {
		f.Close()
		return nil, m, fmt.Errorf("volume: get %q %s of %d bytes: %w", key, r, info.Size(), origin.ErrRangeNotSatisfiable)
	}
	if _, err := f.Seek(first, io.SeekStart); err != nil {
		f.Close()
		return nil, origin.Meta{}, wrap("get", key, err)
	}
	return origin.FileRange(f, last-first+1), m, nil
}

// OpenFile opens key's file for a copier: any regular file in the volume, hidden ones included
// (see origin.Hidden), confined to the volume as Get is. The caller closes the file.
func (v *Volume) OpenFile(key string) (*os.File, fs.FileInfo, error) {
	f, info, err := v.openChecked(key, regular)
	if err != nil {
		return nil, nil, wrap("open", key, err)
	}
	return f, info, nil
}

// open opens key's file for serving: a regular file that is not hidden.
func (v *Volume) open(key string) (*os.File, fs.FileInfo, error) {
	return v.openChecked(key, servable)
}

// openChecked opens key's file for reading when check accepts the opened file.
func (v *Volume) openChecked(key string, check func(fs.FileInfo) error) (*os.File, fs.FileInfo, error) {
	if !validKey(key) {
		return nil, nil, origin.ErrNotFound
	}
	f, err := v.openFile(key, check)
	if err != nil {
		return nil, nil, err
	}
	info, err := f.Stat()
	if err == nil {
		err = check(info)
	}
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return f, info, nil
}

// openFile opens key's file for reading, in one openat2 call where the Volume can (see
// beneath.open). Through os.Root it looks at the file first, with check, so that opening a FIFO
// or a device never blocks or has side effects; the caller checks the opened file again, in case
// the file was replaced in between.
func (v *Volume) openFile(key string, check func(fs.FileInfo) error) (*os.File, error) {
	if f, err := v.beneath.open(key); !errors.Is(err, errNoBeneath) {
		return f, err
	}
	info, err := v.root.Stat(key)
	if err != nil {
		return nil, err
	}
	if err := check(info); err != nil {
		return nil, err
	}
	return v.root.OpenFile(key, openFlags, 0)
}

// stat describes key's file, following symbolic links that stay inside the volume.
func (v *Volume) stat(key string) (fs.FileInfo, error) {
	if info, err := v.beneath.stat(key); !errors.Is(err, errNoBeneath) {
		return info, err
	}
	return v.root.Stat(key)
}

// meta describes key's file.
func meta(key string, info fs.FileInfo) origin.Meta {
	return origin.Meta{
		Size:         info.Size(),
		ContentType:  origin.ContentType(key),
		ETag:         etag(info),
		LastModified: time.Unix(info.ModTime().Unix(), 0).UTC(),
	}
}

var _ origin.Origin = (*Volume)(nil)
