package proxy

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/fedicache/fedicache/cache"
	"github.com/fedicache/fedicache/cache/tiertest"
	"github.com/fedicache/fedicache/origin"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/valyala/fasthttp"
)

// plainBody reads a byte slice and has no WriteTo, as the cache's stream of a fetch under way
// (a miss) and the bucket's bodies have none. After the slice it returns err, io.EOF if nil.
type plainBody struct {
	b      []byte
	err    error
	closed bool
}

func (p *plainBody) Read(q []byte) (int, error) {
	if len(p.b) == 0 {
		if p.err != nil {
			return 0, p.err
		}
		return 0, io.EOF
	}
	n := copy(q, p.b)
	p.b = p.b[n:]
	return n, nil
}

func (p *plainBody) Close() error {
	p.closed = true
	return nil
}

// loopback returns the server side of a TCP connection whose client side a goroutine reads
// and discards until the test ends.
func loopback(tb testing.TB) *net.TCPConn {
	tb.Helper()
	server, client := tcpPair(tb)
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 256<<10)
		for {
			if _, err := client.Read(buf); err != nil {
				return
			}
		}
	}()
	tb.Cleanup(func() {
		server.Close()
		client.Close()
		<-done
	})
	return server
}

// tcpPair returns the two ends of a loopback TCP connection, closed when the test ends.
func tcpPair(tb testing.TB) (server *net.TCPConn, client net.Conn) {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		tb.Fatal(err)
	}
	c, err := ln.Accept()
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		c.Close()
		client.Close()
	})
	return c.(*net.TCPConn), client
}

// streamed is what one answer streamed through setBody came to.
type streamed struct {
	writeErr error  // fasthttp's, writing the answer: the connection is dropped
	body     []byte // what the client read of the body
	readErr  error  // the client's, reading the body
	canceled bool   // the request's context was canceled
	logs     string
}

// stream writes a 200 with body (length bytes announced) through setBody and fasthttp's writer
// of answers to server, and reads it as a client on client.
func stream(t *testing.T, s *Server, server, client net.Conn, body io.ReadCloser, length int64, src origin.Source) streamed {
	t.Helper()
	var logs bytes.Buffer
	s.log = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	var got streamed
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		resp, err := http.ReadResponse(bufio.NewReader(client), nil)
		if err != nil {
			got.readErr = err
			return
		}
		got.body, got.readErr = io.ReadAll(resp.Body)
		resp.Body.Close()
	}()
	got.canceled, got.writeErr = writeAnswer(s, server, body, length, src)
	server.Close() // as fasthttp does after a failed answer; after a whole one, the client has it
	wg.Wait()
	got.logs = logs.String()
	return got
}

// writeAnswer writes a 200 with body (length bytes announced) through setBody and fasthttp's
// writer of answers to conn, and reports whether the request's context ended, and fasthttp's
// error.
func writeAnswer(s *Server, conn net.Conn, body io.ReadCloser, length int64, src origin.Source) (bool, error) {
	var ctx fasthttp.RequestCtx
	ctx.Init2(conn, nil, false)
	c, cancel := context.WithCancel(context.Background())
	s.setBody(&ctx, body, length, src, hitKey, cancel)
	bw := bufio.NewWriterSize(conn, 4096) // fasthttp's default
	err := ctx.Response.Write(bw)
	if err == nil {
		err = bw.Flush()
	}
	return c.Err() != nil, err
}

// conns returns the two ends of a connection: over loopback TCP (where a file goes by
// sendfile) or a pipe (where it cannot, as with TLS).
func conns(t *testing.T, transport string) (server, client net.Conn) {
	if transport == "tcp" {
		return tcpPair(t)
	}
	return net.Pipe()
}

// bodies returns the kinds of body setBody streams, over data: a miss (no WriteTo), a
// promoted disk hit (a bytes.Reader's WriteTo) and a range of a file (sendfile).
func bodies(t *testing.T, data []byte) map[string]func() io.ReadCloser {
	path := filepath.Join(t.TempDir(), "object")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return map[string]func() io.ReadCloser{
		"miss":   func() io.ReadCloser { return &plainBody{b: data} },
		"memory": func() io.ReadCloser { return io.NopCloser(bytes.NewReader(data)) },
		"filerange": func() io.ReadCloser {
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			return origin.FileRange(f, int64(len(data)))
		},
	}
}

// TestBodyStreamsWhole checks every kind of body, small and large, over TCP (sendfile for a
// file range) and over a pipe (no sendfile, as with TLS): the client gets every byte, the
// bytes are counted once, the request's context is released, nothing is logged.
func TestBodyStreamsWhole(t *testing.T) {
	for _, size := range []int{0, 1, 5_000, 100_000, 1<<20 + 7} {
		data := tiertest.Blob(9, size)
		for kind, open := range bodies(t, data) {
			for _, transport := range []string{"tcp", "pipe"} {
				s := New(nil, Config{}, nil)
				server, client := conns(t, transport)
				got := stream(t, s, server, client, open(), int64(size), cache.SourceDisk)
				client.Close()
				if got.writeErr != nil || got.readErr != nil || !bytes.Equal(got.body, data) {
					t.Errorf("%s %s %d bytes: write %v, read %v, %d bytes received", kind, transport, size, got.writeErr, got.readErr, len(got.body))
				}
				if n := s.metrics.HitBytes(); n != int64(size) {
					t.Errorf("%s %s %d bytes: %d bytes counted", kind, transport, size, n)
				}
				if !got.canceled {
					t.Errorf("%s %s: the request's context was not canceled", kind, transport)
				}
				if metricValue(s.metrics.inFlight) != 0 {
					t.Errorf("%s %s: a stream still counted in flight", kind, transport)
				}
				if got.logs != "" {
					t.Errorf("%s %s: logged %s", kind, transport, got.logs)
				}
			}
		}
	}
}

// TestBodyNeverCompletesShortOrLong checks that a body that fails or ends early never reaches
// the client as a whole answer, that one running past its length fails the answer (the client
// may have had the bytes announced, no more), and that only a failed read is logged as the
// origin's failure.
func TestBodyNeverCompletesShortOrLong(t *testing.T) {
	data := tiertest.Blob(4, 300_000)
	path := filepath.Join(t.TempDir(), "object")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	fileRange := func(n int64) io.ReadCloser {
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		return origin.FileRange(f, n)
	}
	broken := errors.New("connection reset by bucket")
	for _, tc := range []struct {
		name    string
		body    func() io.ReadCloser
		length  int64
		logged  bool
		wantErr error
	}{
		{"miss failing", func() io.ReadCloser { return &plainBody{b: data[:100_000], err: broken} }, 300_000, true, broken},
		{"miss aborted", func() io.ReadCloser { return &plainBody{b: data[:100_000], err: context.Canceled} }, 300_000, true, context.Canceled},
		{"miss short", func() io.ReadCloser { return &plainBody{b: data[:100_000]} }, 300_000, false, nil},
		{"miss long", func() io.ReadCloser { return &plainBody{b: data} }, 200_000, false, nil},
		{"memory short", func() io.ReadCloser { return io.NopCloser(bytes.NewReader(data[:100_000])) }, 300_000, false, nil},
		{"memory long", func() io.ReadCloser { return io.NopCloser(bytes.NewReader(data)) }, 200_000, false, nil},
		{"filerange short", func() io.ReadCloser { return fileRange(400_000) }, 400_000, false, nil},
		{"filerange long", func() io.ReadCloser { return fileRange(300_000) }, 200_000, false, nil},
	} {
		for _, transport := range []string{"tcp", "pipe"} {
			s := New(nil, Config{}, nil)
			server, client := conns(t, transport)
			got := stream(t, s, server, client, tc.body(), tc.length, origin.SourceBucket)
			client.Close()
			if got.writeErr == nil {
				t.Errorf("%s %s: the answer was written whole", tc.name, transport)
			}
			if tc.wantErr != nil && !errors.Is(got.writeErr, tc.wantErr) {
				t.Errorf("%s %s: write error %v, want %v", tc.name, transport, got.writeErr, tc.wantErr)
			}
			if got.readErr == nil && !strings.HasSuffix(tc.name, " long") {
				t.Errorf("%s %s: the client read a whole body of %d bytes", tc.name, transport, len(got.body))
			}
			if logged := strings.Contains(got.logs, "origin body failed mid-stream"); logged != tc.logged {
				t.Errorf("%s %s: logged %v, want %v:\n%s", tc.name, transport, logged, tc.logged, got.logs)
			}
			if tc.wantErr == context.Canceled && strings.Contains(got.logs, "level=WARN") {
				t.Errorf("%s %s: an abort logged as a failure:\n%s", tc.name, transport, got.logs)
			}
			if !got.canceled {
				t.Errorf("%s %s: the request's context was not canceled", tc.name, transport)
			}
		}
	}
}

// TestBodyClientLeaving checks that a client that goes away ends the stream with a write
// error, not logged as the origin's, and releases the origin request.
func TestBodyClientLeaving(t *testing.T) {
	data := tiertest.Blob(5, 16<<20)
	for kind, open := range bodies(t, data) {
		s := New(nil, Config{}, nil)
		var logs bytes.Buffer
		s.log = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		server, client := tcpPair(t)
		go func() {
			_, _ = io.CopyN(io.Discard, client, 64<<10)
			client.Close()
		}()
		canceled, err := writeAnswer(s, server, open(), int64(len(data)), origin.SourceBucket)
		if err == nil {
			t.Errorf("%s: %d bytes written to a client that left after 64 KiB", kind, len(data))
		}
		if !canceled {
			t.Errorf("%s: the request's context was not canceled", kind)
		}
		if strings.Contains(logs.String(), "origin body failed") {
			t.Errorf("%s: a client leaving logged as the origin's failure:\n%s", kind, logs.String())
		}
		if n := metricValue(s.metrics.bytesOut.WithLabelValues(string(origin.SourceBucket))); n <= 0 || n >= float64(len(data)) {
			t.Errorf("%s: %v bytes counted", kind, n)
		}
	}
}

// metricValue returns a counter's or a gauge's value.
func metricValue(c prometheus.Metric) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		panic(err)
	}
	if g := m.GetGauge(); g != nil {
		return g.GetValue()
	}
	return m.GetCounter().GetValue()
}
