package main

// The copies of the old stores into the bucket, one per store, in the order the stores are
// asked: the backfill command runs them one after the other, and so does serve with
// backfill.enabled, beside a queue per store of what viewers were just answered from it.

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/fedicache/fedicache/backfill"
	"github.com/fedicache/fedicache/cache"
	"github.com/fedicache/fedicache/cache/state"
	"github.com/fedicache/fedicache/cmd/fedicache/config"
	"github.com/fedicache/fedicache/origin"
	"github.com/fedicache/fedicache/origin/s3"
	"github.com/fedicache/fedicache/proxy/admin"
	"github.com/prometheus/client_golang/prometheus"
)

// storeCopy is the copy of one old store.
type storeCopy struct {
	name   string
	source backfill.Source
	p      *backfill.Progress
	queue  *backfill.Queue // serve's copy-on-read; nil in the backfill command

	started   atomic.Bool // its run has begun (the stores are copied one after another)
	completed atomic.Bool // its walk ended: every object looked at, not stopped part way
	abandoned atomic.Bool // the copies stopped before its run began
}

// copies are the copies of the old stores, in order.
type copies []*storeCopy

// newCopies returns the copies of olds, or of those named in only when it is not empty.
func newCopies(olds *oldStores, only []string) (copies, error) {
	var out copies
	for _, name := range only {
		if _, ok := olds.byName(name); !ok {
			return nil, config.Errorf("--source %s: no old store has that name; the old stores are %s (fallback.dir is %q)",
				name, strings.Join(olds.names(), ", "), origin.VolumeStoreName)
		}
	}
	for _, s := range olds.list {
		if len(only) > 0 && !slices.Contains(only, s.Name) {
			continue
		}
		var src backfill.Source
		switch o := s.Origin.(type) {
		case backfill.Volume:
			src = backfill.NewVolumeSource(s.Name, o)
		case backfill.SourceBucket:
			src = backfill.NewBucketSource(s.Name, o)
		default:
			return nil, fmt.Errorf("old store %s cannot be copied", s.Name)
		}
		out = append(out, &storeCopy{name: s.Name, source: src, p: backfill.NewProgress()})
	}
	if len(out) == 0 {
		return nil, config.Errorf("there is no old store to copy: set fallback.dir (the old volume, e.g. /mnt/mastodon-system) or fallback.stores (an old bucket)")
	}
	return out, nil
}

// copyConfig edits an old bucket's configuration for a copier: it reads every object signed,
// hidden ones included (it reads their ACL to copy them private), with the backfill's retries.
func copyConfig(c *s3.Config) {
	c.RequirePublicRead, c.Anonymous, c.MaxAttempts = false, false, backfillMaxAttempts
}

// run copies the stores one after the other into dst until ctx ends; done, when set, is
// called with each store's outcome.
func (cs copies) run(ctx context.Context, dst backfill.Bucket, eng backfill.Config, done func(c *storeCopy, err error)) {
	defer cs.abandon()
	for _, c := range cs {
		if ctx.Err() != nil {
			return
		}
		c.started.Store(true)
		err := backfill.RunSource(ctx, c.source, dst, eng, c.p)
		if err == nil {
			c.completed.Store(true)
		}
		if done != nil {
			done(c, err)
		}
	}
}

// abandon marks the copies not begun as never to begin: they are stopped, not waiting.
func (cs copies) abandon() {
	for _, c := range cs {
		if !c.started.Load() {
			c.abandoned.Store(true)
		}
	}
}

// migration is c's copy as the status pages show it.
func (c *storeCopy) migration() admin.Migration {
	m := migrationOf(c.p.Snapshot())
	m.Source = c.name
	// A copy that ended part way (stopped, or its listing failed) is not done; one that has
	// not begun (a store before it is being copied) is not running.
	m.Running = c.started.Load() && m.Running // migrationOf: running until the run returns
	m.Waiting = !c.started.Load() && !c.abandoned.Load()
	m.Done = c.completed.Load()
	return m
}

// migrations returns every copy as the status pages show it.
func (cs copies) migrations() []admin.Migration {
	out := make([]admin.Migration, len(cs))
	for i, c := range cs {
		out[i] = c.migration()
	}
	return out
}

// byName returns the copy of the store named name, or nil.
func (cs copies) byName(name string) *storeCopy {
	for _, c := range cs {
		if c.name == name {
			return c
		}
	}
	return nil
}

// register exports every copy's progress in reg, labelled with the store's name.
func (cs copies) register(reg prometheus.Registerer) {
	reg.MustRegister(copiesCollector(cs))
}

// copiesCollector is the copies' progress as Prometheus gauges, one series per store.
type copiesCollector copies

var copiesGauges = []struct {
	desc *prometheus.Desc
	of   func(backfill.Snapshot, *storeCopy) float64
}{
	{prometheus.NewDesc("fedicache_backfill_scanned_files", "Objects of the old store the backfill has looked at.", []string{"source"}, nil),
		func(s backfill.Snapshot, _ *storeCopy) float64 { return float64(s.Scanned) }},
	{prometheus.NewDesc("fedicache_backfill_copied_files", "Objects the backfill copied into the bucket.", []string{"source"}, nil),
		func(s backfill.Snapshot, _ *storeCopy) float64 { return float64(s.Copied) }},
	{prometheus.NewDesc("fedicache_backfill_copied_bytes", "Bytes the backfill copied into the bucket.", []string{"source"}, nil),
		func(s backfill.Snapshot, _ *storeCopy) float64 { return float64(s.BytesCopied) }},
	{prometheus.NewDesc("fedicache_backfill_remaining_files", "Objects left to copy (an estimate while the store is being walked).", []string{"source"}, nil),
		func(s backfill.Snapshot, _ *storeCopy) float64 { return float64(s.Remaining) }},
	{prometheus.NewDesc("fedicache_backfill_conflicts", "Keys the bucket holds with other bytes (never overwritten).", []string{"source"}, nil),
		func(s backfill.Snapshot, _ *storeCopy) float64 { return float64(s.Conflicts) }},
	{prometheus.NewDesc("fedicache_backfill_failed_files", "Objects that could not be copied.", []string{"source"}, nil),
		func(s backfill.Snapshot, _ *storeCopy) float64 { return float64(s.Failed) }},
	{prometheus.NewDesc("fedicache_backfill_done", "1 once the walk of the old store has ended.", []string{"source"}, nil),
		func(_ backfill.Snapshot, c *storeCopy) float64 {
			if c.completed.Load() {
				return 1
			}
			return 0
		}},
}

func (cc copiesCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, g := range copiesGauges {
		ch <- g.desc
	}
}

func (cc copiesCollector) Collect(ch chan<- prometheus.Metric) {
	for _, c := range cc {
		s := c.p.Snapshot()
		for _, g := range copiesGauges {
			ch <- prometheus.MustNewConstMetric(g.desc, prometheus.GaugeValue, g.of(s, c), c.name)
		}
	}
}

// logOutcome logs how a store's copy ended.
func logOutcome(log *slog.Logger, ctx context.Context, c *storeCopy, err error) {
	s := c.p.Snapshot()
	switch {
	case ctx.Err() != nil:
		log.Info("backfill stopped", "source", c.name, "copied", s.Copied, "scanned", s.Scanned)
	case err != nil:
		log.Error("backfill failed", "source", c.name, "err", err, "copied", s.Copied, "scanned", s.Scanned)
	default:
		log.Info("backfill finished", "source", c.name, "scanned", s.Scanned, "copied", s.Copied, "present", s.Present,
			"conflicts", s.Conflicts, "failed", s.Failed, "bytes", s.BytesCopied, "took", s.Elapsed.String())
	}
}

// backfillQueueSize bounds the keys served from an old store that wait to be copied.
const backfillQueueSize = 10_000

// startBackfill runs the copies of the old stores in the background until ctx ends (serve's
// backfill.enabled): the walk of each store, and per store a queue that copies first what was
// just answered from it. Each copy shows on board (every replica's status page) when set.
func startBackfill(ctx context.Context, cfg config.Config, c *cache.Layered, st *state.State, reg prometheus.Registerer, board *progressBoard, log *slog.Logger) (copies, error) {
	olds, err := openOldStores(ctx, cfg, log, copyConfig)
	if err != nil {
		return nil, err
	}
	cs, err := newCopies(olds, nil)
	if err != nil {
		olds.close()
		return nil, config.Errorf("backfill.enabled needs an old store: set fallback.dir (the old volume, e.g. /mnt/mastodon-system) or fallback.stores")
	}
	scfg := cfg.S3
	scfg.MaxAttempts = backfillMaxAttempts
	bucket, err := s3.New(ctx, scfg)
	if err != nil {
		olds.close()
		return nil, fmt.Errorf("bucket: %w", config.Keyed(err))
	}
	eng := cfg.Backfill.Engine
	eng.Logger = log
	eng.OnCopied = c.Forget
	eng.Skip = st.Has
	if view, err := bucket.StateView(); err == nil {
		eng.Ranges = newBucketRanges(view, cfg)
	}
	cs.register(reg)
	for _, sc := range cs {
		sc.queue = backfill.NewSourceQueue(sc.source, bucket, eng, sc.p, backfillQueueSize)
		go sc.queue.Run(ctx, 2)
		if board != nil {
			board.copying(ctx, sc.name, sc.migration)
		}
	}
	go func() {
		defer olds.close()
		log.Info("backfill started", "concurrency", eng.Concurrency, "rate", eng.Rate, "bandwidth", eng.Bandwidth)
		cs.run(ctx, bucket, eng, func(sc *storeCopy, err error) { logOutcome(log, ctx, sc, err) })
		<-ctx.Done() // the queues copy what is served from the stores until the end
	}()
	return cs, nil
}

// enqueue queues key, just answered from the old store named store, to be copied first.
func (cs copies) enqueue(key, store string) {
	if c := cs.byName(store); c != nil && c.queue != nil {
		c.queue.Enqueue(key)
	}
}

// snapshots returns every copy's progress, for /status.
func (cs copies) snapshots() []backfill.Snapshot {
	out := make([]backfill.Snapshot, len(cs))
	for i, c := range cs {
		out[i] = c.p.Snapshot()
	}
	return out
}
