package admin_test

import (
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fedicache/fedicache/origin"
	"github.com/fedicache/fedicache/proxy/admin"
)

// svgNode is an element of a chart as the page holds it.
type svgNode struct {
	XMLName xml.Name
	Attrs   []xml.Attr `xml:",any,attr"`
	Nodes   []svgNode  `xml:",any"`
	Text    string     `xml:",chardata"`
}

// attr is n's attribute name, "" when it has none.
func attr(n *svgNode, name string) string {
	if n == nil {
		return ""
	}
	for _, a := range n.Attrs {
		if a.Name.Local == name {
			return a.Value
		}
	}
	return ""
}

// all returns the elements under n (n included) named name whose attributes hold those of
// kv (name, value, ...).
func (n *svgNode) all(name string, kv ...string) []*svgNode {
	var out []*svgNode
	var walk func(*svgNode)
	walk = func(x *svgNode) {
		match := x.XMLName.Local == name
		for i := 0; match && i+1 < len(kv); i += 2 {
			match = attr(x, kv[i]) == kv[i+1]
		}
		if match {
			out = append(out, x)
		}
		for i := range x.Nodes {
			walk(&x.Nodes[i])
		}
	}
	walk(n)
	return out
}

// find is the first of n.all(name, kv...), nil when none.
func (n *svgNode) find(name string, kv ...string) *svgNode {
	if all := n.all(name, kv...); len(all) > 0 {
		return all[0]
	}
	return nil
}

// historyPage renders the status page of cfg and returns it, checked self-contained.
func historyPage(t *testing.T, cfg admin.Config) string {
	t.Helper()
	srv := httptest.NewServer(admin.New(cfg))
	t.Cleanup(srv.Close)
	resp, body := getPage(t, srv, "/")
	checkSelfContained(t, resp, body)
	if strings.Contains(body, " style=") {
		t.Error("the page holds a style attribute, which its Content-Security-Policy refuses")
	}
	return body
}

// chartOf returns the chart id of the page body, parsed.
func chartOf(t *testing.T, body, id string) *svgNode {
	t.Helper()
	i := strings.Index(body, `<svg id="`+id+`"`)
	if i < 0 {
		t.Fatalf("the page has no chart %q", id)
	}
	var n svgNode
	if err := xml.NewDecoder(strings.NewReader(body[i:])).Decode(&n); err != nil {
		t.Fatalf("chart %q is not well-formed: %v", id, err)
	}
	return &n
}

// bar is one bar of a series: its interval on the time axis (seconds), where it starts and
// how high it goes, in the values' units.
type bar struct{ x0, x1, base, height float64 }

var barRE = regexp.MustCompile(`M([0-9.]+) (-?[0-9.]+)v-([0-9.]+)H([0-9.]+)v([0-9.]+)z`)

// seriesBars returns the bars of the series key of chart c.
func seriesBars(t *testing.T, c *svgNode, key string) []bar {
	t.Helper()
	p := c.find("path", "data-series", key)
	if p == nil {
		t.Fatalf("no series %q in chart %s", key, attr(c, "id"))
	}
	d := attr(p, "d")
	var out []bar
	f := func(s string) float64 {
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			t.Fatalf("series %q: %q: %v", key, d, err)
		}
		return v
	}
	for _, m := range barRE.FindAllStringSubmatch(d, -1) {
		if m[3] != m[5] {
			t.Errorf("series %q: a bar goes up %s and down %s", key, m[3], m[5])
		}
		out = append(out, bar{x0: f(m[1]), x1: f(m[4]), base: 0 - f(m[2]), height: f(m[3])})
	}
	if got := len(barRE.ReplaceAllString(d, "")); got != 0 {
		t.Errorf("series %q: path data beyond its bars: %q", key, d)
	}
	return out
}

// texts returns the text of the chart's elements of class class (or all texts).
func texts(c *svgNode, class string) []string {
	var out []string
	for _, n := range c.all("text") {
		if class == "" || attr(n, "class") == class {
			out = append(out, strings.TrimSpace(n.Text))
		}
	}
	return out
}

// checkAccessible checks that the chart is an image named by its title and described by its
// desc, and returns the two.
func checkAccessible(t *testing.T, c *svgNode) (title, desc string) {
	t.Helper()
	id := attr(c, "id")
	if attr(c, "role") != "img" {
		t.Errorf("chart %s: role %q", id, attr(c, "role"))
	}
	ti, de := c.find("title", "id", id+"-title"), c.find("desc", "id", id+"-desc")
	if ti == nil || de == nil || !strings.Contains(attr(c, "aria-labelledby"), id+"-title") || attr(c, "aria-describedby") != id+"-desc" {
		t.Fatalf("chart %s: title %v, desc %v, aria-labelledby %q, aria-describedby %q", id, ti, de, attr(c, "aria-labelledby"), attr(c, "aria-describedby"))
	}
	if ti.Text == "" || de.Text == "" {
		t.Errorf("chart %s: an empty title or description", id)
	}
	return ti.Text, de.Text
}

// TestHistoryChartsPlaceBarsWhereTheValuesSay: two points of known answers and bytes. Each bar
// spans its interval on the time axis, stands on the bars of the series below it, and is as
// high as its figure, on a scale of round steps with labelled gridlines.
func TestHistoryChartsPlaceBarsWhereTheValuesSay(t *testing.T) {
	h := newTestHistory(t, 5*time.Minute, 288)
	noon := day0.Add(12 * time.Hour)
	c := admin.HistoryCounters{}
	h.Add(noon, admin.HistorySample{Counters: c})
	c.Memory, c.Disk, c.Bucket, c.OldStore = 10, 4, 3, 1
	c.BytesServed, c.BucketBytes = 3<<20, 1<<20
	h.Add(noon.Add(5*time.Minute), admin.HistorySample{Counters: c})
	c.Bucket += 7
	c.BytesServed += 512 << 10
	c.BucketBytes += 512 << 10
	h.Add(noon.Add(10*time.Minute), admin.HistorySample{Counters: c})

	body := historyPage(t, admin.Config{History: h, OldStores: func(context.Context) []origin.StoreHealth {
		return []origin.StoreHealth{{Name: "volume", Source: origin.SourceVolume}}
	}})
	checkContains(t, body, `id="history"`, "Last 24 hours", "one point every 5 minutes", "times in UTC")
	answers := chartOf(t, body, "history-answers")
	title, desc := checkAccessible(t, answers)
	if !strings.Contains(title, "Answers by source") || desc != "25 answers since 12:00 UTC: 40% from memory, 16% from disk, 40% from bucket, 4% from old stores. The busiest 5 minutes: 18 answers, 12:00–12:05 UTC." {
		t.Errorf("title %q, desc %q", title, desc)
	}

	// The window ends with the last point, at 12:10: 12:00 is 86,400 - 600 s into it.
	first, second := bar{x0: 85800, x1: 86100}, bar{x0: 86100, x1: 86400}
	at := func(b bar, base, height float64) bar { b.base, b.height = base, height; return b }
	for key, want := range map[string][]bar{
		"memory":    {at(first, 0, 10)},
		"disk":      {at(first, 10, 4)},
		"bucket":    {at(first, 14, 3), at(second, 0, 7)},
		"old-store": {at(first, 17, 1)},
	} {
		if got := seriesBars(t, answers, key); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("series %s: %+v, want %+v", key, got, want)
		}
	}
	if answers.find("path", "data-series", "peer") != nil {
		t.Error("a process with no peers charts their answers")
	}
	// The highest stack is 18: the scale steps by 5 up to 20.
	plot := answers.find("svg", "class", "plot")
	if vb := attr(plot, "viewBox"); vb != "0 -20 86400 20" || attr(plot, "preserveAspectRatio") != "none" {
		t.Errorf("the plot's viewBox %q, preserveAspectRatio %q", vb, attr(plot, "preserveAspectRatio"))
	}
	if got := texts(answers, ""); !strings.Contains(strings.Join(got, " "), "5 10 15 20") {
		t.Errorf("gridline labels %q, want 5 10 15 20", got)
	}
	checkLegend(t, body, "history-answers", "memory <b>10</b> <span class=\"muted\">40%</span>", "bucket <b>10</b>")

	// Bytes: served behind, the bucket's in front, on a scale in MiB.
	bytes := chartOf(t, body, "history-bytes")
	checkAccessible(t, bytes)
	if got := seriesBars(t, bytes, "served"); fmt.Sprint(got) != fmt.Sprint([]bar{at(first, 0, 3<<20), at(second, 0, 512<<10)}) {
		t.Errorf("served bars %+v", got)
	}
	if got := seriesBars(t, bytes, "bucket-bytes"); fmt.Sprint(got) != fmt.Sprint([]bar{at(first, 0, 1<<20), at(second, 0, 512<<10)}) {
		t.Errorf("bucket bars %+v", got)
	}
	if got := strings.Join(texts(bytes, ""), " "); !strings.Contains(got, "1 MiB 2 MiB 3 MiB") {
		t.Errorf("the bytes chart's labels %q", got)
	}
	checkContains(t, body, "3.5 MiB served since 12:00 UTC, 1.5 MiB sent by the bucket.")
	if bytes.find("path", "data-series", "peer-bytes") != nil {
		t.Error("a process with no peers charts their bytes")
	}
}

// checkLegend checks that the legend of chart id holds each of want.
func checkLegend(t *testing.T, body, id string, want ...string) {
	t.Helper()
	i := strings.Index(body, `<ul id="`+id+`-legend"`)
	if i < 0 {
		t.Fatalf("chart %s has no legend", id)
	}
	legend := body[i : i+strings.Index(body[i:], "</ul>")]
	for _, w := range want {
		if !strings.Contains(legend, w) {
			t.Errorf("legend of %s lacks %q:\n%s", id, w, legend)
		}
	}
}

// TestHistoryChartEmpty: before the first point the charts have their axes and no bar, and the
// card says none has been taken yet.
func TestHistoryChartEmpty(t *testing.T) {
	h := newTestHistory(t, 5*time.Minute, 288)
	body := historyPage(t, admin.Config{History: h})
	checkContains(t, body, `<p id="history-empty" class="muted">No points yet.</p>`, "No answers in the last 24 hours.", "No bytes served in the last 24 hours.")
	for _, id := range []string{"history-answers", "history-bytes"} {
		c := chartOf(t, body, id)
		checkAccessible(t, c)
		for _, p := range c.all("path") {
			if attr(p, "d") != "" {
				t.Errorf("%s: series %s drawn without points: %q", id, attr(p, "data-series"), attr(p, "d"))
			}
		}
		if labels := texts(c, "time"); len(labels) < 3 || len(labels) > 6 {
			t.Errorf("%s: time labels %q", id, labels)
		}
	}
	if strings.Contains(body, "history-backfill") {
		t.Error("a history without copies charts the backfill")
	}
}

// TestHistoryChartOnePoint: a single point is one bar at the right edge, its interval wide.
func TestHistoryChartOnePoint(t *testing.T) {
	h := newTestHistory(t, 5*time.Minute, 288)
	h.Add(day0.Add(8*time.Hour), admin.HistorySample{})
	h.Add(day0.Add(8*time.Hour+5*time.Minute), admin.HistorySample{Counters: admin.HistoryCounters{Bucket: 1}})
	body := historyPage(t, admin.Config{History: h})
	c := chartOf(t, body, "history-answers")
	if got := seriesBars(t, c, "bucket"); len(got) != 1 || got[0] != (bar{x0: 86100, x1: 86400, base: 0, height: 1}) {
		t.Errorf("one point: bars %+v", got)
	}
	if vb := attr(c.find("svg", "class", "plot"), "viewBox"); vb != "0 -1 86400 1" {
		t.Errorf("the scale of one answer: %q", vb)
	}
	checkContains(t, body, "1 answer since 08:00 UTC: 100% from bucket.")
	if strings.Contains(body, "history-empty") {
		t.Error("a history with a point says it has none")
	}
}

// TestHistoryChartFullDay: a day of points and more: the ring keeps 288, the bars tile the
// whole axis, and the time labels are round hours of UTC at their place.
func TestHistoryChartFullDay(t *testing.T) {
	h := newTestHistory(t, 5*time.Minute, 288)
	start := day0.Add(7*time.Hour + 3*time.Minute) // a process started between two steps
	var c admin.HistoryCounters
	h.Add(start, admin.HistorySample{Counters: c})
	end := day0.Add(7*time.Hour + 5*time.Minute)
	for i := range 300 {
		c.Memory += uint64(i%7 + 1)
		c.BytesServed += 1 << 30
		at := end.Add(time.Duration(i) * 5 * time.Minute)
		h.Add(at, admin.HistorySample{Counters: c})
	}
	last := end.Add(299 * 5 * time.Minute) // 7:00 the next day
	body := historyPage(t, admin.Config{History: h})
	ch := chartOf(t, body, "history-answers")
	bars := seriesBars(t, ch, "memory")
	if len(bars) != 288 {
		t.Fatalf("%d bars, want 288", len(bars))
	}
	for i, b := range bars {
		if b.x0 != float64(i*300) || b.x1 != float64(i*300+300) || b.height != float64((i+12)%7+1) {
			t.Fatalf("bar %d: %+v", i, b)
		}
	}
	// The labels: every 4 hours of UTC, each where its time is on the axis.
	labels := ch.all("text", "class", "time")
	if len(labels) < 4 || len(labels) > 6 {
		t.Fatalf("%d time labels", len(labels))
	}
	windowStart := last.Add(-24 * time.Hour)
	for _, l := range labels {
		tm, err := time.Parse("15:04", strings.TrimSpace(l.Text))
		if err != nil || tm.Minute() != 0 || tm.Hour()%4 != 0 {
			t.Errorf("time label %q", l.Text)
			continue
		}
		at := time.Date(windowStart.Year(), windowStart.Month(), windowStart.Day(), tm.Hour(), 0, 0, 0, time.UTC)
		if at.Before(windowStart) {
			at = at.Add(24 * time.Hour)
		}
		want := 100 * at.Sub(windowStart).Seconds() / 86400
		got, _ := strconv.ParseFloat(strings.TrimSuffix(attr(l, "x"), "%"), 64)
		if math.Abs(got-want) > 0.001 {
			t.Errorf("label %s at x=%s, want %.3f%%", l.Text, attr(l, "x"), want)
		}
	}
	checkContains(t, body, " in the last 24 hours: 100% from memory.")
	// A GiB every 5 minutes: the bytes are on a scale in GiB.
	if got := strings.Join(texts(chartOf(t, body, "history-bytes"), ""), " "); !strings.Contains(got, "1 GiB") {
		t.Errorf("bytes labels %q", got)
	}
}

// TestHistoryChartBackfill: each store's share of bytes (solid) and files (dashed) in the
// bucket, a step per point, broken where the store was still counted; a dot at the latest.
func TestHistoryChartBackfill(t *testing.T) {
	h := newTestHistory(t, 5*time.Minute, 288)
	t0 := day0.Add(20 * time.Hour)
	h.Add(t0, admin.HistorySample{})
	steps := []admin.Migration{
		{Source: "volume", FilesTotal: -1, BytesTotal: -1, FilesDone: 3},
		{Source: "volume", FilesTotal: 8, BytesTotal: 400, FilesDone: 4, BytesDone: 100},
		{Source: "volume", FilesTotal: 8, BytesTotal: 400, FilesDone: 6, BytesDone: 200},
	}
	for i, m := range steps {
		h.Add(t0.Add(time.Duration(i+1)*5*time.Minute), admin.HistorySample{Migrations: []admin.Migration{m}})
	}
	body := historyPage(t, admin.Config{History: h})
	c := chartOf(t, body, "history-backfill")
	checkAccessible(t, c)
	solid, dashed := c.find("path", "data-series", "store-volume-bytes"), c.find("path", "data-series", "store-volume-files")
	if solid == nil || dashed == nil {
		t.Fatal("no lines for the volume")
	}
	// The first point (counting) is left out: the line starts at the second, 25%, then 50%.
	if d := attr(solid, "d"); d != "M85800 -25H86100V-50H86400" {
		t.Errorf("bytes line %q", d)
	}
	if d := attr(dashed, "d"); d != "M85800 -50H86100V-75H86400" {
		t.Errorf("files line %q", d)
	}
	if attr(dashed, "stroke-dasharray") == "" || attr(solid, "stroke-dasharray") != "" {
		t.Error("the files' line is not dashed, or the bytes' is")
	}
	if vb := attr(c.find("svg", "class", "plot"), "viewBox"); vb != "0 -100 86400 100" {
		t.Errorf("the backfill's viewBox %q", vb)
	}
	// The dot of the bytes at 50%: half-way down the plot (16 px above it, 140 px high).
	if dot := c.find("circle", "data-series", "store-volume-bytes"); dot == nil || attr(dot, "cx") != "100%" || attr(dot, "cy") != "86" {
		t.Errorf("the latest value's dot: %+v", dot)
	}
	checkContains(t, body, "volume: 50% of its bytes in the bucket (25% at 20:10 UTC), 6 of 8 files, 200 B of 400 B.")
	checkLegend(t, body, "history-backfill", "volume <b>50% of bytes</b> <span class=\"muted\">6 of 8 files</span>")
}

// BenchmarkStatusPageFullDay renders the status page with a full day of history in which every
// series moved in every interval (the page's largest), and reports its size.
func BenchmarkStatusPageFullDay(b *testing.B) {
	h, err := admin.NewHistory(admin.HistoryConfig{})
	if err != nil {
		b.Fatal(err)
	}
	var c admin.HistoryCounters
	at := day0
	h.Add(at, admin.HistorySample{Counters: c})
	for i := range 288 {
		c.Memory += uint64(1000 + i)
		c.Disk += uint64(300 + i)
		c.Bucket += uint64(100 + i)
		c.OldStore += uint64(10 + i)
		c.Peer += uint64(50 + i)
		c.BytesServed += uint64(200<<20 + i)
		c.BucketBytes += uint64(30<<20 + i)
		c.PeerBytes += uint64(10<<20 + i)
		at = at.Add(5 * time.Minute)
		h.Add(at, admin.HistorySample{Counters: c, Migrations: []admin.Migration{
			{Source: "volume", FilesDone: int64(1000 * i), FilesTotal: 300_000, BytesDone: int64(i) << 30, BytesTotal: 300 << 30},
			{Source: "wasabi", FilesDone: int64(500 * i), FilesTotal: 200_000, BytesDone: int64(i) << 29, BytesTotal: 200 << 29},
		}})
	}
	srv := httptest.NewServer(admin.New(admin.Config{History: h,
		Cluster: func() admin.ClusterStatus { return admin.ClusterStatus{Members: []string{"a", "b"}} },
		OldStores: func(context.Context) []origin.StoreHealth {
			return []origin.StoreHealth{{Name: "volume", Source: origin.SourceVolume}, {Name: "wasabi", Source: origin.SourceOldBucket}}
		}}))
	b.Cleanup(srv.Close)
	get := func(path string) int64 {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			b.Fatal(err)
		}
		defer resp.Body.Close()
		n, err := io.Copy(io.Discard, resp.Body)
		if err != nil || resp.StatusCode != http.StatusOK {
			b.Fatalf("GET %s: %d, %v", path, resp.StatusCode, err)
		}
		return n
	}
	var size int64
	for b.Loop() {
		size = get("/")
	}
	b.ReportMetric(float64(size), "page-bytes")
	b.ReportMetric(float64(get("/status")), "status-bytes")
}
