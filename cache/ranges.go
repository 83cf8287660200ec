package cache

// How a range on an uncached object is answered: from the fetch under way when it will reach the
// range soon enough, else from the origin at once. The rest of the fetch is in fetch.go.

import (
	"context"
	"errors"
	"io"
	"sync/atomic"
	"time"

	"github.com/fedicache/fedicache/origin"
)

// missRange answers a range further in than the object's start from the key's fetches: from
// the fetch of the whole object when it holds those bytes already or will reach them sooner than
// the origin would answer a request of its own (see reach); else from the object's second fetch,
// its ahead (ahead.go), which it starts for the range when the object has none: a player seeking
// far into a video does not wait for the bytes before it, and for a range to the object's end
// the fetch of the whole object stops where the ahead starts, so the origin sends each byte once.
// With a disk tier, a range on an object nobody fetches starts the fetch of the whole object in
// the background. A range that neither fetch will reach soon, or that finds no fetch and no free
// background slot, is asked of the origin on its own.
func (l *Layered) missRange(ctx context.Context, key string, r origin.Range) (io.ReadCloser, origin.Meta, origin.From, error) {
	f := l.fetchOf(key)
	if f == nil && l.disk != nil && !l.disk.Stats().Disabled {
		f = l.backgroundFill(key)
	}
	if f != nil {
		body, m, from, ok, err := l.fromFetches(ctx, f, r)
		if ok {
			return body, m, from, err
		}
	}
	body, m, from, err := l.askOrigin(ctx, key, &r)
	if err == nil && l.cacheable(m.Size) {
		l.backgroundFill(key)
	}
	return body, m, from, err
}

// fromFetches answers r from f or its ahead, as missRange says; ok false leaves it to the
// origin.
func (l *Layered) fromFetches(ctx context.Context, f *fetch, r origin.Range) (body io.ReadCloser, m origin.Meta, from origin.From, ok bool, err error) {
	if !f.s.begun() {
		// Where the object ends is not known yet: a far range, or the object's last bytes, make
		// the object's ahead, or wait for the one that covers them.
		if a := l.attachAhead(f, r.Start, aheadEnd(r, -1)); a != nil {
			return l.readAhead(ctx, a, r, false)
		}
		end := r.End + 1
		if r.End < 0 {
			end = 1 << 62 // to the end, wherever it is
		}
		if a := f.aheadOf(); a != nil && (r.Start >= 0 && a.covers(r.Start, end) || r.Start < 0 && a.coversSuffix(-r.Start)) &&
			a.s.joinLive() {
			return l.readAhead(ctx, a, r, true)
		}
	}
	if !f.s.begun() { // a range the ahead does not cover: wait for the fetch's headers
		select {
		case <-f.s.ready:
		case <-ctx.Done():
			return nil, origin.Meta{}, origin.From{}, true, ctx.Err()
		}
		if !f.s.begun() {
			return nil, origin.Meta{}, origin.From{}, false, nil
		}
	}
	size := f.meta.Size
	first, last, inBody := r.Resolve(size)
	if !inBody {
		return nil, origin.Meta{}, origin.From{}, false, nil
	}
	end := last + 1
	if rd, ok := f.s.openAhead(first, end, l.reach(f.startedAt, l.firstByteWait())); ok {
		l.stats.sharedWaiters.Add(1)
		return rd, f.meta, f.from, true, nil
	}
	if f.from.Source == origin.SourcePeer {
		// Another replica owns the object and fetches it for the cluster (aheads included): a
		// range this fetch does not reach soon is asked of it.
		return nil, origin.Meta{}, origin.From{}, false, nil
	}
	a := f.aheadOf()
	if a == nil {
		if a = l.attachAhead(f, first, aheadEnd(origin.Range{Start: first, End: last}, size)); a == nil {
			return nil, origin.Meta{}, origin.From{}, false, nil
		}
		return l.readAhead(ctx, a, r, false)
	}
	// The object has its two fetches: the range waits for the one that gets to it, when soon.
	if !a.covers(first, end) {
		if rd, ok := f.s.openAhead(first, end, l.reachCapped(f.startedAt)); ok {
			l.stats.sharedWaiters.Add(1)
			return rd, f.meta, f.from, true, nil
		}
		return nil, origin.Meta{}, origin.From{}, false, nil
	}
	if !a.s.begun() {
		if !a.s.joinLive() {
			return nil, origin.Meta{}, origin.From{}, false, nil
		}
		return l.readAhead(ctx, a, r, true)
	}
	if rd, ok := a.s.openAhead(first-a.start, end-a.start, l.reachCapped(a.startedAt)); ok {
		l.stats.sharedWaiters.Add(1)
		return rd, a.meta, a.from, true, nil
	}
	return nil, origin.Meta{}, origin.From{}, false, nil
}

// aheadEnd is the end of the ahead a range r makes on an object of size bytes (-1: not known
// yet): -1, an open ahead, when r runs to the object's end; else r's end.
func aheadEnd(r origin.Range, size int64) int64 {
	if r.End < 0 || size >= 0 && r.End >= size-1 {
		return -1
	}
	return r.End + 1
}

// readAhead answers r from a, for a caller counted as one of a's readers; ok false (a failed
// before its headers in a way the origin answers better, e.g. a range past the end) leaves it
// to the origin.
func (l *Layered) readAhead(ctx context.Context, a *ahead, r origin.Range, shared bool) (body io.ReadCloser, m origin.Meta, from origin.From, ok bool, err error) {
	rd, err := a.s.open(ctx, shared, func(size int64) (int64, int64, bool) {
		first, last, ok := r.Resolve(a.meta.Size)
		if !ok || first < a.start || last+1 > a.start+size {
			return 0, 0, false
		}
		return first - a.start, last + 1 - a.start, true
	})
	switch {
	case errors.Is(err, errNoSpool), errors.Is(err, errNotInBody), errors.Is(err, origin.ErrRangeNotSatisfiable),
		errors.Is(err, errAbandoned):
		return nil, origin.Meta{}, origin.From{}, false, nil
	case err != nil:
		return nil, origin.Meta{}, origin.From{}, true, err
	}
	if shared {
		l.stats.sharedWaiters.Add(1)
	}
	return rd, a.meta, a.from, true, nil
}

// askOrigin is one request to the origin on a request's behalf, outside any fetch.
func (l *Layered) askOrigin(ctx context.Context, key string, r *origin.Range) (io.ReadCloser, origin.Meta, origin.From, error) {
	l.stats.originGets.Add(1)
	asked := l.cfg.Clock()
	body, m, from, err := l.origin.GetFrom(ctx, key, r)
	switch {
	case errors.Is(err, origin.ErrNotFound):
		l.neg.add(key)
	case err == nil:
		l.answered(asked)
	}
	return body, m, from, err
}

// A range request waits for the fetch under way to reach its first byte, rather than ask the
// origin itself, for as long as the origin takes to answer a request (its first byte, measured;
// see reach), at most rangeWaitMax. rangeReachMin is how far ahead of the fetch a range is
// always waited for, whatever its pace.
const (
	rangeWaitMax  = 300 * time.Millisecond
	rangeReachMin = 256 << 10
)

// answered records how long the origin took to answer a request asked at asked: its headers,
// hence its first byte. It keeps a moving average (1/8 of each new sample).
func (l *Layered) answered(asked time.Time) {
	if took := int64(l.cfg.Clock().Sub(asked)); took >= 0 {
		movingAverage(&l.firstByte, took, 8)
	}
}

// movingAverage moves avg by 1/weight of the way to sample (to sample itself when avg is 0,
// none yet), never below 1.
func movingAverage(avg *atomic.Int64, sample, weight int64) {
	for {
		old := avg.Load()
		next := sample
		if old > 0 {
			next = old + (sample-old)/weight
		}
		if avg.CompareAndSwap(old, max(next, 1)) {
			return
		}
	}
}

// firstByteWait is how long the origin takes to answer a request (its first byte, measured),
// at most rangeWaitMax.
func (l *Layered) firstByteWait() time.Duration {
	return min(time.Duration(l.firstByte.Load()), rangeWaitMax)
}

// reach returns how many bytes past what a fetch begun at startedAt has written it will have
// written within wait (the origin's first-byte time: see firstByteWait), at the fetch's pace so
// far: a range starting within them waits for the fetch, whose bytes the bucket sends once and
// which gives them no later than a request of its own would; a range further ahead is not.
func (l *Layered) reach(startedAt time.Time, wait time.Duration) func(written int64) int64 {
	elapsed := l.cfg.Clock().Sub(startedAt)
	return func(written int64) int64 {
		if elapsed <= 0 {
			return rangeReachMin
		}
		return max(rangeReachMin, int64(float64(written)*float64(wait)/float64(elapsed)))
	}
}
