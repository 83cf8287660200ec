package admin

import (
	"fmt"
	"testing"
	"time"
)

// TestValueScale: the top of a chart and its gridlines are round steps above the largest
// value, four at most; bytes step in the binary unit of the largest.
func TestValueScale(t *testing.T) {
	for _, tc := range []struct {
		peak   float64
		bytes  bool
		top    float64
		labels string
	}{
		{0, false, 1, "[]"},
		{1, false, 1, "[1]"},
		{3, false, 3, "[1 2 3]"},
		{18, false, 20, "[5 10 15 20]"},
		{1234, false, 1500, "[500 1,000 1,500]"},
		{2_600_000, false, 3_000_000, "[1,000,000 2,000,000 3,000,000]"},
		{0, true, 1, "[]"},
		{700, true, 800, "[200 B 400 B 600 B 800 B]"},
		{3.4 * (1 << 20), true, 4 << 20, "[1 MiB 2 MiB 3 MiB 4 MiB]"},
		{0.9 * (1 << 30), true, 1000 << 20, "[500 MiB 1000 MiB]"},
		{1.3 * (1 << 20), true, 1.5 * (1 << 20), "[0.5 MiB 1 MiB 1.5 MiB]"},
	} {
		top, ticks, unit := valueScale(tc.peak, tc.bytes)
		if labels := fmt.Sprint(tickLabels(ticks, tc.bytes, unit)); top != tc.top || labels != tc.labels {
			t.Errorf("valueScale(%v, %v): top %v, labels %s; want %v, %s", tc.peak, tc.bytes, top, labels, tc.top, tc.labels)
		}
	}
}

// TestTimeTicks: at most six ticks inside the window, on round steps of the clock, for windows of a day down
// to a minute; with seconds, and five at most, below six minutes.
func TestTimeTicks(t *testing.T) {
	end := time.Date(2025, 3, 14, 13, 7, 30, 0, time.UTC)
	for _, tc := range []struct {
		span time.Duration
		want string
	}{
		{24 * time.Hour, "[16:00 20:00 00:00 04:00 08:00 12:00]"},
		{6 * time.Hour, "[08:00 09:00 10:00 11:00 12:00 13:00]"},
		{144 * time.Second, "[13:05:30 13:06:00 13:06:30 13:07:00 13:07:30]"},
		// A window that begins and ends on a step has a tick at both ends (which the chart does not label).
		{time.Minute, "[13:06:30 13:06:45 13:07:00 13:07:15 13:07:30]"},
	} {
		w := chartWindow{Start: end.Add(-tc.span), End: end}
		var got []string
		for _, tm := range timeTicks(w) {
			got = append(got, timeLabel(tm, w))
		}
		if fmt.Sprint(got) != tc.want {
			t.Errorf("span %s: %v, want %s", tc.span, got, tc.want)
		}
	}
}
