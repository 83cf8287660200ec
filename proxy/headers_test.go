package proxy

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fedicache/fedicache/cache"
	"github.com/fedicache/fedicache/origin"
	"github.com/valyala/fasthttp"
)

// setObjectHeadersBySet is setObjectHeaders as fasthttp's Set writes it, each name normalised:
// what clients have always seen.
func setObjectHeadersBySet(h *fasthttp.ResponseHeader, cacheControl string, m *origin.Meta, from origin.From, lastModified string) {
	h.Set("Access-Control-Allow-Origin", "*")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", headerCSP)
	h.Set("Accept-Ranges", "bytes")
	h.Set("Cache-Control", cacheControl)
	if m.ETag != "" {
		h.Set("ETag", m.ETag)
	}
	if lastModified != "" {
		h.Set("Last-Modified", lastModified)
	} else if !m.LastModified.IsZero() {
		h.Set("Last-Modified", m.LastModified.UTC().Format(http.TimeFormat))
	}
	status, tier := cacheStatus(from)
	h.Set(xCache, status)
	if tier != "" {
		h.Set(xCacheTier, tier)
	}
}

// TestObjectHeadersAsSetWritesThem checks that the headers set with pre-built names are, byte
// for byte, those fasthttp's Set wrote.
func TestObjectHeadersAsSetWritesThem(t *testing.T) {
	mod := time.Date(2024, 2, 29, 13, 4, 5, 0, time.FixedZone("CET", 3600))
	froms := []origin.From{
		{}, {Source: origin.SourceBucket}, {Source: origin.SourceVolume},
		{Source: cache.SourceMemory}, {Source: cache.SourceDisk},
		{Source: cache.SourceMemory, Stale: true}, {Source: cache.SourceDisk, Stale: true},
	}
	metas := []origin.Meta{
		{},
		{ETag: `"0123456789abcdef0123456789abcdef"`, LastModified: mod, ContentType: "image/png", Size: 3},
		{ETag: `W/"x"`},
		{LastModified: mod},
	}
	for _, cc := range []string{"", "private, max-age=60"} {
		s := New(nil, Config{CacheControl: cc}, nil)
		for _, from := range froms {
			for _, m := range metas {
				for _, lm := range []string{"", "Thu, 01 Jan 1970 00:00:00 GMT"} {
					var got, want fasthttp.Response
					got.SetStatusCode(200)
					want.SetStatusCode(200)
					s.setObjectHeaders(&got.Header, &m, from, lm)
					setObjectHeadersBySet(&want.Header, s.cfg.CacheControl, &m, from, lm)
					if g, w := withoutDate(&got.Header), withoutDate(&want.Header); g != w {
						t.Errorf("from %+v, meta %+v, lastModified %q:\n%s\nwant\n%s", from, m, lm, g, w)
					}
				}
			}
		}
	}
	var got, want fasthttp.Response
	setCommonHeaders(&got.Header)
	want.Header.Set("Access-Control-Allow-Origin", "*")
	want.Header.Set("X-Content-Type-Options", "nosniff")
	want.Header.Set("Content-Security-Policy", headerCSP)
	if g, w := withoutDate(&got.Header), withoutDate(&want.Header); g != w {
		t.Errorf("common headers:\n%s\nwant\n%s", g, w)
	}
	if v := string(got.Header.Peek("ETag")); v != "" {
		t.Errorf("ETag %q on an answer without one", v)
	}
}

// withoutDate is h as it goes out, without the Date fasthttp adds (the clock's, which may
// differ between two calls).
func withoutDate(h *fasthttp.ResponseHeader) string {
	var b strings.Builder
	for line := range strings.SplitSeq(h.String(), "\r\n") {
		if !strings.HasPrefix(line, "Date: ") {
			b.WriteString(line + "\r\n")
		}
	}
	return b.String()
}

// BenchmarkObjectHeaders is the headers of a memory hit alone.
func BenchmarkObjectHeaders(b *testing.B) {
	s := New(nil, Config{}, nil)
	m := origin.Meta{ETag: `"0123456789abcdef0123456789abcdef"`, LastModified: time.Now(), ContentType: "image/png"}
	lm := m.LastModified.UTC().Format(http.TimeFormat)
	var h fasthttp.ResponseHeader
	b.ReportAllocs()
	for b.Loop() {
		h.Reset()
		s.setObjectHeaders(&h, &m, fromMemory, lm)
	}
}

// TestCacheStatusOfPeerAnswers: an answer a peer gave (the key's owner, with cluster.fill) says
// what the owner's answer was: a hit in its tiers is a HIT from tier "peer", its old volume a
// FALLBACK, its own fetch from the bucket a MISS.
func TestCacheStatusOfPeerAnswers(t *testing.T) {
	for _, c := range []struct {
		peer         origin.Source
		status, tier string
	}{
		{cache.SourceMemory, cacheHit, "peer"},
		{cache.SourceDisk, cacheHit, "peer"},
		{origin.SourceVolume, cacheFallback, ""},
		{origin.SourceBucket, cacheMiss, ""},
		{"", cacheMiss, ""},
	} {
		status, tier := cacheStatus(origin.From{Source: origin.SourcePeer, Peer: c.peer})
		if status != c.status || tier != c.tier {
			t.Errorf("peer answer from %q: X-Cache %q tier %q, want %q %q", c.peer, status, tier, c.status, c.tier)
		}
	}
}
