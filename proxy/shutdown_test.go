package proxy

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/fedicache/fedicache/cache/tiertest"
	"github.com/fedicache/fedicache/origin"
	"github.com/prometheus/client_golang/prometheus"
)

// stallingCache answers GetFrom only once its context ends, with the context's error: before
// the headers, or (midStream) after the first bytes of a large body.
type stallingCache struct {
	*countingCache
	midStream bool
	entered   chan struct{}
}

func (c *stallingCache) GetFrom(ctx context.Context, key string, r *origin.Range) (io.ReadCloser, origin.Meta, origin.From, error) {
	close(c.entered)
	if c.midStream {
		m := c.meta
		m.Size = 1 << 20
		return &stallingBody{ctx: ctx, first: c.data}, m, fromBucket, nil
	}
	<-ctx.Done()
	return nil, origin.Meta{}, origin.From{}, fmt.Errorf("cache: wait for %q: %w", key, ctx.Err())
}

// stallingBody reads first, then waits for its context to end and fails with its error.
type stallingBody struct {
	ctx   context.Context
	first []byte
}

func (b *stallingBody) Read(p []byte) (int, error) {
	if len(b.first) > 0 {
		n := copy(p, b.first)
		b.first = b.first[n:]
		return n, nil
	}
	<-b.ctx.Done()
	return 0, fmt.Errorf("s3: read body: %w", b.ctx.Err())
}

func (b *stallingBody) Close() error { return nil }

// syncBuffer is a bytes.Buffer safe for the logger's concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestShutdownAbortIsNoOriginFailure: a request that a shutdown aborts (its time up) is counted
// as 499 and logged at debug, never as an origin failure at warn: before its headers, and
// while its body streams.
func TestShutdownAbortIsNoOriginFailure(t *testing.T) {
	const key = "media_attachments/files/000/000/001/original/0123456789abcdef.mp4"
	for _, midStream := range []bool{false, true} {
		var logs syncBuffer
		c := &stallingCache{countingCache: newCountingCache(key, tiertest.Blob(9, 64<<10)), midStream: midStream, entered: make(chan struct{})}
		s := New(c, Config{Logger: slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}, nil)
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		served := make(chan error, 1)
		go func() { served <- s.Serve(ln) }()

		done := make(chan error, 1)
		client := &http.Client{Transport: &http.Transport{DisableCompression: true}}
		status := make(chan int, 1)
		go func() {
			resp, err := client.Get("http://" + ln.Addr().String() + "/" + key)
			if err == nil {
				status <- resp.StatusCode
				_, err = io.ReadAll(resp.Body)
				resp.Body.Close()
			}
			done <- err
		}()
		<-c.entered
		expired, cancel := context.WithCancel(context.Background())
		cancel() // no time left: the shutdown aborts the request under way
		if err := s.Shutdown(expired); err == nil {
			t.Fatalf("midStream %v: Shutdown with no time left returned nil", midStream)
		}
		err = <-done
		if midStream && err == nil {
			t.Errorf("midStream %v: the body read as complete", midStream)
		}
		client.CloseIdleConnections()
		<-served

		out := logs.String()
		if strings.Contains(out, `"level":"WARN"`) || strings.Contains(out, `"level":"ERROR"`) {
			t.Errorf("midStream %v: the abort was logged as a failure:\n%s", midStream, out)
		}
		want := "request canceled before its answer"
		if midStream {
			want = "origin body failed mid-stream"
		}
		if !strings.Contains(out, want) {
			t.Errorf("midStream %v: no debug line %q:\n%s", midStream, want, out)
		}
		if !midStream {
			select {
			case st := <-status:
				if st != http.StatusServiceUnavailable {
					t.Errorf("the client was answered %d, want 503 (ask again, another replica answers)", st)
				}
			default: // the connection went before the answer: nobody to tell
			}
			if got := requestsCounted(t, s, "499", "none"); got != 1 {
				t.Errorf("requests counted with status 499: %v, want 1", got)
			}
			if got := requestsCounted(t, s, "502", "none"); got != 0 {
				t.Errorf("requests counted with status 502: %v, want 0", got)
			}
		}
	}
}

// requestsCounted returns the front's count of answers with status and source.
func requestsCounted(t *testing.T, s *Server, status, source string) float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(s.metrics.requests)
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["status"] == status && labels["source"] == source {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}
