package config

import (
	"net"
	"strconv"
	"time"

	"github.com/fedicache/fedicache/cache/disk"
	"github.com/fedicache/fedicache/cache/memory"
	"github.com/fedicache/fedicache/cache/state"
	"github.com/fedicache/fedicache/proxy/cluster"
)

// The libraries' Configs that Config does not hold as they are, made of its keys. The tiers are
// checked with the Configs serve then opens them with. What only a command has (a logger, a
// store, a callback) the command adds.

// stateRetentionMargin is added to cache.ttl + cache.stale_if_error for the retention of the
// log of busts.
const stateRetentionMargin = time.Hour

// MemoryConfig returns the memory tier's Config: cache.memory.max_bytes and
// cache.memory.max_object_bytes. A MemoryMaxBytes of 0 means no memory tier, not the default.
func (c CacheConfig) MemoryConfig() memory.Config {
	return memory.Config{MaxBytes: c.MemoryMaxBytes, MaxObjectBytes: c.MemoryMaxObjectBytes}
}

// DiskConfig returns the disk tier's Config, without a Logger: cache.disk.dir and
// cache.disk.max_bytes. An empty DiskDir means no disk tier, not the default.
func (c CacheConfig) DiskConfig() disk.Config {
	return disk.Config{Dir: c.DiskDir, MaxBytes: c.DiskMaxBytes}
}

// StateConfig returns the Config of the cluster's record of busts and tombstones, without a
// Store, ReplayAll or a Logger: state_prefix, state_refresh, and a retention of cache.ttl +
// cache.stale_if_error + an hour.
func (c Config) StateConfig() state.Config {
	return state.Config{
		Prefix:    c.StatePrefix,
		Refresh:   c.StateRefresh,
		Retention: c.Cache.Layered.TTL + c.Cache.Layered.StaleIfError + stateRetentionMargin,
	}
}

// PeersConfig returns the Config of the other replicas, without Lookup or OnResult: the name
// cluster.peers resolves, admin_listen's port (the same on every replica), and admin.token.
// When admin_listen names an address rather than all of the host's, that address is this
// replica's own (Self): one host may carry several replicas' addresses.
func (c Config) PeersConfig() cluster.PeersConfig {
	host, port, _ := net.SplitHostPort(c.AdminListen)
	p, _ := strconv.Atoi(port)
	pc := cluster.PeersConfig{Name: c.Peers, Port: p, Token: c.AdminToken}
	if ip := net.ParseIP(host); ip != nil && !ip.IsUnspecified() {
		pc.Self = func() ([]net.IP, error) { return []net.IP{ip}, nil }
	}
	return pc
}
