package cache

// Lock order: Layered.mu (the fetches map) before stream.mu (taken inside the stream's methods).
// The negative cache, the tiers and the revalidation group have locks of their own, never taken
// while holding these.

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fedicache/fedicache/origin"
)

// Errors of a fetch.
var (
	// errNoSpool means no spool could be made: each request then asks the origin itself.
	errNoSpool = errors.New("cache: no spool for a shared fetch")
	// errStored means the second look found the object in a tier: its requests answer from there.
	errStored = errors.New("cache: stored by an earlier fetch")
	// errShortBody means the origin sent fewer or more bytes than it announced.
	errShortBody = errors.New("cache: the origin's body does not match its length")
	// errChecksum means the body does not match the MD5 the origin's ETag gave.
	errChecksum = errors.New("cache: the origin's body does not match its ETag")
	// errAbandoned means the fetch was dropped because nobody wanted it any more.
	errAbandoned = errors.New("cache: fetch abandoned")
	// errDropped means Mastodon deleted or hid the object while it was being fetched: its
	// readers are cut rather than given the rest of its bytes.
	// It is origin.ErrHidden for errors.Is, so a request still waiting for the headers gets 404.
	errDropped = fmt.Errorf("cache: the object was deleted or hidden while it was fetched: %w", origin.ErrHidden)
)

// fetch is the one fetch of an object from the origin: a stream, which every request wanting
// the object reads as it lands, and what Layered decides about it. It is in Layered.fetches
// while requests may join it; it ends by storing the object in the tiers, or failing.
type fetch struct {
	key    string
	s      *stream
	ctx    context.Context // the origin request's; canceled when the fetch is cut or abandoned
	cancel context.CancelFunc
	stored chan struct{} // closed once a complete object is in the tiers (or was not kept)

	meta      origin.Meta // set by run before the stream starts, read-only afterwards
	from      origin.From // which store answered, as meta
	startedAt time.Time   // when the origin answered, as meta
	spool     Spool       // run's own: the disk tier's spool while it takes the body

	cacheable atomic.Bool // a tier will keep the object (cleared when the spool fails into the ring)
	purged    atomic.Bool // a purge came while it ran: do not store

	// stopAt is where run stops reading the origin's answer to go on with the ahead's bytes
	// (next.start), or -1.
	stopAt  atomic.Int64
	aheadMu sync.Mutex
	next    *ahead // the object's second fetch, once attached (see ahead.go); under aheadMu
	claimed bool   // run took, or gave back, its count of next's readers; under aheadMu
	ended   bool   // run has ended: no ahead attaches any more; under aheadMu
}

// newFetch returns a fetch of key, not started, not in the map.
func (l *Layered) newFetch(key string) *fetch {
	f := &fetch{key: key, stored: make(chan struct{})}
	f.ctx, f.cancel = context.WithCancel(l.base)
	f.stopAt.Store(-1)
	f.s = newStream(streamHooks{
		idle:        func() { l.abandon(f) },
		fileFailed:  func(err error, ring bool) { l.spoolFailed(f, err, ring) },
		sharedBytes: &l.stats.sharedBytes,
	})
	return f
}

// miss answers from the origin, through the key's one fetch of the whole object: a whole
// object, and a range that starts within rangeReachMin of the object's start (a player's first
// request), which the fetch reaches at once. A range further in goes to missRange.
func (l *Layered) miss(ctx context.Context, key string, r *origin.Range) (io.ReadCloser, origin.Meta, origin.From, error) {
	l.stats.misses.Add(1)
	if r != nil && (r.Start < 0 || r.Start >= rangeReachMin) {
		return l.missRange(ctx, key, *r)
	}
	f, shared, storing := l.join(key)
	if storing { // answer from the tiers once the object is in
		select {
		case <-f.stored:
			return l.GetFrom(ctx, key, r)
		case <-ctx.Done():
			return nil, origin.Meta{}, origin.From{}, ctx.Err()
		}
	}
	var span func(size int64) (off, end int64, ok bool)
	if r != nil {
		span = func(size int64) (int64, int64, bool) {
			first, last, ok := r.Resolve(size)
			return first, last + 1, ok
		}
	}
	body, err := f.s.open(ctx, shared, span)
	switch {
	case errors.Is(err, errStored):
		return l.GetFrom(ctx, key, r)
	case errors.Is(err, errNoSpool), errors.Is(err, errNotInBody):
		// errNotInBody: a range past the end; the origin says so with the object's Meta.
		return l.askOrigin(ctx, key, r)
	case err != nil:
		return nil, origin.Meta{}, origin.From{}, err
	}
	if shared {
		l.stats.sharedWaiters.Add(1)
	}
	return body, f.meta, f.from, nil
}

// join returns key's fetch, starting it when there is none, and counts the caller as one of
// its readers; shared reports whether another request had started it. When the fetch has
// completed and is storing the object, join counts nobody and reports storing.
func (l *Layered) join(key string) (f *fetch, shared, storing bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	f = l.fetches[key]
	switch {
	case f != nil && f.s.complete():
		return f, false, true
	case f != nil:
		shared = true
	default:
		f = l.startLocked(key, nil)
	}
	f.s.join()
	return f, shared, false
}

// backgroundFill starts a fetch of key with no reader, when a slot is free and none runs, and
// returns the key's fetch: the one it started, or the one running; nil when no slot was free.
func (l *Layered) backgroundFill(key string) *fetch {
	select {
	case l.bg <- struct{}{}:
	default:
		return l.fetchOf(key)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if f := l.fetches[key]; f != nil {
		<-l.bg
		return f
	}
	l.stats.backgroundFills.Add(1)
	l.fills.Add(1)
	return l.startLocked(key, func() {
		<-l.bg
		l.fills.Done()
	})
}

// startLocked puts a new fetch of key in the map and runs it; done, when set, runs after it.
// l.mu is held.
func (l *Layered) startLocked(key string, done func()) *fetch {
	f := l.newFetch(key)
	l.fetches[key] = f
	l.runs.Add(1)
	l.workers.run(func() {
		defer l.runs.Done()
		if done != nil {
			defer done()
		}
		l.run(f)
	})
	return f
}

func (l *Layered) fetchOf(key string) *fetch {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.fetches[key]
}

// forget takes f out of the map when it is still its key's fetch: requests from then on start
// a fetch of their own.
func (l *Layered) forget(f *fetch) {
	l.mu.Lock()
	if l.fetches[f.key] == f {
		delete(l.fetches, f.key)
	}
	l.mu.Unlock()
}

// abandon stops f when nobody reads it and no tier will keep it (the stream's idle hook). A
// request joining meanwhile either is counted first (under Layered.mu) and keeps it going, or
// finds it gone and starts a fetch of its own.
func (l *Layered) abandon(f *fetch) {
	if f.cacheable.Load() {
		return
	}
	l.mu.Lock()
	stop := f.s.cut(errAbandoned, true)
	if stop && l.fetches[f.key] == f {
		delete(l.fetches, f.key)
	}
	l.mu.Unlock()
	if stop {
		f.cancel()
	}
}

// spoolFailed is the stream's hook for a failed write into the spool (a full or failing disk):
// nothing half-written is kept, and no reader fails because of it. A small object goes on in
// memory (and the memory tier still gets it), a large one streams on through the ring, uncached.
func (l *Layered) spoolFailed(f *fetch, err error, ring bool) {
	if f.spool != nil {
		f.spool.Abort() // the file goes; what was written stays readable until the stream closes it
		f.spool = nil
	}
	if !ring {
		l.log.Warn("cache: writing to the disk tier failed; keeping the object in memory only", "key", f.key, "err", err)
		return
	}
	l.log.Warn("cache: writing the spool failed; the object streams on to its readers uncached", "key", f.key, "err", err)
	f.cacheable.Store(false)
	// Requests from now on start a fetch of their own: this one can no longer serve a byte that
	// has left the ring.
	l.forget(f)
	l.abandon(f)
}

// run fetches f's object into its stream; then, unless it was purged, stores it. Before asking
// the origin it looks in the tiers once more (groupcache's load()): a request that missed them
// just before an earlier fetch stored the object and left the map answers from the tier.
func (l *Layered) run(f *fetch) {
	defer f.cancel()
	defer f.releaseAhead()
	// fail ends f: out of the map before its readers learn of it, so that none retries into it.
	fail := func(err error) error {
		l.forget(f)
		return f.s.finish(err)
	}
	if l.inTiers(f.key) {
		fail(errStored)
		return
	}
	l.stats.originGets.Add(1)
	asked := l.cfg.Clock()
	body, m, from, err := l.origin.GetFrom(f.ctx, f.key, nil)
	if err == nil {
		l.answered(asked)
	}
	if err != nil {
		if errors.Is(err, origin.ErrNotFound) {
			l.neg.add(f.key)
		}
		fail(err)
		return
	}
	defer body.Close()
	now := l.cfg.Clock()
	e := Entry{Key: f.key, Meta: m, StoredAt: now, ValidatedAt: now}
	f.meta, f.from, f.startedAt = m, from, l.cfg.Clock()
	var buf []byte
	if from.Source == origin.SourcePeer && (l.mem == nil || m.Size > l.cfg.MemoryObjectBytes) {
		// A large object another replica owns: not kept here, and not spooled either (the
		// owner keeps it, and its own fetch is the one the bucket sees). It streams through
		// the ring to the requests that joined already; later ones ask the owner themselves.
		l.forget(f)
		f.s.startRing(m.Size)
	} else {
		var file streamFile
		if buf, file, err = l.prepare(f, e, from); err != nil {
			fail(err)
			return
		}
		f.s.start(m.Size, buf, file)
	}

	if err := l.copyBody(f, body, m, func() { body.Close() }); err != nil {
		if f.spool != nil {
			f.spool.Abort()
		}
		switch err = fail(err); {
		case errors.Is(err, errDropped): // cut on purpose: Mastodon deleted or hid the object
		case errors.Is(err, errAbandoned):
			l.stats.fillErrors.Add(1)
		default:
			l.stats.fillErrors.Add(1)
			l.log.Warn("cache: fetch failed", "key", f.key, "source", string(from.Source), "err", err)
		}
		return
	}
	l.paced(m.Size, l.cfg.Clock().Sub(f.startedAt))
	// The readers get their last bytes now; storing (the disk entry's commit, the memory
	// tier's admission) happens after, off their path. The store holds the spool open as a
	// reader would.
	f.s.join()
	f.s.finish(nil)
	l.store(f, e, buf)
	l.forget(f) // later requests find the stored entry
	close(f.stored)
	f.s.leave()
}

// inTiers reports whether a tier holds a fresh entry of key.
func (l *Layered) inTiers(key string) bool {
	for _, t := range l.tiers {
		if body, e, err := t.Open(key, nil); err == nil {
			body.Close()
			if l.fresh(e.ValidatedAt) {
				return true
			}
		}
	}
	return false
}

// prepare picks where the body goes: the disk tier's spool, plus a memory buffer for a small
// object wanted by more than one request; a memory buffer alone for a small object the disk
// tier does not take; a temporary file for a large object without a disk tier.
//
// With a disk tier, a small object fetched for one request goes to disk only, and into the
// memory tier at its first disk hit (promote), as CDNs cache on a second hit: behind one, most
// misses are the only request their object will get, and copying each into memory (its
// allocation, the collector's work, the memory tier's admission) cost a third of a miss's CPU
// while filling the tier with objects never asked for again.
//
// An object another replica of the cluster owns (origin.SourcePeer) never goes to disk: the
// owner keeps it, so the cluster's disks add up rather than each holding every object. A small
// one goes into memory, the peer's hot copy.
func (l *Layered) prepare(f *fetch, e Entry, from origin.From) (buf []byte, file streamFile, err error) {
	size := e.Meta.Size
	small := l.mem != nil && size <= l.cfg.MemoryObjectBytes
	if l.disk != nil && from.Source != origin.SourcePeer {
		sp, err := l.disk.Spool(e)
		if err == nil {
			if small && f.s.joined() > 1 {
				buf = make([]byte, size)
			}
			f.spool = sp
			f.cacheable.Store(true)
			return buf, sp, nil
		}
		l.log.Debug("cache: not storing on disk", "key", e.Key, "err", err)
	}
	if small {
		f.cacheable.Store(true)
		return make([]byte, size), nil, nil
	}
	tmp, err := newTempFile(l.cfg.SpoolDir)
	if err != nil {
		l.log.Warn("cache: no spool for a shared fetch; requests go to the origin one by one", "key", e.Key, "err", err)
		return nil, nil, errNoSpool
	}
	return nil, tmp, nil
}

// The buffers a fetch reads the origin's body into: 256 KiB for a large object, so that it
// costs few trips through the stream (each wakes its readers) and the spool; 32 KiB for one
// smaller than that, so that many small misses at once hold little memory.
var (
	copyBufs      = sync.Pool{New: func() any { b := make([]byte, 256<<10); return &b }}
	smallCopyBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}
)

// copyBody streams the origin's body into f's stream and checks its length, and its MD5 where
// the ETag is one and the store does not check the body itself against a checksum of the whole
// object (origin.CheckedBody): the stream holds the last byte back until copyBody has returned
// nil. When f has an ahead (ahead.go), copyBody stops reading body at its start and goes on with
// its bytes (closing body with closeBody), which pass the same checks.
func (l *Layered) copyBody(f *fetch, body io.Reader, m origin.Meta, closeBody func()) error {
	var sum hash.Hash
	wantSum, hasSum := origin.ETagMD5(m.ETag)
	storeChecks := false
	if c, ok := body.(origin.CheckedBody); ok && c.BodyChecked() {
		hasSum, storeChecks = false, true // checked once, by the store: its last Read fails on a mismatch
	}
	if hasSum {
		sum = md5.New()
	}
	pool := &copyBufs
	if m.Size < 256<<10 {
		pool = &smallCopyBufs
	}
	bufp := pool.Get().(*[]byte)
	defer pool.Put(bufp)
	buf := *bufp
	src := body
	var rest io.Writer // the store's check, going on over the ahead's bytes
	var verify func() error
	var total int64
	for {
		p := buf
		if stop := f.stopAt.Load(); stop >= 0 {
			if total >= stop {
				if rd, r, v, ok := continueFromAhead(f, body, total, storeChecks); ok {
					l.stats.aheadTaken.Add(1)
					defer rd.Close()
					closeBody()
					src, rest, verify = rd, r, v
				}
				continue
			}
			p = buf[:min(int64(len(buf)), stop-total)]
		}
		n, rerr := src.Read(p)
		if n > 0 {
			if total+int64(n) > m.Size {
				return fmt.Errorf("%w: more than %d bytes", errShortBody, m.Size)
			}
			if err := f.s.write(f.ctx, p[:n]); err != nil {
				return err
			}
			if sum != nil {
				sum.Write(p[:n])
			}
			if rest != nil {
				rest.Write(p[:n])
			}
			total += int64(n)
		}
		if errors.Is(rerr, io.EOF) {
			break
		}
		if rerr != nil {
			return rerr
		}
	}
	if total != m.Size {
		return fmt.Errorf("%w: %d of %d bytes", errShortBody, total, m.Size)
	}
	if sum != nil && hex.EncodeToString(sum.Sum(nil)) != wantSum {
		return errChecksum
	}
	if verify != nil {
		return verify()
	}
	return nil
}

// store commits the fetched object to the tiers, unless a purge came meanwhile or the guard
// refuses the key. The guard is asked again once the object is in: a refusal that arrived while
// it was being committed (a tombstone is set before its purge runs) then removes it.
func (l *Layered) store(f *fetch, e Entry, buf []byte) {
	if f.purged.Load() || l.refused(f.key) != nil {
		if f.spool != nil {
			f.spool.Abort()
		}
		return
	}
	if f.spool != nil {
		if err := f.spool.Commit(); err != nil {
			l.log.Warn("cache: storing on disk failed", "key", f.key, "err", err)
		}
	}
	if buf != nil {
		if l.mem.Put(e, buf) {
			l.mem.Wait()
		}
	}
	if l.refused(f.key) != nil {
		l.dropAll(f.key)
	}
}
