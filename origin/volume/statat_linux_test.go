//go:build linux

package volume

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestStatAtDescribesAsLstat: the walk's fstatat describes every kind of entry as os.Lstat
// does: name, size, mode bits and type, and the modification time to the nanosecond (the
// backfill compares it with the file's when it opens it).
func TestStatAtDescribesAsLstat(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "a.jpg")
	if err := os.WriteFile(file, []byte("seventeen bytes!!"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(file, time.Now(), time.Unix(1_700_000_000, 123_456_789)); err != nil {
		t.Fatal(err)
	}
	hidden := filepath.Join(dir, "h.jpg")
	if err := os.WriteFile(hidden, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(hidden, 0o600|os.ModeSetgid); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("a.jpg", filepath.Join(dir, "link.jpg")); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	d, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(d)
	for _, name := range []string{"a.jpg", "h.jpg", "link.jpg", "fifo", "sub"} {
		got, err := statAt(d, name)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		want, err := os.Lstat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if got.Name() != want.Name() || got.Size() != want.Size() || got.Mode() != want.Mode() ||
			!got.ModTime().Equal(want.ModTime()) || got.IsDir() != want.IsDir() {
			t.Errorf("%s: %s %d %v %v; os.Lstat: %s %d %v %v", name, got.Name(), got.Size(), got.Mode(), got.ModTime(),
				want.Name(), want.Size(), want.Mode(), want.ModTime())
		}
	}
	if _, err := statAt(d, "gone.jpg"); !absent(err) {
		t.Errorf("a vanished entry: %v, want one the walk skips", err)
	}
}
