package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fedicache/fedicache/backfill"
	"github.com/fedicache/fedicache/cache/tiertest"
	"github.com/fedicache/fedicache/cmd/fedicache/config"
	"github.com/fedicache/fedicache/origin"
	"github.com/fedicache/fedicache/origin/origintest"
	"github.com/fedicache/fedicache/origin/s3"
	"github.com/fedicache/fedicache/origin/s3/s3test"
	"github.com/fedicache/fedicache/origin/volume"
	"github.com/fedicache/fedicache/proxy"
	"github.com/fedicache/fedicache/proxy/admin"
)

// metricsBucket returns a bucket on fake whose every request observe records.
func metricsBucket(t *testing.T, fake *origintest.FakeBucket, observe func(string, time.Duration, error)) *s3.Bucket {
	t.Helper()
	return s3test.New(t, fake, func(c *s3.Config) { c.Observe = observe })
}

// scrape returns what h serves on /metrics.
func scrape(t *testing.T, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: %d %v", resp.StatusCode, err)
	}
	return string(b)
}

// TestServeMetrics: the registry serve builds, with the collectors wired as serve wires them,
// counts the front's answers, the bucket's requests (each one, found or not) and the cache's
// tiers, and the admin listener serves it.
func TestServeMetrics(t *testing.T) {
	const (
		bucketKey = "media_attachments/files/109/852/623/730/091/815/original/0123456789abcdef.jpg"
		largeKey  = "media_attachments/files/000/000/002/original/2222222222222222.mp4"
		volumeKey = "media_attachments/files/000/000/042/original/fedcba9876543210.mp4"
	)
	log := slog.New(slog.DiscardHandler)
	fake := origintest.NewFakeBucket(t)
	fake.Put(t, bucketKey, tiertest.Blob(1, 30_000))
	fake.Put(t, largeKey, tiertest.Blob(2, 3<<20)) // beyond the memory tier's object limit
	volDir := t.TempDir()
	p := filepath.Join(volDir, filepath.FromSlash(volumeKey))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte("old volume bytes"), 0o644); err != nil {
		t.Fatal(err)
	}
	vol, err := volume.Open(volDir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { vol.Close() })

	reg := newRegistry()
	bucket := metricsBucket(t, fake, newBucketMetrics(reg).observe)
	cfg := config.Config{Cache: config.CacheConfig{
		MemoryMaxBytes: 64 << 20, MemoryMaxObjectBytes: 1 << 20,
		DiskDir: t.TempDir(), DiskMaxBytes: 1 << 30,
	}}
	cfg.Cache.Layered.MemoryObjectBytes = 1 << 20
	cfg.Cache.Layered.SpoolDir = t.TempDir()
	layered, closeTiers, err := newCache(origin.Fallback(bucket, vol), cfg, nil, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(closeTiers)
	metrics := proxy.NewMetrics(reg)
	registerCacheMetrics(reg, layered.Stats, metrics.HitBytes)
	front := proxy.New(layered, proxy.Config{Logger: log}, metrics)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = front.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = front.Shutdown(ctx)
	})
	get := func(key string) int {
		t.Helper()
		resp, err := http.Get("http://" + ln.Addr().String() + "/" + key)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	// One answer from the bucket, one from the old volume after the bucket said not found, one
	// found nowhere: three bucket GETs.
	for key, want := range map[string]int{bucketKey: 200, volumeKey: 200, "nothing/here.png": 404} {
		if got := get(key); got != want {
			t.Fatalf("GET %s: %d, want %d", key, got, want)
		}
	}
	// Hits from both tiers.
	get(largeKey)
	layered.Settle()
	for range 2 {
		get(bucketKey)
		get(largeKey)
	}

	body := scrape(t, admin.New(admin.Config{Metrics: reg, Cache: layered, HitBytes: metrics.HitBytes}))
	for _, want := range []string{
		`fedicache_cache_hits_total{tier="memory"}`, `fedicache_cache_hits_total{tier="disk"}`,
		"fedicache_egress_saved_bytes_total", `fedicache_cache_entries{tier="disk"}`,
		`fedicache_requests_total{source="bucket",status="200"}`, "go_goroutines", "process_start_time_seconds",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	samples := 0.0
	if m := regexp.MustCompile(`(?m)^fedicache_bucket_request_duration_seconds_count\{op="GetObject"\} (\S+)$`).FindStringSubmatch(body); m != nil {
		samples, _ = strconv.ParseFloat(m[1], 64)
	}
	if samples < 3 {
		t.Errorf("bucket latency histogram has %v GetObject samples, want 3", samples)
	}
}

// TestBackfillAdminCountsBucketChecks: the admin listener of fedicache backfill serves the
// bucket's metrics beside the copy's, and counts its health checks of the bucket.
func TestBackfillAdminCountsBucketChecks(t *testing.T) {
	reg := newRegistry()
	bucket := metricsBucket(t, origintest.NewFakeBucket(t), newBucketMetrics(reg).observe)
	cs := copies{{name: "volume", p: backfill.NewProgress()}}
	h := newBackfillAdmin(config.Config{}, backfill.Config{}, bucket, reg, cs)
	srv := httptest.NewServer(h)
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/readyz: %d", resp.StatusCode)
	}
	body := scrape(t, h)
	for _, want := range []string{`fedicache_bucket_request_duration_seconds_count{op="HeadBucket"}`, `fedicache_backfill_copied_files{source="volume"} 0`} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s:\n%s", want, body)
		}
	}
	if strings.Contains(body, "fedicache_requests_total") || strings.Contains(body, "fedicache_cache_hits_total") {
		t.Error("the backfill's /metrics shows a front or a cache it does not have")
	}
}
