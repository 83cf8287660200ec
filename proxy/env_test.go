package proxy_test

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fedicache/fedicache/origin"
	"github.com/fedicache/fedicache/origin/s3"
	"github.com/fedicache/fedicache/origin/volume"
	"github.com/fedicache/fedicache/proxy"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
)

const testBucket = "media"

// bucketServer is an in-process S3 server (gofakes3) on a real listener that counts the
// requests reaching it and can be told to fail.
type bucketServer struct {
	backend *hugeBackend
	ln      net.Listener
	srv     *http.Server
	url     string

	mu      sync.Mutex
	gets    map[string]int // path -> GET count
	mode    atomic.Value   // "", "500", "stall"
	unstall chan struct{}
	sent    atomic.Int64 // body bytes the bucket wrote
	ended   chan error   // after each request the bucket served: its context's error (buffered)
}

// countingWriter counts the body bytes a handler writes.
type countingWriter struct {
	http.ResponseWriter
	n *atomic.Int64
}

func (c countingWriter) Write(p []byte) (int, error) {
	n, err := c.ResponseWriter.Write(p)
	c.n.Add(int64(n))
	return n, err
}

func newBucketServer(t *testing.T) *bucketServer {
	t.Helper()
	b := &bucketServer{
		backend: &hugeBackend{Backend: s3mem.New(), huge: map[string]int64{}},
		gets:    map[string]int{},
		unstall: make(chan struct{}),
		ended:   make(chan error, 1024),
	}
	b.mode.Store("")
	if err := b.backend.CreateBucket(testBucket); err != nil {
		t.Fatal(err)
	}
	fake := gofakes3.New(b.backend).Server()
	var err error
	b.ln, err = net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b.url = "http://" + b.ln.Addr().String()
	b.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			b.mu.Lock()
			b.gets[r.URL.Path]++
			b.mu.Unlock()
		}
		switch b.mode.Load().(string) {
		case "500":
			http.Error(w, "<Error><Code>InternalError</Code></Error>", http.StatusInternalServerError)
			return
		case "stall":
			select {
			case <-b.unstall:
			case <-r.Context().Done():
			}
			return
		}
		fake.ServeHTTP(countingWriter{w, &b.sent}, r)
		select {
		case b.ended <- r.Context().Err():
		default:
		}
	})}
	go func() { _ = b.srv.Serve(b.ln) }()
	t.Cleanup(func() { b.close() })
	return b
}

func (b *bucketServer) close() {
	select {
	case <-b.unstall:
	default:
		close(b.unstall)
	}
	_ = b.srv.Close()
}

func (b *bucketServer) put(t *testing.T, key string, data []byte) {
	t.Helper()
	meta := map[string]string{
		"Content-Type":  origin.ContentType(key),
		"Last-Modified": time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC).Format(http.TimeFormat),
	}
	if _, err := b.backend.PutObject(testBucket, key, meta, bytes.NewReader(data), int64(len(data)), nil); err != nil {
		t.Fatal(err)
	}
}

// getCount returns how many GETs reached the bucket for key.
func (b *bucketServer) getCount(key string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.gets["/"+testBucket+"/"+key]
}

func (b *bucketServer) totalGets() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for _, c := range b.gets {
		n += c
	}
	return n
}

// env is a running front with a bucket and an old volume behind it.
type env struct {
	bucket  *bucketServer
	volDir  string
	canary  []byte
	front   *proxy.Server
	url     string
	addr    string
	client  *http.Client
	metrics *proxy.Metrics
}

type envOption func(*proxy.Config, *s3.Config)

func newEnv(t *testing.T, opts ...envOption) *env {
	t.Helper()
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	e := &env{bucket: newBucketServer(t)}

	// The old volume, with a canary file beside it that must never be served.
	parent := t.TempDir()
	e.volDir = filepath.Join(parent, "system")
	if err := os.Mkdir(e.volDir, 0o755); err != nil {
		t.Fatal(err)
	}
	e.canary = []byte("CANARY-outside-the-volume-" + t.Name())
	if err := os.WriteFile(filepath.Join(parent, "canary"), e.canary, 0o644); err != nil {
		t.Fatal(err)
	}
	vol, err := volume.Open(e.volDir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { vol.Close() })

	pcfg := proxy.Config{DenyPrefixes: []string{"backups/", "imports/"}, StripPrefixes: []string{"/" + testBucket}}
	scfg := s3.Config{
		Endpoint: e.bucket.url, Bucket: testBucket, ForcePathStyle: true,
		AccessKeyID: "AKIDTEST", SecretAccessKey: "secret", Timeout: 2 * time.Second,
	}
	for _, o := range opts {
		o(&pcfg, &scfg)
	}
	e.metrics = proxy.NewMetrics()
	scfg.Observe = e.metrics.ObserveBucket
	bucket, err := s3.New(context.Background(), scfg)
	if err != nil {
		t.Fatal(err)
	}
	e.front = proxy.New(origin.Fallback(bucket, vol), pcfg, e.metrics)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.addr = ln.Addr().String()
	e.url = "http://" + e.addr
	go func() { _ = e.front.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = e.front.Shutdown(ctx)
	})
	e.client = &http.Client{Transport: &http.Transport{DisableCompression: true}}
	t.Cleanup(e.client.CloseIdleConnections)
	return e
}

// putVolume writes a file on the old volume.
func (e *env) putVolume(t *testing.T, key string, data []byte) {
	t.Helper()
	p := filepath.Join(e.volDir, filepath.FromSlash(key))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	mod := time.Date(2023, 1, 2, 3, 4, 5, 0, time.UTC)
	if err := os.Chtimes(p, mod, mod); err != nil {
		t.Fatal(err)
	}
}

// do sends a request with the given headers and returns the response with its body read.
func (e *env) do(t *testing.T, method, path string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, e.url+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := e.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, path, err)
	}
	return resp, body
}

// raw sends target byte for byte, as a hostile client would, and returns status and body.
func (e *env) raw(t *testing.T, target string) (int, []byte) {
	t.Helper()
	conn, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, "GET "+target+" HTTP/1.1\r\nHost: media.example\r\nConnection: close\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("GET %q: %v", target, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, body
}

// hugeBackend serves generated objects of any size without storing them, so a test can stream
// gigabytes through the front with flat memory on both ends.
type hugeBackend struct {
	*s3mem.Backend
	huge map[string]int64 // key -> size
}

func (h *hugeBackend) HeadObject(bucket, key string) (*gofakes3.Object, error) {
	if size, ok := h.huge[key]; ok {
		return h.object(key, size, nil)
	}
	return h.Backend.HeadObject(bucket, key)
}

func (h *hugeBackend) GetObject(bucket, key string, rr *gofakes3.ObjectRangeRequest) (*gofakes3.Object, error) {
	if size, ok := h.huge[key]; ok {
		return h.object(key, size, rr)
	}
	return h.Backend.GetObject(bucket, key, rr)
}

func (h *hugeBackend) object(key string, size int64, rr *gofakes3.ObjectRangeRequest) (*gofakes3.Object, error) {
	rng, err := rr.Range(size)
	if err != nil {
		return nil, err
	}
	start, n := int64(0), size
	if rng != nil {
		start, n = rng.Start, rng.Length
	}
	return &gofakes3.Object{
		Name: key,
		Metadata: map[string]string{
			"Content-Type":  "video/mp4",
			"Last-Modified": time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC).Format(http.TimeFormat),
		},
		Size:     size,
		Range:    rng,
		Hash:     []byte("0123456789abcdef"),
		Contents: io.NopCloser(io.LimitReader(&pattern{off: start}, n)),
	}, nil
}

// pattern is an endless deterministic byte stream: byte i is patternByte(i).
type pattern struct{ off int64 }

func patternByte(i int64) byte { return byte(i*7 + i>>12) }

func (p *pattern) Read(b []byte) (int, error) {
	for i := range b {
		b[i] = patternByte(p.off + int64(i))
	}
	p.off += int64(len(b))
	return len(b), nil
}

func lower(h http.Header) map[string]string {
	m := map[string]string{}
	for k, v := range h {
		m[strings.ToLower(k)] = strings.Join(v, ",")
	}
	return m
}
