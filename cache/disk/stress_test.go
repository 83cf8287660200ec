package disk

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/fedicache/fedicache/cache/tiertest"
	"github.com/fedicache/fedicache/origin"
)

// TestConcurrentOpsDuringRebuild runs hits, stores, deletes, purges and revalidations from
// several goroutines while the rebuild runs, with evictions, and then checks that the index
// and the files agree exactly and that every hit served whole, correct bytes.
func TestConcurrentOpsDuringRebuild(t *testing.T) {
	dir := t.TempDir()
	const nkeys = 150
	key := func(i int) string { return fmt.Sprintf("g%d/media/%03d.png", i%3, i) }
	body := func(i, version int) []byte {
		return bytes.Repeat([]byte{byte(i), byte(version)}, 200+i%7*50)
	}
	for i := range nkeys {
		writeFile(t, dir, key(i), body(i, 0), time.Time{})
	}
	setup, release := gate(t)
	d := testDisk(t, Config{Dir: dir, MaxBytes: 100 * 1000}, setup)

	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			rnd := rand.New(rand.NewPCG(uint64(g), 9))
			for step := range 400 {
				if g == 0 && step == 100 {
					release()
				}
				i := rnd.IntN(nkeys)
				switch rnd.IntN(10) {
				case 0, 1, 2, 3:
					rb, e, err := d.Open(key(i), nil)
					if errors.Is(err, origin.ErrNotFound) {
						continue
					}
					if err != nil {
						t.Errorf("Open(%q): %v", key(i), err)
						continue
					}
					got, err := io.ReadAll(rb)
					rb.Close()
					if err != nil || int64(len(got)) != e.Meta.Size || len(got) == 0 || got[0] != byte(i) {
						t.Errorf("Open(%q): %d bytes, %v, want %d bytes of %d", key(i), len(got), err, e.Meta.Size, byte(i))
					}
				case 4, 5, 6:
					b := body(i, step)
					if err := d.Store(tiertest.NewEntry(key(i), b), bytes.NewReader(b)); err != nil {
						t.Errorf("Store(%q): %v", key(i), err)
					}
				case 7:
					d.Delete(key(i))
				case 8:
					d.MarkValidated(key(i), time.Now())
				case 9:
					if rnd.IntN(10) == 0 {
						d.DeletePrefix(fmt.Sprintf("g%d/", i%3))
					}
				}
			}
		})
	}
	wg.Wait()
	waitReady(t, d)

	st := d.Stats()
	if st.Bytes > st.MaxBytes {
		t.Errorf("%d bytes held, over %d", st.Bytes, st.MaxBytes)
	}
	onDisk := map[string]int64{}
	for _, p := range files(t, dir) {
		if filepath.Dir(p) == filepath.Join(dir, "tmp") {
			t.Errorf("temporary file left: %s", p)
			continue
		}
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		e, _, info, err := readEntry(f, "")
		f.Close()
		if err != nil {
			t.Errorf("%s: %v", p, err)
			continue
		}
		onDisk[e.Key] = info.Size()
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	var total int64
	for k, size := range onDisk {
		n := d.idx.get(k)
		if n == nil {
			t.Errorf("%q is on disk but not indexed", k)
			continue
		}
		if n.size != size {
			t.Errorf("%q: indexed with %d bytes, its file has %d", k, n.size, size)
		}
		total += size
	}
	if d.idx.len() != len(onDisk) || d.idx.bytes != total {
		t.Errorf("index: %d entries of %d bytes; disk: %d files of %d bytes", d.idx.len(), d.idx.bytes, len(onDisk), total)
	}
}
