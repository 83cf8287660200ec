package main

// The peer fill's wiring (cluster.fill): the owners of keys among the replicas, the fill in front
// of the stores, and its figures for /status and /metrics.

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/fedicache/fedicache/cmd/fedicache/config"
	"github.com/fedicache/fedicache/origin"
	"github.com/fedicache/fedicache/proxy/admin"
	"github.com/fedicache/fedicache/proxy/cluster"
	"github.com/prometheus/client_golang/prometheus"
)

// newPeerFill returns, with cluster.peers and cluster.fill, the owners of keys among the
// replicas (kept up to date until ctx ends) and the peer fill in front of stores; nil, nil
// otherwise.
func newPeerFill(ctx context.Context, cfg config.Config, stores origin.Sourced, recent *cluster.Recent, log *slog.Logger) (*cluster.Owners, *cluster.PeerFill, error) {
	if cfg.Peers == "" || !cfg.ClusterFill {
		return nil, nil, nil
	}
	pc := cfg.PeersConfig()
	pc.Lookup = lookupPeers
	owners, err := cluster.NewOwners(cluster.OwnersConfig{Peers: pc})
	if err != nil {
		return nil, nil, fmt.Errorf("cluster.peers: %w", err)
	}
	// The members are known before the first request: until then a replica owns every key.
	if err := owners.Refresh(ctx); err != nil {
		log.Warn("cluster.peers: the replicas could not be listed yet; each asks the bucket until they are", "err", err)
	}
	go owners.Run(ctx)
	return owners, cluster.NewPeerFill(cluster.PeerFillConfig{
		Owners: owners, Token: cfg.AdminToken, Next: stores, Timeout: cfg.ClusterFillTimeout, Recent: recent,
	}), nil
}

// purgeWindow is how long a purge may take to reach every replica that can read the bucket:
// two state_refresh periods (one for the log entry to be written and listed, one to be read)
// and a margin. Within it the peer fill does not ask owners for the key; beyond it an owner that
// has not read the log refuses to answer (see the Stale of its peer endpoint).
func purgeWindow(cfg config.Config) time.Duration { return 2*cfg.StateRefresh + 10*time.Second }

// clusterStatusOf gathers the cluster's figures for /status and the status page.
func clusterStatusOf(o *cluster.Owners, fill *cluster.PeerFill, served *cluster.PeerHandler) admin.ClusterStatus {
	st := admin.ClusterStatus{Members: o.Members(), Self: o.Self(), Share: o.Share(), Asked: fill.Stats(), Served: served.Stats()}
	if err := o.LastError(); err != nil {
		st.LastError = err.Error()
	}
	return st
}

// registerClusterMetrics exposes the peer fill's figures on /metrics.
func registerClusterMetrics(reg prometheus.Registerer, o *cluster.Owners, fill *cluster.PeerFill, served *cluster.PeerHandler) {
	gauge := func(name, help string, f func() float64) {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f))
	}
	counter := func(name, help string, f func() uint64) {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, func() float64 { return float64(f()) }))
	}
	gauge("fedicache_cluster_members", "Replicas that cluster.peers lists, this one included.", func() float64 { return float64(len(o.Members())) })
	gauge("fedicache_cluster_owner_share", "Share of the keys this replica owns.", o.Share)
	counter("fedicache_peer_fill_asks_total", "Misses on keys another replica owns, asked of that owner.", func() uint64 { return fill.Stats().Asks })
	counter("fedicache_peer_fill_bytes_total", "Body bytes received from owners (the bucket sent them to the owner once).", func() uint64 { return fill.Stats().Bytes })
	counter("fedicache_peer_fill_errors_total", "Owners that failed an ask: no answer in time, 5xx, a broken body.", func() uint64 { return fill.Stats().Errors })
	counter("fedicache_peer_fill_fallbacks_total", "Asks that went to the bucket instead, the owner failing or skipped.", func() uint64 { return fill.Stats().Fallbacks })
	counter("fedicache_peer_served_total", "Peers' asks this replica answered, as the owner.", func() uint64 { return served.Stats().Served })
	counter("fedicache_peer_served_bytes_total", "Body bytes sent to peers.", func() uint64 { return served.Stats().Bytes })
	counter("fedicache_peer_refused_total", "Peers' asks refused: a wrong token, a key another replica owns.", func() uint64 { return served.Stats().Refused })
}
