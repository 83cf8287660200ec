package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/fedicache/fedicache/backfill"
	"github.com/fedicache/fedicache/cmd/fedicache/config"
	"github.com/fedicache/fedicache/origin/s3"
	"github.com/fedicache/fedicache/proxy/admin"
	"github.com/mattn/go-isatty"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
)

// backfillMaxAttempts is how often the one-shot copy tries a request to the bucket, with
// backoff and jitter, before a file counts as failed.
const backfillMaxAttempts = 10

// errIncomplete makes the command exit 1 once its summary is out.
var errIncomplete = errors.New("not every file could be copied or verified")

func newBackfillCmd() *cobra.Command {
	var (
		dryRun, full     bool
		verify           string
		verifyOut        string
		concurrency      int
		bandwidth        string
		rate             float64
		include, exclude []string
		sources          []string
	)
	cmd := &cobra.Command{
		Use:   "backfill",
		Short: "Copy the old stores into the bucket (resumable, verified, never overwriting)",
		Long: "Copy every object of the old stores that the bucket lacks, under the same key (with\n" +
			"s3.prefix): fallback.dir's volume first, then fallback.stores in order (--source to\n" +
			"pick some). From a volume, objects get Mastodon's Content-Type and Cache-Control and\n" +
			"the s3.acl ACL (hidden files the private ACL); from an old bucket, their own headers\n" +
			"and ACL. A key the bucket holds with other bytes is a conflict: reported, never\n" +
			"overwritten. Rerun it at will: it copies only what is still missing. Nothing is ever\n" +
			"written to or deleted from an old store.\n\n" +
			"--verify compares every old store with the bucket instead, writes the keys that are\n" +
			"safe to delete to --verify-out (one file per store), and says of each store whether it\n" +
			"is safe to retire. It exits 0 only when every object is in the bucket and equal\n" +
			"(objects of keys Mastodon deleted excepted).",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.LoadFlags(cmd.Flags())
			if err != nil {
				return err
			}
			if cfg.FallbackDir == "" && len(cfg.FallbackStores) == 0 {
				return config.Errorf("fallback.dir and fallback.stores are empty: the backfill copies the old stores, e.g. fallback.dir: /mnt/mastodon-system or --fallback-dir, or an old bucket in fallback.stores")
			}
			eng := cfg.Backfill.Engine
			fl := cmd.Flags()
			if fl.Changed("concurrency") {
				if concurrency < 1 {
					return config.Errorf("--concurrency %d: use a number of at least 1, e.g. --concurrency 16", concurrency)
				}
				eng.Concurrency = concurrency
			}
			if fl.Changed("bandwidth") {
				n, err := humanize.ParseBytes(bandwidth)
				if err != nil {
					return config.Errorf("--bandwidth %q is not a size: use e.g. --bandwidth 50MiB", bandwidth)
				}
				eng.Bandwidth = int64(n)
			}
			if fl.Changed("rate") {
				if rate < 0 {
					return config.Errorf("--rate: use a number of files per second of at least 0, e.g. --rate 200")
				}
				eng.Rate = rate
			}
			eng.Include, eng.Exclude, eng.DryRun, eng.Full = include, exclude, dryRun, full
			if err := eng.Validate(); err != nil {
				return config.ErrorOf(err)
			}
			if verify != "" && verify != string(backfill.VerifySize) && verify != string(backfill.VerifyHash) {
				return config.Errorf("--verify=%s: use e.g. --verify (sizes) or --verify=hash (contents)", verify)
			}
			// The backfill serves an admin listener only when asked on its command line: the
			// admin_listen of a configuration shared with serve does not turn it on.
			adminListen := ""
			if fl.Changed("admin-listen") {
				adminListen = cfg.AdminListen
				if verify != "" {
					return config.Errorf("--admin-listen shows the copy's progress, and --verify copies nothing: drop one of them")
				}
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			log := newLogger(cfg, cmd.ErrOrStderr())
			logWarnings(cfg, log)
			eng.Logger = log
			return runBackfill(ctx, cfg, eng, sources, verify, verifyOut, adminListen, cmd.OutOrStdout(), cmd.ErrOrStderr(), log)
		},
	}
	config.AddFlags(cmd.Flags())
	f := cmd.Flags()
	f.Lookup("admin-listen").Usage = "serve the status page, /status and /metrics on this host:port while copying, " +
		"e.g. :9090 to watch a Job through kubectl port-forward; off unless given"
	f.BoolVar(&dryRun, "dry-run", false, "print what would be copied and the totals; write nothing")
	f.BoolVar(&full, "full", false, "list the whole bucket: do not trust the record of the last run for the parts of an old store unchanged since")
	f.StringVar(&verify, "verify", "", "compare every file with the bucket: size (--verify) or hash (--verify=hash)")
	f.Lookup("verify").NoOptDefVal = string(backfill.VerifySize)
	f.StringVar(&verifyOut, "verify-out", "verified-keys.txt", "with --verify: file listing the keys safe to delete from the volume; another store's list has its name added (verified-keys-wasabi.txt)")
	f.IntVar(&concurrency, "concurrency", backfill.DefaultConcurrency, "files copied at once (key backfill.concurrency)")
	f.StringVar(&bandwidth, "bandwidth", "0", "bytes read per second, e.g. 50MiB; 0 for no cap (key backfill.bandwidth)")
	f.Float64Var(&rate, "rate", 0, "files started per second; 0 for no cap (key backfill.rate)")
	f.StringArrayVar(&include, "include", nil, "copy only keys matching this glob (repeatable); a glob with / matches the key, one without the file name")
	f.StringArrayVar(&exclude, "exclude", nil, "skip keys matching this glob (repeatable)")
	f.StringArrayVar(&sources, "source", nil, "copy (or verify) only the old store of this name (repeatable): \"volume\" for fallback.dir, or a name of fallback.stores")
	return cmd
}

// runBackfill opens the old stores and the bucket and runs the copies or the verification.
// With adminListen set, it serves the copies' status page, /status and /metrics there while
// they run.
func runBackfill(ctx context.Context, cfg config.Config, eng backfill.Config, only []string, verify, verifyOut, adminListen string, out, errOut io.Writer, log *slog.Logger) error {
	olds, err := openOldStores(ctx, cfg, log, copyConfig)
	if err != nil {
		return err
	}
	defer olds.close()
	cs, err := newCopies(olds, only)
	if err != nil {
		return err
	}
	scfg := cfg.S3
	scfg.MaxAttempts = backfillMaxAttempts
	var reg *prometheus.Registry
	if adminListen != "" {
		reg = newRegistry()
		scfg.Observe = newBucketMetrics(reg).observe
	}
	bucket, err := s3.New(ctx, scfg)
	if err != nil {
		return fmt.Errorf("bucket: %w", config.Keyed(err))
	}
	if adminListen != "" {
		stopAdmin, err := serveBackfillAdmin(adminListen, cfg, eng, bucket, reg, cs, log)
		if err != nil {
			return err
		}
		defer stopAdmin()
	}
	st, err := newState(bucket, cfg, false, log)
	if err != nil {
		return err
	}
	if err := st.Load(ctx); err != nil {
		return fmt.Errorf("loading the tombstones of deleted keys (the backfill never copies those): %w", err)
	}
	eng.Skip = st.Has
	if view, err := bucket.StateView(); err == nil {
		eng.Ranges = newBucketRanges(view, cfg)
	}
	if verify != "" {
		return verifyStores(ctx, cs, bucket, backfill.VerifyMode(verify), eng, verifyOut, out)
	}
	if eng.DryRun {
		eng.OnPlan = func(key string, size int64, acl string) {
			fmt.Fprintf(out, "would copy %s (%s, acl %q)\n", key, humanize.IBytes(uint64(size)), acl)
		}
	} else if view, err := bucket.StateView(); err == nil {
		// Every replica's status page shows the copies, from the figures published here.
		pctx, stopPublishing := context.WithCancel(ctx)
		var published sync.WaitGroup
		for _, c := range cs {
			published.Go(func() { publishProgress(pctx, view, cfg.StatePrefix, c.migration, log) })
		}
		defer func() { stopPublishing(); published.Wait() }()
	}
	var failed bool
	var runErr error
	defer cs.abandon() // before the last figures are published
	for _, c := range cs {
		if ctx.Err() != nil {
			break
		}
		c.started.Store(true)
		stopProgress := showProgress(c.p, errOut, log)
		err := backfill.RunSource(ctx, c.source, bucket, eng, c.p)
		stopProgress()
		if err == nil {
			c.completed.Store(true)
		} else if runErr == nil {
			runErr = fmt.Errorf("%s: %w", c.name, err)
		}
		s := c.p.Snapshot()
		printSummary(out, c.name, s, eng.DryRun)
		failed = failed || s.Failed > 0
	}
	if runErr != nil {
		return runErr
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if failed {
		return errIncomplete
	}
	return nil
}

// serveBackfillAdmin serves the copy's admin listener on addr (the status page, /status,
// /healthz, /readyz, /metrics) until the returned func is called.
func serveBackfillAdmin(addr string, cfg config.Config, eng backfill.Config, bucket *s3.Bucket, reg *prometheus.Registry, cs copies, log *slog.Logger) (func(), error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--admin-listen: %w", err)
	}
	srv := &http.Server{
		Handler:           newBackfillAdmin(cfg, eng, bucket, reg, cs),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			log.Error("backfill admin listener failed", "err", err)
		}
	}()
	log.Info("backfill status page", "admin_listen", ln.Addr().String())
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		<-done
	}, nil
}

// newBackfillAdmin returns the copy's admin handler, with the backfill's metrics registered in
// reg beside the bucket's.
func newBackfillAdmin(cfg config.Config, eng backfill.Config, bucket *s3.Bucket, reg *prometheus.Registry, cs copies) *admin.Handler {
	cs.register(reg)
	info := originInfo(cfg)
	info["concurrency"], info["rate"], info["bandwidth"], info["dry_run"] = eng.Concurrency, eng.Rate, eng.Bandwidth, eng.DryRun
	return admin.NewBackfill(admin.Config{
		Version:    buildVersion(),
		Info:       info,
		Sections:   map[string]func() any{"backfill": func() any { return cs.snapshots() }},
		Migrations: cs.migrations,
		Metrics:    reg,
		Bucket:     bucket,
	})
}

// showProgress shows a progress bar on a terminal, else a log line every 10 s, until the
// returned func is called.
func showProgress(p *backfill.Progress, w io.Writer, log *slog.Logger) func() {
	done := make(chan struct{})
	finished := make(chan struct{})
	f, isFile := w.(*os.File)
	tty := isFile && (isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd()))
	go func() {
		defer close(finished)
		var bar *progressbar.ProgressBar
		if tty {
			bar = progressbar.NewOptions64(-1, progressbar.OptionSetWriter(w), progressbar.OptionShowBytes(true),
				progressbar.OptionSetDescription("backfill"), progressbar.OptionShowCount(),
				progressbar.OptionSetPredictTime(true), progressbar.OptionThrottle(200*time.Millisecond))
		}
		period := 10 * time.Second
		if tty {
			period = 250 * time.Millisecond
		}
		tick := time.NewTicker(period)
		defer tick.Stop()
		for {
			select {
			case <-done:
				if bar != nil {
					_ = bar.Finish()
					fmt.Fprintln(w)
				}
				return
			case <-tick.C:
			}
			s := p.Snapshot()
			eta := "unknown"
			if s.ETA >= 0 {
				eta = s.ETA.Round(time.Second).String()
			}
			if bar != nil {
				_ = bar.Set64(s.BytesRead)
				bar.Describe(fmt.Sprintf("backfill: %d of %d files copied, %d scanned, %d failed, ETA %s",
					s.Copied, s.ToCopy, s.Scanned, s.Failed, eta))
				continue
			}
			log.Info("backfill progress", "scanned", s.Scanned, "copied", s.Copied, "to_copy", s.ToCopy,
				"bytes_copied", s.BytesCopied, "rate", humanize.IBytes(uint64(s.BytesPerSecond))+"/s",
				"failed", s.Failed, "conflicts", s.Conflicts, "eta", eta)
		}
	}()
	return func() {
		close(done)
		<-finished
	}
}

// printSummary writes the final counts and the keys that need an admin's eye.
func printSummary(w io.Writer, source string, s backfill.Snapshot, dryRun bool) {
	verb := "copied"
	if dryRun {
		verb = "would copy"
	}
	fmt.Fprintf(w, "\nbackfill summary: %s%s\n", source, map[bool]string{true: " (dry run: nothing written)"}[dryRun])
	fmt.Fprintf(w, "  scanned          %d files\n", s.Scanned)
	if dryRun {
		fmt.Fprintf(w, "  %-16s %d files, %s\n", verb, s.ToCopy, humanize.IBytes(uint64(s.BytesToCopy)))
	} else {
		fmt.Fprintf(w, "  %-16s %d files, %s\n", verb, s.Copied, humanize.IBytes(uint64(s.BytesCopied)))
	}
	fmt.Fprintf(w, "  skipped          %d already in the bucket, %d stored by another copier, %d excluded\n", s.Present, s.Exists, s.Excluded)
	if s.Unlisted > 0 {
		fmt.Fprintf(w, "  not listed       %d of those were unchanged since the last run found them in the bucket (--full lists them)\n", s.Unlisted)
	}
	fmt.Fprintf(w, "  conflicts        %d (same key, other size: not overwritten)\n", s.Conflicts)
	fmt.Fprintf(w, "  private          %d hidden files copied with the private ACL, %d skipped (no ACLs)\n", s.Private, s.PrivateSkipped)
	fmt.Fprintf(w, "  changed          %d (changed or vanished while read: skipped)\n", s.Changed)
	fmt.Fprintf(w, "  failed           %d\n", s.Failed)
	fmt.Fprintf(w, "  duration         %s (%s/s)\n", s.Elapsed.Round(time.Millisecond), humanize.IBytes(uint64(s.BytesPerSecond)))
	for _, k := range s.ConflictKeys {
		fmt.Fprintf(w, "  conflict: %s\n", k)
	}
	for _, k := range s.PrivateSkips {
		fmt.Fprintf(w, "  hidden, not copied: %s\n", k)
	}
	for _, k := range s.ChangedKeys {
		fmt.Fprintf(w, "  changed: %s\n", k)
	}
	for _, f := range s.Failures {
		fmt.Fprintf(w, "  failed: %s: %s\n", f.Key, f.Err)
	}
}
