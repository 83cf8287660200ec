package proxy

import (
	"net/http"
	"unsafe"

	"github.com/fedicache/fedicache/cache"
	"github.com/fedicache/fedicache/origin"
	"github.com/valyala/fasthttp"
)

// Header values every answer carries, as Mastodon sends them for media.
const (
	headerCSP       = "default-src 'none'; form-action 'none'"
	serverName      = "fedicache"
	xCache          = "X-Cache"
	xCacheTier      = "X-Cache-Tier"
	xCacheStore     = "X-Cache-Store" // the old store of a FALLBACK answer
	cacheHit        = "HIT"
	cacheMiss       = "MISS"
	cacheFallback   = "FALLBACK"
	cacheStale      = "STALE"
	errCacheControl = "no-store"
)

// The names of the headers set here, in the form fasthttp's Set would give them (so ETag
// goes out as "Etag", as it always has), and their constant values: SetCanonical takes them
// as they are, without copying and normalising each name on every answer. fasthttp copies
// names and values and never writes to them.
var (
	hdrAllowOrigin  = []byte("Access-Control-Allow-Origin")
	hdrNoSniff      = []byte("X-Content-Type-Options")
	hdrCSP          = []byte("Content-Security-Policy")
	hdrAcceptRanges = []byte("Accept-Ranges")
	hdrCacheControl = []byte("Cache-Control")
	hdrETag         = []byte("Etag")
	hdrLastModified = []byte("Last-Modified")
	hdrXCache       = []byte(xCache)
	hdrXCacheTier   = []byte(xCacheTier)
	hdrXCacheStore  = []byte(xCacheStore)

	valAnyOrigin = []byte("*")
	valNoSniff   = []byte("nosniff")
	valCSP       = []byte(headerCSP)
	valBytes     = []byte("bytes")
)

// setCommonHeaders sets the headers of every answer, media or error.
func setCommonHeaders(h *fasthttp.ResponseHeader) {
	h.SetCanonical(hdrAllowOrigin, valAnyOrigin)
	h.SetCanonical(hdrNoSniff, valNoSniff)
	h.SetCanonical(hdrCSP, valCSP)
}

// setObjectHeaders sets the headers that describe an object, for 200, 206 and 304 alike.
// lastModified is m.LastModified already formatted, or "" to format it here.
func (s *Server) setObjectHeaders(h *fasthttp.ResponseHeader, m *origin.Meta, from origin.From, lastModified string) {
	setCommonHeaders(h)
	h.SetCanonical(hdrAcceptRanges, valBytes)
	h.SetCanonical(hdrCacheControl, s2b(s.cfg.CacheControl))
	if m.ETag != "" {
		h.SetCanonical(hdrETag, s2b(m.ETag))
	}
	if lastModified != "" {
		h.SetCanonical(hdrLastModified, s2b(lastModified))
	} else if !m.LastModified.IsZero() {
		var lm [len(http.TimeFormat) + 8]byte
		h.SetCanonical(hdrLastModified, m.LastModified.UTC().AppendFormat(lm[:0], http.TimeFormat))
	}
	status, tier := cacheStatus(from)
	h.SetCanonical(hdrXCache, s2b(status))
	if tier != "" {
		h.SetCanonical(hdrXCacheTier, s2b(tier))
	}
	if status == cacheFallback && from.Store != "" {
		h.SetCanonical(hdrXCacheStore, s2b(from.Store))
	}
}

// cacheStatus is the X-Cache value for an answer that came from where from says, and the
// X-Cache-Tier value ("" for none).
func cacheStatus(from origin.From) (status, tier string) {
	switch from.Source {
	case cache.SourceMemory, cache.SourceDisk:
		if from.Stale {
			return cacheStale, string(from.Source)
		}
		return cacheHit, string(from.Source)
	case origin.SourceVolume, origin.SourceOldBucket:
		return cacheFallback, ""
	case origin.SourcePeer: // what the owner's answer was, from the replica it came through
		switch {
		case from.Peer == cache.SourceMemory || from.Peer == cache.SourceDisk:
			return cacheHit, string(origin.SourcePeer)
		case from.Peer.Old():
			return cacheFallback, ""
		}
	}
	return cacheMiss, ""
}

// s2b views s as bytes without copying, for a fasthttp setter that copies them; they must not
// be written to.
func s2b(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }
