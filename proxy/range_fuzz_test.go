package proxy

import (
	"fmt"
	"strings"
	"testing"
	"time"

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

// FuzzDecide checks decide on any Range and If-Range values and any object size: no panic; a
// 200 carries the whole object, a 206 bytes inside it (those a store's body for the Range
// holds), a 416 only a Range that selects nothing; Content-Range says what the answer carries.
func FuzzDecide(f *testing.F) {
	f.Add("bytes=0-99", "", int64(1000))
	f.Add("bytes=-5000", `"e"`, int64(1000))
	f.Add("bytes=1000-", "Wed, 01 May 2024 12:00:00 GMT", int64(1000))
	f.Add("bytes=-0", "", int64(0))
	f.Fuzz(func(t *testing.T, rng, ifRange string, size int64) {
		if size < 0 {
			return
		}
		m := origin.Meta{Size: size, ETag: `"e"`, LastModified: time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)}
		r := testRequest("GET", "Range", rng, "If-Range", ifRange)
		a := decide(&r, m)
		cr := string(a.appendContentRange(nil))
		switch a.status {
		case 200:
			if a.first != 0 || a.last != size-1 || !a.body || cr != "" {
				t.Fatalf("Range %q, If-Range %q, size %d: 200 with %+v, Content-Range %q", rng, ifRange, size, a, cr)
			}
		case 206:
			held := held(&r.rng, m)
			if !r.hasRange || a.first < 0 || a.first > a.last || a.last >= size || held != a ||
				cr != fmt.Sprintf("bytes %d-%d/%d", a.first, a.last, size) {
				t.Fatalf("Range %q, If-Range %q, size %d: 206 with %+v (a store's body holds %+v), Content-Range %q", rng, ifRange, size, a, held, cr)
			}
		case 416:
			if _, _, ok := r.rng.Resolve(size); !r.hasRange || ok || a.body || cr != fmt.Sprintf("bytes */%d", size) {
				t.Fatalf("Range %q, If-Range %q, size %d: 416 with %+v, Content-Range %q", rng, ifRange, size, a, cr)
			}
		default:
			t.Fatalf("Range %q, If-Range %q, size %d: status %d", rng, ifRange, size, a.status)
		}
	})
}
