package disk

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
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

// TestRebuildMovesTwoLevelLayout: a cache written by a version of the two-level layout
// (dir/ab/cd/abcd...) keeps its entries. The rebuild moves them into their hash directories and
// serves them with their bytes, removes the subdirectories it empties, drops a corrupt one,
// leaves alone what is no entry's, and never replaces an entry that a commit filed meanwhile
// with the old one of its key. The next start has nothing to move.
func TestRebuildMovesTwoLevelLayout(t *testing.T) {
	const n = 200
	dir := t.TempDir()
	d := testDisk(t, Config{Dir: dir}, nil)
	waitReady(t, d)
	objects := map[string][]byte{}
	var keys []string
	for i := range n {
		k := fmt.Sprintf("media_attachments/files/%09d/original/x.png", i)
		objects[k] = tiertest.Blob(uint64(i), 100+i)
		keys = append(keys, k)
		store(t, d, k, objects[k])
	}
	d.Close()
	const corrupt = "corrupt/1.png"
	writeFile(t, dir, corrupt, tiertest.Blob(7, 500), time.Time{})
	truncate(t, pathOf(dir, corrupt), 100)
	oldPath := func(key string) string {
		h := hashName(key)
		return filepath.Join(dir, h[:2], h[2:4], h)
	}
	for _, k := range append(keys, corrupt) {
		if err := os.MkdirAll(dirOf(oldPath(k)), 0o750); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(pathOf(dir, k), oldPath(k)); err != nil {
			t.Fatal(err)
		}
	}
	// Not entries' files of their place: a README, and an entry's name under another
	// subdirectory than its own.
	readme := filepath.Join(dirOf(oldPath(keys[0])), "README")
	misplaced := filepath.Join(dirOf(oldPath(keys[0])), hashName("elsewhere"))
	for _, p := range []string{readme, misplaced} {
		if err := os.WriteFile(p, nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}

	// A commit while the rebuild has not run files the newer entry of keys[1].
	moves := &logs{}
	setup, release := gate(t)
	d = testDisk(t, Config{Dir: dir, Logger: slogger(moves)}, setup)
	objects[keys[1]] = []byte("newer")
	store(t, d, keys[1], objects[keys[1]])
	release()
	waitReady(t, d)

	var total int64
	for k, v := range objects {
		if body, _ := read(t, d, k); !bytes.Equal(body, v) {
			t.Errorf("Open(%q) gave %d bytes, want the %d stored", k, len(body), len(v))
		}
		total += fileSize(t, pathOf(dir, k))
	}
	absent(t, d, corrupt)
	if st := d.Stats(); st.Entries != n || st.Bytes != total || st.Dropped != 1 {
		t.Errorf("Stats after the move: %+v; want %d entries of %d bytes, 1 dropped", st, n, total)
	}
	for _, k := range append(keys, corrupt) {
		if k != keys[0] && exists(t, dirOf(oldPath(k))) {
			t.Errorf("the subdirectory of %s is still there", k)
		}
	}
	if exists(t, oldPath(keys[0])) || exists(t, pathOf(dir, corrupt)) {
		t.Error("an old entry's file is still there, or the corrupt one was moved and kept")
	}
	if !exists(t, readme) || !exists(t, misplaced) {
		t.Error("the rebuild removed a file that is not an entry's of its place")
	}
	if n := moves.count("INFO disk cache: moved entries of the two-level layout"); n != 1 {
		t.Errorf("%d logs of the move, want 1", n)
	}
	d.Close()

	moves = &logs{}
	d = testDisk(t, Config{Dir: dir, Logger: slogger(moves)}, nil)
	waitReady(t, d)
	for k, v := range objects {
		if body, _ := read(t, d, k); !bytes.Equal(body, v) {
			t.Errorf("after a second restart: Open(%q) differs", k)
		}
	}
	if n := moves.count("moved entries"); n != 0 {
		t.Errorf("the second restart moved entries again (%d logs)", n)
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
