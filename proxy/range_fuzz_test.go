package proxy

import (
	"strings"
	"testing"

	"github.com/fedicache/fedicache/origin"
)

// FuzzParseRange checks parseRange on any header value: no panic; a range it accepts is well
// formed, prints back to itself, and resolves against any size to bytes inside the object or to
// "not satisfiable" exactly when RFC 9110 says so.
func FuzzParseRange(f *testing.F) {
	f.Fuzz(func(t *testing.T, h string, size int64) {
		r, ok := parseRange(h)
		if !ok {
			if r != (origin.Range{}) {
				t.Fatalf("parseRange(%q) = %v with false", h, r)
			}
			return
		}
		if strings.Contains(h, ",") {
			t.Fatalf("parseRange(%q) = %v: several ranges taken as one", h, r)
		}
		suffix := r.Start < 0
		switch {
		case suffix && r.End != -1:
			t.Fatalf("parseRange(%q) = %v: a suffix with an end", h, r)
		case !suffix && r.End != -1 && r.End < r.Start:
			t.Fatalf("parseRange(%q) = %v: ends before it starts", h, r)
		}
		if again, ok := parseRange(r.String()); !ok || again != r {
			t.Fatalf("parseRange(%q) = %v, which prints as %q and parses back as %v, %v", h, r, r.String(), again, ok)
		}
		for _, s := range []int64{size, 0, 1, 2, 1000, 1 << 31, maxInt64} {
			if s < 0 {
				continue
			}
			first, last, ok := r.Resolve(s)
			satisfiable := s > 0 && (suffix || r.Start < s)
			if ok != satisfiable {
				t.Fatalf("%v (from %q).Resolve(%d) = %v, want %v", r, h, s, ok, satisfiable)
			}
			if !ok {
				continue
			}
			if first < 0 || first > last || last >= s {
				t.Fatalf("%v (from %q).Resolve(%d) = %d-%d: outside the object", r, h, s, first, last)
			}
			switch {
			case suffix:
				if last != s-1 || last-first+1 != min(-r.Start, s) {
					t.Fatalf("%v (from %q).Resolve(%d) = %d-%d: not the last %d bytes", r, h, s, first, last, -r.Start)
				}
			case first != r.Start || r.End >= 0 && r.End < s && last != r.End || (r.End < 0 || r.End >= s) && last != s-1:
				t.Fatalf("%v (from %q).Resolve(%d) = %d-%d", r, h, s, first, last)
			}
		}
	})
}
