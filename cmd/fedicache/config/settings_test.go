package config

import (
	"os"
	"slices"
	"testing"
	"time"

	"github.com/fedicache/fedicache/backfill"
	"github.com/fedicache/fedicache/cache"
	"github.com/fedicache/fedicache/cache/disk"
	"github.com/fedicache/fedicache/cache/memory"
	"github.com/fedicache/fedicache/cache/state"
	"github.com/fedicache/fedicache/origin/s3"
	"github.com/fedicache/fedicache/proxy"
)

// TestSettingsDefaultsAreTheLibraries loads a configuration that sets nothing but the bucket and
// compares what the config layer made of each default with the library's constant: the table
// and the libraries cannot drift apart.
func TestSettingsDefaultsAreTheLibraries(t *testing.T) {
	unsetSettingVariables(t)
	v := newViper(nil)
	v.Set("s3.bucket", "mastodon-media")
	cfg, err := configFrom(v, "")
	if err != nil {
		t.Fatalf("a configuration of defaults: %v", err)
	}
	for _, c := range []struct {
		key       string
		got, want any
	}{
		{"s3.region", cfg.S3.Region, s3.DefaultRegion},
		{"s3.timeout", cfg.S3.Timeout, time.Duration(s3.DefaultTimeout)},
		{"s3.request_checksum", cfg.S3.RequestChecksum, s3.ChecksumWhenRequired},
		{"s3.response_checksum", cfg.S3.ResponseChecksum, s3.ChecksumWhenRequired},
		{"s3.permission", Default("s3.permission"), s3.ACLPublicRead},
		{"s3.permission (the check)", cfg.S3.RequirePublicRead, true},
		{"s3.acl", cfg.Backfill.Engine.ACL, backfill.MastodonACL},
		{"headers.cache_control", cfg.Proxy.CacheControl, proxy.DefaultCacheControl},
		{"cache.memory.max_bytes", cfg.Cache.MemoryMaxBytes, int64(memory.DefaultMaxBytes)},
		{"cache.memory.max_object_bytes", cfg.Cache.MemoryMaxObjectBytes, int64(memory.DefaultMaxObjectBytes)},
		{"cache.disk.max_bytes", cfg.Cache.DiskMaxBytes, int64(disk.DefaultMaxBytes)},
		{"cache.ttl", cfg.Cache.Layered.TTL, time.Duration(cache.DefaultTTL)},
		{"cache.stale_if_error", cfg.Cache.Layered.StaleIfError, time.Duration(cache.DefaultStaleIfError)},
		{"cache.negative_ttl", cfg.Cache.Layered.NegativeTTL, time.Duration(cache.DefaultNegativeTTL)},
		{"backfill.concurrency", cfg.Backfill.Engine.Concurrency, backfill.DefaultConcurrency},
		{"state_prefix", cfg.StatePrefix, state.DefaultPrefix},
		{"state_refresh", cfg.StateRefresh, time.Duration(state.DefaultRefresh)},
		{"server.read_timeout", cfg.Proxy.ReadTimeout, proxy.DefaultReadTimeout},
		{"server.write_timeout", cfg.Proxy.WriteTimeout, proxy.DefaultWriteTimeout},
		{"server.idle_timeout", cfg.Proxy.IdleTimeout, proxy.DefaultIdleTimeout},
		{"server.max_header_bytes", cfg.Proxy.MaxHeaderBytes, proxy.DefaultMaxHeaderBytes},
		{"server.max_conns", cfg.Proxy.MaxConns, proxy.DefaultMaxConns},
	} {
		if c.got != c.want {
			t.Errorf("%s: the config layer makes %v (%T) of the default %v; the library's constant is %v (%T)",
				c.key, c.got, c.got, Default(c.key), c.want, c.want)
		}
	}
	for _, p := range alwaysDenied {
		if !slices.Contains(cfg.Proxy.DenyPrefixes, p) {
			t.Errorf("deny_prefixes: %q is not denied by default", p)
		}
	}
}

// unsetSettingVariables unsets, for the test, every variable of a setting that the environment
// sets.
func unsetSettingVariables(t *testing.T) {
	t.Helper()
	for _, s := range settings {
		if v, ok := os.LookupEnv(EnvName(s.key)); ok {
			t.Setenv(EnvName(s.key), v) // restored after the test
			if err := os.Unsetenv(EnvName(s.key)); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func TestSettingRendering(t *testing.T) {
	for _, c := range []struct {
		got, want string
	}{
		{durationSetting(24 * time.Hour), "24h"},
		{durationSetting(168 * time.Hour), "168h"},
		{durationSetting(30 * time.Second), "30s"},
		{durationSetting(2 * time.Minute), "2m"},
		{durationSetting(90 * time.Minute), "1h30m"},
		{durationSetting(90 * time.Second), "1m30s"},
		{durationSetting(1500 * time.Millisecond), "1.5s"},
		{sizeSetting(256 << 20), "256MiB"},
		{sizeSetting(1 << 20), "1MiB"},
		{sizeSetting(10 << 30), "10GiB"},
		{sizeSetting(1536 << 20), "1536MiB"},
		{sizeSetting(16 << 10), "16KiB"},
		{sizeSetting(1000), "1000"},
		{sizeSetting(0), "0"},
	} {
		if c.got != c.want {
			t.Errorf("rendered %q, want %q", c.got, c.want)
		}
	}
}
