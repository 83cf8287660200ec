package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/fedicache/fedicache/cache/state"
	"github.com/fedicache/fedicache/cmd/fedicache/config"
	"github.com/fedicache/fedicache/origin/s3"
	"github.com/fedicache/fedicache/proxy/admin"
	"github.com/prometheus/client_golang/prometheus"
)

// newState returns the cluster's record of deleted and hidden media in cfg's bucket, read and
// written with signed requests that no ACL check hides. replayAll is set when the tiers may
// hold keys busted while this process was down (a disk tier).
func newState(bucket *s3.Bucket, cfg config.Config, replayAll bool, log *slog.Logger) (*state.State, error) {
	view, err := bucket.StateView()
	if err != nil {
		return nil, config.ErrorOf(err)
	}
	sc := cfg.StateConfig()
	sc.Store, sc.ReplayAll, sc.Logger = view, replayAll, log
	return state.New(sc), nil
}

// clusterState is the state as the admin listener speaks to it (admin.ClusterState).
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

var _ admin.ClusterState = clusterState{}

// stateMetrics are the state's figures as metrics: counters and gauges read at each scrape.
var stateMetrics = []struct {
	name, help string
	counter    bool
	value      func(state.Stats) float64
}{
	{"fedicache_state_loaded", "1 once the record of deleted and hidden media was loaded from the bucket (no media is served before).",
		false, func(st state.Stats) float64 { return b2f(st.Loaded) }},
	{"fedicache_state_busts_applied_total", "Busts and purges other replicas recorded in the bucket's log that this replica applied.",
		true, func(st state.Stats) float64 { return float64(st.BustsApplied) }},
	{"fedicache_state_busts_recorded_total", "Busts and purges this replica recorded in the bucket's log.",
		true, func(st state.Stats) float64 { return float64(st.BustsRecorded) }},
	{"fedicache_state_failures_total", "Loads and refreshes of the state that failed.",
		true, func(st state.Stats) float64 { return float64(st.Failures) }},
	{"fedicache_state_tombstones", "Keys Mastodon deleted that this replica knows (never served).",
		false, func(st state.Stats) float64 { return float64(st.Tombstones) }},
	{"fedicache_state_refreshed_timestamp_seconds", "When the last complete read of the log of busts began (0 before the first).",
		false, func(st state.Stats) float64 {
			if st.RefreshedAt.IsZero() {
				return 0
			}
			return float64(st.RefreshedAt.UnixNano()) / 1e9
		}},
	{"fedicache_state_lag_seconds", "How far behind the bucket's log of busts this replica may be: the time since its last complete read.",
		false, func(st state.Stats) float64 { return st.LagSeconds }},
}

// registerStateMetrics exports the state's figures in reg.
func registerStateMetrics(reg prometheus.Registerer, s *state.State) {
	for _, sm := range stateMetrics {
		value := func() float64 { return sm.value(s.Stats()) }
		if sm.counter {
			reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: sm.name, Help: sm.help}, value))
		} else {
			reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: sm.name, Help: sm.help}, value))
		}
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
