package backfill

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"iter"

	"github.com/fedicache/fedicache/origin"
	"golang.org/x/sync/errgroup"
	"golang.org/x/time/rate"
)

// Run copies what the volume holds and the bucket lacks, and counts everything in p (which may
// be nil). It returns an error only when the run itself could not go on (the listing failed,
// ctx ended); files that fail are counted and listed in p, and the others are still copied.
func Run(ctx context.Context, vol Volume, bucket Bucket, cfg Config, p *Progress) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	cfg = cfg.withDefaults()
	if p == nil {
		p = NewProgress()
	}
	defer p.finish()
	log := cfg.Logger

	if a, ok := bucket.(staleUploadAborter); ok && !cfg.DryRun {
		if n, err := a.AbortStaleUploads(ctx, cfg.StaleUploads); err != nil {
			log.Warn("backfill: cleaning up incomplete uploads failed", "err", err)
		} else if n > 0 {
			log.Info("backfill: aborted incomplete uploads a stopped run left", "count", n)
		}
	}

	countCtx, stopCount := context.WithCancel(ctx)
	defer stopCount()
	go count(countCtx, vol, &cfg, p)

	c := &copier{cfg: &cfg, vol: vol, bucket: bucket, p: p}
	if cfg.Bandwidth > 0 {
		c.bandwidth = rate.NewLimiter(rate.Limit(cfg.Bandwidth), int(max(cfg.Bandwidth/10, 64<<10)))
	}
	var files *rate.Limiter
	if cfg.Rate > 0 {
		files = rate.NewLimiter(rate.Limit(cfg.Rate), 1)
	}
	var pool errgroup.Group
	pool.SetLimit(cfg.Concurrency)

	next, stop := iter.Pull2(listing(ctx, bucket))
	defer stop()
	cur, listErr, more := next()
	walkErr := vol.Walk(ctx, func(key string, info fs.FileInfo) error {
		p.Scanned.Add(1)
		p.BytesScanned.Add(info.Size())
		if !cfg.selected(key) {
			p.Excluded.Add(1)
			return nil
		}
		for more && listErr == nil && cur.Key < key {
			cur, listErr, more = next()
		}
		if listErr != nil {
			return fmt.Errorf("backfill: listing the bucket: %w", listErr)
		}
		if more && cur.Key == key {
			if cur.Size == info.Size() {
				p.Present.Add(1)
				p.BytesPresent.Add(info.Size())
			} else {
				p.Conflicts.Add(1)
				p.list(&p.conflicts, key)
				log.Warn("backfill: conflict: the bucket holds this key with another size; not overwritten",
					"key", key, "volume_size", info.Size(), "bucket_size", cur.Size)
			}
			return nil
		}
		acl := cfg.ACL
		if origin.Hidden(info.Mode()) {
			if cfg.ACL == "" {
				p.PrivateSkipped.Add(1)
				p.list(&p.privateSkipped, key)
				return nil
			}
			acl = "private"
			p.Private.Add(1)
		}
		p.ToCopy.Add(1)
		p.BytesToCopy.Add(info.Size())
		if cfg.DryRun {
			if cfg.OnPlan != nil {
				cfg.OnPlan(key, info.Size(), acl)
			}
			return nil
		}
		if files != nil {
			if err := files.Wait(ctx); err != nil {
				return err
			}
		}
		pool.Go(func() error {
			c.copy(ctx, key, info, acl)
			return nil
		})
		return nil
	})
	_ = pool.Wait()
	if walkErr != nil {
		return walkErr
	}
	return ctx.Err()
}

// listing is the bucket's listing as a sequence, for a pull iterator: it yields each object, or
// one error.
func listing(ctx context.Context, bucket origin.Lister) iter.Seq2[origin.Object, error] {
	return func(yield func(origin.Object, error) bool) {
		errStop := errors.New("stop")
		err := bucket.List(ctx, "", func(o origin.Object) error {
			if !yield(o, nil) {
				return errStop
			}
			return nil
		})
		if err != nil && !errors.Is(err, errStop) {
			yield(origin.Object{}, err)
		}
	}
}

// count walks the volume ahead of the copy to learn its totals, for the estimate of the time
// left.
func count(ctx context.Context, vol Volume, cfg *Config, p *Progress) {
	var files, bytes int64
	err := vol.Walk(ctx, func(key string, info fs.FileInfo) error {
		files++
		bytes += info.Size()
		return nil
	})
	if err == nil {
		p.TotalFiles.Store(files)
		p.TotalBytes.Store(bytes)
	}
}
