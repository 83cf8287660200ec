package memory

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/fedicache/fedicache/cache"
	"github.com/fedicache/fedicache/cache/tiertest"
)

func newTestMemory(t *testing.T, cfg Config) *Memory {
	t.Helper()
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	return m
}

// checkIndex fails unless, once everything is applied, the index holds exactly the keys of
// universe that the cache returns, each counted once.
func checkIndex(t *testing.T, m *Memory, universe []string) {
	t.Helper()
	m.Wait()
	m.idx.mu.Lock()
	defer m.idx.mu.Unlock()
	m.idx.sweepLocked()
	for _, k := range universe {
		_, readable := m.c.Get(k)
		n, inIndex := m.idx.keys[k]
		switch {
		case readable && !inIndex:
			t.Errorf("%q is readable but not indexed: DeletePrefix would miss it", k)
		case !readable && inIndex:
			t.Errorf("%q is indexed but not readable", k)
		case inIndex && n != 1:
			t.Errorf("%q is counted %d times with nothing buffered", k, n)
		}
	}
	if len(m.idx.keys) > len(universe) {
		t.Errorf("the index holds %d keys, more than the %d ever stored", len(m.idx.keys), len(universe))
	}
}

func TestEntryOverheadCoversItem(t *testing.T) {
	const dateLen = len(httpDate)
	if size := int(unsafe.Sizeof(item{})) + dateLen; size > entryOverhead {
		t.Errorf("an item takes %d bytes with its date, more than the %d entryOverhead charges", size, entryOverhead)
	}
}

func TestNumCounters(t *testing.T) {
	for _, tc := range []struct{ maxBytes, want int64 }{
		{1 << 10, minCounters},
		{256 << 20, 256 << 20 / avgObjectBytes * countersPerKey},
		{1 << 40, maxCounters},
	} {
		if got := numCounters(tc.maxBytes); got != tc.want {
			t.Errorf("numCounters(%d) = %d, want %d", tc.maxBytes, got, tc.want)
		}
	}
}

// TestSamePutTwiceBuffered puts two items under one key with no Wait between, so the second
// often reaches ristretto while the first is still buffered: ristretto then keeps the first
// and rejects the second, and the key must stay indexed.
func TestSamePutTwiceBuffered(t *testing.T) {
	m := newTestMemory(t, Config{MaxBytes: 64 << 20})
	var keys []string
	for i := range 2000 {
		k := fmt.Sprintf("cache/a/%d.png", i)
		keys = append(keys, k)
		first, second := []byte("first"), []byte("second!")
		m.Put(tiertest.NewEntry(k, first), first)
		m.Put(tiertest.NewEntry(k, second), second)
	}
	checkIndex(t, m, keys)
	if n := m.DeletePrefix("cache/a/"); n != len(keys) {
		t.Errorf("DeletePrefix removed %d, want %d", n, len(keys))
	}
	checkIndex(t, m, keys)
	if st := m.Stats(); st.Entries != 0 {
		t.Errorf("Stats after DeletePrefix: %+v", st)
	}
}

func TestDeletePrefix(t *testing.T) {
	m := newTestMemory(t, Config{MaxBytes: 64 << 20})
	var keys []string
	put := func(k string) {
		keys = append(keys, k)
		b := []byte(k)
		if !m.Put(tiertest.NewEntry(k, b), b) {
			t.Fatalf("Put(%q) refused", k)
		}
	}
	for i := range 100 {
		put(fmt.Sprintf("cache/accounts/avatars/%03d.png", i))
		put(fmt.Sprintf("accounts/avatars/%03d.png", i))
	}
	m.Wait()
	if n := m.DeletePrefix("cache/"); n != 100 {
		t.Errorf("DeletePrefix(cache/) after Wait removed %d, want 100", n)
	}
	// Puts still in ristretto's buffers: DeletePrefix must reach them too, whether or not
	// they are readable yet.
	for i := range 100 {
		put(fmt.Sprintf("cache/media_attachments/%03d.png", i))
	}
	m.DeletePrefix("cache/")
	m.Wait()
	for _, k := range keys {
		_, ok := m.Peek(k)
		if want := k[:6] != "cache/"; ok != want {
			t.Errorf("Peek(%q) after DeletePrefix(cache/): %v, want %v", k, ok, want)
		}
	}
	if st := m.Stats(); st.Entries != 100 {
		t.Errorf("Stats after DeletePrefix: %d entries, want 100", st.Entries)
	}
	checkIndex(t, m, keys)
	if n := m.DeletePrefix(""); n != 100 {
		t.Errorf("DeletePrefix of everything removed %d, want 100", n)
	}
	checkIndex(t, m, keys)
}

// TestConcurrent runs Puts, Peeks, Opens, MarkValidated, Deletes and DeletePrefixes on a
// small tier with few keys, so they collide and evict, and then checks the index (run it with
// -race).
func TestConcurrent(t *testing.T) {
	m := newTestMemory(t, Config{MaxBytes: 256 << 10, MaxObjectBytes: 16 << 10})
	var keys []string
	for i := range 64 {
		keys = append(keys, fmt.Sprintf("cache/%d/media/%02d.jpg", i%4, i))
	}
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(g), 1))
			for range 2000 {
				k := keys[r.IntN(len(keys))]
				switch op := r.IntN(100); {
				case op < 30:
					b := tiertest.Blob(uint64(r.IntN(8)), 1+r.IntN(16<<10))
					m.Put(tiertest.NewEntry(k, b), b)
				case op < 70:
					if h, ok := m.Peek(k); ok && (int64(len(h.Body)) != h.Entry.Meta.Size || h.Entry.Key != k) {
						t.Errorf("Peek(%q): %d bytes, entry %q of %d", k, len(h.Body), h.Entry.Key, h.Entry.Meta.Size)
					}
				case op < 80:
					if body, e, err := m.Open(k, nil); err == nil {
						if n, _ := body.(*reader); len(n.b) != int(e.Meta.Size) {
							t.Errorf("Open(%q): %d bytes, entry of %d", k, len(n.b), e.Meta.Size)
						}
						body.Close()
					}
				case op < 88:
					m.MarkValidated(k, time.Now())
				case op < 96:
					m.Delete(k)
				case op < 98:
					m.DeletePrefix(k[:8])
				default:
					if st := m.Stats(); st.Entries < 0 || st.Bytes < 0 {
						t.Errorf("Stats: %+v", st)
					}
				}
			}
		}()
	}
	wg.Wait()
	checkIndex(t, m, keys)
	// Puts of one key racing each other may replace an entry in place, which ristretto
	// charges without evicting: at most one object's growth per racing goroutine.
	if st, slack := m.Stats(), int64(16*(16<<10+entryOverhead+len(keys[0]))); st.Bytes > st.MaxBytes+slack {
		t.Errorf("Stats after the run: %+v", st)
	}
}

// TestReplaceLarger stores every key again with a larger body: the tier must still stay
// within MaxBytes, which ristretto alone would not ensure for a replacement.
func TestReplaceLarger(t *testing.T) {
	const max = 256 << 10
	m := newTestMemory(t, Config{MaxBytes: max, MaxObjectBytes: 64 << 10})
	var keys []string
	for i := range 64 {
		keys = append(keys, fmt.Sprintf("accounts/avatars/%03d.png", i))
	}
	for _, size := range []int{1 << 10, 4 << 10, 64 << 10} {
		for i, k := range keys {
			b := tiertest.Blob(uint64(i), size)
			if !m.Put(tiertest.NewEntry(k, b), b) {
				t.Fatalf("Put(%q, %d bytes) refused", k, size)
			}
			m.Wait()
			if h, ok := m.Peek(k); ok && len(h.Body) != size {
				t.Fatalf("Peek(%q) after a Put of %d bytes: %d bytes", k, size, len(h.Body))
			}
		}
		if st := m.Stats(); st.Bytes > max {
			t.Errorf("after storing %d-byte bodies: %+v", size, st)
		}
	}
	checkIndex(t, m, keys)
}

func TestStaysWithinMaxBytes(t *testing.T) {
	const max = 256 << 10
	m := newTestMemory(t, Config{MaxBytes: max, MaxObjectBytes: 32 << 10})
	var keys []string
	for i := range 2000 { // ~40 MB through a 256 KiB tier, without waiting between Puts
		k := fmt.Sprintf("media_attachments/files/%06d.jpg", i)
		keys = append(keys, k)
		b := tiertest.Blob(uint64(i), 1+i*7919%(32<<10))
		m.Put(tiertest.NewEntry(k, b), b)
	}
	m.Wait()
	st := m.Stats()
	if st.Bytes > max || st.Bytes <= 0 {
		t.Errorf("after 2000 Puts into a %d-byte tier: %+v", max, st)
	}
	if st.Evictions == 0 {
		t.Errorf("nothing was evicted: %+v", st)
	}
	var held int64
	for _, k := range keys {
		if h, ok := m.Peek(k); ok {
			held += int64(len(h.Body)) + int64(len(k)) + entryOverhead
		}
	}
	if held > max {
		t.Errorf("the readable entries cost %d bytes, more than the %d allowed", held, max)
	}
	checkIndex(t, m, keys)
}

// TestCostCountsCapacity checks that a body in an oversized buffer is charged for the buffer.
func TestCostCountsCapacity(t *testing.T) {
	body := make([]byte, 10, 4096)
	it := newItem(cache.Entry{Key: "k", Meta: tiertest.NewEntry("k", body).Meta}, body)
	if want := int64(4096 + 1 + entryOverhead); it.cost != want {
		t.Errorf("cost %d, want %d", it.cost, want)
	}
	if cap(it.body) != len(it.body) {
		t.Errorf("stored body has capacity %d beyond its %d bytes", cap(it.body), len(it.body))
	}
}
