package config

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/fedicache/fedicache/backfill"
	"github.com/fedicache/fedicache/cache"
	"github.com/fedicache/fedicache/cache/disk"
	"github.com/fedicache/fedicache/cache/memory"
	"github.com/fedicache/fedicache/cache/state"
	"github.com/fedicache/fedicache/origin/s3"
	"github.com/fedicache/fedicache/proxy"
)

// setting is one configuration key: its default and what it does. The table is the one list of
// keys: defaults, unknown-key checks and the documentation all come from it.
//
// A default that is a library's default is that library's constant (s3.DefaultRegion,
// cache.DefaultTTL), written as the key is written (a duration as "24h", a size as "256MiB"),
// so that the two cannot differ (TestSettingsDefaultsAreTheLibraries checks it). The other
// defaults are fedicache's own choices, where a library's zero value means something else
// (s3.permission's public-read turns on a check that the library leaves off), or where the
// library leaves the choice to its caller (listen addresses, shutdown_grace, log.*).
type setting struct {
	key  string
	def  any
	help string
}

var settings = []setting{
	{"listen", ":8080", "public listener (host:port); Mastodon's S3_ALIAS_HOST points here"},
	{"admin_listen", ":9090", "admin listener (host:port) for /healthz, /readyz, /metrics, /status; never expose it publicly"},
	{"tls.cert_file", "", "PEM certificate (with its chain) for TLS on listen, e.g. a Cloudflare origin certificate; empty serves plain HTTP"},
	{"tls.key_file", "", "PEM private key of tls.cert_file"},
	{"tls.reload_interval", "10s", "how often the certificate files are checked; a changed pair is served to new connections"},
	{"s3.endpoint", "", "S3-compatible endpoint URL; empty means AWS S3"},
	{"s3.region", s3.DefaultRegion, "bucket region"},
	{"s3.bucket", "", "bucket name (required)"},
	{"s3.prefix", "", "key prefix inside the bucket, Mastodon's S3_KEY_PREFIX"},
	{"s3.force_path_style", true, "path-style requests (endpoint/bucket/key) instead of virtual-host (bucket.endpoint/key)"},
	{"s3.access_key_id", "", "access key; empty means the standard AWS chain (AWS_ACCESS_KEY_ID, shared config, web identity)"},
	{"s3.secret_access_key", "", "secret key, with s3.access_key_id"},
	{"s3.anonymous", false, "read media with unsigned requests, as the public does: the bucket refuses hidden media itself (403, answered 404); the credentials still sign fedicache's state and the backfill's writes"},
	{"s3.permission", s3.ACLPublicRead, "Mastodon's S3_PERMISSION: with public-read, objects whose ACL grants the public no read (hidden media) answer 404; \"\" for no check"},
	{"s3.acl", backfill.MastodonACL, "canned ACL of objects the backfill stores, Mastodon's S3_PERMISSION; empty sends none (buckets without ACLs, e.g. R2)"},
	{"s3.conditional_write", false, "the backfill writes with If-None-Match: * so two copiers never overwrite each other (AWS S3, R2, MinIO support it)"},
	{"s3.content_md5", true, "the backfill sends Content-MD5 so the bucket checks every single-part upload"},
	{"s3.timeout", durationSetting(s3.DefaultTimeout), "limit on waiting for the bucket's answer and on any stall in its body"},
	{"s3.request_checksum", s3.ChecksumWhenRequired, "when_required or when_supported: SDK request checksums (when_supported breaks several S3-compatible providers)"},
	{"s3.response_checksum", s3.ChecksumWhenRequired, "when_required or when_supported: SDK response checksum validation"},
	{"s3.disable_checksum_mode", false, "do not ask the bucket for objects' checksums on whole-object fetches (x-amz-checksum-mode); fetched bodies are then checked by length and MD5 ETag only. A service that refuses the header is detected and no longer asked"},
	{"strip_prefix", []string{}, "URL path prefixes removed before a path becomes a key, e.g. /my-bucket or /system"},
	{"fallback.dir", "", "the old volume (Mastodon's public/system), read-only; empty means no fallback"},
	{"fallback.stores", []any{}, "old stores asked in order after the bucket and fallback.dir, while a move copies them: each {name, dir} (a volume) or {name, bucket, endpoint, region, prefix, force_path_style, anonymous, permission, access_key_id, secret_access_key} (an old bucket; its credentials also from FEDICACHE_FALLBACK_<NAME>_ACCESS_KEY_ID and _SECRET_ACCESS_KEY); in the environment a JSON array"},
	{"headers.cache_control", proxy.DefaultCacheControl, "Cache-Control of media answers"},
	{"deny_prefixes", slices.Clone(alwaysDenied), "key prefixes never served; backups/ and imports/ (Mastodon's user exports, old imports) and state_prefix are denied whatever this says"},
	{"cache.memory.max_bytes", sizeSetting(memory.DefaultMaxBytes), "memory tier capacity (body plus headers); 0 turns the memory tier off"},
	{"cache.memory.max_object_bytes", sizeSetting(memory.DefaultMaxObjectBytes), "largest object kept in memory"},
	{"cache.disk.dir", "", "disk tier folder (an emptyDir or a local SSD); empty turns the disk tier off"},
	{"cache.disk.max_bytes", sizeSetting(disk.DefaultMaxBytes), "disk tier capacity; least recently used entries are evicted beyond it"},
	{"cache.ttl", durationSetting(cache.DefaultTTL), "how long an entry is served before it is revalidated with the bucket"},
	{"cache.stale_if_error", durationSetting(cache.DefaultStaleIfError), "how long past its ttl an entry is still served while the bucket fails"},
	{"cache.negative_ttl", durationSetting(cache.DefaultNegativeTTL), "how long a not-found answer is remembered"},
	{"backfill.enabled", false, "serve also copies the old volume into the bucket in the background"},
	{"backfill.concurrency", backfill.DefaultConcurrency, "files copied at once"},
	{"backfill.rate", "0", "files started per second, 0 for no cap"},
	{"backfill.bandwidth", "0", "bytes read from the volume per second (e.g. 50MiB), 0 for no cap"},
	{"state_prefix", state.DefaultPrefix, "bucket prefix (under s3.prefix) of fedicache's own state: tombstones of deleted keys, the log of busts and purges, snapshots; never served"},
	{"state_refresh", durationSetting(state.DefaultRefresh), "how often every replica applies what is new in the bucket's log of busts and purges (a replica serves nothing until it has loaded the state once)"},
	{"cache_buster.secret_header", "", "Mastodon's CACHE_BUSTER_SECRET_HEADER; empty turns the cache buster off"},
	{"cache_buster.secret", "", "Mastodon's CACHE_BUSTER_SECRET"},
	{"cache_buster.method", "GET", "Mastodon's CACHE_BUSTER_HTTP_METHOD"},
	{"mastodon.web_domain", "", "Mastodon's WEB_DOMAIN (LOCAL_DOMAIN when unset), a host name: a request for removed remote media (a cache/media_attachments/files key no store holds) is redirected (302) to https://WEB_DOMAIN/media_proxy/<id>/<style>, where Mastodon downloads it again; empty answers 404"},
	{"cluster.peers", "", "DNS name whose A/AAAA records are the replicas (a headless Service), or their addresses separated by commas; purges and busts reach them all"},
	{"cluster.fill", true, "with cluster.peers: a miss on a key another replica owns (by rendezvous hashing) asks that replica over the admin port, not the bucket, so an object costs one bucket GET per cluster and sits on one replica's disk"},
	{"cluster.fill_timeout", "1s", "how long a replica tries to reach a key's owner (a pod that is gone) before skipping it for 10s and asking the bucket itself; an owner reached has 10s to begin its answer"},
	{"cloudflare.zone_id", "", "with cloudflare.api_token: a cache-buster request also purges the URL from Cloudflare's cache"},
	{"cloudflare.api_token", "", "Cloudflare API token with the Cache Purge permission for the zone"},
	{"cost.egress_per_gib", 0.0, "price of a GiB the bucket sends out, in cost.currency: the money the cache saved is shown with it; 0 shows the bytes only"},
	{"cost.get_per_1000", 0.0, "price of 1,000 GET requests (class B), in cost.currency; 0 shows the count of requests only"},
	{"cost.storage_per_gib_month", 0.0, "price of a GiB stored for a month, in cost.currency: the status page prices the bytes the copies of old stores put in the bucket; 0 leaves it out"},
	{"cost.currency", "USD", "label of the cost.* prices on /status, the status page and /metrics"},
	{"admin.token", "", "bearer token for the admin listener's writes (POST /purge); empty turns them off"},
	{"shutdown_grace", "25s", "how long answers under way may take to finish after SIGTERM"},
	{"server.read_timeout", durationSetting(proxy.DefaultReadTimeout), "limit on reading a request's headers"},
	{"server.write_timeout", durationSetting(proxy.DefaultWriteTimeout), "limit on any stall while writing an answer"},
	{"server.idle_timeout", durationSetting(proxy.DefaultIdleTimeout), "keep-alive connections idle that long are closed"},
	{"server.max_header_bytes", proxy.DefaultMaxHeaderBytes, "largest request headers accepted"},
	{"server.max_conns", proxy.DefaultMaxConns, "connections served at once"},
	{"log.level", "info", "debug, info, warn or error"},
	{"log.format", "json", "json or text"},
	{"log.request_sample", 100, "at info, one request in this many is logged (0: none); at debug, every request"},
}

// Keys returns every key, in the order of the table (and of README's).
func Keys() []string {
	keys := make([]string, len(settings))
	for i, s := range settings {
		keys[i] = s.key
	}
	return keys
}

// Default returns key's default as the table writes it ("24h", "256MiB", 16384, true), or ""
// for a key that is not in it.
func Default(key string) any {
	for _, s := range settings {
		if s.key == key {
			return s.def
		}
	}
	return ""
}

// flagKeys are the keys that command-line flags may set; flags win over the environment and
// the file.
var flagKeys = []struct{ flag, key, usage string }{
	{"listen", "listen", "public listener host:port"},
	{"admin-listen", "admin_listen", "admin listener host:port"},
	{"s3-endpoint", "s3.endpoint", "S3-compatible endpoint URL"},
	{"s3-bucket", "s3.bucket", "bucket name"},
	{"s3-prefix", "s3.prefix", "key prefix in the bucket (Mastodon's S3_KEY_PREFIX)"},
	{"fallback-dir", "fallback.dir", "the old volume, mounted read-only"},
	{"log-level", "log.level", "debug, info, warn or error"},
}

// durationSetting writes d as a duration key is written: "24h", "1h30m", "30s" (not "24h0m0s").
func durationSetting(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

// sizeSetting writes n bytes as a size key is written: "10GiB", "256MiB", or the bare number
// when no binary unit divides it.
func sizeSetting(n int64) string {
	for _, u := range []struct {
		name string
		size int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n >= u.size && n%u.size == 0 {
			return fmt.Sprintf("%d%s", n/u.size, u.name)
		}
	}
	return fmt.Sprint(n)
}
