package cache

// Lock order: Layered.mu (the flights map) before flight.mu. The negative cache and the tiers
// have locks of their own, never taken while holding these.

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fedicache/fedicache/origin"
	"golang.org/x/sync/singleflight"
)

// Defaults of Config.
const (
	DefaultTTL             = 24 * time.Hour
	DefaultStaleIfError    = 168 * time.Hour
	DefaultNegativeTTL     = 30 * time.Second
	DefaultBackgroundFills = 4
)

// Config tunes Layered. The zero value works.
type Config struct {
	// TTL is how long an entry is served before it is revalidated. Zero means 24h.
	TTL time.Duration
	// StaleIfError is how long past its TTL an entry is still served while the origin fails
	// to confirm it. Zero means 168h.
	StaleIfError time.Duration
	// NegativeTTL is how long a not-found answer is remembered. Zero means 30s.
	NegativeTTL time.Duration
	// MemoryObjectBytes is the size up to which objects also go to the memory tier. Zero
	// means the memory tier's own limit (MaxObjectBytes).
	MemoryObjectBytes int64
	// BackgroundFills bounds the whole-object fetches started after a range request on an
	// uncached object. Zero means 4.
	BackgroundFills int
	// SpoolDir holds the temporary files through which large objects stream to several
	// clients when there is no disk tier. Zero means os.TempDir().
	SpoolDir string
	// Logger receives fill and revalidation failures. Zero means slog.Default().
	Logger *slog.Logger
	// Clock returns the time; zero means time.Now. Tests set it to move time.
	Clock func() time.Time
	// Guard, when set, is asked before every answer (the memory hit path included) and before
	// a fetched object is stored: a key it refuses is never served nor kept. Zero means every
	// key may be served.
	Guard Guard
}

// Guard decides whether a key may be served at all, whatever holds it: a tier, a fetch under
// way, the origin. Check must not allocate: it runs on memory hits.
type Guard interface {
	// Check returns nil when key may be served; origin.ErrHidden (or an error that is it) when
	// it must never be (Mastodon deleted it); any other error to answer instead of the object
	// (origin.ErrNotReady while the guard does not know yet).
	Check(key string) error
}

// GuardGeneration is an optional ability of a Guard whose verdicts change only when its
// generation does: a key Check allowed once Generation returned g is allowed while Generation
// still returns g (the generation moves after every refusal added). The memory hit path then
// asks Check once per entry and generation instead of on every hit.
type GuardGeneration interface {
	Generation() uint64
}

func (c Config) withDefaults() Config {
	if c.TTL <= 0 {
		c.TTL = DefaultTTL
	}
	if c.StaleIfError <= 0 {
		c.StaleIfError = DefaultStaleIfError
	}
	if c.NegativeTTL <= 0 {
		c.NegativeTTL = DefaultNegativeTTL
	}
	if c.BackgroundFills <= 0 {
		c.BackgroundFills = DefaultBackgroundFills
	}
	if c.SpoolDir == "" {
		c.SpoolDir = os.TempDir()
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Clock == nil {
		c.Clock = time.Now
	}
	return c
}

// MemoryTier is what Layered needs of the memory tier.
type MemoryTier interface {
	Tier
	// Put stores body (which the tier then owns) under e; it may refuse or drop it.
	Put(e Entry, body []byte) bool
	// Peek returns key's entry without allocating, for the hot path.
	Peek(key string) (Hit, bool)
	// Wait returns once the Puts made before it are readable.
	Wait()
	// MaxObjectBytes is the largest body Put accepts.
	MaxObjectBytes() int64
}

// DiskTier is what Layered needs of the disk tier.
type DiskTier interface {
	Tier
	// Spool starts writing e's body into the tier; it fails quickly while the tier is off.
	Spool(e Entry) (Spool, error)
}

// Spool is an object being written into a tier while clients read it.
type Spool interface {
	// Write appends body bytes.
	io.Writer
	// ReadAt reads body bytes already written, concurrently with Write.
	io.ReaderAt
	// Commit makes the entry part of the tier once the whole body is written.
	Commit() error
	// Abort drops what was written.
	Abort()
	// Close releases the spool once nobody reads it any more (after Commit or Abort).
	Close() error
}

// Hit is a memory hit, shaped so that serving it allocates nothing.
type Hit struct {
	// Body is the whole object; callers must not modify it.
	Body []byte
	// Entry describes it; callers must not modify it.
	Entry *Entry
	// LastModified is Entry.Meta.LastModified as an HTTP date ("" when unknown).
	LastModified string
	// ValidatedAt is when the origin last confirmed the entry.
	ValidatedAt time.Time
	// Allowed is kept with the entry for the cache's Guard: the guard generation (plus one) at
	// which the entry was last allowed. Nil when the tier keeps none.
	Allowed *atomic.Uint64
}

// Layered is an origin.Origin that answers from a memory tier, then a disk tier, then its
// origin, and fills the tiers from the origin with one fetch per object.
type Layered struct {
	cfg    Config
	origin origin.Sourced
	mem    MemoryTier
	disk   DiskTier
	tiers  []Tier
	neg    *negative
	stats  counters
	log    *slog.Logger
	// guardGen is cfg.Guard's generation, when it has one.
	guardGen GuardGeneration

	base   context.Context // parent of origin requests that outlive the request that started them
	cancel context.CancelFunc
	bg     chan struct{}  // background fill slots
	fills  sync.WaitGroup // background fills
	runs   sync.WaitGroup // every fetch
	reval  singleflight.Group

	mu      sync.Mutex
	flights map[string]*flight
}

// New returns a Layered cache in front of o (origin.Fallback of the stores). mem and disk may
// each be nil (that tier is off); pass an untyped nil, not a nil pointer of a tier type.
func New(o origin.Sourced, mem MemoryTier, disk DiskTier, cfg Config) *Layered {
	cfg = cfg.withDefaults()
	if mem != nil && (cfg.MemoryObjectBytes <= 0 || cfg.MemoryObjectBytes > mem.MaxObjectBytes()) {
		cfg.MemoryObjectBytes = mem.MaxObjectBytes()
	}
	l := &Layered{
		cfg:     cfg,
		origin:  o,
		mem:     mem,
		disk:    disk,
		neg:     newNegative(cfg.NegativeTTL, cfg.Clock),
		log:     cfg.Logger,
		bg:      make(chan struct{}, cfg.BackgroundFills),
		flights: map[string]*flight{},
	}
	l.guardGen, _ = cfg.Guard.(GuardGeneration)
	if mem != nil {
		l.tiers = append(l.tiers, mem)
	}
	if disk != nil {
		l.tiers = append(l.tiers, disk)
	}
	l.base, l.cancel = context.WithCancel(context.Background())
	return l
}

// Close cancels the fetches still running and waits until they have ended, so the tiers can be
// closed after it.
func (l *Layered) Close() {
	l.cancel()
	l.runs.Wait()
}

// Peek answers a fresh memory hit without allocating; ok is false otherwise (the caller then
// takes the general path through Get).
func (l *Layered) Peek(key string) (Hit, bool) {
	if l.mem == nil {
		return Hit{}, false
	}
	h, ok := l.mem.Peek(key)
	if !ok || !l.fresh(h.ValidatedAt) || !l.allowedHit(key, h.Allowed) {
		return Hit{}, false
	}
	l.stats.memoryHits.Add(1)
	return h, true
}

func (l *Layered) fresh(validatedAt time.Time) bool {
	return l.cfg.Clock().Sub(validatedAt) < l.cfg.TTL
}

// allowedHit reports whether the guard allows a memory hit of key. allowed, kept with the entry,
// is the guard's generation (plus one) at which Check last allowed it: while the generation has
// not moved since, the verdict stands and Check is not asked again.
func (l *Layered) allowedHit(key string, allowed *atomic.Uint64) bool {
	if l.cfg.Guard == nil {
		return true
	}
	if l.guardGen == nil || allowed == nil {
		return l.cfg.Guard.Check(key) == nil
	}
	gen := l.guardGen.Generation() + 1 // read before Check: a refusal added meanwhile moves it
	if allowed.Load() == gen {
		return true
	}
	if l.cfg.Guard.Check(key) != nil {
		return false
	}
	allowed.Store(gen)
	return true
}

// refused returns the Guard's verdict on key: nil when it may be served.
func (l *Layered) refused(key string) error {
	if l.cfg.Guard == nil {
		return nil
	}
	return l.cfg.Guard.Check(key)
}

// Get implements origin.Origin.
func (l *Layered) Get(ctx context.Context, key string, r *origin.Range) (io.ReadCloser, origin.Meta, error) {
	body, m, _, err := l.GetFrom(ctx, key, r)
	return body, m, err
}

// GetFrom implements origin.Sourced: the answer comes from a tier (Source the tier's name,
// Stale while the origin fails to confirm an old entry) or from the origin's store.
func (l *Layered) GetFrom(ctx context.Context, key string, r *origin.Range) (io.ReadCloser, origin.Meta, origin.From, error) {
	if err := l.refused(key); err != nil {
		return nil, origin.Meta{}, origin.From{}, err
	}
	if l.neg.has(key) {
		l.stats.negativeHits.Add(1)
		return nil, origin.Meta{}, origin.From{}, origin.ErrNotFound
	}
	for _, t := range l.tiers {
		body, e, err := t.Open(key, r)
		switch {
		case err == nil:
			return l.fromTier(ctx, t, key, r, body, e)
		case errors.Is(err, origin.ErrRangeNotSatisfiable):
			return nil, e.Meta, origin.From{Source: origin.Source(t.Name())}, err
		case !errors.Is(err, origin.ErrNotFound):
			l.log.Warn("cache tier failed to read", "tier", t.Name(), "key", key, "err", err)
		}
	}
	return l.miss(ctx, key, r)
}

// fromTier serves an entry a tier holds: at once while fresh, after a revalidation when not,
// stale when the origin fails to confirm it within StaleIfError.
func (l *Layered) fromTier(ctx context.Context, t Tier, key string, r *origin.Range, body io.ReadCloser, e Entry) (io.ReadCloser, origin.Meta, origin.From, error) {
	stale := false
	if !l.fresh(e.ValidatedAt) {
		body.Close()
		switch out, err := l.revalidate(key, e); out {
		case revalFresh:
		case revalStale:
			stale = true
		case revalChanged:
			return l.miss(ctx, key, r)
		default:
			return nil, origin.Meta{}, origin.From{}, err
		}
		var err error
		if body, e, err = t.Open(key, r); err != nil {
			return l.miss(ctx, key, r)
		}
	}
	from := origin.From{Source: origin.Source(t.Name()), Stale: stale}
	if stale {
		l.stats.staleServed.Add(1)
	}
	if t == Tier(l.disk) {
		if r == nil {
			var ok bool
			if body, ok = l.promote(e, body); !ok {
				return l.miss(ctx, key, r) // dropped as damaged: fetch it again
			}
		}
		l.stats.diskHits.Add(1)
	} else {
		l.stats.memoryHits.Add(1)
	}
	return body, e.Meta, from, nil
}

// verifyMaxBytes bounds the disk hits read whole into memory to be checked (and promoted to the
// memory tier): larger ones go out by sendfile, unchecked.
const verifyMaxBytes = 1 << 20

// promote reads a small object from disk, checks it against its MD5 ETag (bytes can rot in
// place on a disk), copies it into the memory tier, and returns a body serving it from memory.
// It reports false, having dropped the entry, when the object is unreadable or damaged.
func (l *Layered) promote(e Entry, body io.ReadCloser) (io.ReadCloser, bool) {
	if e.Meta.Size > max(l.cfg.MemoryObjectBytes, verifyMaxBytes) {
		return body, true
	}
	defer body.Close()
	buf := make([]byte, e.Meta.Size)
	_, err := io.ReadFull(body, buf)
	if want, ok := origin.ETagMD5(e.Meta.ETag); err == nil && ok {
		if sum := md5.Sum(buf); hex.EncodeToString(sum[:]) != want {
			err = errChecksum // damaged on disk since it was stored
		}
	}
	if err != nil {
		l.log.Warn("cache: a disk entry is unreadable or damaged; dropped", "key", e.Key, "err", err)
		l.disk.Delete(e.Key)
		return nil, false
	}
	if l.mem != nil && e.Meta.Size <= l.cfg.MemoryObjectBytes {
		l.mem.Put(e, buf)
	}
	return io.NopCloser(bytes.NewReader(buf)), true
}

// Stat implements origin.Origin.
func (l *Layered) Stat(ctx context.Context, key string) (origin.Meta, error) {
	m, _, err := l.StatFrom(ctx, key)
	return m, err
}

// StatFrom implements origin.Sourced, as GetFrom does.
func (l *Layered) StatFrom(ctx context.Context, key string) (origin.Meta, origin.From, error) {
	if err := l.refused(key); err != nil {
		return origin.Meta{}, origin.From{}, err
	}
	if l.neg.has(key) {
		l.stats.negativeHits.Add(1)
		return origin.Meta{}, origin.From{}, origin.ErrNotFound
	}
	for _, t := range l.tiers {
		body, e, err := t.Open(key, nil)
		if err != nil {
			continue
		}
		body.Close()
		from := origin.From{Source: origin.Source(t.Name())}
		if l.fresh(e.ValidatedAt) {
			return e.Meta, from, nil
		}
		switch out, err := l.revalidate(key, e); out {
		case revalFresh:
			return e.Meta, from, nil
		case revalStale:
			from.Stale = true
			return e.Meta, from, nil
		case revalChanged:
			return l.statOrigin(ctx, key)
		default:
			return origin.Meta{}, origin.From{}, err
		}
	}
	if f := l.flightFor(key); f != nil {
		if m, from, ok := f.metaIfKnown(); ok {
			return m, from, nil
		}
	}
	return l.statOrigin(ctx, key)
}

func (l *Layered) statOrigin(ctx context.Context, key string) (origin.Meta, origin.From, error) {
	m, from, err := l.origin.StatFrom(ctx, key)
	if errors.Is(err, origin.ErrNotFound) {
		l.neg.add(key)
	}
	return m, from, err
}

// miss answers from the origin: a range at once with a ranged request (and the whole object
// fetched into the tiers in the background), a whole object through the key's one fetch.
func (l *Layered) miss(ctx context.Context, key string, r *origin.Range) (io.ReadCloser, origin.Meta, origin.From, error) {
	l.stats.misses.Add(1)
	if r != nil {
		if f := l.flightFor(key); f != nil {
			if body, m, from, ok := f.rangeReader(*r); ok {
				l.stats.sharedWaiters.Add(1)
				return body, m, from, nil
			}
		}
		l.stats.originGets.Add(1)
		body, m, from, err := l.origin.GetFrom(ctx, key, r)
		switch {
		case errors.Is(err, origin.ErrNotFound):
			l.neg.add(key)
		case err == nil && l.cacheable(m.Size):
			l.backgroundFill(key)
		}
		return body, m, from, err
	}
	f, shared := l.join(key)
	if f == nil {
		// A fetch has just completed and is being stored: answer from the tiers once it is.
		if err := l.waitStored(ctx, key); err != nil {
			return nil, origin.Meta{}, origin.From{}, err
		}
		return l.GetFrom(ctx, key, nil)
	}
	body, m, from, err := f.wait(ctx, shared)
	if errors.Is(err, errNoSpool) {
		l.stats.originGets.Add(1)
		return l.origin.GetFrom(ctx, key, nil)
	}
	if err == nil && shared {
		l.stats.sharedWaiters.Add(1)
	}
	return body, m, from, err
}

// cacheable reports whether an object of size bytes would be kept by some tier.
func (l *Layered) cacheable(size int64) bool {
	return l.disk != nil && !l.disk.Stats().Disabled || l.mem != nil && size <= l.cfg.MemoryObjectBytes
}

// waitStored waits until key's completed fetch has been stored.
func (l *Layered) waitStored(ctx context.Context, key string) error {
	f := l.flightFor(key)
	if f == nil {
		return nil
	}
	select {
	case <-f.stored:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// join returns key's fetch, starting it when there is none, and counts the caller as one of
// its readers; shared reports whether another request had started it. It returns nil when the
// fetch has completed and is being stored (see waitStored).
func (l *Layered) join(key string) (f *flight, shared bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	f = l.flights[key]
	if f != nil && f.complete() {
		return nil, false
	}
	if f == nil {
		f = newFlight(l, key)
		l.flights[key] = f
		l.runs.Add(1)
		go f.run(l.runs.Done)
	} else {
		shared = true
	}
	f.addReader()
	return f, shared
}

// backgroundFill starts a fetch of key with no reader, when a slot is free and none runs.
func (l *Layered) backgroundFill(key string) {
	select {
	case l.bg <- struct{}{}:
	default:
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.flights[key] != nil {
		<-l.bg
		return
	}
	f := newFlight(l, key)
	l.flights[key] = f
	l.stats.backgroundFills.Add(1)
	l.fills.Add(1)
	l.runs.Add(1)
	go f.run(func() {
		<-l.bg
		l.fills.Done()
		l.runs.Done()
	})
}

// WaitFills returns once the background fills under way have ended.
func (l *Layered) WaitFills() { l.fills.Wait() }

// Settle returns once every fetch under way has ended: stored in the tiers, or failed.
func (l *Layered) Settle() { l.runs.Wait() }

func (l *Layered) flightFor(key string) *flight {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.flights[key]
}

// forgetFlight removes f from the map when it is still key's fetch.
func (l *Layered) forgetFlight(f *flight) {
	l.mu.Lock()
	if l.flights[f.key] == f {
		delete(l.flights, f.key)
	}
	l.mu.Unlock()
}

// Ping implements origin.Pinger by pinging the origin, when it can be pinged: the cache's
// health is its origin's.
func (l *Layered) Ping(ctx context.Context) error {
	if p, ok := l.origin.(origin.Pinger); ok {
		return p.Ping(ctx)
	}
	return nil
}

var (
	_ origin.Sourced = (*Layered)(nil)
	_ origin.Pinger  = (*Layered)(nil)
)
