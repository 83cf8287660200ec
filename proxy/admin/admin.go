// Package admin is fedicache's admin listener: liveness (/healthz), readiness (/readyz), the
// status document (/status) and the status page (/), the Prometheus registry it is handed
// (/metrics), the purges of POST /purge and the profiles of /debug/pprof. It knows the public
// front, the cache and the cluster's state only through the small interfaces and funcs of
// Config, which the command that wires the process fills in.
package admin

import (
	"context"
	"net/http"
	"net/http/pprof"
	"sync"
	"time"

	"github.com/fedicache/fedicache/cache"
	"github.com/fedicache/fedicache/origin"
	"github.com/fedicache/fedicache/proxy/cluster"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Config configures the admin listener. The zero value works.
type Config struct {
	// Version is reported by /status.
	Version string
	// ReadyTTL is how long a readiness check of the bucket is reused. Zero means 5s.
	ReadyTTL time.Duration
	// PingTimeout bounds one readiness check. Zero means 3s.
	PingTimeout time.Duration
	// Info is added to /status as it is (a summary of the configuration, without secrets).
	Info map[string]any
	// Sections are added to /status under their names, each the value its func returns then
	// (the backfill's progress, say).
	Sections map[string]func() any
	// Peers, when set, are the other replicas: a purge received here is passed on to them.
	Peers Forwarder
	// PeerObjects, when set, answers the other replicas' asks for the keys this replica owns
	// (cluster.NewPeerHandler), at cluster.PeerObjectPath; it checks their token itself.
	PeerObjects http.Handler
	// State, when set, is the cluster's record of purges and busts: purges from outside are
	// recorded there, those from peers applied through it, and the replica is not ready until
	// it has been loaded once.
	State ClusterState
	// Token authorizes the admin's writes (POST /purge) as "Authorization: Bearer <Token>".
	// Zero means writes are off (404).
	Token string
	// Migration, when set, reports the copy of the old volume into the bucket, for /status and
	// the status page. Migrations, when set, is used instead.
	Migration func() Migration
	// Migrations, when set, reports the copy of every old store into the bucket, one
	// Migration per store, in the order the stores are asked: /status lists them, and the
	// status page shows a card for each.
	Migrations func() []Migration
	// Cluster, when set, reports the replicas and the peer fill (cluster.fill), for /status
	// and the status page.
	Cluster func() ClusterStatus

	// Metrics is what /metrics serves. Zero means no metrics.
	Metrics prometheus.Gatherer
	// OldStores, when set, checks the old stores behind the bucket (fallback.dir,
	// fallback.stores): /status and /readyz report those that fail, which never makes the
	// replica unready (the bucket's objects are still served). It caches its checks itself.
	OldStores func(context.Context) []origin.StoreHealth
	// Bucket, when set, is pinged for readiness and for the bucket's health on /status and
	// the status page. Zero means the bucket is never checked and counts as answering.
	Bucket origin.Pinger
	// Cache, when set, is the cache in front of the bucket: /status and the status page show
	// its counters, and without a State, POST /purge drops its entries. Zero means no cache.
	Cache Cache
	// Draining, when set, reports whether the public listener of this process shuts down
	// (proxy.Server.Draining): readiness then fails. Zero means it never does.
	Draining func() bool
	// HitBytes, when set, returns the body bytes the public listener sent from the cache
	// tiers (proxy.Metrics.HitBytes), part of the egress the cache saved. Zero means none.
	HitBytes func() int64
	// History, when set, is the process's figures over the last day, sampled by its Run:
	// /status lists them and the status page charts them. Zero means no history.
	History *History
}

// Cache is what the admin asks of the cache in front of the bucket (cache.Layered).
type Cache interface {
	// Stats returns the cache's counters.
	Stats() cache.Stats
	// Purge drops key from every tier and returns how many entries went.
	Purge(key string) int
	// PurgePrefix drops every key under prefix and returns how many entries went.
	PurgePrefix(prefix string) int
}

// Forwarder passes an admin request (a path with its query, e.g. "/purge?key=K") on to the
// other replicas and returns their answers (cluster.Peers).
type Forwarder interface {
	Forward(ctx context.Context, path string) []cluster.PeerResult
}

// Handler serves the admin listener: the status page (/), /healthz, /readyz, /metrics, /status
// and /purge. It belongs on a port of its own that is never exposed to the public.
type Handler struct {
	cfg          Config
	backfillOnly bool // a process that copies the old volume and serves no media
	started      time.Time
	mux          *http.ServeMux

	mu        sync.Mutex // held while a readiness check runs, so checks never pile up
	checkedAt time.Time
	pingErr   error
	answered  bool // the bucket answered a check once
}

// New returns the admin handler of a process that serves media.
func New(cfg Config) *Handler { return newHandler(cfg, false) }

// NewBackfill returns the admin handler of a process that copies the old volume into the
// bucket and serves no media (fedicache backfill): the status page, /status (the migration and
// the bucket's health), /healthz, /readyz and /metrics. It has no front, cache, state or peers
// (cfg's Cache, State, Peers, Draining and HitBytes are not used), so /purge answers 404.
func NewBackfill(cfg Config) *Handler {
	cfg.Cache, cfg.State, cfg.Peers, cfg.Draining, cfg.HitBytes, cfg.PeerObjects, cfg.Cluster = nil, nil, nil, nil, nil, nil, nil
	return newHandler(cfg, true)
}

func newHandler(cfg Config, backfillOnly bool) *Handler {
	if cfg.ReadyTTL <= 0 {
		cfg.ReadyTTL = 5 * time.Second
	}
	if cfg.PingTimeout <= 0 {
		cfg.PingTimeout = 3 * time.Second
	}
	if cfg.Metrics == nil {
		cfg.Metrics = prometheus.Gatherers{}
	}
	h := &Handler{cfg: cfg, backfillOnly: backfillOnly, started: time.Now(), mux: http.NewServeMux()}
	h.mux.HandleFunc("GET /{$}", h.page)
	h.mux.HandleFunc("GET /healthz", h.healthz)
	h.mux.HandleFunc("GET /readyz", h.readyz)
	h.mux.Handle("GET /metrics", promhttp.HandlerFor(cfg.Metrics, promhttp.HandlerOpts{}))
	h.mux.HandleFunc("GET /status", h.status)
	h.mux.HandleFunc("POST /purge", h.purge)
	if cfg.PeerObjects != nil {
		h.mux.Handle(cluster.PeerObjectPath, cfg.PeerObjects)
	}
	// Profiles, for the admin port only: go tool pprof http://ADMIN/debug/pprof/profile
	h.mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	h.mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	h.mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	h.mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	h.mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	return h
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

func (h *Handler) healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("ok\n"))
}

var (
	_ http.Handler = (*Handler)(nil)
	_ Cache        = (*cache.Layered)(nil)
	_ Forwarder    = (*cluster.Peers)(nil)
)
