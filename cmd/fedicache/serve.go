package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/fedicache/fedicache/cache"
	"github.com/fedicache/fedicache/cache/disk"
	"github.com/fedicache/fedicache/cache/memory"
	"github.com/fedicache/fedicache/cmd/fedicache/config"
	"github.com/fedicache/fedicache/origin"
	"github.com/fedicache/fedicache/origin/s3"
	"github.com/fedicache/fedicache/proxy"
	"github.com/fedicache/fedicache/proxy/admin"
	"github.com/fedicache/fedicache/proxy/cluster"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"
)

func newServeCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve media from the bucket, falling back to the old volume",
		Long: "Serve media from the bucket, falling back to the old volume.\n\n" +
			"Configuration comes from the YAML file (--config), then FEDICACHE_* environment\n" +
			"variables (FEDICACHE_S3_BUCKET for s3.bucket), then flags; later ones win.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.LoadFlags(cmd.Flags())
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			return serve(ctx, cfg, newLogger(cfg, cmd.ErrOrStderr()), nil)
		},
	}
	config.AddFlags(cmd.Flags())
	return cmd
}

func newLogger(cfg config.Config, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// addrs are the addresses serve bound, for callers that asked for port 0.
type addrs struct{ public, admin net.Addr }

// serve runs the public and admin listeners until ctx ends, then shuts down gracefully:
// readiness fails at once, the public listener stops accepting, and answers under way get
// cfg.ShutdownGrace to finish. started, when not nil, is called once both listeners are bound.
func serve(ctx context.Context, cfg config.Config, log *slog.Logger, started func(addrs)) error {
	setMemoryLimit(cfg, log)
	reg := newRegistry()
	cfg.S3.Observe = newBucketMetrics(reg).observe
	bucket, err := s3.New(ctx, cfg.S3)
	if err != nil {
		return fmt.Errorf("bucket: %w", config.Keyed(err))
	}
	// First of all, whether the bucket answers: when it does not, the operator reads why here.
	startupCheck(ctx, bucket, cfg, log)
	logACLStatus(ctx, bucket, cfg, log)
	// The record of what Mastodon deleted and hid: nothing is served until it is loaded.
	st, err := newState(bucket, cfg, cfg.Cache.DiskDir != "", log)
	if err != nil {
		return err
	}
	registerStateMetrics(reg, st)
	olds, err := openOldStores(ctx, cfg, log, nil)
	if err != nil {
		return err
	}
	defer olds.close()
	vol := olds.volume
	var stores origin.Sourced = origin.FallbackChain(bucket, olds.list...)
	saved := newSavings(cfg, bucket, log)
	defer saved.flush(ctx) // the counts of the last answers, once the front has stopped
	// What this replica purged lately goes to the bucket, not to an owner that may not have
	// learned of it yet; an owner whose record of deleted media is older than that refuses.
	recent := cluster.NewRecent(purgeWindow(cfg), nil)
	owners, fill, err := newPeerFill(ctx, cfg, stores, recent, log)
	if err != nil {
		return err
	}
	if fill != nil {
		stores = saved.countPeers(fill)
		cfg.Cache.Layered.OnPurge = recent.Add
	}
	layered, closeTiers, err := newCache(stores, cfg, st, log)
	if err != nil {
		return err
	}
	st.Attach(layered)
	// A first load before the listeners open, so that a healthy start serves at once. When it
	// fails (the bucket down, say) the replica answers 503 and is not ready until Run loads it.
	lctx, lcancel := context.WithTimeout(ctx, stateFirstLoad)
	if err := st.Load(lctx); err != nil {
		log.Error("could not load the record of deleted and hidden media; serving nothing until it loads", "err", err)
	}
	lcancel()
	go st.Run(ctx)
	// The tiers are closed only once no request can reach them any more (see below).
	tiersInUse := true
	defer func() {
		if !tiersInUse {
			closeTiers()
		}
	}()
	metrics := proxy.NewMetrics(saved.countFront(reg))
	metrics.KnowStores(olds.names())
	registerCacheMetrics(reg, layered.Stats, metrics.HitBytes)
	reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "fedicache_bucket_bytes_total",
		Help: "Body bytes received from the bucket (what it sent this replica).",
	}, func() float64 { return float64(bucket.BytesReceived()) }))

	pcfg := cfg.Proxy
	pcfg.Logger = log
	var peers *cluster.Peers
	if cfg.Peers != "" {
		peers = newPeers(cfg, reg)
	}
	bust := &buster{state: st, bucket: bucket, volume: vol, peers: peers}
	if cfg.Cloudflare.ZoneID != "" {
		bust.cdn = newCloudflare(cfg, reg, log)
		go bust.cdn.Run(ctx)
	}
	pcfg.Buster = bust
	defer wireFront(&pcfg, origin.FallbackChain(bucket, olds.list...), cfg, st, log)()
	sections := map[string]func() any{
		// Whether fetched bodies are checked against the objects' checksums: false when turned
		// off, or once the service refused the request for them.
		"integrity":   func() any { return map[string]bool{"checksums_asked": bucket.ChecksumsAsked()} },
		"media_proxy": func() any { return mediaProxyStatus(cfg, metrics) },
	}
	board := startProgress(ctx, bucket, cfg, olds, log)
	sections[admin.SavingsSection] = saved.start(ctx, reg, metrics.HitBytes, board)
	if cfg.Backfill.Enabled {
		cs, err := startBackfill(ctx, cfg, layered, st, reg, board, log)
		if err != nil {
			tiersInUse = false
			return err
		}
		pcfg.OnFallback = cs.enqueue
		sections["backfill"] = func() any { return cs.snapshots() }
	}
	front := proxy.New(layered, pcfg, metrics)
	acfg := admin.Config{
		Version:   buildVersion(),
		Info:      statusInfo(cfg),
		Token:     cfg.AdminToken,
		Sections:  sections,
		State:     clusterState{st},
		Metrics:   reg,
		Bucket:    bucket,
		Cache:     layered,
		Draining:  front.Draining,
		HitBytes:  metrics.HitBytes,
		OldStores: olds.check,
	}
	if board != nil {
		acfg.Migrations = board.migrations
	}
	acfg.History = startHistory(ctx, reg, bucket, fill, board)
	if peers != nil {
		acfg.Peers = peers
	}
	if fill != nil {
		served := cluster.NewPeerHandler(cluster.PeerServeConfig{
			Objects: layered, Owners: owners, Token: cfg.AdminToken, OnFallback: pcfg.OnFallback,
			Denied: func(key string) bool {
				return slices.ContainsFunc(pcfg.DenyPrefixes, func(p string) bool { return strings.HasPrefix(key, p) })
			},
			Stale: func() bool { return !st.Loaded() || time.Since(st.Stats().RefreshedAt) > purgeWindow(cfg) },
		})
		acfg.PeerObjects = served
		acfg.Cluster = func() admin.ClusterStatus {
			st := clusterStatusOf(owners, fill, served)
			st.BucketBytes = bucket.BytesReceived()
			return st
		}
		registerClusterMetrics(reg, owners, fill, served)
	}
	adminSrv := &http.Server{
		Handler:           admin.New(acfg),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}

	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		tiersInUse = false
		return fmt.Errorf("listen: %w", err)
	}
	scheme := "http"
	if cfg.TLS.CertFile != "" {
		cert, err := proxy.LoadCertificate(cfg.TLS.CertFile, cfg.TLS.KeyFile)
		if err != nil {
			ln.Close()
			tiersInUse = false
			return fmt.Errorf("tls.cert_file: %w", err)
		}
		go cert.Watch(ctx, cfg.TLS.ReloadInterval, func(err error) {
			if err != nil {
				log.Error("TLS certificate not reloaded; serving the previous one", "cert_file", cfg.TLS.CertFile, "err", err)
			} else {
				log.Info("TLS certificate reloaded", "cert_file", cfg.TLS.CertFile)
			}
		})
		ln = tls.NewListener(ln, cert.TLSConfig())
		scheme = "https"
	}
	aln, err := net.Listen("tcp", cfg.AdminListen)
	if err != nil {
		ln.Close()
		tiersInUse = false
		return fmt.Errorf("admin_listen: %w", err)
	}
	errc := make(chan error, 2)
	go func() { errc <- front.Serve(ln) }()
	go func() {
		if err := adminSrv.Serve(aln); !errors.Is(err, http.ErrServerClosed) {
			errc <- err
		}
	}()
	log.Info("fedicache serving", "version", buildVersion(), "listen", ln.Addr().String(), "scheme", scheme,
		"admin_listen", aln.Addr().String(), "bucket", cfg.S3.Bucket, "endpoint", cfg.S3.Endpoint,
		"prefix", cfg.S3.Prefix, "fallback_dir", cfg.FallbackDir)
	if started != nil {
		started(addrs{public: ln.Addr(), admin: aln.Addr()})
	}

	var serveErr error
	select {
	case <-ctx.Done():
		log.Info("shutting down: readiness fails, no new connections", "grace", cfg.ShutdownGrace.String())
	case serveErr = <-errc:
		log.Error("listener failed, shutting down", "err", serveErr)
	}
	gctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownGrace)
	defer cancel()
	if err := front.Shutdown(gctx); err != nil {
		// Answers may still be running: leave the tiers open; the process is about to exit.
		log.Warn("shutdown grace ran out: answers still under way were cut", "err", err)
	} else {
		tiersInUse = false
	}
	actx, acancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer acancel()
	_ = adminSrv.Shutdown(actx)
	if serveErr != nil {
		return serveErr
	}
	log.Info("stopped")
	return nil
}

// stateFirstLoad bounds the first load of the state, before the listeners open.
const stateFirstLoad = 15 * time.Second

// logACLStatus says once at start whether objects are hidden by their ACL, and why not.
func logACLStatus(ctx context.Context, bucket *s3.Bucket, cfg config.Config, log *slog.Logger) {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	status, err := bucket.ACLStatus(cctx)
	switch {
	case err != nil:
		log.Warn("could not read the bucket's ACL; hidden media is still checked object by object", "err", err)
	case status == s3.ACLNone:
		log.Warn("the bucket's service says it has no ACLs: s3.permission public-read cannot hide media by ACL; set s3.permission: \"\" to silence this")
	case status == s3.ACLCheckOff && cfg.S3.Anonymous:
		log.Info("ACL check off: s3.anonymous reads as the public, so the bucket itself refuses hidden media (403 is answered 404)")
	case status == s3.ACLCheckOff:
		log.Info("ACL check off: s3.permission is empty, no object is hidden by its ACL")
	default:
		log.Info("ACL check on: objects whose ACL grants the public no read answer 404")
	}
}

// memoryHeadroom is what the process may use beyond the memory tier before the garbage
// collector works harder: buffers, bodies in flight, the disk index, the runtime.
const memoryHeadroom = 48 << 20

// setMemoryLimit sets the Go runtime's soft memory limit to the memory tier plus headroom, unless
// GOMEMLIMIT says otherwise: without it the heap may grow to twice what the tier holds before a
// collection, and a container's memory limit must cover that.
func setMemoryLimit(cfg config.Config, log *slog.Logger) {
	if os.Getenv("GOMEMLIMIT") != "" || cfg.Cache.MemoryMaxBytes <= 0 {
		return
	}
	limit := cfg.Cache.MemoryMaxBytes + memoryHeadroom
	debug.SetMemoryLimit(limit)
	log.Debug("memory limit set", "bytes", limit)
}

// cloudflareAPI is Cloudflare's API base; "" means the real one. Tests replace it.
var cloudflareAPI string

// newCloudflare returns the purger of public URLs at Cloudflare, with its outcomes counted.
func newCloudflare(cfg config.Config, reg prometheus.Registerer, log *slog.Logger) *cluster.Cloudflare {
	purged := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "fedicache_cdn_purged_urls_total", Help: "URLs purged from Cloudflare's cache.",
	})
	failed := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "fedicache_cdn_purge_failures_total", Help: "URLs Cloudflare's purge API did not take, after retries.",
	})
	reg.MustRegister(purged, failed)
	cc := cfg.Cloudflare
	cc.Logger = log
	cc.BaseURL = cloudflareAPI
	cc.OnResult = func(urls int, err error) {
		if err != nil {
			failed.Add(float64(urls))
		} else {
			purged.Add(float64(urls))
		}
	}
	return cluster.NewCloudflare(cc)
}

// lookupPeers resolves cluster.peers; nil means the system's resolver. Tests replace it.
var lookupPeers func(ctx context.Context, host string) ([]net.IP, error)

// newPeers returns the other replicas, found by cluster.peers, with their failures counted.
func newPeers(cfg config.Config, reg prometheus.Registerer) *cluster.Peers {
	// No label per peer: pod addresses change with every rollout. The JSON answer names them.
	failures := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "fedicache_peer_forward_failures_total",
		Help: "Purges and cache busts that could not be passed on to a peer replica.",
	})
	reg.MustRegister(failures)
	pc := cfg.PeersConfig()
	pc.Lookup = lookupPeers
	pc.OnResult = func(_ string, ok bool) {
		if !ok {
			failures.Inc()
		}
	}
	return cluster.NewPeers(pc)
}

// newCache puts the configured tiers in front of o, with guard asked before every answer. The
// returned func closes them.
func newCache(o origin.Sourced, cfg config.Config, guard cache.Guard, log *slog.Logger) (*cache.Layered, func(), error) {
	var mem cache.MemoryTier
	var dsk cache.DiskTier
	var closers []func()
	closeAll := func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}
	if cfg.Cache.MemoryMaxBytes > 0 {
		m, err := memory.New(cfg.Cache.MemoryConfig())
		if err != nil {
			return nil, nil, config.ErrorOf(err)
		}
		mem = m
		closers = append(closers, m.Close)
	}
	if cfg.Cache.DiskDir != "" {
		dc := cfg.Cache.DiskConfig()
		dc.Logger = log
		d, err := disk.Open(dc)
		if err != nil {
			// A cache is an optimisation: serve without it rather than not at all.
			log.Error("disk cache unusable, serving without it", "dir", cfg.Cache.DiskDir, "err", config.Keyed(err))
		} else {
			dsk = d
			closers = append(closers, func() { _ = d.Close() })
		}
	}
	lcfg := cfg.Cache.Layered
	lcfg.Logger = log
	lcfg.Guard = guard
	l := cache.New(o, mem, dsk, lcfg)
	closers = append(closers, l.Close)
	return l, closeAll, nil
}

// statusInfo is the configuration summary /status shows: no secrets.
func statusInfo(cfg config.Config) map[string]any {
	info := originInfo(cfg)
	info["strip_prefix"] = cfg.Proxy.StripPrefixes
	info["deny_prefixes"] = cfg.Proxy.DenyPrefixes
	info["cache_dir"] = cfg.Cache.DiskDir
	info["cache_ttl"] = cfg.Cache.Layered.TTL.String()
	return info
}

// originInfo is the part of the configuration summary that serve and backfill share: the host,
// the bucket and the old volume.
func originInfo(cfg config.Config) map[string]any {
	host, _ := os.Hostname()
	return map[string]any{
		"host":         host,
		"bucket":       cfg.S3.Bucket,
		"endpoint":     cfg.S3.Endpoint,
		"region":       cfg.S3.Region,
		"prefix":       cfg.S3.Prefix,
		"fallback_dir": cfg.FallbackDir,
	}
}
