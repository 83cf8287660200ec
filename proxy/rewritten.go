package proxy

// Objects their server rewrites in place.
//
// Mastodon, Pixelfed and Misskey never write new bytes under a key they have used, and the
// front answers with headers.cache_control (a year, immutable). PeerTube's live streams do:
// with object storage, every new segment re-uploads the live's resolution playlists
// (hls/<video uuid>/0.m3u8, 1.m3u8...) and its segments-sha256.json under the same keys, its
// master playlist is always master.m3u8, and a permanent live's next session numbers its
// segments (0-000000.ts...) from zero again under the same video's folder. Served from the
// cache and kept for a year downstream, a live would freeze on its first playlist.

import (
	"bytes"
)

// RewrittenCacheControl is the Cache-Control of objects their server rewrites in place: a CDN
// or browser may keep them, but asks again (If-None-Match with the ETag) before each use.
const RewrittenCacheControl = "no-cache"

// RewrittenConfig sends the keys of objects their server rewrites in place to a cache of
// their own.
type RewrittenConfig struct {
	// Match reports whether key names an object its server rewrites in place, e.g.
	// RewrittenHLS. It runs on every request and must not allocate. Nil means none.
	Match func(key []byte) bool
	// Cache answers the keys Match names, in place of the front's Cache: one that keeps
	// nothing (cache.New without tiers), so every answer carries the store's current bytes,
	// while requests at the same moment still share one fetch and the guard still applies.
	// Nil means none.
	Cache Cache
}

// RewrittenHLS reports whether key names an object that HLS live streaming, as PeerTube
// stores it, rewrites in place: a playlist (*.m3u8), the live's segments-sha256.json, or a
// live segment (*.ts). A video on demand's playlists have names of their own
// (<uuid>-master.m3u8, <uuid>-720.m3u8) and are matched too, for a request each per view; its
// fragments (<uuid>-720-fragmented.mp4) and its <uuid>-segments-sha256.json are not.
func RewrittenHLS(key []byte) bool {
	name := key[bytes.LastIndexByte(key, '/')+1:]
	return hasSuffixFold(name, ".m3u8") || hasSuffixFold(name, ".ts") || string(name) == "segments-sha256.json"
}

func hasSuffixFold(b []byte, suffix string) bool {
	return len(b) >= len(suffix) && bytes.EqualFold(b[len(b)-len(suffix):], []byte(suffix))
}

// newRewritten returns the front that answers the keys of s.cfg.Rewritten: s's own answers,
// from the Rewritten cache and with RewrittenCacheControl. Nil when there are none.
func (s *Server) newRewritten() *Server {
	rc := s.cfg.Rewritten
	if rc.Match == nil || rc.Cache == nil {
		return nil
	}
	cfg := s.cfg
	cfg.CacheControl = RewrittenCacheControl
	cfg.Rewritten = RewrittenConfig{}
	return &Server{cfg: cfg, cache: rc.Cache, keys: s.keys, metrics: s.metrics, log: s.log, base: s.base, abort: s.abort}
}
