package admin_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/fedicache/fedicache/cache"
	"github.com/fedicache/fedicache/origin/origintest"
	"github.com/fedicache/fedicache/origin/s3/s3test"
	"github.com/fedicache/fedicache/proxy/admin"
	"github.com/fedicache/fedicache/proxy/proxytest"
	"github.com/prometheus/client_golang/prometheus"
)

// hostileKey is a key whose error the page must show as text, never as markup.
const hostileKey = `media_attachments/files/000/000/666/original/"><script>alert(1)</script>.png`

// migrationAt serves a Migration the test can change while the admin runs.
type migrationAt struct {
	p atomic.Pointer[admin.Migration]
}

func (m *migrationAt) set(v admin.Migration) { m.p.Store(&v) }
func (m *migrationAt) get() admin.Migration  { return *m.p.Load() }

// running is a copy a quarter through, with errors, conflicts and a hostile key.
func running() admin.Migration {
	return admin.Migration{
		Running: true, Started: time.Now().Add(-90 * time.Minute), Elapsed: 90 * time.Minute,
		FilesTotal: 1200, BytesTotal: 10 << 30, FilesScanned: 320,
		FilesDone: 300, BytesDone: 5 << 29,
		FilesCopied: 280, BytesCopied: 3 << 29,
		BytesPerSecond: 3.5 * (1 << 20), ETA: 3*time.Hour + 25*time.Minute,
		Conflicts: 2, Errors: 7,
		RecentErrors: []string{
			"a/1.png: s3: put: SlowDown", "a/2.png: s3: put: SlowDown", "a/3.png: s3: put: SlowDown",
			"a/4.png: s3: put: SlowDown", "a/5.png: s3: put: SlowDown",
			hostileKey + ": s3: put: AccessDenied",
		},
		ConflictKeys: []string{"accounts/avatars/000/000/001/original/a.png", "accounts/headers/000/000/001/original/b.png"},
	}
}

// getPage fetches the status page at path and returns the response with its body read.
func getPage(t *testing.T, srv *httptest.Server, path string) (*http.Response, string) {
	t.Helper()
	resp, err := http.Get(srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(body)
}

// checkContains reports each of want that body lacks.
func checkContains(t *testing.T, body string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(body, w) {
			t.Errorf("the page lacks %q", w)
		}
	}
}

// bytesAsShown writes n bytes as the page does.
func bytesAsShown(n int64) string { return humanize.IBytes(uint64(n)) }

// containsAll reports whether body holds every one of want.
func containsAll(body string, want []string) bool {
	for _, w := range want {
		if !strings.Contains(body, w) {
			return false
		}
	}
	return true
}

// checkSelfContained checks the page's headers, and that it loads nothing from anywhere: its
// one style sheet and one script are inline and allowed by their hashes alone.
func checkSelfContained(t *testing.T, resp *http.Response, body string) {
	t.Helper()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d:\n%s", resp.StatusCode, body)
	}
	for k, want := range map[string]string{
		"Content-Type":           "text/html; charset=utf-8",
		"Cache-Control":          "no-store",
		"X-Content-Type-Options": "nosniff",
	} {
		if got := resp.Header.Get(k); got != want {
			t.Errorf("%s: %q, want %q", k, got, want)
		}
	}
	csp := resp.Header.Get("Content-Security-Policy")
	for _, d := range []string{"default-src 'none'", "connect-src 'self'", "base-uri 'none'", "frame-ancestors 'none'"} {
		if !strings.Contains(csp, d) {
			t.Errorf("Content-Security-Policy %q lacks %q", csp, d)
		}
	}
	if strings.Contains(csp, "unsafe-") || strings.Contains(csp, "*") || strings.Contains(csp, "http") {
		t.Errorf("Content-Security-Policy %q allows more than the page's own parts", csp)
	}
	for _, el := range []string{"style", "script"} {
		m := regexp.MustCompile(`(?s)<`+el+`>(.*?)</`+el+`>`).FindAllStringSubmatch(body, -1)
		if len(m) != 1 {
			t.Errorf("%d <%s> elements, want 1", len(m), el)
			continue
		}
		sum := sha256.Sum256([]byte(m[0][1]))
		src := el + "-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
		if !strings.Contains(csp, src) {
			t.Errorf("Content-Security-Policy %q does not allow the inline <%s> (%s)", csp, el, src)
		}
	}
	for _, m := range regexp.MustCompile(`(?i)\b(src|href|action|srcset|xlink:href)\s*=\s*"([^"]*)"`).FindAllStringSubmatch(body, -1) {
		if v := m[2]; strings.Contains(v, "//") || (strings.Contains(v, ":") && !strings.HasPrefix(v, "data:")) {
			t.Errorf("%s=%q points outside the admin listener", m[1], v)
		}
	}
	for _, bad := range []string{"<link rel=\"stylesheet\"", "@import", "url(", "<iframe", "<img", "@font-face"} {
		if strings.Contains(body, bad) {
			t.Errorf("the page holds %q: no external or extra assets", bad)
		}
	}
	if strings.Contains(body, "<script>alert") || strings.Contains(body, `"><script>`) {
		t.Error("a key was written into the page as markup")
	}
}

// TestStatusPageShowsMigrationCacheAndBucket renders the page of a front with a memory and a
// disk tier that answered real requests, during a copy a quarter through.
func TestStatusPageShowsMigrationCacheAndBucket(t *testing.T) {
	var mig migrationAt
	mig.set(running())
	e := proxytest.NewEnv(t, proxytest.WithTiers, func(c *proxytest.Config) {
		c.Admin.Migration = mig.get
		c.Admin.Version = "v1.2.3"
		c.Admin.Info = map[string]any{"host": "media-7f9c", "bucket": "mastodon-media", "endpoint": "https://s3.example", "strip_prefix": []string{"/media"}}
	})
	small := bytes.Repeat([]byte("s"), 100_000) // kept in memory
	big := bytes.Repeat([]byte("B"), 2<<20)     // too big for memory: kept on disk
	e.Bucket.Put(t, "media_attachments/files/000/000/001/original/small.png", small)
	e.Bucket.Put(t, "media_attachments/files/000/000/002/original/big.mp4", big)
	for _, k := range []string{"media_attachments/files/000/000/001/original/small.png", "media_attachments/files/000/000/002/original/big.mp4"} {
		for i := range 2 {
			resp, body := e.Do(t, "GET", "/"+k)
			if resp.StatusCode != 200 || len(body) == 0 {
				t.Fatalf("GET %s (%d): %d", k, i, resp.StatusCode)
			}
		}
	}
	e.Cache.Settle()

	// The memory tier (ristretto) applies its writes in the background, and may drop one (the
	// disk tier then answers): the page shows the cache's figures of just before or after it.
	before := e.Cache.Stats()
	resp, body := getPage(t, e.Admin, "/")
	after := e.Cache.Stats()
	checkSelfContained(t, resp, body)
	tierFigures := func(s cache.Stats) []string {
		return []string{
			fmt.Sprintf("memory hits <b>%d</b>", s.MemoryHits), fmt.Sprintf("disk hits <b>%d</b>", s.DiskHits),
			fmt.Sprintf("<b>%s</b> of 64 MiB", bytesAsShown(s.Memory.Bytes)), fmt.Sprintf("<b>%s</b> of 1.0 GiB", bytesAsShown(s.Disk.Bytes)),
			fmt.Sprintf("%d entries", s.Disk.Entries),
		}
	}
	if !containsAll(body, tierFigures(before)) && !containsAll(body, tierFigures(after)) {
		t.Errorf("the page shows neither %q nor %q", tierFigures(before), tierFigures(after))
	}
	if hits := after.MemoryHits + after.DiskHits; hits != 2 || after.Misses < 2 || after.Disk.Bytes < 2<<20 || after.Memory.Bytes >= 1<<20 {
		t.Fatalf("the cache's figures: %+v, want 2 hits", after)
	}
	answers := 2 + after.Misses
	checkContains(t, body, fmt.Sprintf("hit ratio over %d answers", answers), fmt.Sprintf("misses <b>%d</b>", after.Misses),
		fmt.Sprintf(`id="cache-ratio">%s<`, map[uint64]string{4: "50%", 5: "40%", 6: "33.3%"}[answers]))
	checkContains(t, body,
		// the header
		"media-7f9c", "v1.2.3", "serving media", `class="pill ok">ready<`,
		// the migration: counts, percentages, humanized bytes, the bar, rate, ETA, problems
		`class="pill run">copying<`,
		"300 of 1,200 files", "(25%)", "2.5 GiB of 10 GiB", `<progress id="migration-progress" value="2684354560" max="10737418240"`,
		">25%<", "3.5 MiB/s", "3h 25m", "1h 30m", `280 files <span class="unit">1.5 GiB</span>`,
		`id="migration-conflicts" class="warn">2<`, `id="migration-errors" class="bad">7<`,
		"accounts/headers/000/000/001/original/b.png", "a/5.png: s3: put: SlowDown", "and 2 more",
		// the hostile key, as text
		"&lt;script&gt;alert(1)&lt;/script&gt;.png: s3: put: AccessDenied",
		// the cache: hit ratio by tier, bytes saved, the tiers' use
		`id="cache-saved">2.1 MiB<`,
		`id="tier-Memory"`, `id="tier-Disk"`,
		// the bucket, and the configuration without a link
		"<code>mastodon-media</code>", "<code>https://s3.example</code>", "<code>/media</code>",
		// the refresh
		`data-refresh="5"`, `<meta http-equiv="refresh" content="5">`,
	)
	if strings.Contains(body, "a/1.png") {
		t.Error("the page lists more than the 5 most recent errors")
	}
	if title := regexp.MustCompile(`<title>(.*?)</title>`).FindStringSubmatch(body); title == nil || title[1] != "25% copied · fedicache · media-7f9c" {
		t.Errorf("title %q", title)
	}

	// The figures move: the next answer shows them.
	m := running()
	m.FilesDone, m.BytesDone = 1199, 10<<30-1
	mig.set(m)
	_, body = getPage(t, e.Admin, "/?refresh=2")
	checkContains(t, body, "1,199 of 1,200 files", "(99.9%)", `data-refresh="2"`, `content="2"`)
	if strings.Contains(body, ">100%<") {
		t.Error("a copy one file short shows 100%")
	}

	// /status carries the same migration as JSON.
	resp, err := http.Get(e.Admin.URL + "/status")
	if err != nil {
		t.Fatal(err)
	}
	var st admin.Status
	err = json.NewDecoder(resp.Body).Decode(&st)
	resp.Body.Close()
	if err != nil || st.Migration == nil || st.Migration.FilesDone != 1199 || st.Migration.RecentErrors[5] != hostileKey+": s3: put: AccessDenied" {
		t.Errorf("/status migration: %+v, %v", st.Migration, err)
	}

	for _, bad := range []string{"/?refresh=0", "/?refresh=x", "/?refresh=99999"} {
		if resp, _ := getPage(t, e.Admin, bad); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("GET %s: %d, want 400", bad, resp.StatusCode)
		}
	}
	if resp, _ := getPage(t, e.Admin, "/elsewhere"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /elsewhere: %d, want 404", resp.StatusCode)
	}
}

// TestStatusPageMigrationStates renders the migration before it is counted, done, stopped,
// waiting for the stores before it, and absent, on the admin of a backfill that serves no media.
func TestStatusPageMigrationStates(t *testing.T) {
	var mig migrationAt
	withMigration := httptest.NewServer(admin.NewBackfill(admin.Config{
		Migration: func() admin.Migration { return mig.get() },
	}))
	t.Cleanup(withMigration.Close)
	noMigration := httptest.NewServer(admin.NewBackfill(admin.Config{}))
	t.Cleanup(noMigration.Close)

	counting := admin.Migration{Running: true, Started: time.Now(), FilesTotal: -1, BytesTotal: -1,
		FilesScanned: 40, FilesDone: 35, BytesDone: 3 << 20, ETA: -1}
	done := admin.Migration{Done: true, Started: time.Now().Add(-time.Hour), Elapsed: 61 * time.Minute,
		FilesTotal: 5000, BytesTotal: 7 << 30, FilesDone: 4990, BytesDone: 7<<30 - 5<<20,
		FilesCopied: 4000, BytesCopied: 6 << 30, Excluded: 4, Skipped: 1, Errors: 5, Conflicts: 0}
	stopped := admin.Migration{Started: time.Now(), FilesTotal: 10, BytesTotal: 0, FilesDone: 5, ETA: -1}
	empty := admin.Migration{Done: true, Started: time.Now(), FilesTotal: 0, BytesTotal: 0}
	waiting := admin.Migration{Waiting: true, Started: time.Now(), FilesTotal: -1, BytesTotal: -1, ETA: -1}
	tests := []struct {
		name   string
		m      *admin.Migration
		want   []string
		absent []string
	}{
		{"counting", &counting,
			[]string{`class="pill idle">counting…<`, `id="migration-percent">counting…<`,
				`<progress id="migration-progress" aria-label="counting the volume">`,
				"35 files in the bucket so far; counting the volume…", "3.0 MiB so far", "estimating…"},
			[]string{"of -1", "-1 files"}},
		{"done", &done,
			[]string{`class="pill warn">done<`, "4,990 of 5,000 files", "(99.8%)", "of 7.0 GiB", "finished", "<dt>took</dt>", "1h 01m",
				"4 excluded by the filters", "1 skipped", `id="migration-errors" class="bad">5<`,
				`id="migration-conflicts" class="">0<`,
				`class="callout warn">Done, but not safe to retire yet: the bucket lacks files of the volume (5 failed, 1 skipped).`},
			[]string{"copying", "Done — safe to retire"}},
		{"stopped", &stopped,
			[]string{`class="pill warn">stopped<`, "5 of 10 files", `value="5" max="10"`, ">50%<"},
			nil},
		{"waiting", &waiting,
			[]string{`class="pill idle">waiting<`, `id="migration-percent">–<`, `value="0" max="1"`,
				"waiting for the stores before it to be copied", "it begins once the stores before it are copied"},
			[]string{"counting", "stopped", "estimating"}},
		{"empty volume", &empty,
			[]string{`class="pill ok">done<`, "0 of 0 files", ">100%<", "Done — safe to retire after <code>fedicache backfill --verify</code>."},
			[]string{"not safe to retire"}},
		{"no backfill", nil,
			[]string{"No backfill in this process", "backfill only", "serves no media: it has no cache",
				`class="pill idle">not checked<`},
			[]string{"migration-progress"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := noMigration
			if tt.m != nil {
				mig.set(*tt.m)
				srv = withMigration
			}
			resp, body := getPage(t, srv, "/")
			checkSelfContained(t, resp, body)
			checkContains(t, body, tt.want...)
			for _, a := range tt.absent {
				if strings.Contains(body, a) {
					t.Errorf("the page holds %q", a)
				}
			}
		})
	}
}

// TestStatusPageBucketHealth: a bucket that never answered, one that answers, and one that
// fails after it answered, as the page and readiness show them.
func TestStatusPageBucketHealth(t *testing.T) {
	e := proxytest.NewEnv(t, func(c *proxytest.Config) { c.Admin.ReadyTTL = time.Nanosecond }) // every request checks
	e.Bucket.SetMode(origintest.Fail500)
	_, body := getPage(t, e.Admin, "/")
	checkContains(t, body, `class="pill bad">not ready<`, `id="bucket-state" class="pill bad">not answering<`,
		`id="bucket-error"`, "s3: ping bucket &#34;media&#34;", "StatusCode: 500", "No cache in front of the bucket.")

	e.Bucket.SetMode(origintest.Healthy)
	_, body = getPage(t, e.Admin, "/")
	checkContains(t, body, `class="pill ok">ready<`, `id="bucket-state" class="pill ok">ok<`, "s ago")
	if strings.Contains(body, `id="bucket-error"`) {
		t.Error("a healthy bucket shows an error")
	}

	e.Bucket.SetMode(origintest.Fail503)
	resp, body := getPage(t, e.Admin, "/")
	checkSelfContained(t, resp, body)
	checkContains(t, body, `class="pill warn">ready, bucket failing<`, `id="bucket-state" class="pill bad">failing<`, "StatusCode: 503")
}

// TestBackfillAdmin: the admin of a process that only copies (no front) answers its probes,
// its metrics, /status with the migration and the bucket's health, and no writes.
func TestBackfillAdmin(t *testing.T) {
	fake := origintest.NewFakeBucket(t)
	bucket := s3test.New(t, fake)
	reg := prometheus.NewRegistry()
	copied := prometheus.NewGauge(prometheus.GaugeOpts{Name: "fedicache_backfill_copied_files", Help: "Files copied."})
	copied.Set(280)
	reg.MustRegister(copied)
	srv := httptest.NewServer(admin.NewBackfill(admin.Config{
		Metrics:   reg,
		Bucket:    bucket,
		Token:     adminToken,
		Migration: running,
	}))
	t.Cleanup(srv.Close)

	for path, want := range map[string]string{"/healthz": "ok", "/readyz": "ready", "/metrics": "fedicache_backfill_copied_files 280"} {
		resp, body := getPage(t, srv, path)
		if resp.StatusCode != http.StatusOK || !strings.Contains(body, want) {
			t.Errorf("GET %s: %d %q, want %q", path, resp.StatusCode, body, want)
		}
	}
	// That /metrics counts the bucket's health checks is the command's wiring (the bucket's
	// metrics are cmd/fedicache's): TestBackfillAdminCountsBucketChecks there.
	resp, body := getPage(t, srv, "/status")
	var st admin.Status
	if err := json.Unmarshal([]byte(body), &st); err != nil || resp.StatusCode != 200 {
		t.Fatalf("/status: %d %v", resp.StatusCode, err)
	}
	if st.Migration == nil || st.Migration.FilesDone != 300 || st.Cache != nil || !st.Bucket.OK || st.Bucket.CheckedAt.IsZero() || !st.Ready || st.Draining {
		t.Errorf("/status: %+v", st)
	}
	req, _ := http.NewRequest("POST", srv.URL+"/purge?key=a", nil)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusNotFound {
		t.Errorf("POST /purge on a backfill: %v %v, want 404", resp, err)
	} else {
		resp.Body.Close()
	}
	resp, body = getPage(t, srv, "/")
	checkSelfContained(t, resp, body)
	checkContains(t, body, "backfill only", "300 of 1,200 files", `id="bucket-state" class="pill ok">ok<`, "serves no media")

	// The first admin reuses the bucket's answer for ReadyTTL: a fresh one asks a failing bucket.
	fake.SetMode(origintest.Fail500)
	fresh := httptest.NewServer(admin.NewBackfill(admin.Config{Bucket: bucket}))
	t.Cleanup(fresh.Close)
	if resp, body := getPage(t, fresh, "/readyz"); resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("readyz of a backfill whose bucket never answered: %d %q", resp.StatusCode, body)
	}
}
