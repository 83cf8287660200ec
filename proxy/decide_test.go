package proxy

import (
	"bufio"
	"strings"
	"testing"
	"time"

	"github.com/fedicache/fedicache/origin"
	"github.com/valyala/fasthttp"
)

// testRequest returns the request a client sends with method and the header pairs given
// (name, value, ...), as readRequest reads it, without a key.
func testRequest(method string, hdr ...string) request {
	v := map[string]string{}
	for i := 0; i+1 < len(hdr); i += 2 {
		v[hdr[i]] = hdr[i+1]
	}
	r := request{head: method == "HEAD"}
	r.readHeaders(v["Range"], v["If-None-Match"], v["If-Modified-Since"], v["If-Range"])
	return r
}

func TestDecide(t *testing.T) {
	mod := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	const (
		modDate    = "Wed, 01 May 2024 12:00:00 GMT"
		laterDate  = "Wed, 01 May 2024 13:00:00 GMT"
		beforeDate = "Wed, 01 May 2024 11:59:59 GMT"
	)
	obj := origin.Meta{Size: 1000, ETag: `"abc"`, LastModified: mod.Add(300 * time.Millisecond)}
	weakObj := origin.Meta{Size: 1000, ETag: `W/"abc"`, LastModified: mod}
	noValidators := origin.Meta{Size: 1000}
	empty := origin.Meta{Size: 0, ETag: `"d41d8cd98f00b204e9800998ecf8427e"`, LastModified: mod}

	const (
		ok, partial, notMod, unsat = fasthttp.StatusOK, fasthttp.StatusPartialContent,
			fasthttp.StatusNotModified, fasthttp.StatusRequestedRangeNotSatisfiable
	)
	tests := []struct {
		name   string
		method string
		hdr    []string
		m      origin.Meta
		status int
		first  int64
		last   int64
		cr     string // Content-Range
	}{
		// Conditionals.
		{"no validators", "GET", nil, obj, ok, 0, 999, ""},
		{"If-None-Match strong", "GET", []string{"If-None-Match", `"abc"`}, obj, notMod, 0, -1, ""},
		{"If-None-Match weak tag, weak comparison", "GET", []string{"If-None-Match", `W/"abc"`}, obj, notMod, 0, -1, ""},
		{"If-None-Match against a weak ETag", "GET", []string{"If-None-Match", `"abc"`}, weakObj, notMod, 0, -1, ""},
		{"If-None-Match list", "GET", []string{"If-None-Match", `"x", "abc"`}, obj, notMod, 0, -1, ""},
		{"If-None-Match list without spaces", "GET", []string{"If-None-Match", `"x",W/"abc"`}, obj, notMod, 0, -1, ""},
		{"If-None-Match *", "GET", []string{"If-None-Match", "*"}, obj, notMod, 0, -1, ""},
		{"If-None-Match other", "GET", []string{"If-None-Match", `"x"`}, obj, ok, 0, 999, ""},
		{"If-None-Match longer tag", "GET", []string{"If-None-Match", `"abcd"`}, obj, ok, 0, 999, ""},
		{"If-None-Match, object without ETag", "GET", []string{"If-None-Match", `"abc"`}, noValidators, ok, 0, 999, ""},
		{"If-Modified-Since equal", "GET", []string{"If-Modified-Since", modDate}, obj, notMod, 0, -1, ""},
		{"If-Modified-Since later", "GET", []string{"If-Modified-Since", laterDate}, obj, notMod, 0, -1, ""},
		{"If-Modified-Since earlier", "GET", []string{"If-Modified-Since", beforeDate}, obj, ok, 0, 999, ""},
		{"If-Modified-Since garbage", "GET", []string{"If-Modified-Since", "yesterday"}, obj, ok, 0, 999, ""},
		{"If-Modified-Since, object without date", "GET", []string{"If-Modified-Since", laterDate}, noValidators, ok, 0, 999, ""},
		{"both, If-None-Match differs", "GET", []string{"If-None-Match", `"x"`, "If-Modified-Since", modDate}, obj, ok, 0, 999, ""},
		{"both, If-None-Match matches", "GET", []string{"If-None-Match", `"abc"`, "If-Modified-Since", beforeDate}, obj, notMod, 0, -1, ""},
		{"304 before a Range", "GET", []string{"If-None-Match", `"abc"`, "Range", "bytes=0-9"}, obj, notMod, 0, -1, ""},
		{"304 before a Range beyond the end", "GET", []string{"If-None-Match", `"abc"`, "Range", "bytes=5000-"}, obj, notMod, 0, -1, ""},
		{"validators differ, Range applies", "GET", []string{"If-None-Match", `"x"`, "Range", "bytes=0-9"}, obj, partial, 0, 9, "bytes 0-9/1000"},

		// Ranges.
		{"first-last", "GET", []string{"Range", "bytes=0-99"}, obj, partial, 0, 99, "bytes 0-99/1000"},
		{"one byte", "GET", []string{"Range", "bytes=0-0"}, obj, partial, 0, 0, "bytes 0-0/1000"},
		{"last past the end", "GET", []string{"Range", "bytes=900-5000"}, obj, partial, 900, 999, "bytes 900-999/1000"},
		{"open", "GET", []string{"Range", "bytes=100-"}, obj, partial, 100, 999, "bytes 100-999/1000"},
		{"suffix", "GET", []string{"Range", "bytes=-100"}, obj, partial, 900, 999, "bytes 900-999/1000"},
		{"suffix longer than the object", "GET", []string{"Range", "bytes=-5000"}, obj, partial, 0, 999, "bytes 0-999/1000"},
		{"first at the end", "GET", []string{"Range", "bytes=1000-"}, obj, unsat, 0, -1, "bytes */1000"},
		{"beyond the end", "GET", []string{"Range", "bytes=5000-6000"}, obj, unsat, 0, -1, "bytes */1000"},
		{"bytes=-0", "GET", []string{"Range", "bytes=-0"}, obj, unsat, 0, -1, "bytes */1000"},
		{"multi-range ignored", "GET", []string{"Range", "bytes=0-9,20-29"}, obj, ok, 0, 999, ""},
		{"multi-range beyond the end ignored", "GET", []string{"Range", "bytes=5000-,6000-"}, obj, ok, 0, 999, ""},
		{"malformed ignored", "GET", []string{"Range", "bytes=9-1"}, obj, ok, 0, 999, ""},
		{"other unit ignored", "GET", []string{"Range", "lines=1-2"}, obj, ok, 0, 999, ""},

		// If-Range.
		{"If-Range ETag matches", "GET", []string{"Range", "bytes=0-9", "If-Range", `"abc"`}, obj, partial, 0, 9, "bytes 0-9/1000"},
		{"If-Range weak ETag", "GET", []string{"Range", "bytes=0-9", "If-Range", `W/"abc"`}, obj, ok, 0, 999, ""},
		{"If-Range against a weak ETag", "GET", []string{"Range", "bytes=0-9", "If-Range", `"abc"`}, weakObj, ok, 0, 999, ""},
		{"If-Range other ETag", "GET", []string{"Range", "bytes=0-9", "If-Range", `"x"`}, obj, ok, 0, 999, ""},
		{"If-Range date equal", "GET", []string{"Range", "bytes=0-9", "If-Range", modDate}, obj, partial, 0, 9, "bytes 0-9/1000"},
		{"If-Range date different", "GET", []string{"Range", "bytes=0-9", "If-Range", laterDate}, obj, ok, 0, 999, ""},
		{"If-Range date, object without date", "GET", []string{"Range", "bytes=0-9", "If-Range", modDate}, noValidators, ok, 0, 999, ""},
		{"If-Range garbage", "GET", []string{"Range", "bytes=0-9", "If-Range", "garbage"}, obj, ok, 0, 999, ""},
		{"If-Range mismatch, range beyond the end", "GET", []string{"Range", "bytes=5000-", "If-Range", `"x"`}, obj, ok, 0, 999, ""},
		{"If-Range matches, range beyond the end", "GET", []string{"Range", "bytes=5000-", "If-Range", `"abc"`}, obj, unsat, 0, -1, "bytes */1000"},
		{"If-Range without Range", "GET", []string{"If-Range", `"x"`}, obj, ok, 0, 999, ""},

		// HEAD: as its GET, without a body.
		{"HEAD", "HEAD", nil, obj, ok, 0, 999, ""},
		{"HEAD with Range", "HEAD", []string{"Range", "bytes=10-19"}, obj, partial, 10, 19, "bytes 10-19/1000"},
		{"HEAD with Range beyond the end", "HEAD", []string{"Range", "bytes=1000-"}, obj, unsat, 0, -1, "bytes */1000"},
		{"HEAD with If-None-Match", "HEAD", []string{"If-None-Match", `"abc"`}, obj, notMod, 0, -1, ""},
		{"HEAD with a stale If-Range", "HEAD", []string{"Range", "bytes=10-19", "If-Range", `"x"`}, obj, ok, 0, 999, ""},

		// Empty objects: no range selects a byte of them.
		{"empty", "GET", nil, empty, ok, 0, -1, ""},
		{"empty HEAD", "HEAD", nil, empty, ok, 0, -1, ""},
		{"empty, open range", "GET", []string{"Range", "bytes=0-"}, empty, unsat, 0, -1, "bytes */0"},
		{"empty, suffix", "GET", []string{"Range", "bytes=-1"}, empty, unsat, 0, -1, "bytes */0"},
		{"empty, If-None-Match", "GET", []string{"If-None-Match", empty.ETag}, empty, notMod, 0, -1, ""},
	}
	for _, tt := range tests {
		r := testRequest(tt.method, tt.hdr...)
		a := decide(&r, tt.m)
		body := tt.method == "GET" && (tt.status == ok || tt.status == partial)
		if a.status != tt.status || a.first != tt.first || a.last != tt.last || a.size != tt.m.Size || a.body != body {
			t.Errorf("%s: decide = %+v; want status %d, bytes %d-%d of %d, body %v", tt.name, a, tt.status, tt.first, tt.last, tt.m.Size, body)
		}
		if want := tt.last - tt.first + 1; tt.status == ok || tt.status == partial {
			if a.length() != want {
				t.Errorf("%s: length %d, want %d", tt.name, a.length(), want)
			}
		}
		if cr := string(a.appendContentRange(nil)); cr != tt.cr {
			t.Errorf("%s: Content-Range %q, want %q", tt.name, cr, tt.cr)
		}
	}
}

// TestDecideAgreesWithHeld: a body fetched for the Range decide applied holds the bytes decide
// chose, so the general path answers what the memory-hit path would.
func TestDecideAgreesWithHeld(t *testing.T) {
	for _, size := range []int64{0, 1, 2, 1000} {
		m := origin.Meta{Size: size, ETag: `"e"`}
		for _, h := range []string{"bytes=0-0", "bytes=0-", "bytes=5-9", "bytes=-1", "bytes=-5000", "bytes=999-", "bytes=1000-", "bytes=-0"} {
			r := testRequest("GET", "Range", h)
			a := decide(&r, m)
			rng := r.rng
			if got := held(&rng, m); got != a {
				t.Errorf("size %d, Range %s: held %+v, decide %+v", size, h, got, a)
			}
		}
		r := testRequest("GET")
		if got, want := held(nil, m), decide(&r, m); got != want {
			t.Errorf("size %d, whole: held %+v, decide %+v", size, got, want)
		}
	}
}

func TestReadRequest(t *testing.T) {
	s := New(nil, Config{StripPrefixes: []string{"/media"}}, nil)
	tests := []struct {
		method, target string
		hdr            []string
		key            string
		keyErr         error
		check          func(r *request) string
	}{
		{"GET", "/media/a/b%20c.png?1234", nil, "a/b c.png", nil, nil},
		{"HEAD", "/a/b.png", []string{"Range", "bytes=0-9", "If-Range", ` "abc" `}, "a/b.png", nil, func(r *request) string {
			if !r.head || !r.hasRange || r.rng != (origin.Range{Start: 0, End: 9}) || !r.ifRange || r.ifRangeETag != `"abc"` {
				return "HEAD, Range and If-Range not read"
			}
			return ""
		}},
		{"GET", "/a/b.png", []string{"If-Range", `"abc"`}, "a/b.png", nil, func(r *request) string {
			if r.ifRange {
				return "If-Range read without a Range"
			}
			return ""
		}},
		{"GET", "/a/b.png", []string{"If-None-Match", `"x"`, "If-Modified-Since", "Wed, 01 May 2024 12:00:00 GMT"}, "a/b.png", nil, func(r *request) string {
			if r.ifNoneMatch != `"x"` || !r.ifModifiedSince.IsZero() || !r.conditional() {
				return "If-Modified-Since kept beside If-None-Match"
			}
			return ""
		}},
		{"GET", "/a/b.png", []string{"If-Modified-Since", "Wed, 01 May 2024 12:00:00 GMT"}, "a/b.png", nil, func(r *request) string {
			if !r.ifModifiedSince.Equal(time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)) || !r.conditional() {
				return "If-Modified-Since not read"
			}
			return ""
		}},
		{"GET", "/a/b.png", []string{"If-Modified-Since", "not a date"}, "a/b.png", nil, func(r *request) string {
			if r.conditional() {
				return "a malformed If-Modified-Since made the request conditional"
			}
			return ""
		}},
		{"GET", "/a/../b.png", nil, "", errBadKey, nil},
		{"GET", "/a/%2e%2E/b.png", nil, "", errBadKey, nil},
		{"GET", "/a/b%2F", nil, "", errNoKey, nil},
		{"GET", "/media/", nil, "", errNoKey, nil},
	}
	for _, tt := range tests {
		var ctx fasthttp.RequestCtx
		ctx.Request.Header.SetMethod(tt.method)
		ctx.Request.SetRequestURI(tt.target)
		for i := 0; i+1 < len(tt.hdr); i += 2 {
			ctx.Request.Header.Set(tt.hdr[i], tt.hdr[i+1])
		}
		var r request
		s.readRequest(&ctx, &r)
		if string(r.key) != tt.key || r.keyErr != tt.keyErr {
			t.Errorf("%s %s: key %q, %v; want %q, %v", tt.method, tt.target, r.key, r.keyErr, tt.key, tt.keyErr)
		}
		if tt.check != nil {
			if bad := tt.check(&r); bad != "" {
				t.Errorf("%s %s %s: %s", tt.method, tt.target, strings.Join(tt.hdr, " "), bad)
			}
		}
		r.release()
		if r.key != nil || r.buf != nil {
			t.Errorf("%s %s: release kept the key's buffer", tt.method, tt.target)
		}
	}
}

// TestReadRequestWire reads requests as a client sends them, header names in any case: the
// server's parser puts them in the canonical form readRequest looks them up by.
func TestReadRequestWire(t *testing.T) {
	s := New(nil, Config{}, nil)
	for _, raw := range []string{
		"GET /a/b.png HTTP/1.1\r\nHost: x\r\nrange: bytes=0-9\r\nif-range: \"abc\"\r\nif-none-match: \"x\"\r\n\r\n",
		"GET /a/b.png HTTP/1.1\r\nHost: x\r\nRANGE: bytes=0-9\r\nIF-RANGE: \"abc\"\r\nIF-NONE-MATCH: \"x\"\r\n\r\n",
	} {
		var ctx fasthttp.RequestCtx
		if err := ctx.Request.Read(bufio.NewReader(strings.NewReader(raw))); err != nil {
			t.Fatal(err)
		}
		var r request
		s.readRequest(&ctx, &r)
		if string(r.key) != "a/b.png" || !r.hasRange || r.ifRangeETag != `"abc"` || r.ifNoneMatch != `"x"` {
			t.Errorf("%q: key %q, Range %v, If-Range %q, If-None-Match %q", raw, r.key, r.hasRange, r.ifRangeETag, r.ifNoneMatch)
		}
		r.release()
	}
}
