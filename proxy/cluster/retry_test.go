package cluster

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"testing"
	"time"
)

func TestRetry(t *testing.T) {
	var (
		errFail  = errors.New("status 503")
		errFinal = errors.New("status 403")
		errPace  = errors.New("rate: Wait would exceed the deadline")
	)
	fail := try{err: errFail, again: true, after: -1}
	ok := try{}
	for _, tc := range []struct {
		name     string
		attempts int
		tries    []try // the answers of the attempts in turn
		pace     error // what pace returns
		cancelAt int   // ctx ends during this attempt (1-based); 0 for never
		cancelIn int   // ctx ends during the wait after this attempt; 0 for never

		wantAttempts int
		wantErr      error
		wantStopped  error
		wantWaits    []time.Duration // exact waits; nil to check only their count against backoff
		wantPaces    int
	}{
		{name: "first succeeds", attempts: 3, tries: []try{ok},
			wantAttempts: 1},
		{name: "retried until it succeeds", attempts: 3, tries: []try{fail, fail, ok},
			wantAttempts: 3, wantPaces: 2},
		{name: "a final failure is not retried", attempts: 3, tries: []try{{err: errFinal, after: -1}},
			wantAttempts: 1, wantErr: errFinal},
		{name: "attempts run out", attempts: 2, tries: []try{fail, fail, ok},
			wantAttempts: 2, wantErr: errFail, wantPaces: 1},
		{name: "zero attempts still try once", attempts: 0, tries: []try{fail, ok},
			wantAttempts: 1, wantErr: errFail},
		{name: "Retry-After replaces the backoff", attempts: 3,
			tries:        []try{{err: errFail, again: true, after: 7 * time.Second}, {err: errFail, again: true}, ok},
			wantAttempts: 3, wantWaits: []time.Duration{7 * time.Second, 0}, wantPaces: 2},
		{name: "ctx ended during an attempt: no wait", attempts: 5, tries: []try{fail, fail}, cancelAt: 1,
			wantAttempts: 1, wantErr: errFail, wantWaits: []time.Duration{}},
		{name: "ctx ends during the wait", attempts: 5, tries: []try{fail, fail, ok}, cancelIn: 2,
			wantAttempts: 2, wantErr: errFail, wantStopped: context.Canceled, wantPaces: 1},
		{name: "pace fails", attempts: 5, tries: []try{fail, ok}, pace: errPace,
			wantAttempts: 1, wantErr: errFail, wantStopped: errPace, wantPaces: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var waits []time.Duration
			paces := 0
			r := retry{
				attempts: tc.attempts, base: 100 * time.Millisecond, max: time.Second,
				pace: func(context.Context) error { paces++; return tc.pace },
				sleep: func(ctx context.Context, d time.Duration) error {
					waits = append(waits, d)
					if len(waits) == tc.cancelIn {
						cancel()
					}
					return ctx.Err()
				},
			}
			calls := 0
			out := r.do(ctx, func(n int) try {
				calls++
				if n != calls {
					t.Errorf("attempt %d called with n = %d", calls, n)
				}
				if n == tc.cancelAt {
					cancel()
				}
				return tc.tries[n-1]
			})
			if out.attempts != tc.wantAttempts || calls != tc.wantAttempts || out.err != tc.wantErr || !errors.Is(out.stopped, tc.wantStopped) ||
				(out.stopped == nil) != (tc.wantStopped == nil) {
				t.Errorf("do = %+v after %d calls, want %d attempts, err %v, stopped %v", out, calls, tc.wantAttempts, tc.wantErr, tc.wantStopped)
			}
			if tc.wantWaits != nil && !slices.Equal(waits, tc.wantWaits) {
				t.Errorf("waits %v, want %v", waits, tc.wantWaits)
			}
			for i, d := range waits {
				if tc.wantWaits == nil && (d < 0 || d > time.Second) {
					t.Errorf("wait %d is %v, beyond the backoff's cap", i+1, d)
				}
			}
			if paces != tc.wantPaces {
				t.Errorf("pace waited for %d times, want %d", paces, tc.wantPaces)
			}
		})
	}
}

func TestRetryBackoff(t *testing.T) {
	r := retry{base: 250 * time.Millisecond, max: 30 * time.Second}
	for _, tc := range []struct {
		n        int
		ceiling  time.Duration
		wantNote string
	}{
		{1, 250 * time.Millisecond, "the base"},
		{2, 500 * time.Millisecond, "doubled"},
		{5, 4 * time.Second, "doubled four times"},
		{8, 30 * time.Second, "capped"},
		{60, 30 * time.Second, "capped, no overflow"},
	} {
		for range 200 {
			d := r.backoff(tc.n)
			if d < tc.ceiling/2 || d > tc.ceiling {
				t.Fatalf("backoff(%d) = %v, want between %v and %v (%s)", tc.n, d, tc.ceiling/2, tc.ceiling, tc.wantNote)
			}
		}
	}
	if d := (retry{}).backoff(3); d != 0 {
		t.Errorf("backoff of a zero retry = %v, want 0", d)
	}
}

func TestRetryAfter(t *testing.T) {
	const limit = time.Minute
	for _, tc := range []struct {
		header string
		want   time.Duration // -1: none
	}{
		{"", -1},
		{"  ", -1},
		{"0", 0},
		{"3", 3 * time.Second},
		{" 12 ", 12 * time.Second},
		{"3600", limit},
		{"99999999999999999", limit},
		{"-5", -1},
		{"soon", -1},
		{time.Now().Add(-time.Hour).UTC().Format(http.TimeFormat), 0},
		{time.Now().Add(24 * time.Hour).UTC().Format(http.TimeFormat), limit},
	} {
		if got := retryAfter(tc.header, limit); got != tc.want {
			t.Errorf("retryAfter(%q) = %v, want %v", tc.header, got, tc.want)
		}
	}
	// An HTTP date a few seconds ahead: the wait until then, to the second it was written in.
	if got := retryAfter(time.Now().Add(10*time.Second).UTC().Format(http.TimeFormat), limit); got < 8*time.Second || got > 10*time.Second {
		t.Errorf("retryAfter(10s ahead) = %v, want about 9-10s", got)
	}
}
