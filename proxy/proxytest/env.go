// Package proxytest builds, for tests, the stack serve wires: an in-process bucket
// (origintest.FakeBucket) and an old volume, the Layered cache in front of them, the public
// fasthttp front answering through the cache and the admin listener beside it. It also checks
// leaks knowing fasthttp's background goroutines (CheckLeaks).
package proxytest

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/fedicache/fedicache/cache"
	"github.com/fedicache/fedicache/cache/disk"
	"github.com/fedicache/fedicache/cache/memory"
	"github.com/fedicache/fedicache/origin"
	"github.com/fedicache/fedicache/origin/origintest"
	"github.com/fedicache/fedicache/origin/s3"
	"github.com/fedicache/fedicache/origin/s3/s3test"
	"github.com/fedicache/fedicache/origin/volume"
	"github.com/fedicache/fedicache/proxy"
	"github.com/fedicache/fedicache/proxy/admin"
	"github.com/prometheus/client_golang/prometheus"
)

// AdminToken is the token of the admin listener NewEnv starts: POST /purge takes
// "Authorization: Bearer " + AdminToken.
const AdminToken = "s3cret-token"

// Config is what the Options of NewEnv change before the stack starts. NewEnv fills it first
// as each field says; an Option may change anything.
type Config struct {
	// S3 configures the client of the fake bucket: s3test.Config's, with a 2s Timeout.
	S3 s3.Config
	// Memory, when set, configures the cache's memory tier. Nil means none (NewEnv's default).
	Memory *memory.Config
	// Disk, when set, configures the cache's disk tier; an empty Dir is a temporary folder.
	// Nil means none (NewEnv's default).
	Disk *disk.Config
	// Cache configures the cache in front of the bucket and the old volume: objects up to
	// 1 MiB also go to the memory tier, and SpoolDir is a temporary folder (when still empty
	// after the Options).
	Cache cache.Config
	// Proxy configures the public front: keys under "backups/" and "imports/" are refused, and
	// "/media" (the bucket's name, as in path-style URLs) is stripped from paths.
	Proxy proxy.Config
	// Admin configures the admin listener: its Token is AdminToken. NewEnv fills in what is
	// still unset after the Options of Metrics (Env.Reg), Bucket (Env.S3), Draining and
	// HitBytes (the front's), and Cache (Env.Cache) when the cache has a tier: a cache without
	// one has nothing to show or purge.
	Admin admin.Config
}

// Option changes the Config of NewEnv.
type Option func(*Config)

// WithTiers is an Option that gives the cache a memory tier of 64 MiB (objects up to 1 MiB)
// and a disk tier of 1 GiB in a temporary folder.
func WithTiers(c *Config) {
	c.Memory = &memory.Config{MaxBytes: 64 << 20, MaxObjectBytes: 1 << 20}
	c.Disk = &disk.Config{MaxBytes: 1 << 30}
}

// Env is a running stack, stopped when its test ends.
type Env struct {
	// Bucket is the fake bucket, the first origin.
	Bucket *origintest.FakeBucket
	// S3 is the client of Bucket the cache reads through.
	S3 *s3.Bucket
	// VolDir is the folder of the old volume, the second origin (see PutVolume).
	VolDir string
	// Canary is the content of the file "canary" beside VolDir, outside the volume: no answer
	// may carry it.
	Canary []byte
	// Memory and Disk are the cache's tiers, nil when off.
	Memory *memory.Memory
	Disk   *disk.Disk
	// DiskDir is the disk tier's folder ("" without one); SpoolDir is the cache's.
	DiskDir, SpoolDir string
	// Cache is the cache in front of the origins, which the front answers through.
	Cache *cache.Layered
	// Front is the public front, listening on Addr; URL is "http://" + Addr.
	Front     *proxy.Server
	Addr, URL string
	// Client is an HTTP client of the front that asks for no compression.
	Client *http.Client
	// Metrics are the front's collectors, registered in Reg, which the admin's /metrics serves.
	Metrics *proxy.Metrics
	Reg     *prometheus.Registry
	// Admin is the admin listener, serving admin.New(Config.Admin).
	Admin *httptest.Server
}

// NewEnv starts the stack opts describe (see Config for what they change) and returns it. The
// bucket and the old volume are empty. Everything stops when the test ends: the client's idle
// connections, then the front (within 5s), the admin listener, the cache, its tiers, the
// volume and the bucket.
func NewEnv(t testing.TB, opts ...Option) *Env {
	t.Helper()
	e := &Env{Bucket: origintest.NewFakeBucket(t)}

	// The old volume, with a canary file beside it that must never be served.
	parent := t.TempDir()
	e.VolDir = filepath.Join(parent, "system")
	if err := os.Mkdir(e.VolDir, 0o755); err != nil {
		t.Fatal(err)
	}
	e.Canary = []byte("CANARY-outside-the-volume-" + t.Name())
	if err := os.WriteFile(filepath.Join(parent, "canary"), e.Canary, 0o644); err != nil {
		t.Fatal(err)
	}
	vol, err := volume.Open(e.VolDir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { vol.Close() })

	cfg := Config{
		S3:    s3test.Config(e.Bucket),
		Cache: cache.Config{MemoryObjectBytes: 1 << 20},
		Proxy: proxy.Config{DenyPrefixes: []string{"backups/", "imports/"}, StripPrefixes: []string{"/" + origintest.BucketName}},
		Admin: admin.Config{Token: AdminToken},
	}
	cfg.S3.Timeout = 2 * time.Second
	for _, o := range opts {
		o(&cfg)
	}
	e.S3 = s3test.NewFromConfig(t, cfg.S3)
	e.Cache = e.newCache(t, origin.Fallback(e.S3, vol), cfg)

	e.Reg = prometheus.NewRegistry()
	e.Metrics = proxy.NewMetrics(e.Reg)
	e.Front = proxy.New(e.Cache, cfg.Proxy, e.Metrics)
	e.Admin = httptest.NewServer(admin.New(e.adminConfig(cfg.Admin)))
	t.Cleanup(e.Admin.Close)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.Addr = ln.Addr().String()
	e.URL = "http://" + e.Addr
	front := e.Front
	go func() { _ = front.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = front.Shutdown(ctx)
	})
	e.Client = &http.Client{Transport: &http.Transport{DisableCompression: true}}
	t.Cleanup(e.Client.CloseIdleConnections)
	return e
}

// newCache opens the tiers cfg asks for and returns the cache over o, all closed when the test
// ends.
func (e *Env) newCache(t testing.TB, o origin.Sourced, cfg Config) *cache.Layered {
	t.Helper()
	var mt cache.MemoryTier // an untyped nil when off, as cache.New wants
	var dt cache.DiskTier
	if cfg.Memory != nil {
		m, err := memory.New(*cfg.Memory)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(m.Close)
		e.Memory, mt = m, m
	}
	if cfg.Disk != nil {
		dcfg := *cfg.Disk
		if dcfg.Dir == "" {
			dcfg.Dir = t.TempDir()
		}
		d, err := disk.Open(dcfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Close() })
		e.Disk, e.DiskDir, dt = d, dcfg.Dir, d
	}
	if cfg.Cache.SpoolDir == "" {
		cfg.Cache.SpoolDir = t.TempDir()
	}
	e.SpoolDir = cfg.Cache.SpoolDir
	l := cache.New(o, mt, dt, cfg.Cache)
	t.Cleanup(l.Close)
	return l
}

// adminConfig returns a with what the Options left unset filled in from e (see Config.Admin).
func (e *Env) adminConfig(a admin.Config) admin.Config {
	if a.Metrics == nil {
		a.Metrics = e.Reg
	}
	if a.Bucket == nil {
		a.Bucket = e.S3
	}
	if a.Cache == nil && (e.Memory != nil || e.Disk != nil) {
		a.Cache = e.Cache
	}
	if a.Draining == nil {
		a.Draining = e.Front.Draining
	}
	if a.HitBytes == nil {
		a.HitBytes = e.Metrics.HitBytes
	}
	return a
}

// PutVolume writes data as the old volume's file for key, last modified 2023-01-02 03:04:05 UTC.
func (e *Env) PutVolume(t testing.TB, key string, data []byte) {
	t.Helper()
	p := filepath.Join(e.VolDir, filepath.FromSlash(key))
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

// Do sends the front a request for path (with its query) carrying the headers hdr (name,
// value, name, value...) and returns the response with its body read.
func (e *Env) Do(t testing.TB, method, path string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, e.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := e.Client.Do(req)
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

// AdminDo sends the admin listener a request for path, with auth as its Authorization header
// unless empty, and returns the status and body of the answer.
func (e *Env) AdminDo(t testing.TB, method, path, auth string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, e.Admin.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
