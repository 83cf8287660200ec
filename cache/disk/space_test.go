package disk

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"syscall"
	"testing"

	"github.com/fedicache/fedicache/cache/tiertest"
)

// TestKeepsWithinTheFreeSpace: on a file system far smaller than cache.disk.max_bytes, the tier
// says so once, refuses at once (ErrNoRoom, no write attempted, writes stay on) an entry the
// disk cannot hold, and evicts least recently used entries to make room for one it can, so that
// no write meets a full disk.
func TestKeepsWithinTheFreeSpace(t *testing.T) {
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=8m"); err != nil {
		t.Skipf("cannot mount a tmpfs (needs root): %v", err)
	}
	t.Cleanup(func() { _ = syscall.Unmount(dir, syscall.MNT_DETACH) })
	l := &logs{}
	d, err := Open(Config{Dir: dir + "/cache", MaxBytes: 10 << 30, Logger: slog.New(l)})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	<-d.Rebuilt()
	if n := l.count("more than the file system holds"); n != 1 {
		t.Errorf("%d warnings that max_bytes exceeds the file system, want 1", n)
	}
	big := tiertest.NewEntry("media_attachments/files/000/000/001/original/big.mp4", make([]byte, 9<<20))
	if _, err := d.Create(big); !errors.Is(err, ErrNoRoom) {
		t.Errorf("an entry larger than the disk: %v, want ErrNoRoom", err)
	}
	for i := range 12 { // 12 MiB through an 8 MiB disk
		body := tiertest.Blob(uint64(i), 1<<20)
		e := tiertest.NewEntry(fmt.Sprintf("media_attachments/files/000/000/%03d/original/x.png", i), body)
		if err := d.Store(e, bytes.NewReader(body)); err != nil {
			t.Fatalf("entry %d: %v", i, err)
		}
	}
	st := d.Stats()
	if st.WriteErrors != 0 || st.Disabled || st.Evictions == 0 || st.Entries == 0 {
		t.Errorf("stats %+v: want no write error, writes on, evictions, some entries", st)
	}
	if n := l.count("disk is full"); n != 0 {
		t.Errorf("a write met the full disk %d times", n)
	}
	if d.pending.Load() != 0 {
		t.Errorf("%d bytes still claimed after every writer ended", d.pending.Load())
	}
}
