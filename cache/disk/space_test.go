package disk

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/fedicache/fedicache/cache/tiertest"
	"github.com/fedicache/fedicache/origin/origintest"
)

// TestKeepsWithinTheFreeSpace: on a file system far smaller than cache.disk.max_bytes, the tier
// says so once, refuses at once (ErrNoRoom, no write attempted, writes stay on) an entry the
// disk cannot hold, and evicts least recently used entries to make room for one it can, so that
// no write meets a full disk.
func TestKeepsWithinTheFreeSpace(t *testing.T) {
	dir := tiertest.TinyFS(t, 8<<20)
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
	storeThrough(t, d, l, 12, func(int) int { return 1 << 20 }) // 12 MiB through an 8 MiB disk
	if d.pending.Load() != 0 {
		t.Errorf("%d bytes still claimed after every writer ended", d.pending.Load())
	}
}

// TestSmallEntriesKeepWithinTheFreeSpace is TestKeepsWithinTheFreeSpace with small entries,
// many of which go by between two readings of the free space: each takes whole blocks of the
// disk and some metadata, more than its bytes, and still no write meets a full disk.
func TestSmallEntriesKeepWithinTheFreeSpace(t *testing.T) {
	dir := tiertest.TinyFS(t, 8<<20)
	l := &logs{}
	var reads atomic.Int64
	d := testDisk(t, Config{Dir: dir + "/cache", MaxBytes: 10 << 30, Logger: slog.New(l)}, func(d *Disk) {
		d.space = func(dir string) (int64, int64, bool) { reads.Add(1); return fsSpace(dir) }
	})
	waitReady(t, d)
	const n = 800 // 24 MB through an 8 MiB disk
	storeThrough(t, d, l, n, func(i int) int { return 30_000 + i%4096 })
	t.Logf("%d entries stored, %d readings of the free space", n, reads.Load())
}

// storeThrough stores n entries of size(i) bytes in d, and checks that none failed, that d
// evicted to make room, and that no write met a full disk (as l logged).
func storeThrough(t *testing.T, d *Disk, l *logs, n int, size func(i int) int) {
	t.Helper()
	for i := range n {
		body := tiertest.Blob(uint64(i), size(i))
		e := tiertest.NewEntry(fmt.Sprintf("media_attachments/files/000/%03d/%03d/original/x.png", i/1000, i%1000), body)
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
}

// spaceDisk returns a Disk on a file system that fake says has free of size bytes free, with a
// settable clock, and the count of readings of the free space since it was opened.
func spaceDisk(t *testing.T, free *atomic.Int64, size int64) (*Disk, *origintest.Clock, *atomic.Int64) {
	clk := newClock()
	reads := new(atomic.Int64)
	d := testDisk(t, Config{Dir: t.TempDir(), MaxBytes: 10 << 30, RetryAfter: time.Millisecond}, func(d *Disk) {
		d.now = clk.Now
		d.space = func(string) (int64, int64, bool) { reads.Add(1); return free.Load(), size, true }
	})
	waitReady(t, d)
	reads.Store(0)
	return d, clk, reads
}

// TestFreeSpaceReadAgain: the free space is read again once a second, once the entries
// committed since take half the reserve, when the last reading says an entry may not fit, and
// after a write met a full disk; not for every entry.
func TestFreeSpaceReadAgain(t *testing.T) {
	const size = 100 << 30 // the reserve is spaceReserveMax
	var free atomic.Int64
	free.Store(1 << 30)
	d, clk, reads := spaceDisk(t, &free, size)
	key := func(i int) string { return fmt.Sprintf("media_attachments/files/%06d/original/x.png", i) }

	small := tiertest.Blob(1, 10_000)
	for i := range 100 { // 1.6 MB on the disk, less than half the reserve
		store(t, d, key(i), small)
	}
	if n := reads.Load(); n != 1 {
		t.Errorf("100 small entries within a second: %d readings of the free space, want 1", n)
	}
	clk.Advance(spaceRefreshEvery)
	store(t, d, key(100), small)
	if n := reads.Load(); n != 2 {
		t.Errorf("an entry a second later: %d readings, want 2", n)
	}

	// Large entries: a reading each time those committed since the last take half the reserve.
	big := tiertest.Blob(2, 1<<20)
	want, spent := reads.Load(), onDisk(10_000+200) // the small entry since the last reading, about
	for i := range 20 {
		if spent > spaceReserveMax/2 {
			want, spent = want+1, 0
		}
		store(t, d, key(200+i), big)
		spent += onDisk(int64(len(big)) + 200)
	}
	if n := reads.Load(); n != want || want < 3 {
		t.Errorf("20 entries of 1 MiB: %d readings, want %d", n, want)
	}

	// An entry that the last reading may not hold is let in or refused on a new reading: here
	// the disk filled up meanwhile.
	free.Store(10 << 20)
	before := reads.Load()
	if _, err := d.Create(tiertest.NewEntry(key(300), make([]byte, 1<<30-20<<20))); !errors.Is(err, ErrNoRoom) {
		t.Errorf("an entry the disk no longer holds: %v, want ErrNoRoom", err)
	}
	if n := reads.Load(); n != before+1 {
		t.Errorf("%d readings for an entry that may not fit, want 1", n-before)
	}
	// That reading holds: a small entry no longer fits and is refused at once.
	if _, err := d.Create(tiertest.NewEntry(key(301), make([]byte, 1<<20))); !errors.Is(err, ErrNoRoom) {
		t.Errorf("an entry within the reserve: %v, want ErrNoRoom", err)
	}

	// A write that meets a full disk drops the reading.
	free.Store(1 << 30)
	clk.Advance(spaceRefreshEvery)
	store(t, d, key(302), small)
	before = reads.Load()
	d.writeFailed("write", key(303), syscall.ENOSPC)
	clk.Advance(time.Millisecond) // RetryAfter
	store(t, d, key(303), small)
	if n := reads.Load(); n != before+1 {
		t.Errorf("%d readings after a full disk, want 1", n-before)
	}
	if d.pending.Load() != 0 {
		t.Errorf("%d bytes still claimed after every writer ended", d.pending.Load())
	}
}
