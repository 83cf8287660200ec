package proxy

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"time"

	"github.com/valyala/fasthttp"
)

// BusterConfig matches Mastodon's cache buster (CACHE_BUSTER_ENABLED): when Mastodon deletes or
// hides a file it sends Method to the media URL with the header Header: Secret.
type BusterConfig struct {
	// Header is CACHE_BUSTER_SECRET_HEADER. Zero turns the cache buster off.
	Header string
	// Secret is CACHE_BUSTER_SECRET.
	Secret string
	// Method is CACHE_BUSTER_HTTP_METHOD. Zero means GET.
	Method string
}

// Buster drops a key everywhere: every cache tier of every replica, the CDN's copy of its
// public URL, and, when the bucket no longer holds it, the old volume's copy (a tombstone).
type Buster interface {
	Bust(ctx context.Context, key, publicURL string) (BustReport, error)
}

// BustReport says what a cache-buster request did.
type BustReport struct {
	// Purged counts the entries dropped from this replica's tiers.
	Purged int `json:"purged"`
	// Kind is what the stores said Mastodon did: "deleted", "hidden" or "purged" (visible);
	// "placeholder" for a missing.png placeholder, a file that never existed (nothing done).
	Kind string `json:"kind,omitempty"`
	// Tombstoned is true when the key was recorded as deleted.
	Tombstoned bool `json:"tombstoned"`
	// Peers are the other replicas' answers.
	Peers []PeerResult `json:"peers,omitempty"`
	// CDNQueued is true when the public URL was queued for a purge at the CDN.
	CDNQueued bool `json:"cdn_purge_queued,omitempty"`
	// Error says what failed, when something did (the purge still happened).
	Error string `json:"error,omitempty"`
}

// publicURL is the URL the request was made for, as a CDN in front (TLS) caches it: https,
// the Host, the path as sent, no query.
func publicURL(ctx *fasthttp.RequestCtx) string {
	target := ctx.Request.Header.RequestURI()
	if i := bytes.IndexByte(target, '?'); i >= 0 {
		target = target[:i]
	}
	return "https://" + string(ctx.Host()) + string(stripAbsoluteForm(target))
}

// isBust reports whether the request is Mastodon's cache buster with the right secret
// (compared in constant time). A wrong secret is an ordinary request.
func (s *Server) isBust(ctx *fasthttp.RequestCtx) bool {
	if s.bustHeader == "" || !bytes.EqualFold(ctx.Method(), s.bustMethod) {
		return false
	}
	v := ctx.Request.Header.Peek(s.bustHeader)
	return len(v) > 0 && subtle.ConstantTimeCompare(v, s.bustSecret) == 1
}

// bust answers a cache-buster request: 200 with what was done, never a byte of media.
func (s *Server) bust(ctx *fasthttp.RequestCtx) {
	key, err := s.keys.key(ctx.Request.Header.RequestURI())
	if err != nil {
		s.fail(ctx, statusFor(err))
		return
	}
	c, cancel := context.WithTimeout(s.base, 30*time.Second)
	defer cancel()
	rep, err := s.cfg.Buster.Bust(c, key, publicURL(ctx))
	if err != nil {
		rep.Error = err.Error()
		s.log.Warn("cache buster: not everything was done", "key", key, "err", err)
	}
	s.log.Info("cache buster", "key", key, "kind", rep.Kind, "purged", rep.Purged, "tombstoned", rep.Tombstoned)
	h := &ctx.Response.Header
	setCommonHeaders(h)
	h.Set("Cache-Control", errCacheControl)
	h.SetContentType("application/json")
	ctx.SetStatusCode(fasthttp.StatusOK)
	b, _ := json.Marshal(rep)
	ctx.SetBody(b)
	s.metrics.busts.Inc()
}
