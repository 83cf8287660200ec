package cache_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/fedicache/fedicache/cache"
	"github.com/fedicache/fedicache/cache/tiertest"
	"github.com/fedicache/fedicache/origin"
)

// TestStormOneFetchPerRound: round after round, 100 requests for a cold object arrive at once
// (none held back: some find the fetch running, some storing, some after it has left the map)
// and make exactly one bucket GET, for an image the memory tier keeps, one above its limit,
// and a video.
func TestStormOneFetchPerRound(t *testing.T) {
	const clients = 100
	for _, tc := range []struct {
		size, rounds int
	}{
		{20_000, 50},  // an image under the memory tier's 64 KiB
		{100_000, 50}, // an image over it
		{6 << 20, 5},  // a video: many spool chunks, read while they land
	} {
		size, rounds := tc.size, tc.rounds
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			h := newHarness(t, harnessOpts{})
			t.Cleanup(h.l.Close)
			for round := range rounds {
				key := fmt.Sprintf("media_attachments/files/000/%03d/001/original/storm%d.png", round, size)
				data := tiertest.Blob(uint64(round), size)
				h.bucket.Put(t, key, data)
				want := sha256.Sum256(data)
				start := make(chan struct{})
				var wg sync.WaitGroup
				for c := range clients {
					wg.Go(func() {
						<-start
						body, _, err := h.l.Get(context.Background(), key, nil)
						if err != nil {
							t.Errorf("round %d, client %d: %v", round, c, err)
							return
						}
						sum := sha256.New()
						n, err := io.Copy(sum, body)
						body.Close()
						if err != nil || n != int64(len(data)) || !bytes.Equal(sum.Sum(nil), want[:]) {
							t.Errorf("round %d, client %d: %d of %d bytes, %v", round, c, n, len(data), err)
						}
					})
				}
				close(start)
				wg.Wait()
				h.l.Settle()
				if n := h.bucket.Gets(key); n != 1 {
					t.Fatalf("round %d: %d concurrent cold GETs made %d bucket GETs, want 1", round, clients, n)
				}
			}
		})
	}
}

// heldDisk is a disk tier whose next Open of key, once armed, gives its answer only once
// released: the request that asked has looked in the tiers and is held before its fetch.
type heldDisk struct {
	cache.DiskTier
	key     string
	armed   atomic.Bool
	held    chan struct{} // closed once the held Open has its answer
	release chan struct{}
}

func (d *heldDisk) Open(key string, r *origin.Range) (io.ReadCloser, cache.Entry, error) {
	body, e, err := d.DiskTier.Open(key, r)
	if key == d.key && d.armed.CompareAndSwap(true, false) {
		close(d.held)
		<-d.release
	}
	return body, e, err
}

// TestCoalesceSecondLook is groupcache's load(): a request finds no tier holding the object;
// before it reaches the fetches, another request's fetch stores the object and leaves the map.
// The request's own fetch looks in the tiers once more and answers from there: the bucket is
// asked once.
func TestCoalesceSecondLook(t *testing.T) {
	for _, size := range []int{20_000, 300_000} { // memory and disk; disk only
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			h := newHarness(t, harnessOpts{})
			data := tiertest.Blob(12, size)
			h.bucket.Put(t, bigKey, data)
			d := &heldDisk{DiskTier: h.disk, key: bigKey, held: make(chan struct{}), release: make(chan struct{})}
			d.armed.Store(true)
			h.l = cache.New(h.origin, h.mem, d, h.cfg)
			t.Cleanup(h.l.Close)

			type answer struct {
				b    []byte
				from origin.From
				err  error
			}
			late := make(chan answer, 1)
			go func() {
				body, _, from, err := h.l.GetFrom(context.Background(), bigKey, nil)
				if err != nil {
					late <- answer{err: err}
					return
				}
				b, err := io.ReadAll(body)
				body.Close()
				late <- answer{b, from, err}
			}()
			<-d.held // the late request has missed every tier
			if b, from, err := h.get(t, bigKey); err != nil || !bytes.Equal(b, data) || from.Source != origin.SourceBucket {
				t.Fatalf("the first request: %d bytes, %v, source %q", len(b), err, from.Source)
			} // stored, and out of the map (get settles)
			close(d.release)
			a := <-late
			if a.err != nil || !bytes.Equal(a.b, data) {
				t.Fatalf("the late request: %d of %d bytes, %v", len(a.b), size, a.err)
			}
			h.l.Settle()
			if n := h.bucket.Gets(bigKey); n != 1 || a.from.Source == origin.SourceBucket {
				t.Errorf("%d bucket GETs, the late request answered from %q; want 1 GET and a tier", n, a.from.Source)
			}
		})
	}
}
