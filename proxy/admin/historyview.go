package admin

import (
	"html/template"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/dustin/go-humanize"
)

// historyView is the history's card: a chart of each kind of figure over the last day, each
// with a summary in words (what a screen reader reads) and a legend.
type historyView struct {
	Span, Step string // "24 hours", "5 minutes"
	// Empty says when the first point comes, while there is none.
	Empty  string
	Charts []historyChart
}

// historyChart is one chart of the card.
type historyChart struct {
	ID, Heading string
	Summary     string
	SVG         template.HTML
	Legend      []legendEntry
	Note        string // a word on reading the chart
}

// legendEntry is one series in the legend: its colour, its name and its figures.
type legendEntry struct {
	Color, Label, Total, Share string
}

// Colours of the series, picked to read on the page's light and dark backgrounds alike (the
// charts cannot use the style sheet's variables: SVG attributes take plain colours).
const (
	colorMemory = "#2f7fe0"
	colorDisk   = "#9466e8"
	colorBucket = "#d98c0a"
	colorOld    = "#d55e00"
	colorPeer   = "#0f9e74"
	colorServed = "#7d8ea3"
)

// storeColors are the old stores' colours on the backfill chart, in turn.
var storeColors = []string{"#d55e00", "#cc79a7", "#0f9e74", "#2f7fe0", "#9466e8", "#d98c0a"}

// newHistoryView formats st's history as of now; nil when the process keeps none.
func newHistoryView(st Status, now time.Time) *historyView {
	h := st.History
	if h == nil {
		return nil
	}
	step := time.Duration(h.StepSeconds * float64(time.Second))
	span := time.Duration(h.SpanSeconds * float64(time.Second))
	n := h.Points()
	v := &historyView{Span: durationWords(span), Step: durationWords(step)}
	ivs := make([]chartInterval, n)
	for i := range ivs {
		ivs[i].Start, ivs[i].End = h.Interval(i)
	}
	end := now.UTC()
	if n > 0 {
		end = ivs[n-1].End
	}
	w := chartWindow{Start: end.Add(-span), End: end}
	hc := historyCharts{h: h, step: step, span: span, w: w, ivs: ivs}
	if n == 0 {
		v.Empty = "No points yet"
		if h.NextUnixMS != 0 {
			v.Empty += ": the first is taken at " + clock(time.UnixMilli(h.NextUnixMS), step) + " UTC, then one every " + v.Step
		}
		v.Empty += "."
	}
	v.Charts = append(v.Charts, hc.answers(len(st.OldStores) > 0, st.Cluster != nil), hc.bytes(st.Cluster != nil))
	if len(h.Backfill) > 0 {
		v.Charts = append(v.Charts, hc.backfill())
	}
	return v
}

// historyCharts draws the charts of one history.
type historyCharts struct {
	h          *HistoryStatus
	step, span time.Duration
	w          chartWindow
	ivs        []chartInterval
}

// answers is the chart of the answers by what gave them. The old stores' and the peers'
// series show when there are old stores (or peers), or when they answered.
func (hc historyCharts) answers(oldStores, peers bool) historyChart {
	a := hc.h.Answers
	series := []chartSeries{
		{Key: "memory", Label: "memory", Color: colorMemory, Values: floats(a.Memory)},
		{Key: "disk", Label: "disk", Color: colorDisk, Values: floats(a.Disk)},
		{Key: "bucket", Label: "bucket", Color: colorBucket, Values: floats(a.Bucket)},
	}
	if oldStores || sum(a.OldStore) > 0 {
		series = append(series, chartSeries{Key: "old-store", Label: "old stores (FALLBACK)", Color: colorOld, Values: floats(a.OldStore)})
	}
	if peers || sum(a.Peer) > 0 {
		series = append(series, chartSeries{Key: "peer", Label: "peers", Color: colorPeer, Values: floats(a.Peer)})
	}
	totals := make([]float64, len(hc.ivs))
	var total float64
	for _, s := range series {
		for i, x := range s.Values {
			totals[i] += x
			total += x
		}
	}
	c := historyChart{ID: "history-answers", Heading: "Answers by source"}
	var parts []string
	for _, s := range series {
		t := sumf(s.Values)
		e := legendEntry{Color: s.Color, Label: s.Label, Total: humanize.Comma(int64(t))}
		if total > 0 {
			e.Share = percent(int64(t), int64(total))
		}
		if t > 0 {
			parts = append(parts, e.Share+" from "+strings.TrimSuffix(s.Label, " (FALLBACK)"))
		}
		c.Legend = append(c.Legend, e)
	}
	if total == 0 {
		c.Summary = "No answers " + hc.period() + "."
	} else {
		c.Summary = answersWords(total) + " " + hc.period() + ": " + strings.Join(parts, ", ") + "."
		if i := argmax(totals); i >= 0 {
			c.Summary += " The busiest " + hc.stepPhrase() + ": " + answersWords(totals[i]) + ", " + hc.between(i) + "."
		}
	}
	c.SVG = barChart{
		ID: c.ID, Title: "Answers by source, per " + hc.stepPhrase() + ", " + hc.period(), Desc: c.Summary,
		Window: hc.w, Intervals: hc.ivs, Stacks: [][]chartSeries{series},
	}.svg()
	return c
}

// bytes is the chart of the bytes served, behind those the bucket (and the peers) sent.
func (hc historyCharts) bytes(peers bool) historyChart {
	b := hc.h.Bytes
	served := chartSeries{Key: "served", Label: "served", Color: colorServed, Opacity: 0.55, Values: floats(b.Served)}
	fetched := []chartSeries{{Key: "bucket-bytes", Label: "sent by the bucket", Color: colorBucket, Values: floats(b.Bucket)}}
	if peers || sum(b.Peers) > 0 {
		fetched = append(fetched, chartSeries{Key: "peer-bytes", Label: "sent by peers", Color: colorPeer, Values: floats(b.Peers)})
	}
	c := historyChart{ID: "history-bytes", Heading: "Bytes served, and what the bucket sent",
		Note: "The bucket's bytes are drawn in front of those served: the grey above them is what the cache saved."}
	totalServed := sum(b.Served)
	c.Legend = append(c.Legend, legendEntry{Color: served.Color, Label: served.Label, Total: humanBytes(clampInt(totalServed))})
	var fetchedWords []string
	for _, s := range fetched {
		t := sumf(s.Values)
		e := legendEntry{Color: s.Color, Label: s.Label, Total: humanBytes(int64(min(t, math.MaxInt64)))}
		if totalServed > 0 {
			e.Share = percent(int64(min(t, math.MaxInt64)), clampInt(totalServed)) + " of that"
		}
		c.Legend = append(c.Legend, e)
		fetchedWords = append(fetchedWords, e.Total+" "+s.Label)
	}
	if totalServed == 0 && sumf(fetched[0].Values) == 0 {
		c.Summary = "No bytes served " + hc.period() + "."
	} else {
		c.Summary = humanBytes(clampInt(totalServed)) + " served " + hc.period() + ", " + strings.Join(fetchedWords, ", ") + "."
		if i := argmax(served.Values); i >= 0 {
			c.Summary += " The most served: " + humanBytes(int64(served.Values[i])) + " in the " + hc.stepPhrase() + " " + hc.between(i) + "."
		}
	}
	c.SVG = barChart{
		ID: c.ID, Title: "Bytes served and bytes the bucket sent, per " + hc.stepPhrase() + ", " + hc.period(), Desc: c.Summary,
		Window: hc.w, Intervals: hc.ivs, Stacks: [][]chartSeries{{served}, fetched}, Bytes: true,
	}.svg()
	return c
}

// backfill is the chart of each old store's copy: the share of its bytes (a solid line) and of
// its files (dashed) in the bucket.
func (hc historyCharts) backfill() historyChart {
	c := historyChart{ID: "history-backfill", Heading: "Backfill: old stores in the bucket",
		Note: "Solid lines follow the bytes, dashed lines the files."}
	var series []chartSeries
	var words []string
	for k, s := range hc.h.Backfill {
		color := storeColors[k%len(storeColors)]
		key := "store-" + idPart(s.Source, k)
		bytes := chartSeries{Key: key + "-bytes", Label: s.Source + " bytes", Color: color, Values: make([]float64, len(s.BytesDone))}
		files := chartSeries{Key: key + "-files", Label: s.Source + " files", Color: color, Dashed: true, Values: make([]float64, len(s.FilesDone))}
		first, last := -1, -1
		for i := range s.BytesDone {
			bytes.Values[i] = share(s.BytesDone[i], s.BytesTotal[i], s.FilesDone[i], s.FilesTotal[i])
			files.Values[i] = share(s.FilesDone[i], s.FilesTotal[i], 0, 0)
			if !math.IsNaN(bytes.Values[i]) {
				if first < 0 {
					first = i
				}
				last = i
			}
		}
		series = append(series, bytes, files)
		e := legendEntry{Color: color, Label: s.Source}
		if last < 0 {
			e.Total = "counting…"
			words = append(words, s.Source+": still counting its files")
		} else {
			done, total := min(s.BytesDone[last], s.BytesTotal[last]), s.BytesTotal[last]
			fdone, ftotal := min(s.FilesDone[last], s.FilesTotal[last]), s.FilesTotal[last]
			e.Total = percent(done, total) + " of bytes"
			e.Share = humanize.Comma(fdone) + " of " + files0(ftotal)
			w := s.Source + ": " + percent(done, total) + " of its bytes in the bucket"
			if was := share(s.BytesDone[first], s.BytesTotal[first], s.FilesDone[first], s.FilesTotal[first]); first != last && was != bytes.Values[last] {
				w += " (" + percent(min(s.BytesDone[first], s.BytesTotal[first]), s.BytesTotal[first]) + " at " + clock(hc.ivs[first].End, hc.step) + " UTC)"
			}
			w += ", " + humanize.Comma(fdone) + " of " + files0(ftotal) + ", " + humanBytes(done) + " of " + humanBytes(total)
			words = append(words, w)
		}
		c.Legend = append(c.Legend, e)
	}
	c.Summary = strings.Join(words, "; ") + "."
	c.SVG = lineChart{
		ID: c.ID, Title: "Share of each old store in the bucket, " + hc.period(), Desc: c.Summary,
		Window: hc.w, Intervals: hc.ivs, Series: series,
	}.svg()
	return c
}

// period is the time the history covers, in words: "in the last 24 hours", or "since 10:32
// UTC" while the process is younger than that.
func (hc historyCharts) period() string {
	if len(hc.ivs) == 0 || !hc.ivs[0].Start.After(hc.w.Start.Add(hc.step)) {
		return "in the last " + durationWords(hc.span)
	}
	return "since " + clock(hc.ivs[0].Start, hc.step) + " UTC"
}

// stepPhrase is one interval in words: "5 minutes", "minute".
func (hc historyCharts) stepPhrase() string { return durationWords(hc.step) }

// between is the i-th interval in words: "14:05–14:10 UTC".
func (hc historyCharts) between(i int) string {
	return clock(hc.ivs[i].Start, hc.step) + "–" + clock(hc.ivs[i].End, hc.step) + " UTC"
}

// clock is t in UTC, to the minute, or to the second when points come more often than once a
// minute.
func clock(t time.Time, step time.Duration) string {
	if step < time.Minute {
		return t.UTC().Format("15:04:05")
	}
	return t.UTC().Format("15:04")
}

// durationWords is d in words: "24 hours", "5 minutes", "minute" (a single unit goes without
// its one: "every minute", "the last hour").
func durationWords(d time.Duration) string {
	for _, u := range []struct {
		d    time.Duration
		name string
	}{{time.Hour, "hour"}, {time.Minute, "minute"}, {time.Second, "second"}} {
		if d >= u.d && d%u.d == 0 {
			if n := d / u.d; n != 1 {
				return strconv.FormatInt(int64(n), 10) + " " + u.name + "s"
			}
			return u.name
		}
	}
	return d.String()
}

// answersWords is n answers, in words.
func answersWords(n float64) string {
	if n == 1 {
		return "1 answer"
	}
	return humanize.Comma(int64(n)) + " answers"
}

// files0 is n files in words, "0 files" included.
func files0(n int64) string { return files(max(n, 0)) }

// share is done of total in percent (0 to 100), or, for a store of empty files only, altDone
// of altTotal; NaN while the figures are unknown (the store counted, the copy not reported).
func share(done, total, altDone, altTotal int64) float64 {
	switch {
	case done < 0 || total < 0:
		return math.NaN()
	case total > 0:
		return 100 * float64(min(done, total)) / float64(total)
	case altTotal > 0 && altDone >= 0:
		return 100 * float64(min(altDone, altTotal)) / float64(altTotal)
	default:
		return 100
	}
}

// floats is xs as float64s.
func floats(xs []uint64) []float64 {
	out := make([]float64, len(xs))
	for i, x := range xs {
		out[i] = float64(x)
	}
	return out
}

// sum is the sum of xs.
func sum(xs []uint64) uint64 {
	var t uint64
	for _, x := range xs {
		t += x
	}
	return t
}

// sumf is the sum of xs.
func sumf(xs []float64) float64 {
	t := 0.0
	for _, x := range xs {
		t += x
	}
	return t
}

// argmax is the index of the largest of xs, the first of equals; -1 when none is above zero.
func argmax(xs []float64) int {
	best := -1
	for i, x := range xs {
		if x > 0 && (best < 0 || x > xs[best]) {
			best = i
		}
	}
	return best
}

// clampInt is n as an int64, at most math.MaxInt64.
func clampInt(n uint64) int64 { return int64(min(n, math.MaxInt64)) }
