package proxy

import (
	"net/http"

	"github.com/fedicache/fedicache/origin"
	"github.com/valyala/fasthttp"
)

// Header values every answer carries, as Mastodon sends them for media.
const (
	headerCSP       = "default-src 'none'; form-action 'none'"
	serverName      = "fedicache"
	xCache          = "X-Cache"
	cacheMiss       = "MISS"
	cacheFallback   = "FALLBACK"
	errCacheControl = "no-store"
)

// setCommonHeaders sets the headers of every answer, media or error.
func setCommonHeaders(h *fasthttp.ResponseHeader) {
	h.Set("Access-Control-Allow-Origin", "*")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", headerCSP)
}

// setObjectHeaders sets the headers that describe an object, for 200, 206 and 304 alike.
func (s *Server) setObjectHeaders(h *fasthttp.ResponseHeader, m origin.Meta) {
	setCommonHeaders(h)
	h.Set("Accept-Ranges", "bytes")
	h.Set("Cache-Control", s.cfg.CacheControl)
	if m.ETag != "" {
		h.Set("ETag", m.ETag)
	}
	if !m.LastModified.IsZero() {
		h.Set("Last-Modified", m.LastModified.UTC().Format(http.TimeFormat))
	}
	h.Set(xCache, cacheStatus(m.Source))
}

// cacheStatus is the X-Cache value for an answer from src.
func cacheStatus(src origin.Source) string {
	if src == origin.SourceVolume {
		return cacheFallback
	}
	return cacheMiss
}
