package config

import (
	"testing"
	"time"

	"github.com/fedicache/fedicache/cache/disk"
	"github.com/fedicache/fedicache/cache/memory"
	"github.com/fedicache/fedicache/cache/state"
	"github.com/fedicache/fedicache/proxy/cluster"
)

// TestLibraryConfigs: the libraries' Configs made of keys carry the keys' values.
func TestLibraryConfigs(t *testing.T) {
	unsetSettingVariables(t)
	dir := t.TempDir()
	cfg, err := LoadValues(map[string]any{
		"s3.bucket":                     "mastodon-media",
		"admin_listen":                  "127.0.0.1:9191",
		"admin.token":                   "token",
		"cluster.peers":                 "fedicache-peers",
		"cache.ttl":                     "2h",
		"cache.stale_if_error":          "30m",
		"state_prefix":                  "/fedicache-state/",
		"state_refresh":                 "7s",
		"cache.memory.max_bytes":        "64MiB",
		"cache.memory.max_object_bytes": "1MiB",
		"cache.disk.dir":                dir,
		"cache.disk.max_bytes":          "1GiB",
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := cfg.Cache.MemoryConfig(), (memory.Config{MaxBytes: 64 << 20, MaxObjectBytes: 1 << 20}); got != want {
		t.Errorf("MemoryConfig() = %+v, want %+v", got, want)
	}
	if got, want := cfg.Cache.DiskConfig(), (disk.Config{Dir: dir, MaxBytes: 1 << 30}); got != want {
		t.Errorf("DiskConfig() = %+v, want %+v", got, want)
	}
	// The leading slash is forgiven; the retention is cache.ttl + cache.stale_if_error + an hour.
	sc := cfg.StateConfig()
	if want := (state.Config{Prefix: "fedicache-state/", Refresh: 7 * time.Second, Retention: 3*time.Hour + 30*time.Minute}); sc.Prefix != want.Prefix ||
		sc.Refresh != want.Refresh || sc.Retention != want.Retention || sc.Store != nil || sc.Logger != nil {
		t.Errorf("StateConfig() = %+v, want %+v", sc, want)
	}
	pc := cfg.PeersConfig()
	if want := (cluster.PeersConfig{Name: "fedicache-peers", Port: 9191, Token: "token"}); pc.Name != want.Name ||
		pc.Port != want.Port || pc.Token != want.Token || pc.Lookup != nil || pc.OnResult != nil {
		t.Errorf("PeersConfig() = %+v, want %+v", pc, want)
	}
}
