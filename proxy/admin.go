package proxy

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/pprof"
	"sync"
	"time"

	"github.com/fedicache/fedicache/cache"
	"github.com/fedicache/fedicache/origin"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// AdminConfig configures the admin listener. The zero value works.
type AdminConfig struct {
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
	Peers *Peers
	// State, when set, is the cluster's record of purges and busts: purges from outside are
	// recorded there, those from peers applied through it, and the replica is not ready until
	// it has been loaded once.
	State ClusterState
	// Token authorizes the admin's writes (POST /purge) as "Authorization: Bearer <Token>".
	// Zero means writes are off (404).
	Token string
	// Migration, when set, reports the copy of the old volume into the bucket, for /status and
	// the status page.
	Migration func() Migration
}

// Admin serves the admin listener: the status page (/), /healthz, /readyz, /metrics, /status
// and /purge. It belongs on a port of its own that is never exposed to the public.
type Admin struct {
	cfg     AdminConfig
	front   *Server  // nil in a process that serves no media (NewBackfillAdmin)
	metrics *Metrics // front's, or the backfill's
	pinger  origin.Pinger
	purger  purger       // nil when the origin has no cache
	stats   cacheStatser // nil when the origin has no cache
	started time.Time
	mux     *http.ServeMux

	mu        sync.Mutex // held while a readiness check runs, so checks never pile up
	checkedAt time.Time
	pingErr   error
	answered  bool // the bucket answered a check once
}

// NewAdmin returns the admin handler of front. Readiness asks o's Ping when o is a Pinger.
func NewAdmin(front *Server, o origin.Origin, cfg AdminConfig) *Admin {
	return newAdmin(front, front.metrics, o, cfg)
}

// NewBackfillAdmin returns the admin handler of a process that copies the old volume into the
// bucket and serves no media (fedicache backfill): the status page, /status (the migration and
// the bucket's health), /healthz, /readyz and m's /metrics; /purge answers 404. Readiness and
// the bucket's health ask bucket's Ping when it is a Pinger (bucket may be nil). A nil m means
// a registry of its own.
func NewBackfillAdmin(bucket origin.Origin, m *Metrics, cfg AdminConfig) *Admin {
	if m == nil {
		m = NewMetrics()
	}
	return newAdmin(nil, m, bucket, cfg)
}

func newAdmin(front *Server, m *Metrics, o origin.Origin, cfg AdminConfig) *Admin {
	if cfg.ReadyTTL <= 0 {
		cfg.ReadyTTL = 5 * time.Second
	}
	if cfg.PingTimeout <= 0 {
		cfg.PingTimeout = 3 * time.Second
	}
	a := &Admin{cfg: cfg, front: front, metrics: m, started: time.Now(), mux: http.NewServeMux()}
	a.pinger, _ = o.(origin.Pinger)
	a.purger, _ = o.(purger)
	a.stats, _ = o.(cacheStatser)
	a.mux.HandleFunc("GET /{$}", a.page)
	a.mux.HandleFunc("GET /healthz", a.healthz)
	a.mux.HandleFunc("GET /readyz", a.readyz)
	a.mux.Handle("GET /metrics", promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{}))
	a.mux.HandleFunc("GET /status", a.status)
	a.mux.HandleFunc("POST /purge", a.purge)
	// Profiles, for the admin port only: go tool pprof http://ADMIN/debug/pprof/profile
	a.mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	a.mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	a.mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	a.mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	a.mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	return a
}

// ServeHTTP implements http.Handler.
func (a *Admin) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.mux.ServeHTTP(w, r) }

func (a *Admin) healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("ok\n"))
}

// readyz answers 503 while the replica shuts down, until the cluster's state (tombstones and
// busts) has been loaded once (before, it cannot tell deleted media from the rest, and serves
// nothing), and until the bucket has answered once: a replica with a wrong endpoint or
// credentials never joins the Service, so a rollout stops before it replaces a working one.
// Once the bucket has answered, its later failures keep the replica ready: the cache and the
// old volume still serve, and failing every replica's readiness at once would take even those
// answers away. /status and the metrics report them.
func (a *Admin) readyz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if a.draining() {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte("shutting down\n"))
		return
	}
	if a.cfg.State != nil && !a.cfg.State.Loaded() {
		w.WriteHeader(http.StatusServiceUnavailable)
		msg := "loading the record of deleted and hidden media from the bucket"
		if e := a.cfg.State.LastError(); e != "" {
			msg += ": " + e
		}
		_, _ = w.Write([]byte(msg + "\n"))
		return
	}
	answered, err := a.check(r.Context())
	switch {
	case err == nil:
		_, _ = w.Write([]byte("ready\n"))
	case answered:
		_, _ = w.Write([]byte("ready; the bucket is failing, serving from the cache and the old volume: " + err.Error() + "\n"))
	default:
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte("bucket not answering: " + err.Error() + "\n"))
	}
}

// draining reports whether the front shuts down; a process without a front never drains.
func (a *Admin) draining() bool { return a.front != nil && a.front.Draining() }

// check returns the bucket's last readiness result, asking it again once ReadyTTL has passed,
// and whether the bucket has ever answered.
func (a *Admin) check(ctx context.Context) (answered bool, err error) {
	if a.pinger == nil {
		return true, nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if time.Since(a.checkedAt) < a.cfg.ReadyTTL {
		return a.answered, a.pingErr
	}
	c, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.cfg.PingTimeout)
	defer cancel()
	a.pingErr = a.pinger.Ping(c)
	a.checkedAt = time.Now()
	a.answered = a.answered || a.pingErr == nil
	return a.answered, a.pingErr
}

// Status is the document /status returns.
type Status struct {
	Version       string       `json:"version"`
	StartedAt     time.Time    `json:"started_at"`
	UptimeSeconds float64      `json:"uptime_seconds"`
	Ready         bool         `json:"ready"`
	Draining      bool         `json:"draining"`
	Bucket        BucketStatus `json:"bucket"`
	Cache         *cache.Stats `json:"cache,omitempty"`
	// EgressSavedBytes counts bytes served from the cache that the bucket did not send.
	EgressSavedBytes uint64     `json:"egress_saved_bytes"`
	Migration        *Migration `json:"migration,omitempty"`
	// State is the cluster's record of deleted and hidden media as this replica holds it.
	State    any            `json:"state,omitempty"`
	Sections map[string]any `json:"sections,omitempty"`
	Info     map[string]any `json:"info,omitempty"`
}

// BucketStatus is the outcome of the last readiness check of the bucket.
type BucketStatus struct {
	OK        bool      `json:"ok"`
	Error     string    `json:"error,omitempty"`
	CheckedAt time.Time `json:"checked_at"`
}

// snapshot gathers what /status and the status page show.
func (a *Admin) snapshot(ctx context.Context) Status {
	answered, err := a.check(ctx)
	a.mu.Lock()
	checked := a.checkedAt
	a.mu.Unlock()
	st := Status{
		Version:       a.cfg.Version,
		StartedAt:     a.started.UTC(),
		UptimeSeconds: time.Since(a.started).Seconds(),
		Draining:      a.draining(),
		Bucket:        BucketStatus{OK: err == nil, CheckedAt: checked.UTC()},
		Info:          a.cfg.Info,
	}
	if err != nil {
		st.Bucket.Error = err.Error()
	}
	st.EgressSavedBytes = uint64(a.metrics.hitBytes.Load())
	if a.stats != nil {
		cs := a.stats.Stats()
		st.Cache = &cs
		st.EgressSavedBytes += cs.SharedBytes
	}
	st.Ready = answered && !st.Draining
	if a.cfg.State != nil {
		st.State = a.cfg.State.Status()
		st.Ready = st.Ready && a.cfg.State.Loaded()
	}
	if a.cfg.Migration != nil {
		m := a.cfg.Migration()
		st.Migration = &m
	}
	if len(a.cfg.Sections) > 0 {
		st.Sections = map[string]any{}
		for name, f := range a.cfg.Sections {
			st.Sections[name] = f()
		}
	}
	return st
}

func (a *Admin) status(w http.ResponseWriter, r *http.Request) {
	st := a.snapshot(r.Context())
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(st)
}
