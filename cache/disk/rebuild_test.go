package disk

import (
	"bytes"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/fedicache/fedicache/cache/tiertest"
	"github.com/fedicache/fedicache/origin"
)

func TestRestart(t *testing.T) {
	dir := t.TempDir()
	d := testDisk(t, Config{Dir: dir}, nil)
	waitReady(t, d)
	objects := map[string][]byte{}
	for i := range 20 {
		k := fmt.Sprintf("media_attachments/files/000/000/%03d/original/%016x.png", i, i)
		objects[k] = tiertest.Blob(uint64(i), 100+i*37)
		store(t, d, k, objects[k])
	}
	before := d.Stats()
	d.Close()

	setup, release := gate(t)
	d = testDisk(t, Config{Dir: dir}, setup)
	// Served by path while the rebuild has not run.
	for k, v := range objects {
		if body, _ := read(t, d, k); !bytes.Equal(body, v) {
			t.Errorf("before the rebuild: Open(%q) gave %d bytes, want %d", k, len(body), len(v))
		}
		r := origin.Range{Start: 10, End: 19}
		body, _, err := d.Open(k, &r)
		if err != nil {
			t.Fatalf("before the rebuild: Open(%q, %s): %v", k, r, err)
		}
		discard(body)
	}
	absent(t, d, "nothing/here.png")
	if d.Ready() {
		t.Fatal("Ready before the rebuild ran")
	}
	if st := d.Stats(); st.Entries != int64(len(objects)) {
		t.Errorf("hits before the rebuild indexed %d entries, want %d", st.Entries, len(objects))
	}
	release()
	waitReady(t, d)
	if st := d.Stats(); st.Entries != before.Entries || st.Bytes != before.Bytes {
		t.Errorf("after the rebuild: %+v, before the restart: %+v", st, before)
	}
	for k, v := range objects {
		if body, _ := read(t, d, k); !bytes.Equal(body, v) {
			t.Errorf("after the rebuild: Open(%q) differs", k)
		}
	}
}

func TestDeleteDuringRebuild(t *testing.T) {
	dir := t.TempDir()
	keys := []string{"cache/a/1.png", "cache/a/2.png", "cache/b/1.png", "local/1.png", "local/2.png"}
	for _, k := range keys {
		writeFile(t, dir, k, []byte(k), time.Time{})
	}
	setup, release := gate(t)
	d := testDisk(t, Config{Dir: dir}, setup)

	// Indexed by a hit before the purge: removed and counted at once.
	read(t, d, "cache/a/2.png")
	if n := d.DeletePrefix("cache/a/"); n != 1 {
		t.Errorf("DeletePrefix during the rebuild removed %d, want the 1 indexed", n)
	}
	if !d.Delete("local/1.png") {
		t.Error("Delete of an unindexed file reported false")
	}
	absent(t, d, "cache/a/1.png") // unindexed, under the purged prefix
	absent(t, d, "cache/a/2.png")
	absent(t, d, "local/1.png")
	// A commit after the purge is kept.
	store(t, d, "cache/a/3.png", []byte("new"))

	release()
	waitReady(t, d)
	for _, k := range []string{"cache/a/1.png", "cache/a/2.png", "local/1.png"} {
		if exists(t, pathOf(dir, k)) {
			t.Errorf("%s survived its deletion", k)
		}
		absent(t, d, k)
	}
	for _, k := range []string{"cache/b/1.png", "local/2.png", "cache/a/3.png"} {
		read(t, d, k)
	}
	if st := d.Stats(); st.Entries != 3 {
		t.Errorf("after the rebuild: %d entries, want 3", st.Entries)
	}
}

func TestRebuildOrdersByMtime(t *testing.T) {
	dir := t.TempDir()
	body := make([]byte, 1000)
	base := time.Now().Add(-24 * time.Hour)
	// key i has mtime base + i minutes, in an order unrelated to the hashes.
	for i := range 10 {
		writeFile(t, dir, fmt.Sprintf("k/%d", i), body, base.Add(time.Duration(i)*time.Minute))
	}
	size := fileSize(t, pathOf(dir, "k/0"))
	// Room for 7: the rebuild must evict the 3 oldest.
	d := testDisk(t, Config{Dir: dir, MaxBytes: 7 * size}, nil)
	waitReady(t, d)
	for i := range 10 {
		key := fmt.Sprintf("k/%d", i)
		if i < 3 {
			absent(t, d, key)
		} else {
			read(t, d, key)
		}
	}
	if st := d.Stats(); st.Entries != 7 || st.Evictions != 3 || st.Bytes > st.MaxBytes {
		t.Errorf("after the rebuild: %+v", st)
	}
}

func TestHitTouchesMtime(t *testing.T) {
	dir := t.TempDir()
	clk := newClock()
	d := testDisk(t, Config{Dir: dir}, func(d *Disk) { d.now = clk.Now })
	waitReady(t, d)
	const key = "a.png"
	store(t, d, key, []byte("a"))
	p := pathOf(dir, key)
	read(t, d, key) // just committed: no touch
	clk.Advance(2 * touchEvery)
	read(t, d, key)
	d.Close() // waits for the touch
	info, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if !info.ModTime().Equal(clk.Now()) {
		t.Errorf("mtime %v after a hit at %v", info.ModTime(), clk.Now())
	}
}

// TestLargeCacheServesAtOnce opens a cache of 2000 files: Open returns at once, and hits are
// served before the index is rebuilt. (Creating the files is what takes the test's time; Open
// does not look at them.)
func TestLargeCacheServesAtOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 2000 files")
	}
	const n = 2000
	dir := t.TempDir()
	body := []byte("0123456789")
	for i := range n {
		writeFile(t, dir, fmt.Sprintf("media_attachments/files/%09d/original/x.png", i), body, time.Time{})
	}
	setup, release := gate(t)
	start := time.Now()
	d := testDisk(t, Config{Dir: dir}, setup)
	if took := time.Since(start); took > time.Second {
		t.Errorf("Open of a cache of %d files took %s", n, took)
	}
	if got, _ := read(t, d, "media_attachments/files/000001199/original/x.png"); !bytes.Equal(got, body) {
		t.Errorf("first hit: %q", got)
	}
	if d.Ready() {
		t.Error("Ready before the rebuild ran")
	}
	start = time.Now()
	release()
	waitReady(t, d)
	t.Logf("rebuilt the index of %d files in %s", n, time.Since(start))
	if st := d.Stats(); st.Entries != n {
		t.Errorf("after the rebuild: %d entries, want %d", st.Entries, n)
	}
}

func TestCloseStopsRebuild(t *testing.T) {
	dir := t.TempDir()
	for i := range 100 {
		writeFile(t, dir, fmt.Sprint(i), []byte("x"), time.Time{})
	}
	setup, _ := gate(t)
	d := testDisk(t, Config{Dir: dir}, setup)
	d.Close()
	<-d.Rebuilt()
	if d.Ready() {
		t.Error("Ready after Close stopped the rebuild before it ran")
	}
	d.Close()
}

// fileSize returns the size of the file at p.
func fileSize(t *testing.T, p string) int64 {
	t.Helper()
	info, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return info.Size()
}
