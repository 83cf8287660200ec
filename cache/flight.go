package cache

// Lock order: Layered.mu (the flights map) before flight.mu, as in layered.go.

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"sync"

	"github.com/fedicache/fedicache/origin"
)

// Errors of a fetch.
var (
	// errNoSpool means no spool could be made: each request then asks the origin itself.
	errNoSpool = errors.New("cache: no spool for a shared fetch")
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

// flight is the one fetch of an object from the origin. Its body goes into a spool (the disk
// tier's writer, a memory buffer or a temporary file) from which every waiting request reads
// as it grows, so requests are served while the fetch streams. It ends by committing the object
// to the tiers, or by failing every reader that has not had all its bytes.
type flight struct {
	l      *Layered
	key    string
	ready  chan struct{} // closed once the origin answered (meta known) or failed
	stored chan struct{} // closed once a complete object is in the tiers (or was not kept)

	// Set before ready is closed, read-only afterwards.
	meta      origin.Meta
	from      origin.From // which store answered
	started   bool        // the origin answered with a body
	cacheable bool        // the object will be kept by a tier
	spool     Spool       // nil when the body is only in buf
	buf       []byte      // the body of a small object (len = size), filled up to written

	ctx    context.Context // the origin request's, canceled when the fetch is abandoned
	cancel context.CancelFunc

	mu       sync.Mutex
	cond     sync.Cond
	readers  int
	written  int64 // body bytes in the spool or buf
	done     bool  // the fetch ended; err says how
	err      error
	purged   bool // a purge came while it ran: do not store
	dropped  bool // a purge for a deleted or hidden object: readers get errDropped
	spoolBad bool // a write into the spool failed: the body is only in buf (or ring)
	released bool // the spool was closed

	// After a write into the spool failed (a full or failing disk) for an object too large for
	// buf, the fetch goes on through ring: bytes [0, spoolEnd) are read from the spool, which
	// stays readable, and the later ones from ring, a window of ringSize bytes of the body
	// (byte i at ring[i%ringSize]) that the fetch fills no further than ringSize past the
	// slowest reader. Nothing is kept by a tier then; every reader still gets every byte, and
	// the body's checks still hold back the last one.
	ring     []byte
	spoolEnd int64
	active   map[*flightReader]struct{} // the readers made so far, for the slowest one's place
}

func newFlight(l *Layered, key string) *flight {
	f := &flight{l: l, key: key, ready: make(chan struct{}), stored: make(chan struct{})}
	f.cond.L = &f.mu
	f.ctx, f.cancel = context.WithCancel(l.base)
	return f
}

func (f *flight) addReader() {
	f.mu.Lock()
	f.readers++
	f.mu.Unlock()
}

// wait waits for the origin's answer and returns a reader of the whole body.
func (f *flight) wait(ctx context.Context, shared bool) (io.ReadCloser, origin.Meta, origin.From, error) {
	select {
	case <-f.ready:
	case <-ctx.Done():
		f.release()
		return nil, origin.Meta{}, origin.From{}, ctx.Err()
	}
	if !f.started {
		f.mu.Lock()
		err := f.err
		f.mu.Unlock()
		f.release()
		return nil, origin.Meta{}, origin.From{}, err
	}
	return f.newReader(0, f.meta.Size, shared), f.meta, f.from, nil
}

// newReader makes a reader of bytes [off, end), for a caller already counted in readers.
func (f *flight) newReader(off, end int64, shared bool) *flightReader {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.newReaderLocked(off, end, shared)
}

// newReaderLocked is newReader with f.mu held.
func (f *flight) newReaderLocked(off, end int64, shared bool) *flightReader {
	r := &flightReader{f: f, off: off, end: end, shared: shared}
	if f.active == nil {
		f.active = map[*flightReader]struct{}{}
	}
	f.active[r] = struct{}{}
	return r
}

// metaIfKnown returns the object's metadata once the origin answered.
func (f *flight) metaIfKnown() (origin.Meta, origin.From, bool) {
	select {
	case <-f.ready:
		f.mu.Lock()
		defer f.mu.Unlock()
		return f.meta, f.from, f.err == nil || f.written > 0
	default:
		return origin.Meta{}, origin.From{}, false
	}
}

// rangeReader returns a reader of r when the fetch already holds those bytes.
func (f *flight) rangeReader(r origin.Range) (io.ReadCloser, origin.Meta, origin.From, bool) {
	select {
	case <-f.ready:
	default:
		return nil, origin.Meta{}, origin.From{}, false
	}
	first, last, ok := r.Resolve(f.meta.Size)
	f.mu.Lock()
	defer f.mu.Unlock()
	if !ok || f.err != nil || f.released || last >= f.written {
		return nil, origin.Meta{}, origin.From{}, false
	}
	f.readers++
	return f.newReaderLocked(first, last+1, true), f.meta, f.from, true
}

// purge keeps the fetch from storing the object; with cut, it also stops the fetch and fails
// every reader from its next read on.
func (f *flight) purge(cut bool) {
	f.mu.Lock()
	f.purged = true
	f.dropped = f.dropped || cut
	f.mu.Unlock()
	if cut {
		f.cancel()
		f.cond.Broadcast()
	}
}

// release ends one reader. The last reader of a fetch that would not be stored cancels it;
// the last one of an ended fetch closes the spool.
func (f *flight) release() {
	f.l.mu.Lock() // lock order: Layered.mu, then flight.mu
	f.mu.Lock()
	f.readers--
	abandon := f.readers == 0 && !f.done && f.isReady() && !f.cacheable
	if abandon && f.l.flights[f.key] == f {
		delete(f.l.flights, f.key)
	}
	closeSpool := f.readers == 0 && f.done && !f.released
	if closeSpool {
		f.released = true
	}
	f.mu.Unlock()
	f.l.mu.Unlock()
	if abandon {
		f.cancel()
	}
	if closeSpool {
		f.closeSpool()
	}
	f.cond.Broadcast() // a fetch waiting for the slowest reader may go on
}

func (f *flight) isReady() bool {
	select {
	case <-f.ready:
		return true
	default:
		return false
	}
}

func (f *flight) closeSpool() {
	if f.spool != nil {
		if err := f.spool.Close(); err != nil {
			f.l.log.Debug("cache: closing a spool", "key", f.key, "err", err)
		}
	}
}

// finish records how the fetch ended and wakes every reader.
func (f *flight) finish(err error) {
	f.mu.Lock()
	if err != nil && f.dropped {
		err = errDropped
	}
	f.done = true
	f.err = err
	closeSpool := f.readers == 0 && !f.released
	if closeSpool {
		f.released = true
	}
	f.mu.Unlock()
	f.cond.Broadcast()
	if closeSpool {
		f.closeSpool()
	}
}

// run fetches the object and feeds the spool; then, unless it was purged, stores it.
// release, when not nil, runs at the end (a background fill slot).
func (f *flight) run(release func()) {
	l := f.l
	if release != nil {
		defer release()
	}
	defer f.cancel()

	l.stats.originGets.Add(1)
	body, m, from, err := l.origin.GetFrom(f.ctx, f.key, nil)
	if err != nil {
		if errors.Is(err, origin.ErrNotFound) {
			l.neg.add(f.key)
		}
		l.forgetFlight(f)
		f.finish(err)
		close(f.ready)
		return
	}
	defer body.Close()
	now := l.cfg.Clock()
	e := Entry{Key: f.key, Meta: m, StoredAt: now, ValidatedAt: now}
	if err := f.prepare(e); err != nil {
		l.forgetFlight(f)
		f.finish(err)
		close(f.ready)
		return
	}
	f.meta, f.from = m, from
	f.started = true
	close(f.ready)

	err = f.copy(body, m)
	if err != nil {
		f.mu.Lock()
		dropped := f.dropped
		f.mu.Unlock()
		switch {
		case dropped: // cut on purpose: Mastodon deleted or hid the object
		case errors.Is(err, errAbandoned):
			l.stats.fillErrors.Add(1)
		default:
			l.stats.fillErrors.Add(1)
			l.log.Warn("cache: fetch failed", "key", f.key, "source", string(from.Source), "err", err)
		}
		if f.spool != nil {
			f.spool.Abort()
		}
		l.forgetFlight(f) // before the readers learn of the failure, so none retries into it
		f.finish(err)
		return
	}
	// The readers get their last bytes now; storing (an fsync on disk, the memory tier's
	// buffers) happens after, off their path. The store holds the spool open as a reader would.
	f.addReader()
	f.finish(nil)
	f.store(e)
	l.forgetFlight(f) // later requests find the stored entry
	close(f.stored)
	f.release()
}

// complete reports whether the fetch has its whole, checked body (it may be storing it).
func (f *flight) complete() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.done && f.err == nil
}

// prepare picks where the body goes: the disk tier's spool, plus a memory buffer for a small
// object; a temporary file for a large object without a disk tier.
func (f *flight) prepare(e Entry) error {
	l := f.l
	size := e.Meta.Size
	small := l.mem != nil && size <= l.cfg.MemoryObjectBytes
	if small {
		f.buf = make([]byte, size)
	}
	if l.disk != nil {
		sp, err := l.disk.Spool(e)
		if err == nil {
			f.spool, f.cacheable = sp, true
			return nil
		}
		l.log.Debug("cache: not storing on disk", "key", e.Key, "err", err)
	}
	if small {
		f.cacheable = true
		return nil
	}
	sp, err := newTempSpool(l.cfg.SpoolDir)
	if err != nil {
		l.log.Warn("cache: no spool for a shared fetch; requests go to the origin one by one", "key", e.Key, "err", err)
		return errNoSpool
	}
	f.spool = sp
	return nil
}

// copy streams the origin's body into the spool and the buffer, waking readers as bytes land,
// and checks the length (and the MD5 where the ETag is one).
func (f *flight) copy(body io.Reader, m origin.Meta) error {
	var sum hash.Hash
	wantSum, checked := origin.ETagMD5(m.ETag)
	if checked {
		sum = md5.New()
	}
	bufp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bufp)
	buf := *bufp
	var total int64
	for {
		n, rerr := body.Read(buf)
		if n > 0 {
			if total+int64(n) > m.Size {
				return fmt.Errorf("%w: more than %d bytes", errShortBody, m.Size)
			}
			if f.spool != nil && !f.spoolBad {
				if _, err := f.spool.Write(buf[:n]); err != nil {
					f.spoolFailed(total, err)
				}
			}
			switch {
			case f.buf != nil:
				copy(f.buf[total:], buf[:n]) // readers only read below written
			case f.ring != nil:
				if err := f.toRing(total, buf[:n]); err != nil {
					return err
				}
			}
			if sum != nil {
				sum.Write(buf[:n])
			}
			total += int64(n)
			f.mu.Lock()
			f.written = total
			abandoned := f.readers == 0 && !f.cacheable
			f.mu.Unlock()
			f.cond.Broadcast()
			if abandoned && f.abandon() {
				return errAbandoned
			}
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
	return nil
}

// abandon takes the fetch out of the map when it still has no reader, so that a request
// arriving now starts a fetch of its own rather than joining one about to stop.
func (f *flight) abandon() bool {
	f.l.mu.Lock()
	defer f.l.mu.Unlock()
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.readers > 0 {
		return false
	}
	if f.l.flights[f.key] == f {
		delete(f.l.flights, f.key)
	}
	return true
}

// store commits the fetched object to the tiers, unless a purge came meanwhile or the guard
// refuses the key. The guard is asked again once the object is in: a refusal that arrived while
// it was being committed (a tombstone is set before its purge runs) then removes it.
func (f *flight) store(e Entry) {
	f.mu.Lock()
	purged := f.purged
	f.mu.Unlock()
	l := f.l
	if purged || l.refused(f.key) != nil {
		if f.spool != nil && f.cacheable {
			f.spool.Abort()
		}
		return
	}
	if f.spool != nil && f.cacheable && !f.spoolBad {
		if err := f.spool.Commit(); err != nil {
			l.log.Warn("cache: storing on disk failed", "key", f.key, "err", err)
		}
	}
	if f.buf != nil {
		if l.mem.Put(e, f.buf) {
			l.mem.Wait()
		}
	}
	if l.refused(f.key) != nil {
		l.dropAll(f.key)
	}
}

var copyBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// flightReader reads one request's bytes [off, end) from a fetch as they land. The last byte
// of the object is held back until the fetch has checked the whole body, and never released
// when the check failed, whether the reader comes before or after the fetch ends: a client
// never receives a complete-looking body that failed its check, it sees the connection fail.
type flightReader struct {
	f        *flight
	off, end int64
	shared   bool
	closed   bool
}

func (r *flightReader) Read(p []byte) (int, error) {
	f := r.f
	f.mu.Lock()
	var avail int64
	for {
		if f.dropped {
			f.mu.Unlock()
			return 0, errDropped
		}
		avail = f.written
		if avail == f.meta.Size && (!f.done || f.err != nil) {
			avail-- // the last byte goes out only once the whole body passed its checks
		}
		avail = min(avail, r.end)
		if r.off < avail {
			break
		}
		if f.done && f.err != nil {
			f.mu.Unlock()
			return 0, f.err
		}
		if r.off >= r.end && (f.done || r.end < f.meta.Size) {
			f.mu.Unlock()
			return 0, io.EOF
		}
		f.cond.Wait()
	}
	ring, spoolEnd := f.ring, f.spoolEnd
	f.mu.Unlock()
	n := int(min(int64(len(p)), avail-r.off))
	var err error
	switch {
	case f.buf != nil:
		n = copy(p[:n], f.buf[r.off:avail])
	case ring != nil && r.off >= spoolEnd:
		// Safe without the lock: the fetch overwrites no byte this reader has still to read.
		i := r.off % ringSize
		n = copy(p[:n], ring[i:])
	case ring != nil:
		n, err = f.spool.ReadAt(p[:min(int64(n), spoolEnd-r.off)], r.off)
	default:
		n, err = f.spool.ReadAt(p[:n], r.off)
	}
	f.mu.Lock() // a fetch that turned to the ring reads every reader's place
	r.off += int64(n)
	waiting := f.ring != nil
	f.mu.Unlock()
	if waiting {
		f.cond.Broadcast() // the fetch may be waiting for this reader
	}
	if r.shared {
		f.l.stats.sharedBytes.Add(uint64(n))
	}
	if err != nil && !errors.Is(err, io.EOF) {
		return n, err
	}
	return n, nil
}

func (r *flightReader) Close() error {
	if !r.closed {
		r.closed = true
		r.f.mu.Lock()
		delete(r.f.active, r)
		r.f.mu.Unlock()
		r.f.release()
	}
	return nil
}
