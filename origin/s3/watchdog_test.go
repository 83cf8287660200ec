package s3

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// stallTimeout is the Timeout of the stall tests; bound is how long they wait for it to act.
const (
	stallTimeout = 200 * time.Millisecond
	bound        = 5 * time.Second
)

// objectHeaders writes the headers of a size-byte object.
func objectHeaders(w http.ResponseWriter, size int) {
	w.Header().Set("Content-Length", strconv.Itoa(size))
	w.Header().Set("Content-Type", "video/mp4")
	w.Header().Set("ETag", `"5d41402abc4b2a76b9719d911017c592"`)
	w.Header().Set("Last-Modified", time.Now().UTC().Format(http.TimeFormat))
	w.WriteHeader(http.StatusOK)
}

// stallServer starts a bucket whose handler runs answer (which flushes what it wants sent) and then stays silent until the request
// ends or the test does. ended is closed when the handler sees its request end.
func stallServer(t *testing.T, answer func(w http.ResponseWriter, r *http.Request)) (b *Bucket, ended <-chan struct{}) {
	t.Helper()
	release := make(chan struct{})
	endedCh := make(chan struct{})
	var once sync.Once
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		answer(w, r)
		select {
		case <-r.Context().Done():
			once.Do(func() { close(endedCh) })
		case <-release:
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) }) // runs before srv.Close
	cfg := testConfig(srv.URL)
	cfg.Timeout = stallTimeout
	return newTestBucket(t, cfg), endedCh
}

// within fails the test unless d lies between the stall timeout and the bound.
func within(t *testing.T, what string, d time.Duration) {
	t.Helper()
	if d < stallTimeout || d > bound {
		t.Errorf("%s took %s, want between %s and %s", what, d, stallTimeout, bound)
	}
}

func TestStallBeforeHeaders(t *testing.T) {
	b, _ := stallServer(t, func(http.ResponseWriter, *http.Request) {})
	ctx := context.Background()

	start := time.Now()
	_, _, err := b.Get(ctx, "a.mp4", nil)
	within(t, "Get from a silent bucket", time.Since(start))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Get from a silent bucket: err %v, want context.DeadlineExceeded", err)
	}

	start = time.Now()
	_, err = b.Stat(ctx, "a.mp4")
	within(t, "Stat of a silent bucket", time.Since(start))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Stat of a silent bucket: err %v, want context.DeadlineExceeded", err)
	}

	start = time.Now()
	err = b.Ping(ctx)
	within(t, "Ping of a silent bucket", time.Since(start))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Ping of a silent bucket: err %v, want context.DeadlineExceeded", err)
	}
}

func TestStallInBody(t *testing.T) {
	b, ended := stallServer(t, func(w http.ResponseWriter, r *http.Request) {
		objectHeaders(w, 1000)
		io.WriteString(w, strings.Repeat("x", 100))
		w.(http.Flusher).Flush()
	})
	body, m, err := b.Get(context.Background(), "a.mp4", nil)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	defer body.Close()
	if m.Size != 1000 {
		t.Errorf("Meta.Size %d, want 1000", m.Size)
	}
	if _, err := io.ReadFull(body, make([]byte, 100)); err != nil {
		t.Fatalf("reading the bytes sent: %v", err)
	}
	start := time.Now()
	_, err = io.ReadAll(body)
	within(t, "a Read from a bucket that stalls", time.Since(start))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Read from a bucket that stalls: err %v, want context.DeadlineExceeded", err)
	}
	select {
	case <-ended:
	case <-time.After(bound):
		t.Errorf("the bucket's request did not end after the stall")
	}
}

// TestSlowReaderIsNotAStall checks that the watchdog only times the bucket: a caller that waits
// longer than Timeout between Reads still gets the whole body.
func TestSlowReaderIsNotAStall(t *testing.T) {
	more := make(chan struct{})
	b, _ := stallServer(t, func(w http.ResponseWriter, r *http.Request) {
		objectHeaders(w, 200)
		io.WriteString(w, strings.Repeat("x", 100))
		w.(http.Flusher).Flush()
		select {
		case <-more:
			io.WriteString(w, strings.Repeat("y", 100))
			w.(http.Flusher).Flush()
		case <-r.Context().Done():
		}
	})
	body, _, err := b.Get(context.Background(), "a.mp4", nil)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	defer body.Close()
	if _, err := io.ReadFull(body, make([]byte, 100)); err != nil {
		t.Fatalf("reading the first bytes: %v", err)
	}
	<-time.After(2 * stallTimeout) // the caller is busy; the bucket is not being waited on
	close(more)
	rest, err := io.ReadAll(body)
	if err != nil || len(rest) != 100 {
		t.Errorf("reading the rest after a pause: %d bytes, err %v; want 100 bytes", len(rest), err)
	}
}

func TestCloseEarlyEndsTheRequest(t *testing.T) {
	b, ended := stallServer(t, func(w http.ResponseWriter, r *http.Request) {
		objectHeaders(w, 10<<20)
		io.WriteString(w, strings.Repeat("x", 32<<10))
		w.(http.Flusher).Flush()
	})
	body, _, err := b.Get(context.Background(), "a.mp4", nil)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if _, err := io.ReadFull(body, make([]byte, 100)); err != nil {
		t.Fatalf("read: %v", err)
	}
	if err := body.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := body.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	select {
	case <-ended:
	case <-time.After(bound):
		t.Fatalf("the bucket's request did not end within %s of Close", bound)
	}
}

func TestCallerCancelIsNotATimeout(t *testing.T) {
	arrived := make(chan struct{}, 1)
	b, _ := stallServer(t, func(http.ResponseWriter, *http.Request) { arrived <- struct{}{} })
	ctx, cancel := context.WithCancelCause(context.Background())
	t.Cleanup(func() { cancel(nil) })
	go func() {
		select {
		case <-arrived:
			cancel(errors.New("client went away"))
		case <-ctx.Done():
		}
	}()
	_, _, err := b.Get(ctx, "a.mp4", nil)
	if !errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Get canceled by its caller: err %v, want context.Canceled and no deadline", err)
	}
}
