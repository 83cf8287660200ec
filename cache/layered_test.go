package cache_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/fedicache/fedicache/cache"
	"github.com/fedicache/fedicache/cache/tiertest"
	"github.com/fedicache/fedicache/origin"
	"github.com/fedicache/fedicache/origin/origintest"
)

const (
	smallKey = "media_attachments/files/000/000/001/small/0123456789abcdef.png"
	bigKey   = "media_attachments/files/000/000/001/original/0123456789abcdef.mp4"
)

// TestCoalesceManyClients: concurrent cold requests make one bucket GET and all get the
// same bytes, whichever tiers hold the result.
func TestCoalesceManyClients(t *testing.T) {
	for _, tc := range []struct {
		name     string
		opts     harnessOpts
		size     int
		uncached bool // no tier keeps it: it streams through a temporary spool
	}{
		{"memory and disk, small", harnessOpts{}, 20_000, false},
		{"memory and disk, large", harnessOpts{}, 3 << 20, false},
		{"memory only, small", harnessOpts{noDisk: true}, 20_000, false},
		{"memory only, large", harnessOpts{noDisk: true}, 3 << 20, true},
		{"disk only", harnessOpts{noMemory: true}, 3 << 20, false},
		{"disk refuses the object", harnessOpts{diskMax: 1 << 20}, 3 << 20, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, tc.opts)
			data := tiertest.Blob(1, tc.size)
			h.bucket.Put(t, bigKey, data)
			gate := h.bucket.GateBody(bigKey, 1024) // every client arrives while the fetch runs
			const clients = 100
			var wg sync.WaitGroup
			errs := make(chan error, clients)
			started := make(chan struct{}, clients)
			for range clients {
				wg.Add(1)
				go func() {
					defer wg.Done()
					body, _, err := h.l.Get(context.Background(), bigKey, nil)
					started <- struct{}{}
					if err != nil {
						errs <- err
						return
					}
					defer body.Close()
					got, err := io.ReadAll(body)
					if err != nil {
						errs <- err
						return
					}
					if !bytes.Equal(got, data) {
						errs <- errors.New("a client got other bytes")
					}
				}()
			}
			for range clients {
				<-started
			}
			gate.Open()
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			if n := h.bucket.Gets(bigKey); n != 1 {
				t.Errorf("%d concurrent cold GETs made %d bucket GETs, want 1", clients, n)
			}
			if st := h.l.Stats(); st.SharedWaiters != clients-1 {
				t.Errorf("SharedWaiters %d, want %d", st.SharedWaiters, clients-1)
			}
			// Cached where a tier keeps it: the next request is a hit.
			if tc.uncached {
				return
			}
			got, from, err := h.get(t, bigKey)
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("after the fill: %v, %d bytes", err, len(got))
			}
			if from.Source != cache.SourceMemory && from.Source != cache.SourceDisk {
				t.Errorf("after the fill: Source %q, want a tier", from.Source)
			}
			if n := h.bucket.Gets(bigKey); n != 1 {
				t.Errorf("a hit reached the bucket: %d GETs", n)
			}
		})
	}
}

// TestWaitersStreamBeforeTheFetchEnds: clients joining a fetch get bytes while the origin
// still sends, and a client that leaves does not end the fetch for the others.
func TestWaitersStreamBeforeTheFetchEnds(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	const size = 300 << 20 // a 300 MB video
	h.bucket.PutGenerated(bigKey, size)
	gate := h.bucket.GateBody(bigKey, 1<<20)
	const clients = 8
	bodies := make([]io.ReadCloser, clients)
	for i := range bodies {
		body, m, err := h.l.Get(context.Background(), bigKey, nil)
		if err != nil {
			t.Fatal(err)
		}
		if m.Size != size {
			t.Fatalf("Size %d", m.Size)
		}
		bodies[i] = body
	}
	// Every client reads its first MiB while the origin is held at the gate.
	for i, body := range bodies {
		head := make([]byte, 1<<20)
		if _, err := io.ReadFull(body, head); err != nil {
			t.Fatalf("client %d, first MiB: %v", i, err)
		}
		for j, b := range head {
			if b != origintest.PatternByte(int64(j)) {
				t.Fatalf("client %d: byte %d differs", i, j)
			}
		}
	}
	// One client leaves; the others still get everything.
	bodies[0].Close()
	gate.Open()
	var wg sync.WaitGroup
	for i, body := range bodies[1:] {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer body.Close()
			off := int64(1 << 20)
			buf := make([]byte, 1<<20)
			for {
				n, err := body.Read(buf)
				for j := range n {
					if buf[j] != origintest.PatternByte(off+int64(j)) {
						t.Errorf("client %d: byte %d differs", i+1, off+int64(j))
						return
					}
				}
				off += int64(n)
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Errorf("client %d: %v after %d bytes", i+1, err, off)
					return
				}
			}
			if off != size {
				t.Errorf("client %d got %d bytes, want %d", i+1, off, size)
			}
		}()
	}
	wg.Wait()
	if n := h.bucket.Gets(bigKey); n != 1 {
		t.Errorf("%d bucket GETs, want 1", n)
	}
}

// TestFetchNobodyWantsIsCanceled: with no tier to keep a large object, the fetch stops once
// its last client leaves.
func TestFetchNobodyWantsIsCanceled(t *testing.T) {
	h := newHarness(t, harnessOpts{noDisk: true})
	h.bucket.PutGenerated(bigKey, 1<<30)
	body, _, err := h.l.Get(context.Background(), bigKey, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.CopyN(io.Discard, body, 1<<20); err != nil {
		t.Fatal(err)
	}
	body.Close()
	select {
	case err := <-h.bucket.Ended():
		if !errors.Is(err, context.Canceled) {
			t.Errorf("the bucket request ended with %v, want canceled", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the fetch still runs 20s after its only client left")
	}
}

// TestTruncatedOriginIsNeverCached: a body cut short fails the reader (never a clean EOF) and
// leaves nothing in the tiers.
func TestTruncatedOriginIsNeverCached(t *testing.T) {
	for _, size := range []int{20_000, 2 << 20} {
		h := newHarness(t, harnessOpts{})
		data := tiertest.Blob(2, size)
		h.bucket.Put(t, bigKey, data)
		h.bucket.CutBody(bigKey, int64(size/2))
		got, _, err := h.get(t, bigKey)
		if err == nil {
			t.Fatalf("size %d: a cut body read as complete (%d bytes)", size, len(got))
		}
		h.bucket.CutBody(bigKey, 0)
		got, from, err := h.get(t, bigKey)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("size %d, after the cut: %v, %d bytes", size, err, len(got))
		}
		if from.Source != origin.SourceBucket {
			t.Errorf("size %d: the second request came from %q: the cut body was cached", size, from.Source)
		}
		if n := h.bucket.Gets(bigKey); n != 2 {
			t.Errorf("size %d: %d bucket GETs, want 2", size, n)
		}
	}
}

// TestRestartKeepsDiskEntries: a new process on the same disk folder serves hits.
func TestRestartKeepsDiskEntries(t *testing.T) {
	h := newHarness(t, harnessOpts{noMemory: true})
	data := tiertest.Blob(3, 500_000)
	h.bucket.Put(t, bigKey, data)
	if _, _, err := h.get(t, bigKey); err != nil {
		t.Fatal(err)
	}
	h.disk.Close()
	h.openDisk(t, 256<<20)
	h.build()
	got, from, err := h.get(t, bigKey)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("after restart: %v, %d bytes", err, len(got))
	}
	if from.Source != cache.SourceDisk {
		t.Errorf("after restart: Source %q, want disk", from.Source)
	}
	if n := h.bucket.Gets(bigKey); n != 1 {
		t.Errorf("%d bucket GETs, want 1", n)
	}
}

// TestCorruptDiskEntryIsRefetched: a damaged file is dropped, never served, and fetched again.
func TestCorruptDiskEntryIsRefetched(t *testing.T) {
	h := newHarness(t, harnessOpts{noMemory: true})
	data := tiertest.Blob(4, 300_000)
	h.bucket.Put(t, bigKey, data)
	if _, _, err := h.get(t, bigKey); err != nil {
		t.Fatal(err)
	}
	var files []string
	_ = filepath.WalkDir(h.diskDir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() && filepath.Base(filepath.Dir(p)) != "tmp" {
			files = append(files, p)
		}
		return nil
	})
	if len(files) != 1 {
		t.Fatalf("%d files in the disk tier, want 1", len(files))
	}
	if err := os.Truncate(files[0], 1000); err != nil {
		t.Fatal(err)
	}
	got, from, err := h.get(t, bigKey)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("after corruption: %v, %d bytes", err, len(got))
	}
	if from.Source != origin.SourceBucket || h.bucket.Gets(bigKey) != 2 {
		t.Errorf("after corruption: Source %q, %d GETs; want a new fetch", from.Source, h.bucket.Gets(bigKey))
	}
}

// TestRevalidation: past the TTL an entry is confirmed with a conditional request; a deleted
// object stops being served; a failing bucket gets the stale entry within stale_if_error.
func TestRevalidation(t *testing.T) {
	for _, tier := range []harnessOpts{{noDisk: true}, {noMemory: true}} {
		h := newHarness(t, tier)
		data := tiertest.Blob(5, 10_000)
		h.bucket.Put(t, smallKey, data)
		if _, _, err := h.get(t, smallKey); err != nil {
			t.Fatal(err)
		}
		h.clock.Advance(30 * time.Minute)
		if _, from, _ := h.get(t, smallKey); from.Source == origin.SourceBucket || h.bucket.Heads(smallKey) != 0 {
			t.Errorf("within the TTL: Source %q, %d HEADs", from.Source, h.bucket.Heads(smallKey))
		}

		h.clock.Advance(time.Hour) // past the TTL: unchanged
		got, from, err := h.get(t, smallKey)
		if err != nil || !bytes.Equal(got, data) || from.Stale || from.Source == origin.SourceBucket {
			t.Errorf("revalidated unchanged: %v, Source %q, stale %v", err, from.Source, from.Stale)
		}
		if h.bucket.Heads(smallKey) != 1 || h.bucket.Gets(smallKey) != 1 {
			t.Errorf("revalidation: %d HEADs and %d GETs, want 1 and 1", h.bucket.Heads(smallKey), h.bucket.Gets(smallKey))
		}
		h.get(t, smallKey) // fresh again: no request
		if h.bucket.Heads(smallKey) != 1 {
			t.Errorf("fresh after revalidation, yet %d HEADs", h.bucket.Heads(smallKey))
		}

		h.clock.Advance(90 * time.Minute) // past the TTL, the bucket fails: stale
		h.bucket.SetMode(origintest.Fail500)
		got, from, err = h.get(t, smallKey)
		if err != nil || !bytes.Equal(got, data) || !from.Stale {
			t.Errorf("bucket failing within stale_if_error: %v, stale %v", err, from.Stale)
		}
		h.clock.Advance(3 * time.Hour) // beyond stale_if_error
		if _, _, err := h.get(t, smallKey); err == nil || errors.Is(err, origin.ErrNotFound) {
			t.Errorf("bucket failing beyond stale_if_error: %v, want the bucket's error", err)
		}

		h.bucket.SetMode(origintest.Healthy) // deleted meanwhile: 404, dropped
		h.bucket.Delete(t, smallKey)
		if _, _, err := h.get(t, smallKey); !errors.Is(err, origin.ErrNotFound) {
			t.Errorf("deleted object after the TTL: %v, want ErrNotFound", err)
		}
		st := h.l.Stats()
		if st.RevalidatedFresh != 1 || st.RevalidatedGone != 1 || st.StaleServed != 1 {
			t.Errorf("stats %+v", st)
		}
	}
}

// TestNegativeCache: a missing key reaches the bucket once per window; an object that appears
// is served once the window ends, or at once when forgotten.
func TestNegativeCache(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	for range 10 {
		if _, _, err := h.get(t, smallKey); !errors.Is(err, origin.ErrNotFound) {
			t.Fatalf("missing key: %v", err)
		}
	}
	if n := h.bucket.Gets(smallKey); n != 1 {
		t.Errorf("10 requests for a missing key made %d bucket GETs, want 1", n)
	}
	h.bucket.Put(t, smallKey, []byte("uploaded"))
	if _, _, err := h.get(t, smallKey); !errors.Is(err, origin.ErrNotFound) {
		t.Errorf("within the window: %v, want ErrNotFound", err)
	}
	h.clock.Advance(31 * time.Second)
	if got, _, err := h.get(t, smallKey); err != nil || string(got) != "uploaded" {
		t.Errorf("after the window: %v %q", err, got)
	}
	const other = "accounts/avatars/000/000/009/original/9999999999999999.png"
	h.get(t, other)
	h.bucket.Put(t, other, []byte("copied"))
	h.l.Forget(other)
	if got, _, err := h.get(t, other); err != nil || string(got) != "copied" {
		t.Errorf("after Forget: %v %q", err, got)
	}
}

// TestRangeOnColdObject: a range is answered at once from a ranged GET, and the whole object
// is fetched into the disk tier in the background so later ranges are hits.
func TestRangeOnColdObject(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	const size = 50 << 20
	h.bucket.PutGenerated(bigKey, size)
	r := origin.Suffix(1000) // an mp4's index at the end
	body, m, err := h.l.Get(context.Background(), bigKey, &r)
	if err != nil {
		t.Fatal(err)
	}
	tail, _ := io.ReadAll(body)
	body.Close()
	if len(tail) != 1000 || tail[0] != origintest.PatternByte(size-1000) || m.Size != size {
		t.Fatalf("range: %d bytes, Size %d", len(tail), m.Size)
	}
	h.l.WaitFills()
	if st := h.l.Stats(); st.BackgroundFills != 1 || st.Disk.Entries != 1 {
		t.Fatalf("after the background fill: %d fills, %d disk entries; want 1 and 1", st.BackgroundFills, st.Disk.Entries)
	}
	r2 := origin.Range{Start: 10 << 20, End: 10<<20 + 99}
	body, _, from, err := h.l.GetFrom(context.Background(), bigKey, &r2)
	if err != nil {
		t.Fatal(err)
	}
	mid, _ := io.ReadAll(body)
	body.Close()
	if from.Source != cache.SourceDisk || len(mid) != 100 || mid[0] != origintest.PatternByte(10<<20) {
		t.Errorf("later range: Source %q, %d bytes", from.Source, len(mid))
	}
	if n := h.bucket.Gets(bigKey); n != 2 {
		t.Errorf("%d bucket GETs, want 2 (the range and one background fill)", n)
	}
}

// TestPurge drops entries from every tier and the not-found memory.
func TestPurge(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	h.bucket.Put(t, smallKey, []byte("small"))
	h.bucket.Put(t, bigKey, tiertest.Blob(6, 200_000))
	h.get(t, smallKey)
	h.get(t, smallKey) // its first disk hit puts it in memory too
	h.get(t, bigKey)
	if n := h.l.Purge(smallKey); n != 2 {
		t.Errorf("Purge of an object in both tiers removed %d entries, want 2", n)
	}
	if _, from, _ := h.get(t, smallKey); from.Source != origin.SourceBucket {
		t.Errorf("after purge: Source %q, want the bucket", from.Source)
	}
	if n := h.l.PurgePrefix("media_attachments/files/000/000/001/"); n < 2 {
		t.Errorf("PurgePrefix removed %d entries, want at least 2", n)
	}
	if _, from, _ := h.get(t, bigKey); from.Source != origin.SourceBucket {
		t.Errorf("after prefix purge: Source %q, want the bucket", from.Source)
	}
}

// TestHiddenObjectsAreNeverCached: an object whose ACL is private answers not found and is
// not stored; one cached while public answers not found once the revalidation sees it hidden.
func TestHiddenObjectsAreNeverCached(t *testing.T) {
	h := newHarness(t, harnessOpts{requirePublic: true})
	h.bucket.Put(t, smallKey, []byte("hidden"))
	h.bucket.SetACL(smallKey, "private")
	if _, _, err := h.get(t, smallKey); !errors.Is(err, origin.ErrNotFound) {
		t.Fatalf("a private object: %v, want not found", err)
	}
	if st := h.l.Stats(); st.Memory.Entries != 0 || st.Disk.Entries != 0 {
		t.Errorf("a private object was cached: %+v %+v", st.Memory, st.Disk)
	}
	h.bucket.Put(t, bigKey, []byte("public for now")) // public-read
	if _, from, err := h.get(t, bigKey); err != nil || from.Source != origin.SourceBucket {
		t.Fatalf("a public object: %v", err)
	}
	h.bucket.SetACL(bigKey, "private") // Mastodon suspends the account
	h.clock.Advance(2 * time.Hour)
	if _, _, err := h.get(t, bigKey); !errors.Is(err, origin.ErrNotFound) {
		t.Errorf("after the revalidation of an object hidden since: %v, want not found", err)
	}
	if st := h.l.Stats(); st.RevalidatedGone != 1 {
		t.Errorf("revalidations gone: %d, want 1", st.RevalidatedGone)
	}
}

// TestMemoryOnSecondRequest checks where a small object's fill goes: with a disk tier, to disk
// only when one request asked for it, into memory at its first disk hit; into memory at once
// when several requests wait on its fetch, or when there is no disk tier.
func TestMemoryOnSecondRequest(t *testing.T) {
	inMemory := func(h *harness, key string) bool {
		body, _, err := h.mem.Open(key, nil)
		if err != nil {
			return false
		}
		body.Close()
		return true
	}
	data := tiertest.Blob(7, 30_000)

	t.Run("one request", func(t *testing.T) {
		h := newHarness(t, harnessOpts{})
		h.bucket.Put(t, smallKey, data)
		for i, want := range []origin.Source{origin.SourceBucket, cache.SourceDisk, cache.SourceMemory} {
			got, from, err := h.get(t, smallKey)
			if err != nil || !bytes.Equal(got, data) || from.Source != want {
				t.Fatalf("request %d: Source %q, %d bytes, %v; want %q", i+1, from.Source, len(got), err, want)
			}
			if i == 0 && inMemory(h, smallKey) {
				t.Error("after one request the object is in memory")
			}
		}
		if n := h.bucket.Gets(smallKey); n != 1 {
			t.Errorf("%d bucket GETs, want 1", n)
		}
	})

	t.Run("two requests on one fetch", func(t *testing.T) {
		h := newHarness(t, harnessOpts{realClock: true})
		h.bucket.Put(t, smallKey, data)
		h.bucket.Pace(0, 300*time.Millisecond) // both requests wait on the fetch's headers
		var wg sync.WaitGroup
		for i := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if got, _, err := h.get(t, smallKey); err != nil || !bytes.Equal(got, data) {
					t.Errorf("request %d: %d bytes, %v", i+1, len(got), err)
				}
			}()
			time.Sleep(30 * time.Millisecond)
		}
		wg.Wait()
		if n := h.bucket.Gets(smallKey); n != 1 {
			t.Fatalf("%d bucket GETs, want 1", n)
		}
		if !inMemory(h, smallKey) {
			t.Error("an object two requests waited on is not in memory")
		}
	})

	t.Run("no disk tier", func(t *testing.T) {
		h := newHarness(t, harnessOpts{noDisk: true})
		h.bucket.Put(t, smallKey, data)
		if _, from, err := h.get(t, smallKey); err != nil || from.Source != origin.SourceBucket {
			t.Fatalf("first request: Source %q, %v", from.Source, err)
		}
		if !inMemory(h, smallKey) {
			t.Error("without a disk tier, a filled object is not in memory")
		}
	})
}
