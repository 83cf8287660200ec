package cache

// Lock order: Layered.mu (the fetches map) before stream.mu, as in fetch.go. The negative cache,
// the tiers and the revalidation group have locks of their own, never taken while holding these.

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
	DefaultSeekWait        = 500 * time.Millisecond
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
	// SeekWait is the longest a range far into an object waits for one of the object's two
	// fetches to get to it (at its pace so far) rather than ask the origin on its own (see
	// ahead.go). Zero means 500ms.
	SeekWait time.Duration
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
	// OnPurge, when set, is told of every purge once it is done: the key (prefix false) of
	// Purge and Drop, the prefix (prefix true) of PurgePrefix. Zero means nobody is told.
	OnPurge func(key string, prefix bool)
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
	if c.SeekWait <= 0 {
		c.SeekWait = DefaultSeekWait
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

	base    context.Context // parent of origin requests that outlive the request that started them
	cancel  context.CancelFunc
	bg      chan struct{}      // background fill slots
	fills   sync.WaitGroup     // background fills
	runs    sync.WaitGroup     // every fetch
	workers workers            // the goroutines fetches run on
	reval   singleflight.Group // revalidations, one per key at a time (see revalidate.go)
	// firstByte is the moving average of the time the origin takes to answer a GET, in
	// nanoseconds (0: none yet); see reach.
	firstByte atomic.Int64
	// pace is the moving average of the origin's pace in bytes per second, over fetches of at
	// least a MiB (0: none yet); see reachCapped.
	pace atomic.Int64

	mu      sync.Mutex
	fetches map[string]*fetch // the fetch of each key that requests may join (see fetch.go)
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
		fetches: map[string]*fetch{},
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
	l.workers.close()
}

// WaitFills returns once the background fills under way have ended.
func (l *Layered) WaitFills() { l.fills.Wait() }

// Settle returns once every fetch under way has ended (stored in the tiers, or failed) and the
// memory tier has taken in what was put in it, a disk hit's promotion included.
func (l *Layered) Settle() {
	l.runs.Wait()
	if l.mem != nil {
		l.mem.Wait()
	}
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

// entrance refuses, before any tier is asked, a key the guard refuses or the origin did not
// have a moment ago.
func (l *Layered) entrance(key string) error {
	if err := l.refused(key); err != nil {
		return err
	}
	if l.neg.has(key) {
		l.stats.negativeHits.Add(1)
		return origin.ErrNotFound
	}
	return nil
}

// Get implements origin.Origin.
func (l *Layered) Get(ctx context.Context, key string, r *origin.Range) (io.ReadCloser, origin.Meta, error) {
	body, m, _, err := l.GetFrom(ctx, key, r)
	return body, m, err
}

// GetFrom implements origin.Sourced: the answer comes from a tier (Source the tier's name,
// Stale while the origin fails to confirm an old entry) or from the origin's store.
func (l *Layered) GetFrom(ctx context.Context, key string, r *origin.Range) (io.ReadCloser, origin.Meta, origin.From, error) {
	if err := l.entrance(key); err != nil {
		return nil, origin.Meta{}, origin.From{}, err
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
	if err := l.entrance(key); err != nil {
		return origin.Meta{}, origin.From{}, err
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
	// A fetch under way knows the object once the origin answered.
	if f := l.fetchOf(key); f != nil && f.s.begun() {
		return f.meta, f.from, nil
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

// cacheable reports whether an object of size bytes would be kept by some tier.
func (l *Layered) cacheable(size int64) bool {
	return l.disk != nil && !l.disk.Stats().Disabled || l.mem != nil && size <= l.cfg.MemoryObjectBytes
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
