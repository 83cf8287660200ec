package s3

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fedicache/fedicache/origin"
)

// TestPutStall checks that a bucket that takes an upload and never answers fails the Put after
// Timeout, with a timeout error, and is not tried again.
func TestPutStall(t *testing.T) {
	var attempts atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		attempts.Add(1)
		io.Copy(io.Discard, r.Body)
		<-r.Context().Done()
	}))
	t.Cleanup(srv.Close)
	cfg := testConfig(srv.URL)
	cfg.Timeout = 200 * time.Millisecond
	b := newTestBucket(t, cfg)
	start := time.Now()
	err := b.Put(context.Background(), putKey, bytes.NewReader([]byte("data")), 4, origin.PutOptions{})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Put to a silent bucket: err %v, want context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Put gave up after %s, want about the 200ms Timeout", d)
	}
	if n := attempts.Load(); n != 1 {
		t.Errorf("%d attempts, want 1: a stall is not retried", n)
	}
}

// TestSlowBodyIsNotAStall checks that the time a body's Read takes (a slow disk, a bandwidth
// cap) does not count against Timeout.
func TestSlowBodyIsNotAStall(t *testing.T) {
	f := newWriteFake(t)
	cfg := testConfig(f.srv.URL)
	cfg.Timeout = 100 * time.Millisecond
	b := newTestBucket(t, cfg)
	data := bytes.Repeat([]byte("slow"), 2048)
	body := &slowBody{Reader: bytes.NewReader(data), delay: 150 * time.Millisecond}
	if err := b.Put(context.Background(), putKey, body, int64(len(data)), origin.PutOptions{}); err != nil {
		t.Fatalf("Put of a slow body: %v", err)
	}
	if got, err := f.objectBytes(putKey); err != nil || !bytes.Equal(got, data) {
		t.Errorf("stored %d bytes (%v), want the %d put", len(got), err, len(data))
	}
	if body.reads.Load() < 2 {
		t.Errorf("the body was read %d times: the test shows nothing", body.reads.Load())
	}
}

// slowBody is a body whose every ReadAt takes delay.
type slowBody struct {
	*bytes.Reader
	delay time.Duration
	reads atomic.Int32
}

func (s *slowBody) ReadAt(p []byte, off int64) (int, error) {
	s.reads.Add(1)
	time.Sleep(s.delay)
	return s.Reader.ReadAt(p, off)
}
