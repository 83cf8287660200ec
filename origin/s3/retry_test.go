package s3

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fedicache/fedicache/origin"
)

// TestPutThrottled checks that throttling answers are retried, with the body sent whole again.
func TestPutThrottled(t *testing.T) {
	for _, tc := range []struct {
		status int
		code   string
	}{
		{http.StatusServiceUnavailable, "SlowDown"},
		{http.StatusTooManyRequests, "TooManyRequests"},
	} {
		t.Run(tc.code, func(t *testing.T) {
			f := newWriteFake(t)
			f.fail(2, tc.status, tc.code, func(r *http.Request) bool { return isPutObject(callOf(r)) })
			cfg := testConfig(f.srv.URL)
			cfg.MaxAttempts = 5
			cfg.MaxBackoff = 20 * time.Millisecond
			b := newTestBucket(t, cfg)
			data := bytes.Repeat([]byte("throttled "), 1000)
			if err := b.Put(context.Background(), putKey, bytes.NewReader(data), int64(len(data)), origin.PutOptions{}); err != nil {
				t.Fatalf("Put through 2 throttling answers with MaxAttempts 5: %v", err)
			}
			if got, err := f.objectBytes(putKey); err != nil || !bytes.Equal(got, data) {
				t.Errorf("stored %d bytes (%v), want the %d put", len(got), err, len(data))
			}
			puts := f.requests(isPutObject)
			if len(puts) != 3 {
				t.Fatalf("%d PutObject attempts, want 3", len(puts))
			}
			if got := puts[2].Header.Get("Amz-Sdk-Request"); got != "attempt=3; max=5" {
				t.Errorf("third attempt says %q, want attempt=3; max=5", got)
			}
		})
	}
}

func TestPutGivesUpAfterMaxAttempts(t *testing.T) {
	f := newWriteFake(t)
	f.fail(-1, http.StatusServiceUnavailable, "SlowDown", func(r *http.Request) bool { return isPutObject(callOf(r)) })
	cfg := testConfig(f.srv.URL)
	cfg.MaxBackoff = 20 * time.Millisecond
	b := newTestBucket(t, cfg)
	err := b.Put(context.Background(), putKey, bytes.NewReader([]byte("x")), 1, origin.PutOptions{})
	if err == nil || errorCode(err) != "SlowDown" {
		t.Fatalf("Put to a bucket that always throttles: err %v, want SlowDown", err)
	}
	if n := len(f.requests(isPutObject)); n != DefaultMaxAttempts {
		t.Errorf("%d attempts, want the default %d", n, DefaultMaxAttempts)
	}
}

// TestBackoffIsNotAStall checks that the waits between attempts do not count against Timeout:
// with a Timeout shorter than the backoff after throttling (a random part of 1s), the Put
// still gets through.
func TestBackoffIsNotAStall(t *testing.T) {
	f := newWriteFake(t)
	f.fail(2, http.StatusServiceUnavailable, "SlowDown", func(r *http.Request) bool { return isPutObject(callOf(r)) })
	cfg := testConfig(f.srv.URL)
	cfg.Timeout = 100 * time.Millisecond
	cfg.MaxBackoff = time.Second
	b := newTestBucket(t, cfg)
	if err := b.Put(context.Background(), putKey, bytes.NewReader([]byte("x")), 1, origin.PutOptions{}); err != nil {
		t.Fatalf("Put: %v", err)
	}
	if n := len(f.requests(isPutObject)); n != 3 {
		t.Errorf("%d attempts, want 3", n)
	}
}

// TestReadsKeepTheirRetries checks that MaxAttempts and MaxBackoff leave reads as they were.
func TestReadsKeepTheirRetries(t *testing.T) {
	f := newWriteFake(t)
	f.fail(-1, http.StatusInternalServerError, "InternalError", func(r *http.Request) bool { return r.Method == http.MethodGet })
	cfg := testConfig(f.srv.URL)
	cfg.MaxAttempts = 10
	b := newTestBucket(t, cfg)
	if _, _, err := b.Get(context.Background(), "a.png", nil); err == nil || errors.Is(err, origin.ErrNotFound) {
		t.Fatalf("Get from a failing bucket: %v", err)
	}
	gets := f.requests(func(c call) bool { return c.Method == http.MethodGet })
	if len(gets) != maxAttempts {
		t.Errorf("Get tried %d times, want the reads' %d", len(gets), maxAttempts)
	}
	if !strings.HasSuffix(gets[len(gets)-1].Header.Get("Amz-Sdk-Request"), "max=3") {
		t.Errorf("Get's attempts say %q", gets[len(gets)-1].Header.Get("Amz-Sdk-Request"))
	}
}
