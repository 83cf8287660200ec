package cluster

import (
	"context"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// retry says how often a request to a peer or to Cloudflare is tried, and how long to wait
// between the tries.
type retry struct {
	// attempts is the most tries in all, the first included.
	attempts int
	// base and max bound the backoff: the wait after the n-th failure is between half and
	// all of base<<(n-1), never more than max.
	base, max time.Duration
	// pace, when set, is waited for before every try after the first (a rate limiter's Wait);
	// its error ends the tries as the end of ctx does.
	pace func(context.Context) error
	// sleep waits d or until ctx ends, returning ctx's error then. Zero means a timer.
	sleep func(ctx context.Context, d time.Duration) error
}

// try is the outcome of one attempt.
type try struct {
	err error // nil when the attempt succeeded
	// again is true when the failure may be retried (no answer, a 5xx), false when it is final.
	again bool
	// after is the wait the server asked for (Retry-After); negative when it asked for none,
	// and the backoff applies.
	after time.Duration
}

// outcome is how the tries ended.
type outcome struct {
	attempts int   // how many were made
	err      error // the last one's error; nil when it succeeded
	// stopped says why no further try was made although one was due: ctx ended, or pace
	// failed, while waiting for it. Nil otherwise.
	stopped error
}

// do calls attempt with 1, 2, ... until an attempt succeeds or fails for good, the attempts run
// out, or ctx ends. Between two attempts it waits what the server asked for, else the backoff,
// then for pace. No wait follows an attempt after which ctx has already ended.
func (r retry) do(ctx context.Context, attempt func(n int) try) outcome {
	sleep := r.sleep
	if sleep == nil {
		sleep = sleepCtx
	}
	for n := 1; ; n++ {
		t := attempt(n)
		if t.err == nil {
			return outcome{attempts: n}
		}
		if !t.again || n >= r.attempts || ctx.Err() != nil {
			return outcome{attempts: n, err: t.err}
		}
		wait := t.after
		if wait < 0 {
			wait = r.backoff(n)
		}
		if err := sleep(ctx, wait); err != nil {
			return outcome{attempts: n, err: t.err, stopped: err}
		}
		if r.pace != nil {
			if err := r.pace(ctx); err != nil {
				return outcome{attempts: n, err: t.err, stopped: err}
			}
		}
	}
}

// backoff returns the wait after the n-th failed attempt: between half and all of
// base<<(n-1), capped at max, so that callers that all failed at once do not all come back at
// once.
func (r retry) backoff(n int) time.Duration {
	d := r.base
	for i := 1; i < n && d < r.max; i++ {
		d *= 2
	}
	d = min(d, r.max)
	return d/2 + rand.N(d/2+1)
}

// sleepCtx waits d, or until ctx ends and returns its error.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// retryAfter returns the wait a Retry-After header asks for, in seconds or as an HTTP date,
// capped at limit; negative when there is none or it cannot be read.
func retryAfter(v string, limit time.Duration) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return -1
	}
	if s, err := strconv.ParseInt(v, 10, 64); err == nil {
		if s < 0 {
			return -1
		}
		return time.Duration(min(s, int64(limit/time.Second))) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return min(max(time.Until(t), 0), limit)
	}
	return -1
}
