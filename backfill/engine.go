package backfill

import (
	"context"
	"fmt"

	"github.com/fedicache/fedicache/origin"
	"golang.org/x/sync/errgroup"
	"golang.org/x/time/rate"
)

// Run copies what the volume holds and the bucket lacks: RunSource with the volume as the
// source (NewVolumeSource).
func Run(ctx context.Context, vol Volume, bucket Bucket, cfg Config, p *Progress) error {
	return RunSource(ctx, NewVolumeSource("", vol), bucket, cfg, p)
}

// RunSource copies what src holds and dst lacks, and counts everything in p (which may be nil),
// under src's name. It walks src and lists dst once each, in key order, and merges the two: a
// key dst holds with src's size (and, from a bucket, without another MD5) is present; with
// another size or MD5 it is a conflict, reported and never written; a key dst lacks is copied
// by a pool of Config.Concurrency workers. It returns an error only when the run itself could
// not go on (a listing failed, ctx ended); objects that fail are counted and listed in p, and
// the others are still copied.
func RunSource(ctx context.Context, src Source, dst Bucket, cfg Config, p *Progress) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	cfg = cfg.withDefaults()
	if p == nil {
		p = NewProgress()
	}
	p.setSource(src.Name())
	defer p.finish()
	log := cfg.Logger

	if a, ok := dst.(staleUploadAborter); ok && !cfg.DryRun {
		if n, err := a.AbortStaleUploads(ctx, cfg.StaleUploads); err != nil {
			log.Warn("backfill: cleaning up incomplete uploads failed", "err", err)
		} else if n > 0 {
			log.Info("backfill: aborted incomplete uploads a stopped run left", "count", n)
		}
	}

	c := newCopier(&cfg, dst, p, cfg.Concurrency)
	var files *rate.Limiter
	if cfg.Rate > 0 {
		files = rate.NewLimiter(rate.Limit(cfg.Rate), 1)
	}
	var pool errgroup.Group
	pool.SetLimit(cfg.Concurrency)

	list := listAheadOf(ctx, dst)
	defer list.stop()
	next := list.next
	cur, listErr, more := next()
	walkErr := src.Walk(ctx, func(it Item) error {
		p.Scanned.Add(1)
		p.BytesScanned.Add(it.Size)
		if !cfg.selected(it.Key) {
			p.Excluded.Add(1)
			return nil
		}
		for more && listErr == nil && cur.Key < it.Key {
			cur, listErr, more = next()
		}
		if listErr != nil {
			return fmt.Errorf("backfill: listing the bucket: %w", listErr)
		}
		if more && cur.Key == it.Key {
			if conflict(it, cur) {
				p.Conflicts.Add(1)
				p.list(&p.conflicts, it.Key)
				log.Warn("backfill: conflict: the bucket holds this key with other bytes; not overwritten", "source", src.Name(),
					"key", it.Key, "source_size", it.Size, "bucket_size", cur.Size, "source_etag", it.ETag, "bucket_etag", cur.ETag)
			} else {
				p.Present.Add(1)
				p.BytesPresent.Add(it.Size)
			}
			return nil
		}
		// The ACL of a volume's file is known from its mode now; an old bucket's is read when
		// the object is copied, and a private one skipped then (see copier.copy).
		acl := cfg.ACL
		if it.aclKnown && it.private {
			if cfg.ACL == "" {
				p.PrivateSkipped.Add(1)
				p.list(&p.privateSkipped, it.Key)
				return nil
			}
			acl = origin.ACLPrivate
		}
		p.ToCopy.Add(1)
		p.BytesToCopy.Add(it.Size)
		if cfg.DryRun {
			if it.aclKnown && it.private {
				p.Private.Add(1)
			}
			if cfg.OnPlan != nil {
				cfg.OnPlan(it.Key, it.Size, acl)
			}
			return nil
		}
		if files != nil {
			if err := files.Wait(ctx); err != nil {
				return err
			}
		}
		pool.Go(func() error {
			c.copy(ctx, src, it, true)
			return nil
		})
		return nil
	})
	if walkErr == nil {
		// The walk is over: the totals are known from here on, and the time left with them.
		p.TotalFiles.Store(p.Scanned.Load())
		p.TotalBytes.Store(p.BytesScanned.Load())
	}
	_ = pool.Wait()
	if walkErr != nil {
		return walkErr
	}
	return ctx.Err()
}

// conflict reports whether the destination's object o holds other bytes than the source's it:
// another size, or, when both ETags are plain MD5s, another MD5.
func conflict(it Item, o origin.Object) bool {
	if o.Size != it.Size {
		return true
	}
	a, ok := origin.ETagMD5(it.ETag)
	if !ok {
		return false
	}
	b, ok := origin.ETagMD5(o.ETag)
	return ok && a != b
}

// listAhead is how many pages of the destination's listing are read ahead of the walk.
const listAhead = 2

// listPage is how many objects of the listing travel together to the walk.
const listPage = 1000

// lister reads a bucket's listing on a goroutine of its own, up to listAhead pages ahead of
// the walk that merges it, so that the listing's requests and their parsing run beside the
// walk rather than in turn with it.
type lister struct {
	pages  chan []origin.Object
	err    error // the listing's, set before pages is closed
	cancel context.CancelFunc
	done   chan struct{}
	page   []origin.Object
}

// listAheadOf starts listing bucket. The caller calls stop when done with it.
func listAheadOf(ctx context.Context, bucket origin.Lister) *lister {
	ctx, cancel := context.WithCancel(ctx)
	l := &lister{pages: make(chan []origin.Object, listAhead), cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(l.done)
		page := make([]origin.Object, 0, listPage)
		send := func() error {
			select {
			case l.pages <- page:
				page = make([]origin.Object, 0, listPage)
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		err := bucket.List(ctx, "", func(o origin.Object) error {
			if page = append(page, o); len(page) == listPage {
				return send()
			}
			return nil
		})
		if err == nil && len(page) > 0 {
			err = send()
		}
		l.err = err
		close(l.pages)
	}()
	return l
}

// next returns the next object of the listing; more is false at its end, or with its error.
func (l *lister) next() (o origin.Object, err error, more bool) {
	for len(l.page) == 0 {
		page, ok := <-l.pages
		if !ok {
			return origin.Object{}, l.err, false
		}
		l.page = page
	}
	o, l.page = l.page[0], l.page[1:]
	return o, nil, true
}

// stop ends the listing and waits for its goroutine.
func (l *lister) stop() {
	l.cancel()
	<-l.done
}
