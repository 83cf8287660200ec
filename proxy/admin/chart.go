package admin

// The status page's charts: SVG drawn on the server, with no script and no style sheet of their
// own (the page's Content-Security-Policy allows neither), only SVG's presentation attributes.
//
// A chart is an outer <svg> measured in CSS pixels, as wide as its card: the grid, the axis
// labels and their text stay at a legible size at any width. The plot inside it is a nested
// <svg> whose viewBox is the data itself, stretched to the plot's box (preserveAspectRatio
// "none"): x is seconds since the window's start and y minus the value (counts, bytes or
// percent), so that a bar's height in the viewBox is the figure it stands for.

import (
	"html/template"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/dustin/go-humanize"
)

// The chart's frame, in CSS pixels.
const (
	chartPlotTop    = 16  // above the plot: room for the top gridline's label
	chartPlotHeight = 140 // the plot
	chartAxisHeight = 22  // below the plot: the time labels
	chartHeight     = chartPlotTop + chartPlotHeight + chartAxisHeight
	// Time labels at most, and how near the edges (in percent of the width) their middle may
	// be: six labels of "15:04" fit a phone's width with room between them, and their halves at
	// the edges; labels with seconds ("15:04:05") are wider and fewer.
	chartMaxTicks          = 6
	chartLabelMargin       = 6
	chartMaxTicksSeconds   = 5
	chartLabelMarginSecond = 10
)

// chartWindow is the time a chart spans, its left edge to its right.
type chartWindow struct{ Start, End time.Time }

// seconds is t's place on the window's axis: seconds since its start.
func (w chartWindow) seconds(t time.Time) float64 { return t.Sub(w.Start).Seconds() }

// span is the window's length in seconds.
func (w chartWindow) span() float64 { return w.End.Sub(w.Start).Seconds() }

// chartInterval is one point's interval.
type chartInterval struct{ Start, End time.Time }

// chartSeries is one series of a chart: a value per interval, NaN where it is unknown (a line
// then breaks).
type chartSeries struct {
	Key     string // the element's data-series, for machines and tests
	Label   string
	Color   string  // a colour that reads on light and dark backgrounds alike
	Opacity float64 // of the fill; zero means opaque
	Dashed  bool    // lines only
	Values  []float64
}

// barChart is figures per interval drawn as bars. The series of one stack are stacked on one
// another; each stack is drawn over the ones before it, from the same baseline (a total
// behind its parts, say).
type barChart struct {
	ID          string // the ids of the chart's elements begin with it
	Title, Desc string
	Window      chartWindow
	Intervals   []chartInterval
	Stacks      [][]chartSeries
	Bytes       bool // the values are bytes: the axis counts in binary units
}

// lineChart is percentages (0 to 100) at the end of each interval, drawn as steps: each
// value holds over its interval. The latest known value of each series has a dot.
type lineChart struct {
	ID          string
	Title, Desc string
	Window      chartWindow
	Intervals   []chartInterval
	Series      []chartSeries
}

// svg draws c.
func (c barChart) svg() template.HTML {
	top := 0.0
	for i := range c.Intervals {
		for _, stack := range c.Stacks {
			sum := 0.0
			for _, s := range stack {
				sum += s.Values[i]
			}
			top = max(top, sum)
		}
	}
	top, ticks, unit := valueScale(top, c.Bytes)
	var b strings.Builder
	f := chartFrame{id: c.ID, window: c.Window, top: top, ticks: ticks}
	f.open(&b, c.Title, c.Desc)
	for _, stack := range c.Stacks {
		base := make([]float64, len(c.Intervals))
		for _, s := range stack {
			b.WriteString(`<path data-series="` + s.Key + `" fill="` + s.Color + `"`)
			if s.Opacity > 0 {
				b.WriteString(` fill-opacity="` + num(s.Opacity) + `"`)
			}
			b.WriteString(` d="`)
			for i, iv := range c.Intervals {
				v := s.Values[i]
				x0, x1 := max(c.Window.seconds(iv.Start), 0), c.Window.seconds(iv.End)
				if v <= 0 || x1 <= x0 {
					continue
				}
				// A bar from the stack's height so far, up by v: its height is v.
				b.WriteString("M" + coord(x0) + " " + num(-base[i]) + "v" + num(-v) + "H" + coord(x1) + "v" + num(v) + "z")
				base[i] += v
			}
			b.WriteString(`"/>`)
		}
	}
	f.close(&b, tickLabels(ticks, c.Bytes, unit), nil)
	return template.HTML(b.String())
}

// svg draws c.
func (c lineChart) svg() template.HTML {
	var b strings.Builder
	f := chartFrame{id: c.ID, window: c.Window, top: 100, ticks: []float64{25, 50, 75, 100}}
	f.open(&b, c.Title, c.Desc)
	var dots []chartDot
	for _, s := range c.Series {
		b.WriteString(`<path data-series="` + s.Key + `" fill="none" stroke="` + s.Color +
			`" stroke-width="2" stroke-linejoin="round" vector-effect="non-scaling-stroke"`)
		if s.Dashed {
			b.WriteString(` stroke-dasharray="6 4"`)
		}
		b.WriteString(` d="`)
		drawing := false
		last := -1
		for i, iv := range c.Intervals {
			v := s.Values[i]
			x0, x1 := max(c.Window.seconds(iv.Start), 0), c.Window.seconds(iv.End)
			if math.IsNaN(v) || x1 <= x0 {
				drawing = false
				continue
			}
			if drawing {
				b.WriteString("V" + num(-v))
			} else {
				b.WriteString("M" + coord(x0) + " " + num(-v))
			}
			b.WriteString("H" + coord(x1))
			drawing, last = true, i
		}
		b.WriteString(`"/>`)
		if last >= 0 {
			dots = append(dots, chartDot{key: s.Key, color: s.Color, x: c.Window.seconds(c.Intervals[last].End), v: s.Values[last]})
		}
	}
	labels := make([]string, len(f.ticks))
	for i, t := range f.ticks {
		labels[i] = strconv.FormatFloat(t, 'f', -1, 64) + "%"
	}
	f.close(&b, labels, dots)
	return template.HTML(b.String())
}

// chartDot marks a line's latest value, drawn in pixels so that it stays round.
type chartDot struct {
	key, color string
	x, v       float64 // seconds on the window's axis; the value
}

// chartFrame draws what bar and line charts share: the outer <svg>, its title and
// description, the grid, the axes' labels, and the nested plot.
type chartFrame struct {
	id     string
	window chartWindow
	top    float64   // the value at the plot's top
	ticks  []float64 // values with a gridline
}

// y is the pixel height of the value v in the outer <svg>.
func (f chartFrame) y(v float64) float64 {
	return chartPlotTop + chartPlotHeight*(1-v/f.top)
}

// x is the place of t seconds on the window's axis, in percent of the width.
func (f chartFrame) x(t float64) float64 {
	if f.window.span() <= 0 {
		return 100
	}
	return 100 * t / f.window.span()
}

// open writes the outer <svg> up to the plot's contents, the grid under them.
func (f chartFrame) open(b *strings.Builder, title, desc string) {
	esc := template.HTMLEscapeString
	b.WriteString(`<svg id="` + f.id + `" class="chart" width="100%" height="` + strconv.Itoa(chartHeight) +
		`" display="block" overflow="visible" font-size="12" role="img" aria-labelledby="` + f.id + `-title" aria-describedby="` + f.id + `-desc">`)
	b.WriteString(`<title id="` + f.id + `-title">` + esc(title) + `</title>`)
	b.WriteString(`<desc id="` + f.id + `-desc">` + esc(desc) + `</desc>`)
	b.WriteString(`<g stroke="currentColor" stroke-width="1" shape-rendering="crispEdges">`)
	for _, t := range timeTicks(f.window) {
		x := num(round3(f.x(f.window.seconds(t)))) + "%"
		b.WriteString(`<line x1="` + x + `" x2="` + x + `" y1="` + strconv.Itoa(chartPlotTop) + `" y2="` +
			strconv.Itoa(chartPlotTop+chartPlotHeight+4) + `" stroke-opacity=".12"/>`)
	}
	for _, v := range f.ticks {
		y := num(round3(f.y(v)))
		b.WriteString(`<line x1="0" x2="100%" y1="` + y + `" y2="` + y + `" stroke-opacity=".15"/>`)
	}
	b.WriteString(`</g>`)
	// The plot: x in seconds of the window, y minus the value, stretched to the plot's box.
	b.WriteString(`<svg class="plot" x="0" y="` + strconv.Itoa(chartPlotTop) + `" width="100%" height="` +
		strconv.Itoa(chartPlotHeight) + `" viewBox="0 ` + num(-f.top) + ` ` + coord(f.window.span()) + ` ` + num(f.top) +
		`" preserveAspectRatio="none">`)
}

// close ends the plot and writes what goes over it: the baseline, the gridlines' labels, the
// time labels and the dots.
func (f chartFrame) close(b *strings.Builder, tickLabels []string, dots []chartDot) {
	b.WriteString(`</svg>`)
	base := strconv.Itoa(chartPlotTop + chartPlotHeight)
	b.WriteString(`<line x1="0" x2="100%" y1="` + base + `" y2="` + base + `" stroke="currentColor" stroke-opacity=".45" shape-rendering="crispEdges"/>`)
	for _, d := range dots {
		b.WriteString(`<circle data-series="` + d.key + `" cx="` + num(round3(f.x(d.x))) + `%" cy="` + num(round3(f.y(d.v))) +
			`" r="3.5" fill="` + d.color + `" stroke="Canvas" stroke-width="1.5"/>`)
	}
	// Labels over the plot's left edge get a halo of the page's background, to stay legible
	// over the bars.
	b.WriteString(`<g fill="currentColor" stroke="Canvas" stroke-width="3" stroke-linejoin="round" paint-order="stroke">`)
	for i, v := range f.ticks {
		b.WriteString(`<text x="2" y="` + num(round3(f.y(v)-4)) + `">` + template.HTMLEscapeString(tickLabels[i]) + `</text>`)
	}
	y := strconv.Itoa(chartPlotTop + chartPlotHeight + 17)
	for _, t := range timeTicks(f.window) {
		// A label too near an edge would be cut in half, or run into its neighbour on a phone.
		margin := float64(chartLabelMargin)
		if withSeconds(f.window) {
			margin = chartLabelMarginSecond
		}
		if p := f.x(f.window.seconds(t)); p >= margin && p <= 100-margin {
			b.WriteString(`<text class="time" x="` + num(round3(p)) + `%" y="` + y + `" text-anchor="middle">` + timeLabel(t, f.window) + `</text>`)
		}
	}
	b.WriteString(`</g></svg>`)
}

// chartTickSteps are the steps between time labels: the smallest that gives few enough
// labels is taken.
var chartTickSteps = []time.Duration{
	time.Second, 2 * time.Second, 5 * time.Second, 10 * time.Second, 15 * time.Second, 30 * time.Second,
	time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute, 15 * time.Minute, 30 * time.Minute,
	time.Hour, 2 * time.Hour, 3 * time.Hour, 4 * time.Hour, 6 * time.Hour, 12 * time.Hour, 24 * time.Hour,
}

// timeTicks are the times of w marked on its axis: multiples of a round step of the clock
// (UTC), at most chartMaxTicks of them (chartMaxTicksSeconds when their labels show seconds),
// and one more when w begins and ends on a multiple.
func timeTicks(w chartWindow) []time.Time {
	span := w.End.Sub(w.Start)
	if span <= 0 {
		return nil
	}
	most := time.Duration(chartMaxTicks)
	if withSeconds(w) {
		most = chartMaxTicksSeconds
	}
	step := chartTickSteps[len(chartTickSteps)-1]
	for _, s := range chartTickSteps {
		if span/s <= most {
			step = s
			break
		}
	}
	var out []time.Time
	for t := w.Start.Truncate(step); !t.After(w.End); t = t.Add(step) {
		if !t.Before(w.Start) {
			out = append(out, t)
		}
	}
	return out
}

// withSeconds reports whether the labels of w's axis show seconds: when it is short enough
// for them to fall between minutes.
func withSeconds(w chartWindow) bool { return w.End.Sub(w.Start) < chartMaxTicks*time.Minute }

// timeLabel is t as a label of w's axis: hours and minutes, and seconds when w needs them.
func timeLabel(t time.Time, w chartWindow) string {
	if withSeconds(w) {
		return t.UTC().Format("15:04:05")
	}
	return t.UTC().Format("15:04")
}

// valueScale returns the value at a chart's top, for a largest value of peak, and the values
// that get a gridline: round steps (1, 2 or 5 times a power of ten, of a binary unit for
// bytes), at most four of them; and that unit (1 for counts, which step by whole numbers).
// With nothing to show (peak 0) the top is 1 and no gridline is labelled.
func valueScale(peak float64, bytes bool) (top float64, ticks []float64, unit float64) {
	unit = 1
	if peak <= 0 {
		return 1, nil, 1
	}
	if bytes {
		for peak/unit >= 1024 {
			unit *= 1024
		}
	}
	step := roundStep(peak/unit/4) * unit
	if unit == 1 {
		step = max(step, 1)
	}
	n := max(math.Ceil(peak/step-1e-9), 1)
	for i := 1.0; i <= n; i++ {
		ticks = append(ticks, i*step)
	}
	return n * step, ticks, unit
}

// roundStep is the smallest of 1, 2 and 5 times a power of ten that is at least x.
func roundStep(x float64) float64 {
	if x <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(x)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= x*(1-1e-9) {
			return m * p
		}
	}
	return 10 * p
}

// tickLabels are the labels of the gridlines at ticks: counts with thousands separated, bytes
// in unit (a power of 1024).
func tickLabels(ticks []float64, bytes bool, unit float64) []string {
	out := make([]string, len(ticks))
	for i, t := range ticks {
		if !bytes {
			out[i] = humanize.Comma(int64(math.Round(t)))
			continue
		}
		name := "B"
		for u, n := 1024.0, 0; u <= unit; u, n = u*1024, n+1 {
			name = []string{"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}[n]
		}
		out[i] = strconv.FormatFloat(round3(t/unit), 'f', -1, 64) + " " + name
	}
	return out
}

// num writes a number as SVG takes it, as short as it goes.
func num(f float64) string {
	if f == 0 {
		return "0" // never "-0"
	}
	return strconv.FormatFloat(f, 'f', -1, 64)
}

// coord is a place on the time axis, to the millisecond.
func coord(seconds float64) string { return num(round3(seconds)) }

func round3(f float64) float64 { return math.Round(f*1000) / 1000 }
