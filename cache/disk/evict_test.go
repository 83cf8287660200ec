package disk

import (
	"fmt"
	"testing"
)

func TestEvictsLeastRecentlyUsed(t *testing.T) {
	dir := t.TempDir()
	body := make([]byte, 1000)
	key := func(i int) string { return fmt.Sprintf("media/%02d.jpg", i) }
	probe := testDisk(t, Config{Dir: t.TempDir()}, nil)
	store(t, probe, key(0), body)
	size := probe.Stats().Bytes

	d := testDisk(t, Config{Dir: dir, MaxBytes: 10 * size}, nil)
	waitReady(t, d)
	for i := range 10 {
		store(t, d, key(i), body)
	}
	if st := d.Stats(); st.Entries != 10 || st.Evictions != 0 {
		t.Fatalf("10 entries in room for 10: %+v", st)
	}
	// Use 0, 1 and 2: 3 is now the least recently used.
	for i := range 3 {
		read(t, d, key(i))
	}
	for i := 10; i < 15; i++ {
		store(t, d, key(i), body)
		if st := d.Stats(); st.Bytes > st.MaxBytes {
			t.Fatalf("after storing %s: %d bytes held, over %d", key(i), st.Bytes, st.MaxBytes)
		}
	}
	for i := range 15 {
		if i >= 3 && i < 8 {
			absent(t, d, key(i))
			if exists(t, pathOf(dir, key(i))) {
				t.Errorf("evicted %s still on disk", key(i))
			}
		} else {
			read(t, d, key(i))
		}
	}
	if st := d.Stats(); st.Entries != 10 || st.Evictions != 5 || st.Bytes != 10*size {
		t.Errorf("Stats: %+v", st)
	}
	if n := len(files(t, dir)); n != 10 {
		t.Errorf("%d files on disk, want 10", n)
	}
}

func TestReplaceKeepsAccounting(t *testing.T) {
	dir := t.TempDir()
	d := testDisk(t, Config{Dir: dir}, nil)
	waitReady(t, d)
	store(t, d, "k", make([]byte, 100))
	store(t, d, "k", make([]byte, 300))
	if st, size := d.Stats(), fileSize(t, pathOf(dir, "k")); st.Entries != 1 || st.Bytes != size {
		t.Errorf("after replacing a 100-byte body with 300 bytes: %+v, the file has %d bytes", st, size)
	}
	if body, _ := read(t, d, "k"); len(body) != 300 {
		t.Errorf("replaced body has %d bytes", len(body))
	}
}
