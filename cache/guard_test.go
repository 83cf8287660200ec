package cache_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fedicache/fedicache/cache/tiertest"
	"github.com/fedicache/fedicache/origin"
	"github.com/fedicache/fedicache/origin/origintest"
)

// refusals is a Guard over a set of refused keys, as cache/state is over the tombstones.
type refusals struct {
	mu  sync.Mutex
	err map[string]error
	all error // refuses every key when set
}

func (g *refusals) Check(key string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.all != nil {
		return g.all
	}
	return g.err[key]
}

func (g *refusals) set(key string, err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.err == nil {
		g.err = map[string]error{}
	}
	if err == nil {
		delete(g.err, key)
	} else {
		g.err[key] = err
	}
}

var errTombstone = fmt.Errorf("a tombstone: %w", origin.ErrHidden)

func guarded(t *testing.T) (*harness, *refusals) {
	h := newHarness(t, harnessOpts{})
	g := &refusals{}
	h.cfg.Guard = g
	h.build()
	return h, g
}

// TestGuardRulesEveryTier: a key the guard refuses is never answered, from the memory hit path,
// the memory and disk tiers, a range or a Stat, and no store is asked for it.
func TestGuardRulesEveryTier(t *testing.T) {
	h, g := guarded(t)
	small, big := []byte("small and in memory"), tiertest.Blob(3, 200_000) // big: disk only
	h.bucket.Put(t, smallKey, small)
	h.bucket.Put(t, bigKey, big)
	for _, k := range []string{smallKey, bigKey} {
		h.get(t, k)
		if _, from, err := h.get(t, k); err != nil || from.Source == origin.SourceBucket {
			t.Fatalf("%s is not cached: %v %q", k, err, from.Source)
		}
	}
	if _, ok := h.l.Peek(smallKey); !ok {
		t.Fatal("no memory hit before the refusal")
	}
	gets := h.bucket.TotalGets()
	for _, k := range []string{smallKey, bigKey} {
		g.set(k, errTombstone)
		if _, ok := h.l.Peek(k); ok {
			t.Errorf("%s: the memory hit path answers a refused key", k)
		}
		if b, _, err := h.get(t, k); !errors.Is(err, origin.ErrHidden) || b != nil {
			t.Errorf("%s: Get gave %d bytes, %v; want ErrHidden", k, len(b), err)
		}
		if _, _, err := h.l.Get(context.Background(), k, &origin.Range{Start: 0, End: 3}); !errors.Is(err, origin.ErrHidden) {
			t.Errorf("%s: a range gave %v, want ErrHidden", k, err)
		}
		if _, err := h.l.Stat(context.Background(), k); !errors.Is(err, origin.ErrHidden) {
			t.Errorf("%s: Stat gave %v, want ErrHidden", k, err)
		}
	}
	if n := h.bucket.TotalGets(); n != gets {
		t.Errorf("refused keys reached the bucket: %d GETs, want %d", n, gets)
	}
	// Not ready: every key answers ErrNotReady, the bucket is not asked.
	g.mu.Lock()
	g.all = origin.ErrNotReady
	g.mu.Unlock()
	if _, _, err := h.l.Get(context.Background(), "accounts/avatars/000/000/009/original/a.png", nil); !errors.Is(err, origin.ErrNotReady) {
		t.Errorf("not ready: %v", err)
	}
	if n := h.bucket.TotalGets(); n != gets {
		t.Errorf("a cache that is not ready asked the bucket")
	}
}

// TestGuardRefusalDuringFetch: a key refused while its fetch runs is not stored, whichever moment
// of the fetch the refusal meets; the clients already reading finish (a refusal without a purge
// cuts nobody), and the next request is refused.
func TestGuardRefusalDuringFetch(t *testing.T) {
	for _, size := range []int{20_000, 300_000} { // memory and disk; disk only
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			h, g := guarded(t)
			data := tiertest.Blob(4, size)
			h.bucket.Put(t, bigKey, data)
			gate := h.bucket.GateBody(bigKey, 1000)
			body, _, err := h.l.Get(context.Background(), bigKey, nil)
			if err != nil {
				t.Fatal(err)
			}
			<-gate.Passed
			g.set(bigKey, errTombstone)
			gate.Open()
			if b, err := io.ReadAll(body); err != nil || len(b) != size {
				t.Errorf("the client already reading: %d bytes, %v", len(b), err)
			}
			body.Close()
			h.l.Settle()
			if st := h.l.Stats(); st.Memory.Entries != 0 || st.Disk.Entries != 0 {
				t.Errorf("a refused key was stored: memory %d, disk %d", st.Memory.Entries, st.Disk.Entries)
			}
			g.set(bigKey, nil)
			if _, from, _ := h.get(t, bigKey); from.Source != origin.SourceBucket {
				t.Errorf("after the refusal was lifted: Source %q, want a fresh fetch", from.Source)
			}
		})
	}
}

// TestGuardDropCutsTheFetchUnderWay: Drop (a deleted or hidden object) fails the clients
// reading its fetch, cancels the bucket request and stores nothing; Purge lets them finish but
// stores nothing, and a request after either starts a fetch of its own.
func TestGuardDropCutsTheFetchUnderWay(t *testing.T) {
	for _, drop := range []bool{true, false} {
		t.Run(fmt.Sprint("drop=", drop), func(t *testing.T) {
			h := newHarness(t, harnessOpts{})
			const size = 4 << 20
			h.bucket.PutGenerated(bigKey, size)
			gate := h.bucket.GateBody(bigKey, 1<<20)
			body, _, err := h.l.Get(context.Background(), bigKey, nil)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.CopyN(io.Discard, body, 1<<19); err != nil {
				t.Fatal(err)
			}
			if drop {
				h.l.Drop(bigKey)
			} else {
				h.l.Purge(bigKey)
			}
			// A request now must not join the fetch that was purged.
			h.bucket.GateBody(bigKey, 1<<30).Open()
			gate.Open()
			n, err := io.Copy(io.Discard, body)
			body.Close()
			switch {
			case drop && (err == nil || n+1<<19 >= size):
				t.Errorf("after Drop the client read to byte %d with %v; want it cut", n+1<<19, err)
			case !drop && (err != nil || n+1<<19 != size):
				t.Errorf("after Purge the client read %d bytes with %v; want all %d", n+1<<19, err, size)
			}
			if drop {
				select {
				case err := <-h.bucket.Ended():
					if !errors.Is(err, context.Canceled) {
						t.Errorf("the bucket request ended with %v, want canceled", err)
					}
				case <-time.After(10 * time.Second):
					t.Fatal("the fetch of a dropped object still runs")
				}
			}
			h.l.Settle()
			if st := h.l.Stats(); st.Disk.Entries != 0 {
				t.Errorf("a purged fetch was stored (%d disk entries)", st.Disk.Entries)
			}
			b, from, err := h.get(t, bigKey)
			if err != nil || len(b) != size || from.Source != origin.SourceBucket || h.bucket.Gets(bigKey) != 2 {
				t.Errorf("the next request: %d bytes, %v, Source %q, %d GETs; want a fetch of its own", len(b), err, from.Source, h.bucket.Gets(bigKey))
			}
			for i := int64(0); i < int64(len(b)); i += 4099 {
				if b[i] != origintest.PatternByte(i) {
					t.Fatalf("byte %d differs", i)
				}
			}
		})
	}
}

// generational is refusals with a generation that moves at every refusal added, and a count of
// the checks asked.
type generational struct {
	refusals
	gen    atomic.Uint64
	checks atomic.Int64
}

func (g *generational) Check(key string) error {
	g.checks.Add(1)
	return g.refusals.Check(key)
}

func (g *generational) Generation() uint64 { return g.gen.Load() }

func (g *generational) refuse(key string) {
	g.set(key, errTombstone)
	g.gen.Add(1) // after the refusal is in, as cache/state does
}

// TestGuardGenerationOnTheHitPath: with a guard that has generations, a memory hit asks it once
// per entry and generation; a refusal added (the generation moves) is seen at the next hit.
func TestGuardGenerationOnTheHitPath(t *testing.T) {
	h := newHarness(t, harnessOpts{noDisk: true})
	g := &generational{}
	h.cfg.Guard = g
	h.build()
	h.bucket.Put(t, smallKey, []byte("hot"))
	h.get(t, smallKey)
	for range 100 {
		if _, ok := h.l.Peek(smallKey); !ok {
			t.Fatal("no memory hit")
		}
	}
	if n := g.checks.Load(); n > 4 { // the Get, its fetch's store (before and after), one hit
		t.Errorf("%d checks for 100 hits of one entry in one generation", n)
	}
	g.refuse("media_attachments/files/000/000/009/original/other.png")
	before := g.checks.Load()
	if _, ok := h.l.Peek(smallKey); !ok || g.checks.Load() != before+1 {
		t.Errorf("after another key's refusal: hit %v, %d checks; want a hit after one check", ok, g.checks.Load()-before)
	}
	g.refuse(smallKey)
	if _, ok := h.l.Peek(smallKey); ok {
		t.Error("a hit of a key refused since its last check")
	}
}
