package disk

import (
	"os"
	"path/filepath"
	"testing"
)

// leafKnown reports whether d knows key's hash directory to exist.
func leafKnown(d *Disk, key string) bool {
	i, _ := hexIndex(hashName(key)[:4])
	return known(d.dirs.leaves[:], i)
}

// TestHashDirs: a commit makes its hash directory when it is not known to exist, the rebuild
// marks those it lists, and a commit into a directory removed, or made, behind the tier's back
// succeeds all the same.
func TestHashDirs(t *testing.T) {
	dir := t.TempDir()
	const a, b = "media_attachments/files/1/original/a.png", "media_attachments/files/2/original/b.png"
	d := testDisk(t, Config{Dir: dir}, nil)
	waitReady(t, d)
	if leafKnown(d, a) {
		t.Fatal("a hash directory known in an empty cache")
	}
	store(t, d, a, []byte("a"))
	if !leafKnown(d, a) || !exists(t, pathOf(dir, a)) {
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
	if !leafKnown(d, a) || !leafKnown(d, b) {
		t.Error("the rebuild did not mark the hash directories it listed")
	}
	i, _ := hexIndex(hashName(a)[:2])
	if !known(d.dirs.tops[:], i) {
		t.Error("the rebuild did not mark the first-level directories it listed")
	}
}
