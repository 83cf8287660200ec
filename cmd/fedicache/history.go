package main

// The status page's history: a sampler that reads, every historyStep, the counters the
// process keeps anyway (the front's answers and bytes on the registry, the bytes the bucket and
// the peers sent, the copies of the old stores), for the charts of the last day.

import (
	"context"
	"time"

	"github.com/fedicache/fedicache/cache"
	"github.com/fedicache/fedicache/origin"
	"github.com/fedicache/fedicache/origin/s3"
	"github.com/fedicache/fedicache/proxy/admin"
	"github.com/fedicache/fedicache/proxy/cluster"
	"github.com/prometheus/client_golang/prometheus"
)

// historyStep is the interval of one point of the history: 5 minutes make 288 points a day,
// about one per pixel of a chart as wide as a laptop's page, and a page small enough to fetch
// every few seconds; a minute would draw 1,440 bars no screen shows apart. Minutes finer than
// that are Prometheus's job. A variable for the tests, which take points faster.
var historyStep = 5 * time.Minute

// historyPoints is how many points the history keeps: a day of historyStep.
const historyPoints = 288

// Names of the front's counters the history reads (proxy.Metrics registers them).
const (
	metricRequests      = "fedicache_requests_total"
	metricResponseBytes = "fedicache_response_bytes_total"
)

// startHistory starts the status page's history, sampled until ctx ends: the front's answers
// by source and the bytes it served, from reg; the bytes bucket sent; the bytes the peers sent
// through fill (nil without cluster.fill); the copies on board (nil when there is none).
func startHistory(ctx context.Context, reg prometheus.Gatherer, bucket *s3.Bucket, fill *cluster.PeerFill, board *progressBoard) *admin.History {
	h, err := admin.NewHistory(admin.HistoryConfig{Step: historyStep, Points: historyPoints})
	if err != nil {
		return nil // only a test's historyStep can be wrong; the page then has no history
	}
	go h.Run(ctx, func() admin.HistorySample {
		s := admin.HistorySample{Counters: frontCounters(reg)}
		s.Counters.BucketBytes = bucket.BytesReceived()
		if fill != nil {
			s.Counters.PeerBytes = fill.Stats().Bytes
		}
		if board != nil {
			s.Migrations = board.migrations()
		}
		return s
	})
	return h
}

// frontCounters reads the front's answers by source and the body bytes it sent from reg. An
// answer that came from no store (a 404, a refusal) is no one's.
func frontCounters(reg prometheus.Gatherer) admin.HistoryCounters {
	var c admin.HistoryCounters
	// Gather returns what it could gather beside its error: the front's counters never fail.
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		switch mf.GetName() {
		case metricRequests:
			for _, m := range mf.GetMetric() {
				n := uint64(m.GetCounter().GetValue())
				for _, l := range m.GetLabel() {
					if l.GetName() != "source" {
						continue
					}
					switch origin.Source(l.GetValue()) {
					case cache.SourceMemory:
						c.Memory += n
					case cache.SourceDisk:
						c.Disk += n
					case origin.SourceBucket:
						c.Bucket += n
					case origin.SourceVolume, origin.SourceOldBucket:
						c.OldStore += n
					case origin.SourcePeer:
						c.Peer += n
					}
				}
			}
		case metricResponseBytes:
			for _, m := range mf.GetMetric() {
				c.BytesServed += uint64(m.GetCounter().GetValue())
			}
		}
	}
	return c
}
