package main

import (
	"log/slog"
	"time"

	"github.com/fedicache/fedicache/cache"
	"github.com/fedicache/fedicache/cmd/fedicache/config"
	"github.com/fedicache/fedicache/origin"
	"github.com/fedicache/fedicache/proxy"
)

// wireFront gives the public front what it asks of the stores themselves, past the cache and
// the other replicas (stores is the bucket and the old stores, origin.FallbackChain): whether
// removed remote media is truly gone before it is redirected to Mastodon's media proxy
// (mastodon.web_domain), and the answers for objects their server rewrites in place
// (proxy.RewrittenHLS: PeerTube's live playlists and segments), through a cache that keeps
// nothing but still shares a fetch between requests at the same moment and refuses what
// Mastodon deleted (guard). The returned func stops that cache's fetches.
func wireFront(pcfg *proxy.Config, stores origin.Sourced, cfg config.Config, guard cache.Guard, log *slog.Logger) func() {
	pcfg.MediaProxy.Stores = stores
	lc := cfg.Cache.Layered
	lc.Logger, lc.Guard, lc.OnPurge = log, guard, nil
	// A live's playlist asked a moment before its first upload is there a moment later.
	lc.NegativeTTL = rewrittenNegativeTTL
	rewritten := cache.New(stores, nil, nil, lc)
	pcfg.Rewritten = proxy.RewrittenConfig{Match: proxy.RewrittenHLS, Cache: rewritten}
	return rewritten.Close
}

// rewrittenNegativeTTL is how long the cache of rewritten objects remembers a missing key.
const rewrittenNegativeTTL = time.Second

// mediaProxyStatus is the media proxy's section of /status.
func mediaProxyStatus(cfg config.Config, m *proxy.Metrics) any {
	return map[string]any{
		"web_domain": cfg.Proxy.MediaProxy.WebDomain,
		"redirects":  m.MediaProxyRedirects(),
	}
}
