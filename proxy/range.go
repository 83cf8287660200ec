package proxy

import (
	"strconv"
	"strings"

	"github.com/fedicache/fedicache/origin"
)

// parseRange reads one Range header value. It returns false when the header is absent, names
// another unit, is malformed or asks for several ranges: the whole object is then served with
// 200, as RFC 9110 allows. A suffix of zero bytes ("bytes=-0") is returned as a range that no
// object satisfies.
func parseRange(h string) (origin.Range, bool) {
	h = strings.TrimSpace(h)
	spec, ok := strings.CutPrefix(h, "bytes=")
	if !ok || strings.IndexByte(spec, ',') >= 0 {
		return origin.Range{}, false
	}
	first, last, ok := strings.Cut(strings.TrimSpace(spec), "-")
	if !ok {
		return origin.Range{}, false
	}
	first, last = strings.TrimSpace(first), strings.TrimSpace(last)
	if first == "" {
		n, ok := parseDigits(last)
		if !ok {
			return origin.Range{}, false
		}
		if n == 0 {
			return origin.Range{Start: maxInt64, End: -1}, true // satisfiable by no object
		}
		return origin.Suffix(n), true
	}
	start, ok := parseDigits(first)
	if !ok {
		return origin.Range{}, false
	}
	if last == "" {
		return origin.Range{Start: start, End: -1}, true
	}
	end, ok := parseDigits(last)
	if !ok || end < start {
		return origin.Range{}, false
	}
	return origin.Range{Start: start, End: end}, true
}

const maxInt64 = 1<<63 - 1

// parseDigits parses a non-empty run of ASCII digits (no sign, no spaces) that fits an int64.
func parseDigits(s string) (int64, bool) {
	if s == "" || len(s) > 19 {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}

// appendContentRange appends a Content-Range value for bytes first-last of size.
func appendContentRange(dst []byte, first, last, size int64) []byte {
	dst = append(dst, "bytes "...)
	dst = strconv.AppendInt(dst, first, 10)
	dst = append(dst, '-')
	dst = strconv.AppendInt(dst, last, 10)
	dst = append(dst, '/')
	return strconv.AppendInt(dst, size, 10)
}
