package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/fedicache/fedicache/origin/origintest"
	"github.com/fedicache/fedicache/proxy/admin"
)

// chromiumPath is Debian's chromium, which scripts/chromium.sh installs.
const chromiumPath = "/usr/bin/chromium"

// heldBucket stands in front of a FakeBucket and holds the uploads of some keys until Release,
// so that a test sees a backfill part way through for as long as it needs.
type heldBucket struct {
	URL     string
	hold    func(key string) bool
	waiting atomic.Int64 // uploads held now
	release chan struct{}
	once    sync.Once
}

func newHeldBucket(t *testing.T, bucket *origintest.FakeBucket, hold func(key string) bool) *heldBucket {
	t.Helper()
	target, err := url.Parse(bucket.URL)
	if err != nil {
		t.Fatal(err)
	}
	h := &heldBucket{hold: hold, release: make(chan struct{})}
	forward := httputil.NewSingleHostReverseProxy(target)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := strings.TrimPrefix(r.URL.Path, "/"+origintest.BucketName+"/")
		if r.Method == http.MethodPut && h.hold(key) {
			h.waiting.Add(1)
			select {
			case <-h.release:
				h.waiting.Add(-1)
			case <-r.Context().Done():
				h.waiting.Add(-1)
				return
			}
		}
		forward.ServeHTTP(w, r)
	}))
	h.URL = srv.URL
	t.Cleanup(srv.Close)
	t.Cleanup(h.Release) // runs first: no handler waits when the server closes
	return h
}

// Release lets the held uploads and every later one through.
func (h *heldBucket) Release() { h.once.Do(func() { close(h.release) }) }

// browserVolume writes an old volume of n files of a few tens of kilobytes each and returns
// their keys, in the order of the walk.
func browserVolume(t *testing.T, dir string, n int) []string {
	t.Helper()
	rng := rand.New(rand.NewPCG(7, 11))
	files := map[string][]byte{}
	var keys []string
	for i := range n {
		k := fmt.Sprintf("media_attachments/files/000/%03d/%03d/original/%016x.png", i/10, i%10, i)
		data := make([]byte, 20_000+rng.IntN(60_000))
		for j := range data {
			data[j] = byte(rng.Uint32())
		}
		copy(data, "\x89PNG\r\n\x1a\n")
		files[k] = data
		keys = append(keys, k)
	}
	writeTree(t, dir, files)
	return keys
}

// pageState is what the test reads of the status page in the browser.
type pageState struct {
	Marker    bool    `json:"marker"` // set by the test after the first load: gone after a reload
	Title     string  `json:"title"`
	State     string  `json:"state"`
	Files     string  `json:"files"`
	Bytes     string  `json:"bytes"`
	Percent   string  `json:"percent"`
	Value     float64 `json:"value"`
	Max       float64 `json:"max"`
	Errors    string  `json:"errors"`
	Conflicts string  `json:"conflicts"`
	Ratio     string  `json:"ratio"`
	Saved     string  `json:"saved"`
	Bucket    string  `json:"bucket"`
	Health    string  `json:"health"`
	Updated   string  `json:"updated"`
	Text      string  `json:"text"`
}

// readPage is a script returning a pageState.
const readPage = `(() => {
	const text = id => (document.getElementById(id)?.textContent || "").trim();
	const bar = document.getElementById("migration-progress");
	return {
		marker: window.fedicacheTestMarker === true,
		title: document.title,
		state: text("migration-state"), files: text("migration-files"), bytes: text("migration-bytes"),
		percent: text("migration-percent"), value: bar ? bar.value : -1, max: bar ? bar.max : -1,
		errors: text("migration-errors"), conflicts: text("migration-conflicts"),
		ratio: text("cache-ratio"), saved: text("cache-saved"), bucket: text("bucket-state"),
		health: text("health"), updated: text("updated"), text: document.body.innerText,
	};
})()`

// newBrowser starts headless chromium for t, or skips t when it is not installed (fails it
// when FEDICACHE_BROWSER=required). The browser stops with the test.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("FEDICACHE_BROWSER") == "required" {
			t.Fatalf("FEDICACHE_BROWSER=required and %s is missing (%v): run scripts/chromium.sh", chromiumPath, err)
		}
		t.Skipf("%s is missing: run scripts/chromium.sh to install it (FEDICACHE_BROWSER=required makes this a failure)", chromiumPath)
	}
	// A bound on everything the browser does, start and stop included: 2 shared cores are slow.
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	var out bytes.Buffer
	var outMu sync.Mutex
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
		chromedp.CombinedOutput(writerFunc(func(p []byte) (int, error) {
			outMu.Lock()
			defer outMu.Unlock()
			return out.Write(p)
		})),
	)
	browser, cancelBrowser := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		// Close the browser gracefully, so that it has stopped writing in its user data
		// directory before the test removes it.
		cctx, ccancel := context.WithTimeout(browser, 30*time.Second)
		if err := chromedp.Cancel(cctx); err != nil && !errors.Is(err, context.Canceled) {
			t.Logf("closing the browser: %v", err)
		}
		ccancel()
		cancelBrowser()
		cancelAlloc()
		cancel()
		if t.Failed() {
			outMu.Lock()
			t.Logf("chromium's output:\n%s", out.String())
			outMu.Unlock()
		}
	})
	start := time.Now()
	if err := chromedp.Do(browser); err != nil {
		t.Fatalf("starting %s: %v", chromiumPath, err)
	}
	t.Logf("chromium started in %s", time.Since(start).Round(time.Millisecond))
	return browser
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// artifactsDir is where the test keeps its screenshots: $FEDICACHE_ARTIFACTS, else a
// directory of the test's own.
func artifactsDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("FEDICACHE_ARTIFACTS")
	if dir == "" {
		return t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// screenshot saves a full-page PNG of the browser's page as name in dir.
func screenshot(t *testing.T, ctx context.Context, dir, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if !bytes.HasPrefix(png, []byte("\x89PNG")) {
		t.Fatalf("the screenshot is not a PNG (%d bytes)", len(png))
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s (%d bytes)", p, len(png))
}

// waitPage polls the page in the browser until cond (a JavaScript expression over s, a
// pageState) holds, and returns the state then. The page must get there by itself.
func waitPage(t *testing.T, ctx context.Context, what, cond string, timeout time.Duration) pageState {
	t.Helper()
	pctx, cancel := context.WithTimeout(ctx, timeout+10*time.Second)
	defer cancel()
	_, err := chromedp.Run(pctx, chromedp.Poll[bool](`((s) => `+cond+`)(`+readPage+`)`,
		chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(timeout)))
	s, rerr := chromedp.Run(ctx, chromedp.Evaluate[pageState](readPage))
	if err != nil || rerr != nil {
		t.Fatalf("the page never showed %s (%v, %v); it shows:\n%s", what, err, rerr, s.Text)
	}
	return s
}

// TestStatusPageInBrowserDuringBackfill opens the status page of a serve that copies its old
// volume, in headless chromium, while the copy is held part way: the page shows the copy in
// progress, the cache and the bucket; then, once the copy is let through, it shows the copy
// done by itself, without a reload.
func TestStatusPageInBrowserDuringBackfill(t *testing.T) {
	browser := newBrowser(t)
	artifacts := artifactsDir(t)
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	began := time.Now()

	// The old volume: 24 files. The bucket already holds one of them, holds another with
	// other bytes (a conflict), and refuses a third (an error); six uploads are held.
	bucket := origintest.NewFakeBucket(t)
	vol := t.TempDir()
	keys := browserVolume(t, vol, 24)
	present, conflict, refused := keys[0], keys[1], keys[2]
	held := map[string]bool{}
	for _, k := range keys[18:] {
		held[k] = true
	}
	data, err := os.ReadFile(filepath.Join(vol, filepath.FromSlash(present)))
	if err != nil {
		t.Fatal(err)
	}
	bucket.Put(t, present, data)
	bucket.Put(t, conflict, []byte("another file under the same key"))
	bucket.FailKey(refused, http.StatusForbidden)
	hb := newHeldBucket(t, bucket, func(key string) bool { return held[key] })

	r := startReplica(t, `
listen: "127.0.0.1:0"
admin_listen: "127.0.0.1:0"
s3:
  endpoint: `+hb.URL+`
  bucket: `+origintest.BucketName+`
  access_key_id: AKID
  secret_access_key: secret
  timeout: 120s
fallback:
  dir: `+vol+`
cache:
  memory:
    max_bytes: 64MiB
  disk:
    dir: `+t.TempDir()+`
    max_bytes: 256MiB
backfill:
  enabled: true
  concurrency: 8
`)
	// Traffic for the cache's figures: the object already in the bucket, twice.
	for range 2 {
		if code, _, body := r.get(t, present); code != 200 || !bytes.Equal(body, data) {
			t.Fatalf("GET %s: %d, %d bytes", present, code, len(body))
		}
	}

	pageURL := "http://" + r.admin + "/?refresh=1"
	if err := chromedp.Do(browser, chromedp.Navigate(pageURL)); err != nil {
		t.Fatalf("opening %s: %v", pageURL, err)
	}
	if _, err := chromedp.Run(browser, chromedp.Evaluate[chromedp.Void](`window.fedicacheTestMarker = true`)); err != nil {
		t.Fatal(err)
	}
	opened := time.Now()

	// During the copy: 16 of 24 files are in the bucket (the one there already and 15
	// copies); the held six, the conflict and the refused file are not.
	s := waitPage(t, browser, "the copy part way", `s.files === "16 of 24 files" && s.errors === "1"`, 90*time.Second)
	midway := time.Now()
	if hb.waiting.Load() == 0 {
		t.Error("no upload was held while the page showed the copy part way")
	}
	if s.State != "copying" || !(s.Value > 0 && s.Value < s.Max) || s.Conflicts != "1" || !strings.HasSuffix(s.Percent, "%") {
		t.Errorf("during the copy: state %q, bar %v of %v, %q, conflicts %q", s.State, s.Value, s.Max, s.Percent, s.Conflicts)
	}
	if !strings.Contains(s.Title, "copied") {
		t.Errorf("title during the copy: %q", s.Title)
	}
	for _, want := range []string{"Migration", "Recent errors", refused, "AccessDenied", "Conflicts", conflict,
		"Cache", "hit ratio", "memory hits", "Memory", "Disk", "Bucket", "serving media"} {
		if !strings.Contains(s.Text, want) {
			t.Errorf("the page during the copy lacks %q", want)
		}
	}
	if s.Ratio == "" || s.Ratio == "–" || s.Saved == "" || s.Bucket == "" || s.Health != "ready" {
		t.Errorf("cache and bucket during the copy: ratio %q, saved %q, bucket %q, health %q", s.Ratio, s.Saved, s.Bucket, s.Health)
	}
	screenshot(t, browser, artifacts, "statuspage-during-backfill.png")

	// Let the copy finish: the page shows it done without being reloaded.
	hb.Release()
	s = waitPage(t, browser, "the copy done", `s.state === "done"`, 90*time.Second)
	finished := time.Now()
	if !s.Marker {
		t.Error("the page was reloaded: it must update in place")
	}
	if s.Files != "22 of 24 files" || s.Value <= 0 || s.Value >= s.Max || s.Errors != "1" || s.Conflicts != "1" {
		t.Errorf("after the copy: %q, bar %v of %v, errors %q, conflicts %q", s.Files, s.Value, s.Max, s.Errors, s.Conflicts)
	}
	if !strings.Contains(s.Text, "finished") {
		t.Error("the page after the copy does not say finished")
	}
	screenshot(t, browser, artifacts, "statuspage-after-backfill.png")

	// The same page on a phone's width.
	if err := chromedp.Do(browser, chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2))); err != nil {
		t.Fatal(err)
	}
	s = waitPage(t, browser, "the page at a phone's width", `document.documentElement.scrollWidth <= 390`, 30*time.Second)
	screenshot(t, browser, artifacts, "statuspage-phone.png")

	// Once the admin listener is gone, the page says so and keeps the last figures.
	r.close()
	s = waitPage(t, browser, "the listener gone", `!document.getElementById("conn").hidden`, 60*time.Second)
	if !strings.Contains(s.Text, "Cannot reach the admin listener") || s.Files != "22 of 24 files" || !s.Marker {
		t.Errorf("with the listener gone: files %q, marker %v, text:\n%s", s.Files, s.Marker, s.Text)
	}
	t.Logf("timings: serve and page up %s, copy part way after %s, done %s after the release; test %s",
		opened.Sub(began).Round(time.Millisecond), midway.Sub(opened).Round(time.Millisecond),
		finished.Sub(midway).Round(time.Millisecond), time.Since(began).Round(time.Millisecond))
}

// TestBackfillCommandAdminListen: `fedicache backfill --admin-listen` serves the status page,
// /status (the migration) and /metrics while it copies, and stops serving when it is done.
func TestBackfillCommandAdminListen(t *testing.T) {
	bucket, files, cfg := backfillWorld(t, 12, "")
	t.Setenv("FEDICACHE_S3_TIMEOUT", "120s") // the held upload must not time out
	held := "media_attachments/files/000/000/011/original/000000000000000b.png"
	if _, ok := files[held]; !ok {
		t.Fatalf("no file %s", held)
	}
	hb := newHeldBucket(t, bucket, func(key string) bool { return key == held })
	logs := newLogBuffer()
	exit := make(chan int, 1)
	go func() {
		exit <- run([]string{"backfill", "--config", cfg, "--s3-endpoint", hb.URL, "--log-level", "info", "--admin-listen", "127.0.0.1:0"}, io.Discard, logs)
	}()
	adminURL := "http://" + logs.waitFor(t, regexp.MustCompile(`"admin_listen":"([^"]+)"`))

	// Poll /status until the copy waits on the one held upload.
	var st admin.Status
	// The copy runs in other goroutines and reports only through /status: ask it on a ticker.
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(adminURL + "/status")
		if err != nil {
			t.Fatalf("%v; the backfill's logs:\n%s", err, logs.String())
		}
		st = admin.Status{}
		err = json.NewDecoder(resp.Body).Decode(&st)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if st.Migration != nil && st.Migration.FilesDone == 11 && hb.waiting.Load() == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the copy never reached 11 of 12 files: %+v", st)
		}
		<-tick.C
	}
	if !st.Ready || st.Cache != nil || !st.Migration.Running || st.Migration.FilesTotal != 12 || st.Migration.BytesDone >= st.Migration.BytesTotal {
		t.Errorf("/status during the copy: %+v, %+v", st, st.Migration)
	}
	resp, err := http.Get(adminURL + "/")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"11 of 12 files", "backfill only", `class="pill run">copying<`, "serves no media"} {
		if !bytes.Contains(page, []byte(want)) {
			t.Errorf("the backfill's status page lacks %q", want)
		}
	}
	if resp.Header.Get("Content-Security-Policy") == "" {
		t.Error("the backfill's status page has no Content-Security-Policy")
	}
	resp, err = http.Get(adminURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Contains(metrics, []byte(`fedicache_backfill_copied_files{source="volume"} 11`)) || !bytes.Contains(metrics, []byte(`fedicache_bucket_request_duration_seconds_count{op="HeadBucket"}`)) {
		t.Errorf("/metrics of the backfill:\n%s", metrics)
	}

	hb.Release()
	select {
	case code := <-exit:
		if code != 0 {
			t.Fatalf("backfill exit %d:\n%s", code, logs.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatal("the backfill did not end")
	}
	if _, err := http.Get(adminURL + "/status"); err == nil {
		t.Error("the admin listener still answers after the backfill ended")
	}
	if code, _, errOut := runCLI(t, "backfill", "--config", cfg, "--verify", "--admin-listen", "127.0.0.1:0"); code != 2 || !strings.Contains(errOut, "--admin-listen") {
		t.Errorf("--verify with --admin-listen: exit %d, %q; want 2", code, errOut)
	}
}
