package proxy

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/fedicache/fedicache/cache"
	"github.com/fedicache/fedicache/cache/tiertest"
	"github.com/fedicache/fedicache/origin"
	"github.com/valyala/fasthttp"
)

// countingCache is a Cache holding one object that counts the calls the front makes.
type countingCache struct {
	key  string
	data []byte
	meta origin.Meta

	// hit makes Peek answer memory hits.
	hit bool
	// refuseLongSuffix refuses a suffix longer than the object, as some S3-compatible
	// servers do.
	refuseLongSuffix bool
	// silentRefusal refuses a range without the object's Meta.
	silentRefusal bool

	mu    sync.Mutex
	calls map[string]int
}

func newCountingCache(key string, data []byte) *countingCache {
	return &countingCache{key: key, data: data, meta: origin.Meta{
		Size: int64(len(data)), ContentType: "image/png", ETag: `"abc"`,
		LastModified: time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC),
	}}
}

func (c *countingCache) count(op string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.calls == nil {
		c.calls = map[string]int{}
	}
	c.calls[op]++
}

// took returns the calls counted since the last took, as "GetFrom 1, StatFrom 1" ("none"
// without any), Peek not counted (a memory lookup, no I/O).
func (c *countingCache) took() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var b bytes.Buffer
	for _, op := range []string{"StatFrom", "GetFrom"} {
		if n := c.calls[op]; n > 0 {
			if b.Len() > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "%s %d", op, n)
		}
	}
	c.calls = nil
	if b.Len() == 0 {
		return "none"
	}
	return b.String()
}

var fromBucket = origin.From{Source: origin.SourceBucket}

func (c *countingCache) Peek(key string) (cache.Hit, bool) {
	if !c.hit || key != c.key {
		return cache.Hit{}, false
	}
	return cache.Hit{Body: c.data, Entry: &cache.Entry{Key: key, Meta: c.meta},
		LastModified: c.meta.LastModified.Format(http.TimeFormat)}, true
}

func (c *countingCache) StatFrom(ctx context.Context, key string) (origin.Meta, origin.From, error) {
	c.count("StatFrom")
	if key != c.key {
		return origin.Meta{}, origin.From{}, origin.ErrNotFound
	}
	return c.meta, fromBucket, nil
}

func (c *countingCache) GetFrom(ctx context.Context, key string, r *origin.Range) (io.ReadCloser, origin.Meta, origin.From, error) {
	c.count("GetFrom")
	if key != c.key {
		return nil, origin.Meta{}, origin.From{}, origin.ErrNotFound
	}
	if r == nil {
		return io.NopCloser(bytes.NewReader(c.data)), c.meta, fromBucket, nil
	}
	first, last, ok := r.Resolve(c.meta.Size)
	if !ok || c.refuseLongSuffix && r.Start < 0 && -r.Start > c.meta.Size {
		if c.silentRefusal {
			return nil, origin.Meta{}, fromBucket, origin.ErrRangeNotSatisfiable
		}
		return nil, c.meta, fromBucket, fmt.Errorf("fake: get %q %s: %w", key, r, origin.ErrRangeNotSatisfiable)
	}
	return io.NopCloser(bytes.NewReader(c.data[first : last+1])), c.meta, fromBucket, nil
}

var _ Cache = (*countingCache)(nil)

// TestCacheCallsPerRequest: each kind of request costs the cache calls fetch promises, and is
// answered as before.
func TestCacheCallsPerRequest(t *testing.T) {
	const key = "media_attachments/files/000/000/001/original/0123456789abcdef.png"
	data := tiertest.Blob(7, 1000)
	const (
		modDate   = "Wed, 01 May 2024 12:00:00 GMT"
		whole     = "bytes 0-999/1000"
		unsatisfy = "bytes */1000"
	)
	type store struct{ hit, refuseLongSuffix, silentRefusal bool }
	tests := []struct {
		name   string
		method string
		hdr    []string
		store  store
		status int
		cr     string // Content-Range
		first  int    // the bytes of data the body holds (200, 206)
		last   int
		calls  string
	}{
		{"GET", "GET", nil, store{}, 200, "", 0, 999, "GetFrom 1"},
		{"GET Range", "GET", []string{"Range", "bytes=0-99"}, store{}, 206, "bytes 0-99/1000", 0, 99, "GetFrom 1"},
		{"GET Range, If-Range matches", "GET", []string{"Range", "bytes=-100", "If-Range", `"abc"`}, store{}, 206, "bytes 900-999/1000", 900, 999, "GetFrom 1"},
		{"HEAD", "HEAD", nil, store{}, 200, "", 0, -1, "StatFrom 1"},
		{"HEAD Range", "HEAD", []string{"Range", "bytes=10-19"}, store{}, 206, "bytes 10-19/1000", 0, -1, "StatFrom 1"},
		{"HEAD Range beyond the end", "HEAD", []string{"Range", "bytes=1000-"}, store{}, 416, unsatisfy, 0, -1, "StatFrom 1"},
		{"GET If-None-Match matches", "GET", []string{"If-None-Match", `"abc"`}, store{}, 304, "", 0, -1, "StatFrom 1"},
		{"GET If-Modified-Since matches", "GET", []string{"If-Modified-Since", modDate}, store{}, 304, "", 0, -1, "StatFrom 1"},
		{"GET If-None-Match differs", "GET", []string{"If-None-Match", `"x"`}, store{}, 200, "", 0, 999, "StatFrom 1, GetFrom 1"},
		{"GET If-None-Match differs, Range", "GET", []string{"If-None-Match", `"x"`, "Range", "bytes=5-9"}, store{}, 206, "bytes 5-9/1000", 5, 9, "StatFrom 1, GetFrom 1"},
		{"GET If-None-Match differs, stale If-Range", "GET", []string{"If-None-Match", `"x"`, "Range", "bytes=5-9", "If-Range", `"old"`}, store{}, 200, "", 0, 999, "StatFrom 1, GetFrom 1"},
		{"GET If-None-Match differs, Range beyond the end", "GET", []string{"If-None-Match", `"x"`, "Range", "bytes=1000-"}, store{}, 416, unsatisfy, 0, -1, "StatFrom 1"},
		{"GET malformed If-Modified-Since", "GET", []string{"If-Modified-Since", "yesterday"}, store{}, 200, "", 0, 999, "GetFrom 1"},
		{"GET Range beyond the end", "GET", []string{"Range", "bytes=1000-"}, store{}, 416, unsatisfy, 0, -1, "GetFrom 1"},
		{"GET bytes=-0", "GET", []string{"Range", "bytes=-0"}, store{}, 416, unsatisfy, 0, -1, "GetFrom 1"},
		{"GET Range beyond the end, refusal without Meta", "GET", []string{"Range", "bytes=1000-"}, store{silentRefusal: true}, 416, unsatisfy, 0, -1, "StatFrom 1, GetFrom 1"},
		{"GET long suffix", "GET", []string{"Range", "bytes=-5000"}, store{}, 206, whole, 0, 999, "GetFrom 1"},
		{"GET long suffix, refused", "GET", []string{"Range", "bytes=-5000"}, store{refuseLongSuffix: true}, 206, whole, 0, 999, "GetFrom 2"},
		{"GET long suffix, refused without Meta", "GET", []string{"Range", "bytes=-5000"}, store{refuseLongSuffix: true, silentRefusal: true}, 206, whole, 0, 999, "StatFrom 1, GetFrom 2"},
		{"GET Range, stale If-Range", "GET", []string{"Range", "bytes=0-9", "If-Range", `"old"`}, store{}, 200, "", 0, 999, "GetFrom 2"},
		{"GET Range beyond the end, stale If-Range", "GET", []string{"Range", "bytes=1000-", "If-Range", `"old"`}, store{}, 200, "", 0, 999, "GetFrom 2"},
		{"GET Range beyond the end, If-Range matches", "GET", []string{"Range", "bytes=1000-", "If-Range", `"abc"`}, store{}, 416, unsatisfy, 0, -1, "GetFrom 1"},
		{"GET missing", "GET /missing.png", nil, store{}, 404, "", 0, -1, "GetFrom 1"},
		{"memory hit GET", "GET", nil, store{hit: true}, 200, "", 0, 999, "none"},
		{"memory hit Range", "GET", []string{"Range", "bytes=0-99"}, store{hit: true}, 206, "bytes 0-99/1000", 0, 99, "none"},
		{"memory hit Range beyond the end", "GET", []string{"Range", "bytes=1000-"}, store{hit: true}, 416, unsatisfy, 0, -1, "none"},
		{"memory hit If-None-Match", "GET", []string{"If-None-Match", `"abc"`}, store{hit: true}, 304, "", 0, -1, "none"},
		{"memory hit HEAD", "HEAD", nil, store{hit: true}, 200, "", 0, -1, "none"},
	}
	for _, tt := range tests {
		c := newCountingCache(key, data)
		c.hit, c.refuseLongSuffix, c.silentRefusal = tt.store.hit, tt.store.refuseLongSuffix, tt.store.silentRefusal
		s := New(c, Config{}, nil)
		s.log = discardLogger()
		var ctx fasthttp.RequestCtx
		method, target := tt.method, "/"+key
		if m, p, ok := bytes.Cut([]byte(tt.method), []byte(" ")); ok {
			method, target = string(m), string(p)
		}
		ctx.Request.Header.SetMethod(method)
		ctx.Request.SetRequestURI(target)
		for i := 0; i+1 < len(tt.hdr); i += 2 {
			ctx.Request.Header.Set(tt.hdr[i], tt.hdr[i+1])
		}
		s.handle(&ctx)
		resp := &ctx.Response
		body := resp.Body() // reads a body stream to its end
		if calls := c.took(); calls != tt.calls {
			t.Errorf("%s: the cache was asked %s; want %s", tt.name, calls, tt.calls)
		}
		if resp.StatusCode() != tt.status {
			t.Errorf("%s: status %d, want %d", tt.name, resp.StatusCode(), tt.status)
			continue
		}
		if cr := string(resp.Header.Peek("Content-Range")); cr != tt.cr {
			t.Errorf("%s: Content-Range %q, want %q", tt.name, cr, tt.cr)
		}
		switch {
		case tt.status != 200 && tt.status != 206:
			if tt.status != 404 && len(body) > 0 && bytes.Contains(body, data[:16]) {
				t.Errorf("%s: %d carried the object's bytes", tt.name, tt.status)
			}
		case method == "HEAD":
			want := 1000
			if tt.status == 206 {
				want = 10
			}
			// (a memory hit leaves the body for fasthttp to drop as it writes a HEAD answer)
			if len(body) != 0 && !tt.store.hit || resp.Header.ContentLength() != want {
				t.Errorf("%s: %d body bytes, Content-Length %d; want none and %d", tt.name, len(body), resp.Header.ContentLength(), want)
			}
		case !bytes.Equal(body, data[tt.first:tt.last+1]):
			t.Errorf("%s: %d body bytes, want bytes %d-%d", tt.name, len(body), tt.first, tt.last)
		}
		ctx.Response.ResetBody()
	}
}
