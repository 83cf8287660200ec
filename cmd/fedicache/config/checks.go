package config

import (
	"crypto/tls"
	"os"
	"slices"
	"strings"

	"github.com/fedicache/fedicache/cache/state"
	"github.com/fedicache/fedicache/proxy"
	"github.com/fedicache/fedicache/proxy/cluster"
)

// alwaysDenied are the key prefixes Mastodon keeps private in a bucket: user data exports
// (handed out as presigned URLs, never through the alias host) and the files of a removed
// import feature. They are denied beside deny_prefixes.
var alwaysDenied = []string{"backups/", "imports/"}

// checkTogether completes cfg, whose keys configFrom read one by one, and checks what no key
// says alone: the keys that go in pairs (read here, beside their check), the keys that need
// another, the prefixes denied whatever deny_prefixes says, and the libraries' own checks of
// their Configs. Its problems come after those of the single keys, in this order.
func (r *reader) checkTogether(cfg *Config) {
	cfg.Proxy.DenyPrefixes = r.keyPrefixes("deny_prefixes", cfg.Proxy.DenyPrefixes)
	cfg.Proxy.CacheBuster = proxy.BusterConfig{
		Header: r.str("cache_buster.secret_header"),
		Secret: r.str("cache_buster.secret"),
		Method: strings.ToUpper(r.str("cache_buster.method")),
	}
	if cb := cfg.Proxy.CacheBuster; (cb.Header == "") != (cb.Secret == "") {
		r.fail("cache_buster.secret_header and cache_buster.secret go together, as Mastodon's CACHE_BUSTER_SECRET_HEADER and CACHE_BUSTER_SECRET: set both, e.g. cache_buster.secret_header: X-Cache-Buster-Secret")
	}
	// A leading slash is forgiven (keys have none), not an empty prefix: it would deny every key.
	if cfg.StatePrefix = strings.TrimLeft(cfg.StatePrefix, "/"); cfg.StatePrefix == "" {
		r.fail("state_prefix is empty: set a folder-like prefix ending in /, e.g. state_prefix: %s", state.DefaultPrefix)
	} else if err := (state.Config{Prefix: cfg.StatePrefix, Refresh: cfg.StateRefresh}).Validate(); err != nil {
		r.check(err)
	} else {
		// Mastodon's user exports and old imports are never served, whatever deny_prefixes says
		// (an empty FEDICACHE_DENY_PREFIXES= sets it empty), and fedicache's own state is never
		// served nor copied.
		for _, p := range append(slices.Clone(alwaysDenied), cfg.StatePrefix) {
			if !slices.Contains(cfg.Proxy.DenyPrefixes, p) {
				cfg.Proxy.DenyPrefixes = append(cfg.Proxy.DenyPrefixes, p)
			}
		}
	}
	cfg.Cloudflare = cluster.CloudflareConfig{ZoneID: r.str("cloudflare.zone_id"), APIToken: r.str("cloudflare.api_token")}
	if (cfg.Cloudflare.ZoneID == "") != (cfg.Cloudflare.APIToken == "") {
		r.fail("cloudflare.zone_id and cloudflare.api_token go together: set both (a token with Zone > Cache Purge), or neither")
	}
	if cfg.Peers != "" && cfg.AdminToken == "" {
		r.fail("cluster.peers needs admin.token: the replicas authenticate each other with it, e.g. admin.token from a Secret (FEDICACHE_ADMIN_TOKEN)")
	}
	cfg.Backfill.Engine.DenyPrefixes = cfg.Proxy.DenyPrefixes
	r.check(cfg.Backfill.Engine.Validate())
	r.check(cfg.S3.Validate())
	if cfg.FallbackDir != "" {
		if fi, err := os.Stat(cfg.FallbackDir); err != nil || !fi.IsDir() {
			r.fail("fallback.dir: %q is not a readable folder: set it to the old volume's mount, e.g. fallback.dir: /mnt/mastodon-system, or leave it empty", cfg.FallbackDir)
		}
	}
	switch t := cfg.TLS; {
	case (t.CertFile == "") != (t.KeyFile == ""):
		r.fail("tls.cert_file and tls.key_file go together: set both (e.g. tls.cert_file: /etc/fedicache/tls/tls.crt and tls.key_file: /etc/fedicache/tls/tls.key), or neither for plain HTTP")
	case t.CertFile != "":
		if _, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile); err != nil {
			r.fail("tls.cert_file, tls.key_file: %v: give a PEM certificate and its matching private key", err)
		}
	}
	// The tiers' own checks, for the tiers that are on: 0 turns the memory tier off, an empty
	// folder the disk tier (in the libraries they mean the defaults).
	if cfg.Cache.MemoryMaxBytes > 0 {
		r.check(cfg.Cache.MemoryConfig().Validate())
	}
	if cfg.Cache.DiskDir != "" {
		r.check(cfg.Cache.DiskConfig().Validate())
	}
}
