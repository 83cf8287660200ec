package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/fedicache/fedicache/cache/state"
	"github.com/fedicache/fedicache/origin/s3"
	"github.com/fedicache/fedicache/proxy"
	"github.com/prometheus/client_golang/prometheus"
)

// stateRetentionMargin is added to cache.ttl + cache.stale_if_error for the retention of the
// log of busts.
const stateRetentionMargin = time.Hour

// newState returns the cluster's record of deleted and hidden media in cfg's bucket, read and
// written with signed requests that no ACL check hides. replayAll is set when the tiers may
// hold keys busted while this process was down (a disk tier).
func newState(bucket *s3.Bucket, cfg Config, replayAll bool, log *slog.Logger) (*state.State, error) {
	view, err := bucket.StateView()
	if err != nil {
		return nil, &configError{[]string{err.Error()}}
	}
	ttl, sie := cfg.Cache.Layered.TTL, cfg.Cache.Layered.StaleIfError
	return state.New(state.Config{
		Store:     view,
		Prefix:    cfg.StatePrefix,
		Refresh:   cfg.StateRefresh,
		Retention: ttl + sie + stateRetentionMargin,
		ReplayAll: replayAll,
		Logger:    log,
	}), nil
}

// clusterState is the state as the admin listener speaks to it (proxy.ClusterState).
type clusterState struct{ s *state.State }

func (c clusterState) kind(name string) (state.Kind, error) {
	k, ok := state.ParseKind(name)
	if !ok {
		return 0, fmt.Errorf("unknown kind of purge %q", name)
	}
	return k, nil
}

func (c clusterState) Apply(kind, key, entry string) (int, error) {
	k, err := c.kind(kind)
	if err != nil {
		return 0, err
	}
	return c.s.ApplyEntry(k, key, entry), nil
}

func (c clusterState) Record(ctx context.Context, kind, key string) (int, string, error) {
	k, err := c.kind(kind)
	if err != nil {
		return 0, "", err
	}
	return c.s.Record(ctx, k, key)
}

func (c clusterState) Loaded() bool { return c.s.Loaded() }

func (c clusterState) LastError() string { return c.s.Stats().LastError }

func (c clusterState) Status() any { return c.s.Stats() }

var _ proxy.ClusterState = clusterState{}

// registerStateMetrics exports the state's figures.
func registerStateMetrics(m *proxy.Metrics, s *state.State) {
	stat := func(f func(state.Stats) float64) func() float64 {
		return func() float64 { return f(s.Stats()) }
	}
	m.Registry.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "fedicache_state_loaded",
			Help: "1 once the record of deleted and hidden media was loaded from the bucket (no media is served before).",
		}, stat(func(st state.Stats) float64 { return b2f(st.Loaded) })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "fedicache_state_busts_applied_total",
			Help: "Busts and purges other replicas recorded in the bucket's log that this replica applied.",
		}, stat(func(st state.Stats) float64 { return float64(st.BustsApplied) })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "fedicache_state_busts_recorded_total",
			Help: "Busts and purges this replica recorded in the bucket's log.",
		}, stat(func(st state.Stats) float64 { return float64(st.BustsRecorded) })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "fedicache_state_failures_total",
			Help: "Loads and refreshes of the state that failed.",
		}, stat(func(st state.Stats) float64 { return float64(st.Failures) })),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "fedicache_state_tombstones",
			Help: "Keys Mastodon deleted that this replica knows (never served).",
		}, stat(func(st state.Stats) float64 { return float64(st.Tombstones) })),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "fedicache_state_refreshed_timestamp_seconds",
			Help: "When the last complete read of the log of busts began (0 before the first).",
		}, stat(func(st state.Stats) float64 {
			if st.RefreshedAt.IsZero() {
				return 0
			}
			return float64(st.RefreshedAt.UnixNano()) / 1e9
		})),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "fedicache_state_lag_seconds",
			Help: "How far behind the bucket's log of busts this replica may be: the time since its last complete read.",
		}, stat(func(st state.Stats) float64 { return st.LagSeconds })),
	)
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
