package proxy

import (
	"errors"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/fedicache/fedicache/cache"
	"github.com/fedicache/fedicache/origin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics holds the Prometheus collectors of the front and of the stores behind it, in a
// registry of its own (so that tests and several servers in one process never collide).
type Metrics struct {
	Registry *prometheus.Registry

	requests      *prometheus.CounterVec
	bytesOut      *prometheus.CounterVec
	originLatency *prometheus.HistogramVec
	originErrors  *prometheus.CounterVec
	inFlight      prometheus.Gauge
	busts         prometheus.Counter

	// Counters of the memory-hit path, resolved once so that path allocates nothing.
	hit200, hit206, hit304 prometheus.Counter
	memoryBytes, diskBytes prometheus.Counter
	hitBytes               atomic.Int64 // body bytes sent from the cache tiers
}

// NewMetrics returns the collectors registered in a new registry, with the Go runtime and
// process collectors.
func NewMetrics() *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fedicache_requests_total",
			Help: "Public requests answered, by HTTP status and by the store that answered (bucket, volume, none).",
		}, []string{"status", "source"}),
		bytesOut: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fedicache_response_bytes_total",
			Help: "Body bytes sent to clients, by the store they came from.",
		}, []string{"source"}),
		originLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "fedicache_bucket_request_duration_seconds",
			Help:    "Latency of requests to the bucket until the response headers, by operation.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"op"}),
		originErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fedicache_bucket_errors_total",
			Help: "Bucket requests that failed (not counting not-found answers), by operation.",
		}, []string{"op"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "fedicache_streams_in_flight",
			Help: "Response bodies streaming from an origin request to a client (files sent with sendfile not counted).",
		}),
	}
	m.busts = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "fedicache_cache_busts_total",
		Help: "Mastodon cache-buster requests carried out (a deleted or hidden file dropped everywhere).",
	})
	m.Registry.MustRegister(m.busts)
	m.hit200 = m.requests.WithLabelValues("200", string(cache.SourceMemory))
	m.hit206 = m.requests.WithLabelValues("206", string(cache.SourceMemory))
	m.hit304 = m.requests.WithLabelValues("304", string(cache.SourceMemory))
	m.memoryBytes = m.bytesOut.WithLabelValues(string(cache.SourceMemory))
	m.diskBytes = m.bytesOut.WithLabelValues(string(cache.SourceDisk))
	m.Registry.MustRegister(m.requests, m.bytesOut, m.originLatency, m.originErrors, m.inFlight,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// ObserveBucket records one bucket request: its latency and, unless it succeeded or found
// nothing, an error. Its signature fits the bucket's Observe hook.
func (m *Metrics) ObserveBucket(op string, d time.Duration, err error) {
	m.originLatency.WithLabelValues(op).Observe(d.Seconds())
	if err != nil && !errors.Is(err, origin.ErrNotFound) && !errors.Is(err, origin.ErrRangeNotSatisfiable) {
		m.originErrors.WithLabelValues(op).Inc()
	}
}

func (m *Metrics) observeRequest(status int, src origin.Source) {
	if src == "" {
		src = "none"
	}
	m.requests.WithLabelValues(strconv.Itoa(status), string(src)).Inc()
}

func (m *Metrics) addBytes(src origin.Source, n int64) {
	if n <= 0 {
		return
	}
	switch src {
	case cache.SourceMemory, cache.SourceDisk:
		m.addHitBytes(src, n)
	default:
		m.bytesOut.WithLabelValues(string(src)).Add(float64(n))
	}
}

// addHitBytes counts body bytes sent from a cache tier, which the origin did not send.
func (m *Metrics) addHitBytes(src origin.Source, n int64) {
	if src == cache.SourceMemory {
		m.memoryBytes.Add(float64(n))
	} else {
		m.diskBytes.Add(float64(n))
	}
	m.hitBytes.Add(n)
}
