package volume_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"testing"
)

// walkTree builds a tree whose key order differs from the order of fs.WalkDir, with things Walk
// must skip, and returns its directory and the keys Walk must visit.
func walkTree(t *testing.T) (string, []string) {
	t.Helper()
	dir := t.TempDir()
	keys := []string{
		"a/b", "a/b-c", "a/c/d", "a-b/x", "a.b", "a0", "b", "é", "Z", "~",
		"media_attachments/files/000/000/001/original/0123456789abcdef.jpg",
		"media_attachments/files/000/000/001/small/0123456789abcdef.jpg",
		"media_attachments/files/000/000/010/original/fedcba9876543210.png",
	}
	files := map[string][]byte{"hidden.jpg": []byte("hidden.jpg"), "back\\slash": []byte("\\")}
	for _, k := range keys {
		files[k] = []byte(k)
	}
	writeTree(t, dir, files)
	if err := os.Chmod(filepath.Join(dir, "hidden.jpg"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "empty", "dir"), 0o755); err != nil {
		t.Fatal(err)
	}
	canary := filepath.Join(filepath.Dir(dir), filepath.Base(dir)+"-canary")
	if err := os.WriteFile(canary, []byte("canary"), 0o644); err != nil {
		t.Fatal(err)
	}
	for link, target := range map[string]string{
		"a/link-in":   "../b",     // a file inside: walked, as Get serves it
		"link-out":    canary,     // a file outside
		"link-up":     "..",       // a directory outside
		"link-dir-in": "a",        // a directory inside: not descended into
		"dangling":    "nothing",  // no file at all
		"loop":        "loop",     // a loop
		"a/link-abs":  dir + "/b", // absolute, even when it points inside
	} {
		if err := os.Symlink(target, filepath.Join(dir, filepath.FromSlash(link))); err != nil {
			t.Skipf("cannot make symbolic links: %v", err)
		}
	}
	keys = append(keys, "a/link-in", "hidden.jpg") // hidden files are walked, for the copier
	if err := mkfifo(filepath.Join(dir, "a", "fifo")); err != nil && !errors.Is(err, errors.ErrUnsupported) {
		t.Fatal(err)
	}
	sort.Strings(keys)
	return dir, keys
}

func TestWalkOrder(t *testing.T) {
	dir, want := walkTree(t)
	v := openVolume(t, dir)
	var got []string
	err := v.Walk(context.Background(), func(key string, info fs.FileInfo) error {
		if !info.Mode().IsRegular() {
			t.Errorf("Walk visited %q of mode %v", key, info.Mode())
		}
		if key != "a/link-in" && info.Size() != int64(len(key)) {
			t.Errorf("Walk: %q has size %d, want %d", key, info.Size(), len(key))
		}
		got = append(got, key)
		return nil
	})
	if err != nil {
		t.Fatalf("Walk: %v", err)
	}
	if !slices.Equal(got, want) {
		t.Errorf("Walk visited\n  %q\nwant (sort.Strings order)\n  %q", got, want)
	}

	// The tree is a real test: fs.WalkDir visits it in another order.
	var walkDir []string
	fs.WalkDir(os.DirFS(dir), ".", func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() && slices.Contains(want, p) {
			walkDir = append(walkDir, p)
		}
		return nil
	})
	if slices.IsSorted(walkDir) {
		t.Errorf("fs.WalkDir visits the test tree in key order too: the tree tests nothing")
	}
}

func TestWalkStops(t *testing.T) {
	dir, want := walkTree(t)
	v := openVolume(t, dir)
	stop := errors.New("stop")

	var n int
	err := v.Walk(context.Background(), func(string, fs.FileInfo) error {
		n++
		if n == 3 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || n != 3 {
		t.Errorf("Walk after fn failed on the 3rd key: %v after %d keys, want %v after 3", err, n, stop)
	}

	var keys []string
	err = v.Walk(context.Background(), func(key string, _ fs.FileInfo) error {
		keys = append(keys, key)
		if len(keys) == 4 {
			return fs.SkipAll
		}
		return nil
	})
	if err != nil || !slices.Equal(keys, want[:4]) {
		t.Errorf("Walk with fs.SkipAll on the 4th key: %q, %v; want %q, nil", keys, err, want[:4])
	}

	ctx, cancel := context.WithCancel(context.Background())
	n = 0
	err = v.Walk(ctx, func(string, fs.FileInfo) error {
		n++
		cancel()
		return nil
	})
	if !errors.Is(err, context.Canceled) || n != 1 {
		t.Errorf("Walk canceled on the 1st key: %v after %d keys, want context.Canceled after 1", err, n)
	}
}

func TestWalkEmpty(t *testing.T) {
	v := openVolume(t, t.TempDir())
	err := v.Walk(context.Background(), func(key string, _ fs.FileInfo) error {
		t.Errorf("Walk of an empty volume visited %q", key)
		return nil
	})
	if err != nil {
		t.Errorf("Walk of an empty volume: %v", err)
	}
}
