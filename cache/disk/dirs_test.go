package disk

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// dirKnown reports whether d knows key's hash directory to exist.
func dirKnown(d *Disk, key string) bool {
	i, _ := hexIndex(hashName(key)[:2])
	return d.dirs.known(i)
}

// TestHashDirs: a commit makes its hash directory when it is not known to exist, the rebuild
// marks those it lists, and a commit into a directory removed, or made, behind the tier's back
// succeeds all the same.
func TestHashDirs(t *testing.T) {
	dir := t.TempDir()
	const a, b = "media_attachments/files/1/original/a.png", "media_attachments/files/2/original/b.png"
	d := testDisk(t, Config{Dir: dir}, nil)
	waitReady(t, d)
	if dirKnown(d, a) {
		t.Fatal("a hash directory known in an empty cache")
	}
	store(t, d, a, []byte("a"))
	if !dirKnown(d, a) || !exists(t, pathOf(dir, a)) {
		t.Fatal("the first commit into a hash directory did not make it, or did not mark it")
	}

	// Removed behind the tier's back: made again.
	d.Delete(a)
	if err := os.RemoveAll(filepath.Join(dir, hashName(a)[:2])); err != nil {
		t.Fatal(err)
	}
	store(t, d, a, []byte("a2"))
	if body, _ := read(t, d, a); string(body) != "a2" {
		t.Errorf("after its hash directory was removed: %q", body)
	}

	// Made behind the tier's back: used.
	if err := os.MkdirAll(dirOf(pathOf(dir, b)), 0o750); err != nil {
		t.Fatal(err)
	}
	store(t, d, b, []byte("b"))
	if body, _ := read(t, d, b); string(body) != "b" {
		t.Errorf("into a hash directory made behind the tier's back: %q", body)
	}
	d.Close()

	// The rebuild marks what it lists.
	d = testDisk(t, Config{Dir: dir}, nil)
	waitReady(t, d)
	if !dirKnown(d, a) || !dirKnown(d, b) {
		t.Error("the rebuild did not mark the hash directories it listed")
	}
}

// TestHashDirsAtMost256: a fresh cache storing 2000 entries makes at most 256 directories, all
// hash directories of one level, and files each entry in one of them (the two-level layout
// made one directory per new leaf, some 1,900 here).
func TestHashDirsAtMost256(t *testing.T) {
	const n = 2000
	dir := t.TempDir()
	d := testDisk(t, Config{Dir: dir}, nil)
	waitReady(t, d)
	for i := range n {
		store(t, d, fmt.Sprintf("media_attachments/files/%09d/original/x.png", i), []byte("x"))
	}
	var dirs, entries int
	err := filepath.WalkDir(dir, func(p string, de os.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		switch {
		case de.IsDir() && rel == "tmp":
			return filepath.SkipDir
		case de.IsDir():
			dirs++
			if !isHex(rel, 2) {
				t.Errorf("directory %s: not a hash directory", rel)
			}
		case de.Type().IsRegular() && filepath.Dir(rel) != ".":
			entries++
			if name := filepath.Base(rel); filepath.Dir(rel) != name[:2] {
				t.Errorf("entry %s filed outside its hash directory", rel)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if dirs > 256 {
		t.Errorf("%d directories for %d entries, want at most 256", dirs, n)
	}
	if entries != n {
		t.Errorf("%d entries' files in the hash directories, want %d", entries, n)
	}
	t.Logf("%d hash directories for %d entries", dirs, n)
}
