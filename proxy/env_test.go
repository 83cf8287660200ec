package proxy_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/fedicache/fedicache/cache"
	"github.com/fedicache/fedicache/origin/origintest"
	"github.com/fedicache/fedicache/origin/s3"
	"github.com/fedicache/fedicache/proxy"
	"github.com/fedicache/fedicache/proxy/admin"
	"github.com/fedicache/fedicache/proxy/proxytest"
	"github.com/prometheus/client_golang/prometheus"
)

const testBucket = origintest.BucketName

// env is a running front with a bucket and an old volume behind it: a proxytest.Env, with its
// parts also under the names the tests of this package use.
type env struct {
	*proxytest.Env
	bucket *origintest.FakeBucket
	volDir string
	canary []byte
	front  *proxy.Server
	url    string
	addr   string
	client *http.Client
	reg    *prometheus.Registry
	cache  *cache.Layered
	admin  *httptest.Server
}

// envConfig is what an envOption may change before the env starts: parts of the
// proxytest.Config.
type envConfig struct {
	proxy *proxy.Config
	s3    *s3.Config
	admin *admin.Config
	// memory and disk put a cache with those tiers in front of the origins.
	memory, disk bool
	// guard, when set, is the cache's Guard.
	guard cache.Guard
}

type envOption func(*envConfig)

// withCache puts a Layered cache with a memory and a disk tier in front of the origins.
func withCache(c *envConfig) { c.memory, c.disk = true, true }

// newEnv starts a proxytest.Env changed by opts.
func newEnv(t *testing.T, opts ...envOption) *env {
	t.Helper()
	return wrapEnv(proxytest.NewEnv(t, func(c *proxytest.Config) {
		ec := envConfig{proxy: &c.Proxy, s3: &c.S3, admin: &c.Admin}
		for _, o := range opts {
			o(&ec)
		}
		tiers := proxytest.Config{}
		proxytest.WithTiers(&tiers)
		if ec.memory {
			c.Memory = tiers.Memory
		}
		if ec.disk {
			c.Disk = tiers.Disk
		}
		c.Cache.Guard = ec.guard
	}))
}

// wrapEnv returns e under the names of env.
func wrapEnv(e *proxytest.Env) *env {
	return &env{Env: e, bucket: e.Bucket, volDir: e.VolDir, canary: e.Canary, front: e.Front, url: e.URL,
		addr: e.Addr, client: e.Client, reg: e.Reg, cache: e.Cache, admin: e.Admin}
}

// putVolume writes a file on the old volume.
func (e *env) putVolume(t *testing.T, key string, data []byte) {
	t.Helper()
	e.PutVolume(t, key, data)
}

// do sends a request with the given headers and returns the response with its body read.
func (e *env) do(t *testing.T, method, path string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	return e.Do(t, method, path, hdr...)
}

// raw sends target byte for byte, as a hostile client would, and returns status and body.
func (e *env) raw(t *testing.T, target string) (int, []byte) {
	t.Helper()
	conn, err := net.Dial("tcp", e.Addr)
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
