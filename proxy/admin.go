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
	// Remember, when set, records a key a peer tombstoned (POST /purge?key=K&tombstone=1), so
	// that the old volume's copy is not served before the next refresh of the tombstones.
	Remember func(key string)
	// Token authorizes the admin's writes (POST /purge) as "Authorization: Bearer <Token>".
	// Zero means writes are off (404).
	Token string
}

// Admin serves the admin listener: /healthz, /readyz, /metrics and /status. It belongs on a
// port of its own that is never exposed to the public.
type Admin struct {
	cfg     AdminConfig
	front   *Server
	pinger  origin.Pinger
	purger  purger       // nil when the origin has no cache
	stats   cacheStatser // nil when the origin has no cache
	started time.Time
	mux     *http.ServeMux

	mu        sync.Mutex // held while a readiness check runs, so checks never pile up
	checkedAt time.Time
	pingErr   error
}

// NewAdmin returns the admin handler of front. Readiness asks o's Ping when o is a Pinger.
func NewAdmin(front *Server, o origin.Origin, cfg AdminConfig) *Admin {
	if cfg.ReadyTTL <= 0 {
		cfg.ReadyTTL = 5 * time.Second
	}
	if cfg.PingTimeout <= 0 {
		cfg.PingTimeout = 3 * time.Second
	}
	a := &Admin{cfg: cfg, front: front, started: time.Now(), mux: http.NewServeMux()}
	a.pinger, _ = o.(origin.Pinger)
	a.purger, _ = o.(purger)
	a.stats, _ = o.(cacheStatser)
	a.mux.HandleFunc("GET /healthz", a.healthz)
	a.mux.HandleFunc("GET /readyz", a.readyz)
	a.mux.Handle("GET /metrics", promhttp.HandlerFor(front.metrics.Registry, promhttp.HandlerOpts{}))
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

func (a *Admin) readyz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if a.front.Draining() {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte("shutting down\n"))
		return
	}
	if err := a.check(r.Context()); err != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte("bucket not answering: " + err.Error() + "\n"))
		return
	}
	_, _ = w.Write([]byte("ready\n"))
}

// check returns the bucket's last readiness result, asking it again once ReadyTTL has passed.
func (a *Admin) check(ctx context.Context) error {
	if a.pinger == nil {
		return nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if time.Since(a.checkedAt) < a.cfg.ReadyTTL {
		return a.pingErr
	}
	c, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.cfg.PingTimeout)
	defer cancel()
	a.pingErr = a.pinger.Ping(c)
	a.checkedAt = time.Now()
	return a.pingErr
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
	EgressSavedBytes uint64         `json:"egress_saved_bytes"`
	Sections         map[string]any `json:"sections,omitempty"`
	Info             map[string]any `json:"info,omitempty"`
}

// BucketStatus is the outcome of the last readiness check of the bucket.
type BucketStatus struct {
	OK        bool      `json:"ok"`
	Error     string    `json:"error,omitempty"`
	CheckedAt time.Time `json:"checked_at"`
}

func (a *Admin) status(w http.ResponseWriter, r *http.Request) {
	err := a.check(r.Context())
	a.mu.Lock()
	checked := a.checkedAt
	a.mu.Unlock()
	st := Status{
		Version:       a.cfg.Version,
		StartedAt:     a.started.UTC(),
		UptimeSeconds: time.Since(a.started).Seconds(),
		Draining:      a.front.Draining(),
		Bucket:        BucketStatus{OK: err == nil, CheckedAt: checked.UTC()},
		Info:          a.cfg.Info,
	}
	if err != nil {
		st.Bucket.Error = err.Error()
	}
	st.EgressSavedBytes = uint64(a.front.metrics.hitBytes.Load())
	if a.stats != nil {
		cs := a.stats.Stats()
		st.Cache = &cs
		st.EgressSavedBytes += cs.SharedBytes
	}
	st.Ready = st.Bucket.OK && !st.Draining
	if len(a.cfg.Sections) > 0 {
		st.Sections = map[string]any{}
		for name, f := range a.cfg.Sections {
			st.Sections[name] = f()
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(st)
}
