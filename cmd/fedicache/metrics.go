package main

import (
	"errors"
	"time"

	"github.com/fedicache/fedicache/cache"
	"github.com/fedicache/fedicache/origin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// newRegistry returns the registry the admin listener serves on /metrics, with the Go runtime
// and process collectors. Each part of the process registers its own collectors there: the
// front (proxy.NewMetrics), the bucket, the cache, the state, the peers, Cloudflare and the
// backfill (below and beside their wiring).
func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// bucketMetrics are the latency and the errors of the requests to the bucket.
type bucketMetrics struct {
	latency *prometheus.HistogramVec
	errors  *prometheus.CounterVec
}

// newBucketMetrics returns the bucket's collectors, registered with reg.
func newBucketMetrics(reg prometheus.Registerer) *bucketMetrics {
	m := &bucketMetrics{
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "fedicache_bucket_request_duration_seconds",
			Help:    "Latency of requests to the bucket until the response headers, by operation.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"op"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fedicache_bucket_errors_total",
			Help: "Bucket requests that failed (not counting not-found answers), by operation.",
		}, []string{"op"}),
	}
	reg.MustRegister(m.latency, m.errors)
	return m
}

// observe records one bucket request: its latency and, unless it succeeded or found nothing,
// an error. Its signature fits s3.Config.Observe.
func (m *bucketMetrics) observe(op string, d time.Duration, err error) {
	m.latency.WithLabelValues(op).Observe(d.Seconds())
	if err != nil && !errors.Is(err, origin.ErrNotFound) && !errors.Is(err, origin.ErrRangeNotSatisfiable) {
		m.errors.WithLabelValues(op).Inc()
	}
}

// registerCacheMetrics exports the cache's counters, read from stats at each scrape. hitBytes
// returns the body bytes the front sent from the cache tiers (proxy.Metrics.HitBytes), which
// count towards the egress saved.
func registerCacheMetrics(reg prometheus.Registerer, stats func() cache.Stats, hitBytes func() int64) {
	cc := &cacheCollector{
		stats: stats, hitBytes: hitBytes,
		hits: prometheus.NewDesc("fedicache_cache_hits_total", "Answers from a cache tier.", []string{"tier"}, nil),
		reval: prometheus.NewDesc("fedicache_revalidations_total",
			"Revalidations of entries past their TTL, by outcome (fresh, changed, gone, error).", []string{"outcome"}, nil),
		simple:  map[string]*prometheus.Desc{},
		tierNum: map[string]*prometheus.Desc{},
	}
	for _, s := range simpleCacheMetrics {
		cc.simple[s.name] = prometheus.NewDesc(s.name, s.help, nil, nil)
	}
	for _, s := range tierMetrics {
		cc.tierNum[s.name] = prometheus.NewDesc(s.name, s.help, []string{"tier"}, nil)
	}
	reg.MustRegister(cc)
}

// cacheCollector exports a cache's counters, read at each scrape.
type cacheCollector struct {
	stats    func() cache.Stats
	hitBytes func() int64
	hits     *prometheus.Desc
	simple   map[string]*prometheus.Desc
	reval    *prometheus.Desc
	tierNum  map[string]*prometheus.Desc
}

var simpleCacheMetrics = []struct{ name, help string }{
	{"fedicache_cache_misses_total", "Answers that needed the origin (bucket or volume)."},
	{"fedicache_origin_gets_total", "GET requests sent to the origin (the bucket, then the volume): fetches, ranges and background fills."},
	{"fedicache_shared_fetch_waiters_total", "Requests served from a fetch that another request started."},
	{"fedicache_shared_fetch_bytes_total", "Bytes sent to those requests, which the origin sent once."},
	{"fedicache_background_fills_total", "Whole-object fetches started after a range request on an uncached object."},
	{"fedicache_ahead_fills_total", "Second fetches of an object under way, for a range far ahead of its fetch (which goes on from an open one's bytes)."},
	{"fedicache_ahead_taken_total", "Fetches that went on from their ahead's bytes instead of reading their own answer on."},
	{"fedicache_fill_errors_total", "Fetches that failed or were cut short (nothing of them was stored)."},
	{"fedicache_stale_served_total", "Answers from an entry past its TTL because the origin failed to confirm it."},
	{"fedicache_negative_hits_total", "Not-found answers given from the not-found memory."},
	{"fedicache_negative_entries", "Keys in the not-found memory."},
	{"fedicache_egress_saved_bytes_total", "Bytes served from the cache that the bucket did not send (tier hits and shared fetches)."},
}

var tierMetrics = []struct{ name, help string }{
	{"fedicache_cache_bytes", "Bytes a cache tier holds."},
	{"fedicache_cache_entries", "Entries a cache tier holds."},
	{"fedicache_cache_max_bytes", "A cache tier's capacity."},
	{"fedicache_cache_evictions_total", "Entries evicted to make room."},
	{"fedicache_cache_dropped_total", "Corrupt or truncated entries dropped instead of served."},
	{"fedicache_cache_write_errors_total", "Failed writes into a cache tier."},
	{"fedicache_cache_disabled", "1 while a cache tier refuses writes (a full or read-only disk)."},
}

func (cc *cacheCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- cc.hits
	ch <- cc.reval
	for _, d := range cc.simple {
		ch <- d
	}
	for _, d := range cc.tierNum {
		ch <- d
	}
}

func (cc *cacheCollector) Collect(ch chan<- prometheus.Metric) {
	st := cc.stats()
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter(cc.hits, st.MemoryHits, "memory")
	counter(cc.hits, st.DiskHits, "disk")
	counter(cc.reval, st.RevalidatedFresh, "fresh")
	counter(cc.reval, st.RevalidatedChanged, "changed")
	counter(cc.reval, st.RevalidatedGone, "gone")
	counter(cc.reval, st.RevalidationErrors, "error")
	counter(cc.simple["fedicache_cache_misses_total"], st.Misses)
	counter(cc.simple["fedicache_origin_gets_total"], st.OriginGets)
	counter(cc.simple["fedicache_shared_fetch_waiters_total"], st.SharedWaiters)
	counter(cc.simple["fedicache_shared_fetch_bytes_total"], st.SharedBytes)
	counter(cc.simple["fedicache_background_fills_total"], st.BackgroundFills)
	counter(cc.simple["fedicache_ahead_fills_total"], st.AheadFills)
	counter(cc.simple["fedicache_ahead_taken_total"], st.AheadTaken)
	counter(cc.simple["fedicache_fill_errors_total"], st.FillErrors)
	counter(cc.simple["fedicache_stale_served_total"], st.StaleServed)
	counter(cc.simple["fedicache_negative_hits_total"], st.NegativeHits)
	gauge(cc.simple["fedicache_negative_entries"], float64(st.NegativeEntries))
	counter(cc.simple["fedicache_egress_saved_bytes_total"], uint64(cc.hitBytes())+st.SharedBytes)
	for name, ts := range map[string]*cache.TierStats{"memory": st.Memory, "disk": st.Disk} {
		if ts == nil {
			continue
		}
		gauge(cc.tierNum["fedicache_cache_bytes"], float64(ts.Bytes), name)
		gauge(cc.tierNum["fedicache_cache_entries"], float64(ts.Entries), name)
		gauge(cc.tierNum["fedicache_cache_max_bytes"], float64(ts.MaxBytes), name)
		counter(cc.tierNum["fedicache_cache_evictions_total"], ts.Evictions, name)
		counter(cc.tierNum["fedicache_cache_dropped_total"], ts.Dropped, name)
		counter(cc.tierNum["fedicache_cache_write_errors_total"], ts.WriteErrors, name)
		disabled := 0.0
		if ts.Disabled {
			disabled = 1
		}
		gauge(cc.tierNum["fedicache_cache_disabled"], disabled, name)
	}
}

var _ prometheus.Collector = (*cacheCollector)(nil)
