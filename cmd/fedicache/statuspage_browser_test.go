package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
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

// chartsState is what the test reads of the history's charts in the browser: their geometry
// as laid out, each series' path data, the page's width and the policy's violations.
type chartsState struct {
	Charts map[string]struct {
		Role       string  `json:"role"`
		LabelledBy string  `json:"labelledBy"`
		Title      string  `json:"title"`
		VBTop      float64 `json:"vbTop"`
		VBWidth    float64 `json:"vbWidth"`
		PlotWidth  float64 `json:"plotWidth"`
		PlotHeight float64 `json:"plotHeight"`
		Left       float64 `json:"left"`
		Right      float64 `json:"right"`
		Times      []struct {
			Text  string  `json:"text"`
			Left  float64 `json:"left"`
			Right float64 `json:"right"`
			Size  float64 `json:"size"`
		} `json:"times"`
		Series map[string]struct {
			D   string `json:"d"`
			Box struct {
				Top, Bottom, Left, Right float64
			} `json:"box"`
		} `json:"series"`
	} `json:"charts"`
	ScrollWidth float64  `json:"scrollWidth"`
	InnerWidth  float64  `json:"innerWidth"`
	Violations  []string `json:"violations"`
	Updated     string   `json:"updated"`
	Text        string   `json:"text"`
}

// readCharts is a script returning a chartsState.
const readCharts = `(() => {
	const rel = (r, o) => ({top: r.top - o.top, bottom: r.bottom - o.top, left: r.left - o.left, right: r.right - o.left});
	const charts = {};
	for (const svg of document.querySelectorAll("svg.chart")) {
		// The plot's box, in pixels of the page: its place and size in the chart's own.
		const plot = svg.querySelector("svg.plot"), sr = svg.getBoundingClientRect(), vb = plot.viewBox.baseVal;
		const pr = {top: sr.top + plot.y.baseVal.value, left: sr.left + plot.x.baseVal.value};
		const series = {};
		for (const p of plot.querySelectorAll("path[data-series]")) {
			series[p.dataset.series] = {d: p.getAttribute("d"), box: rel(p.getBoundingClientRect(), pr)};
		}
		charts[svg.id] = {
			role: svg.getAttribute("role") || "", labelledBy: svg.getAttribute("aria-labelledby") || "",
			title: (svg.querySelector("title") || {}).textContent || "",
			vbTop: -vb.y, vbWidth: vb.width, plotWidth: plot.width.baseVal.value, plotHeight: plot.height.baseVal.value,
			left: sr.left, right: sr.right,
			times: [...svg.querySelectorAll("text.time")].map(t => {
				const r = t.getBoundingClientRect();
				return {text: t.textContent, left: r.left, right: r.right, size: parseFloat(getComputedStyle(t).fontSize)};
			}),
			series,
		};
	}
	return {charts, scrollWidth: document.documentElement.scrollWidth, innerWidth: window.innerWidth,
		violations: window.fedicacheViolations || [], updated: (document.getElementById("updated") || {}).textContent || "",
		text: (document.getElementById("history") || {}).innerText || ""};
})()`

// chartBar is one bar of a series as its path data draws it, in the values' units.
type chartBar struct{ x0, x1, base, height float64 }

var chartBarRE = regexp.MustCompile(`M([0-9.]+) (-?[0-9.]+)v-([0-9.]+)H([0-9.]+)v[0-9.]+z`)

// chartBars reads the bars of path data d.
func chartBars(t *testing.T, d string) []chartBar {
	t.Helper()
	var out []chartBar
	for _, m := range chartBarRE.FindAllStringSubmatch(d, -1) {
		var f [4]float64
		for i, s := range []string{m[1], m[2], m[3], m[4]} {
			v, err := strconv.ParseFloat(s, 64)
			if err != nil {
				t.Fatalf("path data %q: %v", d, err)
			}
			f[i] = v
		}
		out = append(out, chartBar{x0: f[0], x1: f[3], base: 0 - f[1], height: f[2]})
	}
	return out
}

// TestStatusPageInBrowserHistory opens the status page of a serve that answered known traffic
// (memory and disk hits, misses from the bucket, FALLBACK answers from its old volume) and
// copies its volume, once the sampler has taken the points of that traffic: in headless
// chromium, the charts are drawn, each series as high as the answers and bytes it stands for
// and where the page's scale puts them, at a laptop's width and at a phone's, with no
// violation of the page's Content-Security-Policy.
func TestStatusPageInBrowserHistory(t *testing.T) {
	browser := newBrowser(t)
	artifacts := artifactsDir(t)
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	useHistoryStep(t, time.Second) // 288 points: a window of nearly 5 minutes

	// The volume: the old file the bucket lacks, whose upload the copy holds (so it is answered
	// FALLBACK), and three files the copy puts in the bucket.
	w := newHistoryWorld(t)
	extra := map[string][]byte{}
	for i := range 3 {
		extra[fmt.Sprintf("media_attachments/files/000/001/%03d/original/%016x.png", i, i+100)] = bytes.Repeat([]byte{byte('a' + i)}, 10_000)
	}
	writeTree(t, w.vol, extra)
	hb := newHeldBucket(t, w.bucket, func(key string) bool { return key == w.old })
	r := startReplica(t, w.config(t, hb.URL, "backfill:\n  enabled: true\n  concurrency: 2\n"))

	// The traffic goes out once a first point is taken: the first is shorter than a step, the
	// one after it a whole step, its bars wide enough to see on a phone.
	waitHistory(t, r.admin, "a first point", func(h *admin.HistoryStatus) bool { return h.Points() > 0 })
	sent := w.traffic(t, r)
	h := waitHistory(t, r.admin, fmt.Sprintf("the traffic sent (%+v) and the copy at 3 of 4 files", sent), func(h *admin.HistoryStatus) bool {
		n := h.Points()
		return historyTotals(h) == sent && len(h.Backfill) == 1 && n > 0 &&
			h.Backfill[0].FilesDone[n-1] == 3 && h.Backfill[0].FilesTotal[n-1] == 4
	})
	store := h.Backfill[0]
	n := h.Points()
	bytesShare := 100 * float64(store.BytesDone[n-1]) / float64(store.BytesTotal[n-1])
	t.Logf("sent %+v; the copy: %d of %d files, %d of %d bytes", sent, store.FilesDone[n-1], store.FilesTotal[n-1], store.BytesDone[n-1], store.BytesTotal[n-1])

	pageURL := "http://" + r.admin + "/?refresh=1"
	if err := chromedp.Do(browser, chromedp.Navigate(pageURL)); err != nil {
		t.Fatalf("opening %s: %v", pageURL, err)
	}
	// Violations of the policy are reported on the document; the charts are drawn again at
	// every refresh, which the listener hears.
	if _, err := chromedp.Run(browser, chromedp.Evaluate[chromedp.Void](`window.fedicacheViolations = [];
		document.addEventListener("securitypolicyviolation", e => window.fedicacheViolations.push(e.violatedDirective + " " + e.blockedURI))`)); err != nil {
		t.Fatal(err)
	}
	first, err := chromedp.Run(browser, chromedp.Evaluate[chartsState](readCharts))
	if err != nil {
		t.Fatal(err)
	}
	// Wait for a refresh or two, so that the charts checked are the ones swapped in place.
	pctx, cancel := context.WithTimeout(browser, 30*time.Second)
	_, err = chromedp.Run(pctx, chromedp.Poll[bool](`(document.getElementById("updated") || {}).textContent !== `+strconv.Quote(first.Updated),
		chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(20*time.Second)))
	cancel()
	if err != nil {
		t.Fatalf("the page did not refresh: %v", err)
	}
	s := checkHistoryCharts(t, browser, sent, bytesShare, 1280)
	for _, want := range []string{"Last 288 seconds", "Answers by source", "Bytes served", "Backfill", "FALLBACK",
		fmt.Sprintf("memory %d", sent.Memory), fmt.Sprintf("bucket %d", sent.Bucket), "75%"} {
		if !strings.Contains(s.Text, want) {
			t.Errorf("the history card lacks %q:\n%s", want, s.Text)
		}
	}
	screenshot(t, browser, artifacts, "statuspage-history.png")

	// A phone's width: the charts shrink to it, their labels keep their size and their room,
	// and nothing runs off to the side.
	if err := chromedp.Do(browser, chromedp.EmulateViewport(375, 812, chromedp.EmulateScale(2))); err != nil {
		t.Fatal(err)
	}
	waitPage(t, browser, "the page at a phone's width", `document.documentElement.scrollWidth <= 375`, 30*time.Second)
	s = checkHistoryCharts(t, browser, sent, bytesShare, 375)
	if s.ScrollWidth > 375 {
		t.Errorf("the page is %v px wide on a 375 px screen", s.ScrollWidth)
	}
	screenshot(t, browser, artifacts, "statuspage-history-phone.png")
	cardScreenshot(t, browser, artifacts, "statuspage-history-phone-card.png")
}

// cardScreenshot saves a PNG of the history's card alone as name in dir. The page swaps its
// figures in place every second: a card swapped away while it is taken is taken again.
func cardScreenshot(t *testing.T, ctx context.Context, dir, name string) {
	t.Helper()
	var png []byte
	var err error
	for range 3 {
		if png, err = chromedp.Run(ctx, chromedp.Screenshot(chromedp.ID("history"))); err == nil {
			break
		}
	}
	if err != nil || !bytes.HasPrefix(png, []byte("\x89PNG")) {
		t.Fatalf("screenshot of the history's card: %v", err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s (%d bytes)", p, len(png))
}

// checkHistoryCharts reads the charts in the browser, at a viewport width wide, and checks
// them against the traffic sent and the copy's share of bytes (percent).
func checkHistoryCharts(t *testing.T, browser context.Context, sent tally, bytesShare float64, width float64) chartsState {
	t.Helper()
	s, err := chromedp.Run(browser, chromedp.Evaluate[chartsState](readCharts))
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Violations) > 0 {
		t.Errorf("Content-Security-Policy violations: %q", s.Violations)
	}
	for _, id := range []string{"history-answers", "history-bytes", "history-backfill"} {
		c, ok := s.Charts[id]
		if !ok {
			t.Fatalf("at %v px, no chart %s; the card says:\n%s", width, id, s.Text)
		}
		if c.Role != "img" || !strings.Contains(c.LabelledBy, id+"-title") || c.Title == "" {
			t.Errorf("%s: role %q, aria-labelledby %q, title %q", id, c.Role, c.LabelledBy, c.Title)
		}
		// The chart fits the screen, and its time labels are legible and apart.
		if c.Left < 0 || c.Right > width || c.PlotWidth < 0.75*(width-64) {
			t.Errorf("%s at %v px: from %v to %v px, its plot %v px wide", id, width, c.Left, c.Right, c.PlotWidth)
		}
		if len(c.Times) < 3 {
			t.Errorf("%s at %v px: %d time labels", id, width, len(c.Times))
		}
		for i, l := range c.Times {
			if l.Size < 11 || l.Left < c.Left || l.Right > c.Right {
				t.Errorf("%s at %v px: time label %q at %v-%v px, %v px high, the chart from %v to %v", id, width, l.Text, l.Left, l.Right, l.Size, c.Left, c.Right)
			}
			if i > 0 && l.Left < c.Times[i-1].Right+4 {
				t.Errorf("%s at %v px: time labels %q and %q touch", id, width, c.Times[i-1].Text, l.Text)
			}
		}
	}

	// Each series' bars add up to the answers and bytes sent.
	answers, byteChart := s.Charts["history-answers"], s.Charts["history-bytes"]
	for key, want := range map[string]uint64{"memory": sent.Memory, "disk": sent.Disk, "bucket": sent.Bucket, "old-store": sent.OldStore} {
		if got := barsTotal(t, answers.Series[key].D); got != float64(want) {
			t.Errorf("at %v px: the %s series adds up to %v answers, want %d (path %q)", width, key, got, want, answers.Series[key].D)
		}
	}
	for key, want := range map[string]uint64{"served": sent.Served, "bucket-bytes": sent.BucketBytes} {
		if got := barsTotal(t, byteChart.Series[key].D); got != float64(want) {
			t.Errorf("at %v px: the %s series adds up to %v bytes, want %d", width, key, got, want)
		}
	}
	// The bucket's bars are drawn where the scale puts them: in pixels, from the lowest base
	// to the highest top of its bars, and from the left of the first to the right of the last.
	bars := chartBars(t, answers.Series["bucket"].D)
	if len(bars) == 0 {
		t.Fatalf("no bar of the bucket's misses")
	}
	lo, hi, left, right := math.Inf(1), 0.0, math.Inf(1), 0.0
	for _, b := range bars {
		lo, hi = min(lo, b.base), max(hi, b.base+b.height)
		left, right = min(left, b.x0), max(right, b.x1)
	}
	px := func(v float64) float64 { return answers.PlotHeight * (1 - v/answers.VBTop) }
	pxX := func(x float64) float64 { return answers.PlotWidth * x / answers.VBWidth }
	box := answers.Series["bucket"].Box
	for _, c := range []struct {
		what      string
		got, want float64
	}{{"top", box.Top, px(hi)}, {"bottom", box.Bottom, px(lo)}, {"left", box.Left, pxX(left)}, {"right", box.Right, pxX(right)}} {
		if math.Abs(c.got-c.want) > 1.5 {
			t.Errorf("at %v px: the bucket's bars' %s at %.1f px in the plot, want %.1f (bars %+v, scale %v, plot %vx%v)",
				width, c.what, c.got, c.want, bars, answers.VBTop, answers.PlotWidth, answers.PlotHeight)
		}
	}
	if box.Bottom-box.Top < 1 {
		t.Errorf("at %v px: the bucket's bars are %.1f px high", width, box.Bottom-box.Top)
	}

	// The backfill's lines end at the copy's share: 3 of 4 files, and its bytes.
	backfill := s.Charts["history-backfill"]
	for key, want := range map[string]float64{"store-volume-files": 75, "store-volume-bytes": bytesShare} {
		if got := lastLevel(backfill.Series[key].D); math.Abs(got-want) > 0.01 {
			t.Errorf("at %v px: the line %s ends at %v%%, want %v%% (%q)", width, key, got, want, backfill.Series[key].D)
		}
	}
	return s
}

// barsTotal is the sum of the heights of the bars of path data d.
func barsTotal(t *testing.T, d string) float64 {
	t.Helper()
	total := 0.0
	for _, b := range chartBars(t, d) {
		total += b.height
	}
	return total
}

var levelRE = regexp.MustCompile(`(?:M[0-9.]+ |V)(-?[0-9.]+)`)

// lastLevel is the last value a line's path data goes to; NaN when it has none.
func lastLevel(d string) float64 {
	m := levelRE.FindAllStringSubmatch(d, -1)
	if len(m) == 0 {
		return math.NaN()
	}
	v, err := strconv.ParseFloat(m[len(m)-1][1], 64)
	if err != nil {
		return math.NaN()
	}
	return -v
}
