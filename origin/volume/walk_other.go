//go:build !linux

package volume

import (
	"os"
	"slices"
)

// dirHandle is a directory the walk holds open.
type dirHandle = *os.File

// noDir is a dirHandle that holds no directory.
var noDir dirHandle

// openWalkDir opens the directory key ("" for the volume's) for the walk, through os.Root.
func (v *Volume) openWalkDir(key string) (dirHandle, error) {
	if key == "" {
		key = "."
	}
	return v.root.Open(key)
}

// openDirIn opens the directory key for the walk. This system's walk resolves it from the
// volume's directory through os.Root, which opens every directory on the path, whatever parent
// the walk holds.
func (v *Volume) openDirIn(_ dirHandle, key string, _ int) (dirHandle, error) {
	return v.openWalkDir(key)
}

// closeDir closes d, unless it is noDir.
func closeDir(d dirHandle) {
	if d != noDir {
		d.Close()
	}
}

// dirReader reads directories for one goroutine of a walk.
type dirReader struct{ v *Volume }

func newDirReader(v *Volume) *dirReader { return &dirReader{v: v} }

// release ends r's use.
func (r *dirReader) release() {}

// read reads the entries of the directory dir, open as d, into out (emptied first), sorted by
// compareEntries: each directory as it is, and each other entry described through the volume,
// links followed only within it, so that only regular files are added.
func (r *dirReader) read(d dirHandle, dir string, out []walkEntry) ([]walkEntry, error) {
	out = out[:0]
	des, err := d.ReadDir(-1)
	if err != nil {
		return out, wrap("walk", dir, err)
	}
	for _, de := range des {
		key := de.Name()
		if dir != "" {
			key = dir + "/" + key
		}
		if !validKey(key) {
			continue
		}
		base := len(key) - len(de.Name())
		if de.IsDir() {
			out = append(out, walkEntry{key: key, base: base, dir: true})
			continue
		}
		info, err := r.v.stat(key)
		if err == nil {
			err = regular(info)
		}
		if err != nil {
			if absent(err) {
				continue
			}
			return out, wrap("walk", key, err)
		}
		out = append(out, walkEntry{key: key, base: base, info: info})
	}
	slices.SortFunc(out, compareEntries)
	return out, nil
}
