package volume

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"
)

// Walk calls fn for every regular file of the volume, in the lexical order of their keys (the order
// of sort.Strings, which a merge with a bucket's listing needs), and returns the first error fn
// returns; fs.SkipAll from fn ends the walk without an error.
//
// Walk holds one directory's entries at a time, never the whole tree. It visits hidden files
// (see origin.Hidden), which Get does not serve, so that a copier can store them as private. It skips
// directories it cannot read, files that are not regular, names that are not
// valid keys and symbolic links that lead out of the volume. It does not descend into symbolic
// links to directories, even inside the volume (a link may form a loop), so a file reachable only
// through one is served by Get but not walked. For a symbolic link to a file inside the volume,
// info describes the file.
func (v *Volume) Walk(ctx context.Context, fn func(key string, info fs.FileInfo) error) error {
	err := v.walkDir(ctx, "", fn)
	if errors.Is(err, fs.SkipAll) {
		return nil
	}
	return err
}

// walkEntry is one walked name of a directory.
type walkEntry struct {
	key   string
	order string      // what the entry sorts by: its name, with a slash after a directory's
	info  fs.FileInfo // nil for a directory
}

// walkDir walks the directory dir ("" for the root).
func (v *Volume) walkDir(ctx context.Context, dir string, fn func(string, fs.FileInfo) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("volume: walk: %w", err)
	}
	entries, err := v.entries(dir)
	if err != nil {
		if dir != "" && absent(err) {
			return nil // a directory that vanished or may not be read holds nothing to serve
		}
		return err
	}
	for _, e := range entries {
		if e.info == nil {
			if err := v.walkDir(ctx, e.key, fn); err != nil {
				return err
			}
			continue
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("volume: walk: %w", err)
		}
		if err := fn(e.key, e.info); err != nil {
			return err
		}
	}
	return nil
}

// entries reads the directory dir and returns the entries to walk, sorted so that the keys they
// lead to come in lexical order: a directory d sorts as "d/", since every key beneath it starts
// with that, and no file name holds a slash, so comparing "d/" with a file's name decides the
// order of every key beneath d against that file's key.
func (v *Volume) entries(dir string) ([]walkEntry, error) {
	name := dir
	if name == "" {
		name = "."
	}
	d, err := v.openDir(name)
	if err != nil {
		return nil, wrap("walk", dir, err)
	}
	des, err := d.ReadDir(-1)
	d.Close()
	if err != nil {
		return nil, wrap("walk", dir, err)
	}
	out := make([]walkEntry, 0, len(des))
	for _, de := range des {
		key := de.Name()
		if dir != "" {
			key = dir + "/" + key
		}
		if !validKey(key) {
			continue
		}
		if de.IsDir() {
			out = append(out, walkEntry{key: key, order: de.Name() + "/"})
			continue
		}
		// Stat through the volume, not de.Info: it follows a symbolic link only within the
		// volume, and describes a linked file rather than the link.
		info, err := v.stat(key)
		if err == nil {
			err = regular(info)
		}
		if err != nil {
			if absent(err) {
				continue
			}
			return nil, wrap("walk", key, err)
		}
		out = append(out, walkEntry{key: key, order: de.Name(), info: info})
	}
	slices.SortFunc(out, func(a, b walkEntry) int { return strings.Compare(a.order, b.order) })
	return out, nil
}
