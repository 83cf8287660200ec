package proxy

import (
	"strconv"
	"sync/atomic"

	"github.com/fedicache/fedicache/cache"
	"github.com/fedicache/fedicache/origin"
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics holds the Prometheus collectors of the public front: its answers, the bytes it sent,
// the streams in flight and the cache busts. The registry is the caller's (the command builds
// it, with the stores' collectors beside these).
type Metrics struct {
	requests *prometheus.CounterVec
	bytesOut *prometheus.CounterVec
	inFlight prometheus.Gauge
	busts    prometheus.Counter
	fallback *prometheus.CounterVec
	// redirects counts the redirects to Mastodon's media proxy (mediaproxy.go).
	redirects     prometheus.Counter
	redirectCount atomic.Int64

	// Counters of the memory-hit path, resolved once so that path allocates nothing.
	hit200, hit206, hit304 prometheus.Counter
	memoryBytes, diskBytes prometheus.Counter
	hitBytes               atomic.Int64 // body bytes sent from the cache tiers
}

// NewMetrics returns the front's collectors, registered with reg. A nil reg registers them
// nowhere (a front whose figures nobody scrapes).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fedicache_requests_total",
			Help: "Public requests answered, by HTTP status and by the store that answered (bucket, volume, none).",
		}, []string{"status", "source"}),
		bytesOut: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fedicache_response_bytes_total",
			Help: "Body bytes sent to clients, by the store they came from.",
		}, []string{"source"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "fedicache_streams_in_flight",
			Help: "Response bodies streaming from an origin request to a client (files sent with sendfile not counted).",
		}),
		fallback: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fedicache_fallback_answers_total",
			Help: "Public answers from an old store (X-Cache: FALLBACK), by the store's name: the old volume, or an old bucket.",
		}, []string{"store"}),
		busts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "fedicache_cache_busts_total",
			Help: "Mastodon cache-buster requests carried out (a deleted or hidden file dropped everywhere).",
		}),
		redirects: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "fedicache_media_proxy_redirects_total",
			Help: "Requests for removed remote media (a cache/ key no store holds) redirected to Mastodon's media proxy.",
		}),
	}
	m.hit200 = m.requests.WithLabelValues("200", string(cache.SourceMemory))
	m.hit206 = m.requests.WithLabelValues("206", string(cache.SourceMemory))
	m.hit304 = m.requests.WithLabelValues("304", string(cache.SourceMemory))
	m.memoryBytes = m.bytesOut.WithLabelValues(string(cache.SourceMemory))
	m.diskBytes = m.bytesOut.WithLabelValues(string(cache.SourceDisk))
	if reg != nil {
		reg.MustRegister(m.requests, m.bytesOut, m.inFlight, m.busts, m.fallback, m.redirects)
	}
	return m
}

// HitBytes returns the body bytes sent so far from the cache tiers, which the origin did not
// send: part of the egress the cache saved.
func (m *Metrics) HitBytes() int64 { return m.hitBytes.Load() }

// MediaProxyRedirects returns how many requests were redirected to Mastodon's media proxy.
func (m *Metrics) MediaProxyRedirects() int64 { return m.redirectCount.Load() }

func (m *Metrics) observeRedirect() {
	m.redirects.Inc()
	m.redirectCount.Add(1)
}

func (m *Metrics) observeRequest(status int, src origin.Source) {
	if src == "" {
		src = "none"
	}
	m.requests.WithLabelValues(strconv.Itoa(status), string(src)).Inc()
}

// KnowStores gives each old store named in names its series of answers at zero, so that
// /metrics lists every configured store (and rate() has a start) before its first answer.
func (m *Metrics) KnowStores(names []string) {
	for _, n := range names {
		m.fallback.WithLabelValues(n)
	}
}

// observeFallback counts an answer from the old store named store.
func (m *Metrics) observeFallback(store string) {
	if store == "" {
		store = "unknown"
	}
	m.fallback.WithLabelValues(store).Inc()
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
