package memory

import (
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/ristretto/v2"
	"github.com/fedicache/fedicache/cache"
	"github.com/fedicache/fedicache/origin"
)

// bufferItems is ristretto's BufferItems: the length of its striped buffers of Gets. 64 is
// the value ristretto recommends.
const bufferItems = 64

// Memory is the memory tier. Its methods are safe for concurrent use, except Close.
type Memory struct {
	cfg       Config
	c         *ristretto.Cache[string, *item]
	idx       *index
	evictions atomic.Uint64
	closing   atomic.Bool
}

// New returns an empty memory tier sized by cfg.
func New(cfg Config) (*Memory, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	m := &Memory{cfg: cfg, idx: newIndex()}
	c, err := ristretto.NewCache(&ristretto.Config[string, *item]{
		NumCounters: numCounters(cfg.MaxBytes),
		MaxCost:     cfg.MaxBytes,
		BufferItems: bufferItems,
		// Each Set passes the entry's whole cost in bytes: body, key and entryOverhead, which
		// already counts ristretto's bookkeeping. Left false, ristretto would add the size of
		// its store record on top, charging that twice: a large share for the small objects
		// (emoji, avatars) this tier holds most of.
		IgnoreInternalCost: true,
		// Metrics stay off: they add shared atomic counters to every Get. Bytes comes from the
		// policy's used cost, Entries from the index, Evictions from OnEvict.
		Metrics: false,
		OnEvict: m.onEvict,
		// OnExit, not OnReject and OnEvict, keeps the index: ristretto calls it for every item
		// it lets go of, also one deleted or replaced in place, which those two never see.
		OnExit: m.idx.exited,
	})
	if err != nil {
		return nil, fmt.Errorf("memory: %w", err)
	}
	m.c, m.idx.c = c, c
	return m, nil
}

// onEvict counts an entry removed to make room. Ristretto also calls it, from Close, for
// every entry it drops, and with a nil Value for an entry a Delete removed first.
func (m *Memory) onEvict(i *ristretto.Item[*item]) {
	if i.Value != nil && !m.closing.Load() {
		m.evictions.Add(1)
	}
}

// Close drops every entry and stops ristretto's goroutines. It must not run concurrently with
// any other method; afterwards the tier holds nothing and refuses Puts.
func (m *Memory) Close() {
	m.closing.Store(true)
	m.c.Close()
	m.idx.sweep()
}

// Wait returns once every Put made before it is applied: readable, or dropped by the
// admission policy or by eviction.
func (m *Memory) Wait() { m.c.Wait() }

// Put stores e with body and reports whether the tier took it into its buffers. It refuses
// (false) an entry without a key, a body whose length is not e.Meta.Size, one larger than
// MaxObjectBytes, and an entry whose cost would exceed MaxBytes; ristretto refuses when its
// set buffer is full. Even a true result is no promise: the admission policy may still reject
// the entry, or a Put of the same key racing it may win, so callers never rely on a Put
// landing.
//
// Put takes body over without copying it: the caller must not modify it afterwards, and
// readers share it. The entry is charged cap(body) plus its key and entryOverhead, so a body
// read into an oversized buffer is charged for the memory it keeps. A Put of a key the tier
// holds deletes the old entry first (readers miss until the new one is applied), so that the
// new one is charged as a new entry; only Puts of one key racing each other replace an entry
// in place, which can leave the tier over MaxBytes by the growth until the next new entry.
func (m *Memory) Put(e cache.Entry, body []byte) bool {
	size := int64(len(body))
	if e.Key == "" || size != e.Meta.Size || size > m.cfg.MaxObjectBytes {
		return false
	}
	it := newItem(e, body)
	if it.cost > m.cfg.MaxBytes {
		return false
	}
	if _, held := m.c.GetTTL(e.Key); held {
		// Ristretto would replace the entry in place and make room only for the next new
		// entry, so a larger body would overrun MaxBytes until then. Deleted first, it enters
		// as a new entry, which evicts as it needs to.
		m.c.Del(e.Key)
	}
	return m.idx.put(it)
}

// Name implements cache.Tier.
func (m *Memory) Name() string { return string(cache.SourceMemory) }

// Open implements cache.Tier. The body reads the stored bytes in place. A miss returns the
// bare origin.ErrNotFound: misses are frequent and need no detail.
func (m *Memory) Open(key string, r *origin.Range) (io.ReadCloser, cache.Entry, error) {
	it, ok := m.c.Get(key)
	if !ok || it == nil {
		return nil, cache.Entry{}, origin.ErrNotFound
	}
	e := it.entry
	e.ValidatedAt = it.validated()
	b := it.body
	if r != nil {
		first, last, ok := r.Resolve(int64(len(b)))
		if !ok {
			return nil, e, fmt.Errorf("memory: open %q %s of %d bytes: %w", key, r, len(b), origin.ErrRangeNotSatisfiable)
		}
		b = b[first : last+1]
	}
	return &reader{b: b}, e, nil
}

// MarkValidated implements cache.Tier. It moves the entry's ValidatedAt forward in place,
// without a new Set; an at earlier than the recorded time changes nothing.
func (m *Memory) MarkValidated(key string, at time.Time) bool {
	it, ok := m.c.Get(key)
	if !ok || it == nil {
		return false
	}
	it.markValidated(at)
	return true
}

// Delete implements cache.Tier. The entry is unreadable when Delete returns, except one whose
// Put is still buffered: it may show briefly until ristretto applies the deletion after it.
func (m *Memory) Delete(key string) bool {
	_, held := m.c.GetTTL(key)
	m.c.Del(key)
	m.idx.sweep()
	return held
}

// DeletePrefix implements cache.Tier. It deletes every key the index holds under prefix,
// which includes the Puts still buffered, and counts those that were readable.
func (m *Memory) DeletePrefix(prefix string) int {
	n := 0
	for _, k := range m.idx.withPrefix(prefix) {
		if _, held := m.c.GetTTL(k); held {
			n++
		}
		m.c.Del(k)
	}
	m.idx.sweep()
	return n
}

// Stats implements cache.Tier. Entries counts the keys indexed, which includes Puts still
// buffered; Bytes is the cost ristretto's policy holds, which follows a Delete once ristretto
// applies it.
func (m *Memory) Stats() cache.TierStats {
	return cache.TierStats{
		Entries:   int64(m.idx.len()),
		Bytes:     m.c.MaxCost() - m.c.RemainingCost(),
		MaxBytes:  m.cfg.MaxBytes,
		Evictions: m.evictions.Load(),
	}
}

var (
	_ cache.Tier       = (*Memory)(nil)
	_ cache.MemoryTier = (*Memory)(nil)
)

// MaxObjectBytes returns the largest body Put accepts.
func (m *Memory) MaxObjectBytes() int64 { return m.cfg.MaxObjectBytes }
