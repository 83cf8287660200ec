package cache

// How a range on an uncached object is answered: from the fetch under way when it will reach the
// range soon enough, else from the origin at once. The rest of the fetch is in fetch.go.

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/fedicache/fedicache/origin"
)

// missRange answers a range further in than the object's start from the key's fetch when it
// holds those bytes already or will reach them sooner than the origin would answer a request of
// its own (see reach); else with a ranged request to the origin at once (a player seeking far
// into a video does not wait for the bytes before it), then fetching the whole object in the
// background.
func (l *Layered) missRange(ctx context.Context, key string, r origin.Range) (io.ReadCloser, origin.Meta, origin.From, error) {
	if f := l.fetchOf(key); f != nil && f.s.begun() {
		if first, last, ok := r.Resolve(f.meta.Size); ok {
			if body, ok := f.s.openAhead(first, last+1, l.reach(f)); ok {
				l.stats.sharedWaiters.Add(1)
				return body, f.meta, f.from, nil
			}
		}
	}
	body, m, from, err := l.askOrigin(ctx, key, &r)
	if err == nil && l.cacheable(m.Size) {
		l.backgroundFill(key)
	}
	return body, m, from, err
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
	took := int64(l.cfg.Clock().Sub(asked))
	if took < 0 {
		return
	}
	for {
		old := l.firstByte.Load()
		avg := took
		if old > 0 {
			avg = old + (took-old)/8
		}
		if l.firstByte.CompareAndSwap(old, max(avg, 1)) {
			return
		}
	}
}

// reach returns how many bytes past what f has written its fetch will have written by the time
// the origin would answer a request of our own (the measured first-byte time, at most
// rangeWaitMax), at the fetch's pace so far: a range starting within them waits for the fetch,
// whose bytes the bucket sends once and which gives them no later than a request of its own
// would; a range further ahead is asked of the origin at once.
func (l *Layered) reach(f *fetch) func(written int64) int64 {
	elapsed := l.cfg.Clock().Sub(f.startedAt)
	wait := min(time.Duration(l.firstByte.Load()), rangeWaitMax)
	return func(written int64) int64 {
		if elapsed <= 0 {
			return rangeReachMin
		}
		return max(rangeReachMin, int64(float64(written)*float64(wait)/float64(elapsed)))
	}
}
