package cluster_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fedicache/fedicache/proxy/cluster"
)

const (
	cfZone  = "023e105f4ecef8ad9ca31a8372d0c353"
	cfToken = "purge-token"
)

// cfResult is one call of OnResult.
type cfResult struct {
	urls int
	err  error
}

// cfAnswer is a scripted answer of the fake API.
type cfAnswer struct {
	status     int
	retryAfter string
	body       string
}

const cfOK = `{"success":true,"errors":[],"messages":[],"result":{"id":"` + cfZone + `"}}`

// cfFake stands in for the Cloudflare API: it checks every request's shape as Cloudflare
// documents it, passes each request's files on reqs, and answers from script, then success.
type cfFake struct {
	t    *testing.T
	reqs chan []string

	mu     sync.Mutex
	script []cfAnswer
}

func newCFFake(t *testing.T, script ...cfAnswer) (*cfFake, *httptest.Server) {
	f := &cfFake{t: t, reqs: make(chan []string, 100), script: script}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv
}

func (f *cfFake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	bad := func(format string, args ...any) {
		f.t.Errorf("cloudflare fake: "+format, args...)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = fmt.Fprintf(w, `{"success":false,"errors":[{"code":1000,"message":%q}],"messages":[],"result":null}`, fmt.Sprintf(format, args...))
	}
	if r.Method != http.MethodPost {
		bad("method %s, want POST", r.Method)
		return
	}
	if want := "/client/v4/zones/" + cfZone + "/purge_cache"; r.URL.Path != want {
		bad("path %s, want %s", r.URL.Path, want)
		return
	}
	if got := r.Header.Get("Authorization"); got != "Bearer "+cfToken {
		bad("Authorization %q, want the bearer token", got)
		return
	}
	if got := r.Header.Get("Content-Type"); got != "application/json" {
		bad("Content-Type %q, want application/json", got)
		return
	}
	var body struct {
		Files []string `json:"files"`
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil || len(body.Files) == 0 {
		bad("body is not {\"files\":[...]}: %v", err)
		return
	}
	f.reqs <- body.Files

	a := cfAnswer{status: http.StatusOK, body: cfOK}
	f.mu.Lock()
	if len(f.script) > 0 {
		a, f.script = f.script[0], f.script[1:]
	}
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	if a.retryAfter != "" {
		w.Header().Set("Retry-After", a.retryAfter)
	}
	w.WriteHeader(a.status)
	_, _ = w.Write([]byte(a.body))
}

// cfRun starts Run on a purger of srv with cfg's other fields, and returns the purger, the
// OnResult calls, and a stop that cancels Run's ctx and waits for Run to return.
func cfRun(t *testing.T, srv *httptest.Server, cfg cluster.CloudflareConfig, urls ...string) (*cluster.Cloudflare, <-chan cfResult, func()) {
	t.Helper()
	results := make(chan cfResult, 100)
	cfg.ZoneID, cfg.APIToken, cfg.BaseURL = cfZone, cfToken, srv.URL+"/client/v4"
	cfg.Client = srv.Client()
	if cfg.Interval == 0 {
		cfg.Interval = 10 * time.Millisecond
	}
	if cfg.Rate == 0 {
		cfg.Rate = 1000
	}
	cfg.OnResult = func(n int, err error) { results <- cfResult{n, err} }
	cfg.Logger = slog.New(slog.DiscardHandler)
	cf := cluster.NewCloudflare(cfg)
	for _, u := range urls {
		if !cf.Purge(u) {
			t.Fatalf("Purge(%q) = false before Run, want true", u)
		}
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		cf.Run(ctx)
	}()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Error("Run did not return after its ctx ended")
			}
		})
	}
	t.Cleanup(stop)
	return cf, results, stop
}

// cfRecv returns the next value of ch, failing the test when none comes within a few seconds.
func cfRecv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(5 * time.Second):
		t.Fatalf("no %s within 5s", what)
		var zero T
		return zero
	}
}

func cfURLs(n int) []string {
	urls := make([]string, n)
	for i := range urls {
		urls[i] = fmt.Sprintf("https://media.example/media_attachments/files/000/000/%03d/original/a.jpg", i)
	}
	return urls
}

func TestCloudflareBatches(t *testing.T) {
	f, srv := newCFFake(t)
	urls := cfURLs(45)
	_, results, _ := cfRun(t, srv, cluster.CloudflareConfig{}, urls...)

	var got []string
	for i, want := range []int{30, 15} {
		files := cfRecv(t, f.reqs, "purge request")
		if len(files) != want {
			t.Errorf("request %d has %d URLs, want %d", i+1, len(files), want)
		}
		got = append(got, files...)
		if r := cfRecv(t, results, "result"); r.urls != want || r.err != nil {
			t.Errorf("result %d = (%d, %v), want (%d, nil)", i+1, r.urls, r.err, want)
		}
	}
	if !slices.Equal(got, urls) {
		t.Errorf("purged %d URLs, want each of the %d queued exactly once, in order:\ngot  %q\nwant %q", len(got), len(urls), got, urls)
	}
	select {
	case files := <-f.reqs:
		t.Errorf("a third request with %d URLs", len(files))
	default:
	}
}

func TestCloudflareDedup(t *testing.T) {
	f, srv := newCFFake(t)
	cf := cluster.NewCloudflare(cluster.CloudflareConfig{ZoneID: cfZone, APIToken: cfToken})
	a, b := "https://media.example/a.jpg", "https://media.example/b.jpg"
	for _, tc := range []struct {
		url  string
		want bool
	}{{a, true}, {a, false}, {b, true}, {b, false}, {"", false}} {
		if got := cf.Purge(tc.url); got != tc.want {
			t.Errorf("Purge(%q) = %v, want %v", tc.url, got, tc.want)
		}
	}

	// The same through a running purger: a URL is waiting again once its batch was taken.
	cf, results, _ := cfRun(t, srv, cluster.CloudflareConfig{Interval: time.Hour, BatchSize: 2}, a)
	if cf.Purge(a) {
		t.Errorf("Purge(%q) twice = true, want false while it waits", a)
	}
	if !cf.Purge(b) {
		t.Errorf("Purge(%q) = false, want true", b)
	}
	if files := cfRecv(t, f.reqs, "purge request"); !slices.Equal(files, []string{a, b}) {
		t.Errorf("request files = %q, want %q", files, []string{a, b})
	}
	cfRecv(t, results, "result")
	if !cf.Purge(a) {
		t.Errorf("Purge(%q) after its batch was sent = false, want true", a)
	}
}

func TestCloudflareRetries(t *testing.T) {
	const (
		slowDown = `{"success":false,"errors":[{"code":971,"message":"Please wait and consider throttling your request speed"}],"messages":[],"result":null}`
		internal = `{"success":false,"errors":[{"code":10000,"message":"Internal error"}],"messages":[],"result":null}`
		badURL   = `{"success":false,"errors":[{"code":1012,"message":"Request must contain one of \"purge_everything\", \"files\", \"tags\", \"hosts\" or \"prefixes\""}],"messages":[],"result":null}`
	)
	for _, tc := range []struct {
		name     string
		attempts int
		script   []cfAnswer
		requests int
		wantErr  string // empty: success
	}{
		{
			name:     "429 with Retry-After 0, then success",
			script:   []cfAnswer{{status: 429, retryAfter: "0", body: slowDown}},
			requests: 2,
		},
		{
			name:     "500 twice, then success",
			script:   []cfAnswer{{status: 500, body: internal}, {status: 500, body: "<html>oops</html>"}},
			requests: 3,
		},
		{
			name:     "400 with success false is not retried",
			script:   []cfAnswer{{status: 400, body: badURL}},
			requests: 1,
			wantErr:  `status 400: 1012: Request must contain one of "purge_everything"`,
		},
		{
			name:     "200 with success false is not retried",
			script:   []cfAnswer{{status: 200, body: badURL}},
			requests: 1,
			wantErr:  "success false: 1012: Request must contain",
		},
		{
			name:     "5xx until attempts run out",
			attempts: 2,
			script:   []cfAnswer{{status: 503, retryAfter: "0", body: internal}, {status: 502, retryAfter: "0", body: "bad gateway"}},
			requests: 2,
			wantErr:  "status 502: bad gateway (attempt 2 of 2)",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, srv := newCFFake(t, tc.script...)
			urls := cfURLs(3)
			_, results, _ := cfRun(t, srv, cluster.CloudflareConfig{Attempts: tc.attempts}, urls...)
			r := cfRecv(t, results, "result")
			if got := len(f.reqs); got != tc.requests {
				t.Errorf("%d requests, want %d", got, tc.requests)
			}
			for range len(f.reqs) {
				if files := <-f.reqs; !slices.Equal(files, urls) {
					t.Errorf("request files = %q, want %q", files, urls)
				}
			}
			if r.urls != len(urls) {
				t.Errorf("OnResult urls = %d, want %d", r.urls, len(urls))
			}
			switch {
			case tc.wantErr == "" && r.err != nil:
				t.Errorf("OnResult err = %v, want nil", r.err)
			case tc.wantErr != "" && (r.err == nil || !strings.Contains(r.err.Error(), tc.wantErr)):
				t.Errorf("OnResult err = %v, want one containing %q", r.err, tc.wantErr)
			}
		})
	}
}

func TestCloudflareFullQueue(t *testing.T) {
	cf := cluster.NewCloudflare(cluster.CloudflareConfig{ZoneID: cfZone, APIToken: cfToken})
	for i := range 10000 {
		if !cf.Purge(fmt.Sprintf("https://media.example/%d.jpg", i)) {
			t.Fatalf("Purge of URL %d = false, want true below 10,000", i)
		}
	}
	if cf.Purge("https://media.example/one-too-many.jpg") {
		t.Error("Purge on a full queue = true, want false")
	}
}

func TestCloudflareFlushOnCancel(t *testing.T) {
	f, srv := newCFFake(t)
	urls := cfURLs(3)
	// An Interval of an hour: nothing is sent before ctx ends.
	cf, results, stop := cfRun(t, srv, cluster.CloudflareConfig{Interval: time.Hour}, urls...)
	stop()
	select {
	case files := <-f.reqs:
		if !slices.Equal(files, urls) {
			t.Errorf("flushed files = %q, want %q", files, urls)
		}
	default:
		t.Fatal("Run returned without sending the queued URLs")
	}
	if r := cfRecv(t, results, "result"); r.urls != len(urls) || r.err != nil {
		t.Errorf("result = (%d, %v), want (%d, nil)", r.urls, r.err, len(urls))
	}
	if cf.Purge("https://media.example/late.jpg") {
		t.Error("Purge after Run returned = true, want false")
	}
}

func TestCloudflareOff(t *testing.T) {
	var nilCF *cluster.Cloudflare
	if nilCF.Purge("https://media.example/a.jpg") {
		t.Error("Purge on a nil *Cloudflare = true, want false")
	}
	nilCF.Run(t.Context()) // returns at once

	bad := cluster.NewCloudflare(cluster.CloudflareConfig{APIToken: cfToken, Logger: slog.New(slog.DiscardHandler)})
	if bad.Purge("https://media.example/a.jpg") {
		t.Error("Purge without a ZoneID = true, want false")
	}
	bad.Run(t.Context()) // logs the error and returns at once
}

func TestCloudflareConfigValidate(t *testing.T) {
	ok := cluster.CloudflareConfig{ZoneID: cfZone, APIToken: cfToken}
	for _, tc := range []struct {
		name string
		edit func(*cluster.CloudflareConfig)
		want string // empty: valid
	}{
		{"zero defaults", func(*cluster.CloudflareConfig) {}, ""},
		{"no zone", func(c *cluster.CloudflareConfig) { c.ZoneID = " " }, "ZoneID"},
		{"no token", func(c *cluster.CloudflareConfig) { c.APIToken = "" }, "APIToken"},
		{"bad base", func(c *cluster.CloudflareConfig) { c.BaseURL = "api.cloudflare.com" }, "BaseURL"},
		{"negative batch", func(c *cluster.CloudflareConfig) { c.BatchSize = -1 }, "BatchSize"},
		{"negative interval", func(c *cluster.CloudflareConfig) { c.Interval = -time.Second }, "Interval"},
		{"negative rate", func(c *cluster.CloudflareConfig) { c.Rate = -1 }, "Rate"},
		{"negative attempts", func(c *cluster.CloudflareConfig) { c.Attempts = -1 }, "Attempts"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := ok
			tc.edit(&c)
			err := c.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("Validate() = %v, want nil", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("Validate() = %v, want an error naming %s", err, tc.want)
			}
		})
	}
}
