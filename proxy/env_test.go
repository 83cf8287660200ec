package proxy_test

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fedicache/fedicache/cache"
	"github.com/fedicache/fedicache/cache/disk"
	"github.com/fedicache/fedicache/cache/memory"
	"github.com/fedicache/fedicache/origin"
	"github.com/fedicache/fedicache/origin/origintest"
	"github.com/fedicache/fedicache/origin/s3"
	"github.com/fedicache/fedicache/origin/volume"
	"github.com/fedicache/fedicache/proxy"
)

const testBucket = origintest.BucketName

// env is a running front with a bucket and an old volume behind it.
type env struct {
	bucket  *origintest.FakeBucket
	volDir  string
	canary  []byte
	front   *proxy.Server
	url     string
	addr    string
	client  *http.Client
	metrics *proxy.Metrics
	cache   *cache.Layered // nil without withCache
	admin   *httptest.Server
}

// newTestCache returns a Layered cache over o with the tiers asked for.
func newTestCache(t *testing.T, o origin.Sourced, mem, dsk bool, guard cache.Guard) *cache.Layered {
	t.Helper()
	var mt cache.MemoryTier
	var dt cache.DiskTier
	if mem {
		m, err := memory.New(memory.Config{MaxBytes: 64 << 20, MaxObjectBytes: 1 << 20})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(m.Close)
		mt = m
	}
	if dsk {
		d, err := disk.Open(disk.Config{Dir: t.TempDir(), MaxBytes: 1 << 30})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Close() })
		dt = d
	}
	l := cache.New(o, mt, dt, cache.Config{MemoryObjectBytes: 1 << 20, SpoolDir: t.TempDir(), Guard: guard})
	t.Cleanup(l.Close)
	return l
}

// envConfig is what an envOption may change before the env starts.
type envConfig struct {
	proxy *proxy.Config
	s3    *s3.Config
	admin *proxy.AdminConfig
	// memory and disk put a cache with those tiers in front of the origins.
	memory, disk bool
	// guard, when set, is the cache's Guard.
	guard cache.Guard
}

type envOption func(*envConfig)

// withCache puts a Layered cache with a memory and a disk tier in front of the origins.
func withCache(c *envConfig) { c.memory, c.disk = true, true }

func newEnv(t *testing.T, opts ...envOption) *env {
	t.Helper()
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	e := &env{bucket: origintest.NewFakeBucket(t)}

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
		Endpoint: e.bucket.URL, Bucket: testBucket, ForcePathStyle: true,
		AccessKeyID: "AKIDTEST", SecretAccessKey: "secret", Timeout: 2 * time.Second,
	}
	acfg := proxy.AdminConfig{Token: "s3cret-token"}
	ec := envConfig{proxy: &pcfg, s3: &scfg, admin: &acfg}
	for _, o := range opts {
		o(&ec)
	}
	e.metrics = proxy.NewMetrics()
	scfg.Observe = e.metrics.ObserveBucket
	bucket, err := s3.New(context.Background(), scfg)
	if err != nil {
		t.Fatal(err)
	}
	// As serve does: the cache always stands in front of the stores, with no tier when the
	// env asks for none.
	e.cache = newTestCache(t, origin.Fallback(bucket, vol), ec.memory, ec.disk, ec.guard)
	e.front = proxy.New(e.cache, pcfg, e.metrics)
	e.admin = httptest.NewServer(proxy.NewAdmin(e.front, e.cache, acfg))
	t.Cleanup(e.admin.Close)
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

func lower(h http.Header) map[string]string {
	m := map[string]string{}
	for k, v := range h {
		m[strings.ToLower(k)] = strings.Join(v, ",")
	}
	return m
}
