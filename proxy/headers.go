package proxy

import (
	"net/http"

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
	cacheHit        = "HIT"
	cacheMiss       = "MISS"
	cacheFallback   = "FALLBACK"
	cacheStale      = "STALE"
	errCacheControl = "no-store"
)

// setCommonHeaders sets the headers of every answer, media or error.
func setCommonHeaders(h *fasthttp.ResponseHeader) {
	h.Set("Access-Control-Allow-Origin", "*")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", headerCSP)
}

// setObjectHeaders sets the headers that describe an object, for 200, 206 and 304 alike.
// lastModified is m.LastModified already formatted, or "" to format it here.
func (s *Server) setObjectHeaders(h *fasthttp.ResponseHeader, m *origin.Meta, from origin.From, lastModified string) {
	setCommonHeaders(h)
	h.Set("Accept-Ranges", "bytes")
	h.Set("Cache-Control", s.cfg.CacheControl)
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

// cacheStatus is the X-Cache value for an answer that came from where from says, and the
// X-Cache-Tier value ("" for none).
func cacheStatus(from origin.From) (status, tier string) {
	switch from.Source {
	case cache.SourceMemory, cache.SourceDisk:
		if from.Stale {
			return cacheStale, string(from.Source)
		}
		return cacheHit, string(from.Source)
	case origin.SourceVolume:
		return cacheFallback, ""
	}
	return cacheMiss, ""
}
