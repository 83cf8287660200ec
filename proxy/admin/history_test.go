package admin_test

import (
	"encoding/json"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/fedicache/fedicache/proxy/admin"
)

// day0 is midnight UTC of the day the tests' histories are taken.
var day0 = time.Date(2025, 3, 14, 0, 0, 0, 0, time.UTC)

// newTestHistory returns a history of points of step, at most n of them.
func newTestHistory(t *testing.T, step time.Duration, n int) *admin.History {
	t.Helper()
	h, err := admin.NewHistory(admin.HistoryConfig{Step: step, Points: n})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// statusOf serves h on an admin listener and returns the history /status gives.
func statusOf(t *testing.T, cfg admin.Config) admin.HistoryStatus {
	t.Helper()
	srv := httptest.NewServer(admin.New(cfg))
	t.Cleanup(srv.Close)
	_, body := getPage(t, srv, "/status")
	var st admin.Status
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatalf("/status: %v\n%s", err, body)
	}
	if st.History == nil {
		t.Fatalf("/status has no history:\n%s", body)
	}
	return *st.History
}

// TestHistoryKeepsTheLastPointsAsIncreases: the first sample is the base, each later one adds
// the increase since the one before, and a full ring drops its oldest point.
func TestHistoryKeepsTheLastPointsAsIncreases(t *testing.T) {
	h := newTestHistory(t, 5*time.Minute, 3)
	var c admin.HistoryCounters
	add := func(minute int, f func(*admin.HistoryCounters)) {
		f(&c)
		h.Add(day0.Add(time.Duration(minute)*time.Minute), admin.HistorySample{Counters: c})
	}
	nothing := func(*admin.HistoryCounters) {}
	c = admin.HistoryCounters{Memory: 1000, BytesServed: 1 << 30} // counted before the sampler's start
	add(2, nothing)
	hs := statusOf(t, admin.Config{History: h})
	if hs.Points() != 0 || hs.StepSeconds != 300 || hs.SpanSeconds != 900 || hs.NextUnixMS != 0 {
		t.Errorf("after the base: %+v, want no point, a step of 300 s, a span of 900 s, no sampler", hs)
	}
	add(5, func(c *admin.HistoryCounters) {
		c.Memory += 10
		c.Disk += 4
		c.Bucket += 3
		c.BytesServed += 700
		c.BucketBytes += 300
	})
	add(10, func(c *admin.HistoryCounters) { c.OldStore += 2; c.Peer += 1; c.PeerBytes += 50 })
	add(15, nothing)
	add(20, func(c *admin.HistoryCounters) { c.Memory += 7 })

	hs = statusOf(t, admin.Config{History: h})
	at := func(minute int) int64 { return day0.Add(time.Duration(minute) * time.Minute).UnixMilli() }
	want := admin.HistoryStatus{
		StepSeconds: 300, SpanSeconds: 900,
		StartUnixMS: at(5), EndUnixMS: []int64{at(10), at(15), at(20)},
		Answers: admin.HistoryAnswers{Memory: []uint64{0, 0, 7}, Disk: []uint64{0, 0, 0}, Bucket: []uint64{0, 0, 0},
			OldStore: []uint64{2, 0, 0}, Peer: []uint64{1, 0, 0}},
		Bytes: admin.HistoryBytes{Served: []uint64{0, 0, 0}, Bucket: []uint64{0, 0, 0}, Peers: []uint64{50, 0, 0}},
	}
	if !reflect.DeepEqual(hs, want) {
		t.Errorf("history:\n%+v\nwant\n%+v", hs, want)
	}
	if start, end := hs.Interval(0); !start.Equal(day0.Add(5*time.Minute)) || !end.Equal(day0.Add(10*time.Minute)) {
		t.Errorf("first interval %s–%s", start, end)
	}
	if start, _ := hs.Interval(2); !start.Equal(day0.Add(15 * time.Minute)) {
		t.Errorf("last interval starts %s", start)
	}
}

// TestHistoryCounterResetIsNoNegativeSpike: a counter that goes down was reset; the interval
// counts what it counted since, never a wrapped or negative figure.
func TestHistoryCounterResetIsNoNegativeSpike(t *testing.T) {
	h := newTestHistory(t, time.Minute, 10)
	for i, v := range []uint64{100, 150, 20, 30} {
		h.Add(day0.Add(time.Duration(i)*time.Minute), admin.HistorySample{Counters: admin.HistoryCounters{Bucket: v, BucketBytes: v << 20}})
	}
	hs := statusOf(t, admin.Config{History: h})
	if want := []uint64{50, 20, 10}; !reflect.DeepEqual(hs.Answers.Bucket, want) {
		t.Errorf("bucket answers %v, want %v", hs.Answers.Bucket, want)
	}
	if want := []uint64{50 << 20, 20 << 20, 10 << 20}; !reflect.DeepEqual(hs.Bytes.Bucket, want) {
		t.Errorf("bucket bytes %v, want %v", hs.Bytes.Bucket, want)
	}
	// On the page, the interval after the reset is a bar of 20, on a scale that a wrapped
	// counter (2^64 - 130) would have blown up.
	body := historyPage(t, admin.Config{History: h})
	bars := seriesBars(t, chartOf(t, body, "history-answers"), "bucket")
	if len(bars) != 3 || bars[1].height != 20 {
		t.Errorf("bucket bars %+v, want 3, the second 20 high", bars)
	}
	if vb := attr(chartOf(t, body, "history-answers").find("svg", "class", "plot"), "viewBox"); vb != "0 -60 600 60" {
		t.Errorf("the plot's viewBox %q, want a top of 60 over 10 minutes", vb)
	}
}

// TestHistoryBackfillPerStore: each old store's copy is kept per point, -1 where it was not
// reported (a store that appears later, a store still counted).
func TestHistoryBackfillPerStore(t *testing.T) {
	h := newTestHistory(t, 5*time.Minute, 288)
	vol := func(done int64) admin.Migration {
		return admin.Migration{Source: "volume", FilesDone: done, FilesTotal: 100, BytesDone: done << 20, BytesTotal: 100 << 20}
	}
	h.Add(day0, admin.HistorySample{})
	h.Add(day0.Add(5*time.Minute), admin.HistorySample{Migrations: []admin.Migration{vol(10)}})
	h.Add(day0.Add(10*time.Minute), admin.HistorySample{Migrations: []admin.Migration{
		vol(20), {Source: "wasabi", Waiting: true, FilesTotal: -1, BytesTotal: -1},
	}})
	hs := statusOf(t, admin.Config{History: h})
	want := []admin.HistoryStore{
		{Source: "volume", FilesDone: []int64{10, 20}, FilesTotal: []int64{100, 100}, BytesDone: []int64{10 << 20, 20 << 20}, BytesTotal: []int64{100 << 20, 100 << 20}},
		{Source: "wasabi", FilesDone: []int64{-1, 0}, FilesTotal: []int64{-1, -1}, BytesDone: []int64{-1, 0}, BytesTotal: []int64{-1, -1}},
	}
	if !reflect.DeepEqual(hs.Backfill, want) {
		t.Errorf("backfill:\n%+v\nwant\n%+v", hs.Backfill, want)
	}
}

// TestHistoryStatusIsCompact: /status lists the history as one array per series, not an
// object per point, and leaves it out when there is none.
func TestHistoryStatusIsCompact(t *testing.T) {
	h := newTestHistory(t, time.Minute, 288)
	for i := range 4 {
		h.Add(day0.Add(time.Duration(i)*time.Minute), admin.HistorySample{Counters: admin.HistoryCounters{Memory: uint64(i * 3)}})
	}
	srv := httptest.NewServer(admin.New(admin.Config{History: h}))
	t.Cleanup(srv.Close)
	_, body := getPage(t, srv, "/status")
	var raw struct {
		History map[string]json.RawMessage `json:"history"`
	}
	if err := json.Unmarshal([]byte(body), &raw); err != nil {
		t.Fatal(err)
	}
	var answers map[string][]uint64
	if err := json.Unmarshal(raw.History["answers"], &answers); err != nil || !reflect.DeepEqual(answers["memory"], []uint64{3, 3, 3}) {
		t.Errorf("history.answers %s (%v), want memory [3,3,3]", raw.History["answers"], err)
	}
	for _, k := range []string{"step_seconds", "span_seconds", "start_unix_ms", "end_unix_ms", "bytes"} {
		if _, ok := raw.History[k]; !ok {
			t.Errorf("history lacks %q: %s", k, body)
		}
	}

	none := httptest.NewServer(admin.New(admin.Config{}))
	t.Cleanup(none.Close)
	if _, body := getPage(t, none, "/status"); strings.Contains(body, `"history"`) {
		t.Errorf("/status of an admin without a history lists one:\n%s", body)
	}
}

// TestNewHistoryRefusesNegativeValues names the field and the fix.
func TestNewHistoryRefusesNegativeValues(t *testing.T) {
	for _, cfg := range []admin.HistoryConfig{{Step: -time.Second}, {Points: -1}} {
		if _, err := admin.NewHistory(cfg); err == nil || !strings.Contains(err.Error(), "HistoryConfig.") || !strings.Contains(err.Error(), "zero for") {
			t.Errorf("NewHistory(%+v): %v", cfg, err)
		}
	}
	h, err := admin.NewHistory(admin.HistoryConfig{})
	if err != nil || h.Step() != 5*time.Minute || h.Span() != 24*time.Hour {
		t.Errorf("the zero config: %v, step %s, span %s; want 5m and 24h", err, h.Step(), h.Span())
	}
}
