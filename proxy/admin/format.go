package admin

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/dustin/go-humanize"
)

// entries is n cache entries, in words.
func entries(n int64) string {
	if n == 1 {
		return "1 entry"
	}
	return humanize.Comma(n) + " entries"
}

// files is n files, in words.
func files(n int64) string {
	if n == 1 {
		return "1 file"
	}
	return humanize.Comma(n) + " files"
}

// percent is part of whole as a percentage with one decimal, rounded, but never to 100% short
// of the whole nor to 0% above nothing.
func percent(part, whole int64) string {
	switch {
	case whole <= 0 || part >= whole:
		return "100%"
	case part <= 0:
		return "0%"
	}
	tenths := min(max(int64(math.Round(float64(part)/float64(whole)*1000)), 1), 999)
	if tenths%10 == 0 {
		return strconv.FormatInt(tenths/10, 10) + "%"
	}
	return fmt.Sprintf("%d.%d%%", tenths/10, tenths%10)
}

// humanBytes is n bytes in binary units, as humanize writes them ("812 KiB", "2.5 GiB"); the
// page shows a percent beside every figure that needs more digits.
func humanBytes(n int64) string { return humanize.IBytes(uint64(max(n, 0))) }

// humanDuration is d to the second, in its two largest units: "45s", "3m 05s", "2h 07m",
// "3d 04h".
func humanDuration(d time.Duration) string {
	s := int64(max(d, 0).Round(time.Second) / time.Second)
	switch {
	case s < 60:
		return fmt.Sprintf("%ds", s)
	case s < 3600:
		return fmt.Sprintf("%dm %02ds", s/60, s%60)
	case s < 48*3600:
		return fmt.Sprintf("%dh %02dm", s/3600, s%3600/60)
	default:
		return fmt.Sprintf("%dd %02dh", s/86400, s%86400/3600)
	}
}

// infoValue is a value of Config.Info as the page shows it.
func infoValue(v any) string {
	switch v := v.(type) {
	case nil:
		return "–"
	case string:
		if v == "" {
			return "–"
		}
		return v
	case []string:
		if len(v) == 0 {
			return "–"
		}
		return strings.Join(v, ", ")
	default:
		return fmt.Sprint(v)
	}
}
