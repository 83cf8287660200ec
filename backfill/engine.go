package backfill

import (
	"context"
	"fmt"
	"sync/atomic"

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

	m := &merger{ctx: ctx, cfg: &cfg, src: src, dst: dst, p: p, c: newCopier(&cfg, dst, p, cfg.Concurrency)}
	if cfg.Rate > 0 {
		m.files = rate.NewLimiter(rate.Limit(cfg.Rate), 1)
	}
	m.pool.SetLimit(cfg.Concurrency)
	defer m.stopListing()
	r := newRanger(loadRanges(ctx, &cfg, src.Name()))
	walkErr := src.Walk(ctx, func(it Item) error {
		p.Scanned.Add(1)
		p.BytesScanned.Add(it.Size)
		return r.add(it, m.flush)
	})
	if walkErr == nil {
		walkErr = r.end(m.flush)
	}
	if walkErr == nil {
		// The walk is over: the totals are known from here on, and the time left with them.
		p.TotalFiles.Store(p.Scanned.Load())
		p.TotalBytes.Store(p.BytesScanned.Load())
	}
	_ = m.pool.Wait()
	if walkErr != nil {
		return walkErr
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	saveRanges(ctx, &cfg, src.Name(), r)
	return nil
}

// loadRanges returns the record of src's ranges a previous run saved, nil when there is none
// to trust: none kept, Config.Full, or a record that cannot be read (the run then lists every
// range, and saves a record of its own).
func loadRanges(ctx context.Context, cfg *Config, source string) []rangeEntry {
	if cfg.Ranges == nil || cfg.Full {
		return nil
	}
	data, err := cfg.Ranges.LoadRanges(ctx, source)
	if err != nil {
		cfg.Logger.Warn("backfill: could not read the record of the last run; listing the whole bucket", "source", source, "err", err)
		return nil
	}
	if data == nil {
		return nil
	}
	rec, err := parseRanges(data, source)
	if err != nil {
		cfg.Logger.Warn("backfill: ignoring an unreadable record of the last run; listing the whole bucket", "source", source, "err", err)
		return nil
	}
	return rec
}

// saveRanges saves the record of a run whose walk ended, for the next run to trust, unless it
// is the record the run began with. A failure only costs the next run a full listing.
func saveRanges(ctx context.Context, cfg *Config, source string, r *ranger) {
	if cfg.Ranges == nil || cfg.DryRun {
		return
	}
	entries := r.entries()
	if r.unchanged(entries) {
		return
	}
	data, err := marshalRanges(source, entries)
	if err == nil {
		err = cfg.Ranges.SaveRanges(ctx, source, data)
	}
	if err != nil {
		cfg.Logger.Warn("backfill: could not save the record of this run; the next run lists the whole bucket", "source", source, "err", err)
	}
}

// merger merges the walk's ranges with the destination's listing and starts the copies of what
// it lacks. Its methods run on the walk's goroutine, the copies on the pool's.
type merger struct {
	ctx   context.Context
	cfg   *Config
	src   Source
	dst   Bucket
	p     *Progress
	c     *copier
	files *rate.Limiter // nil: no cap on the files started per second
	pool  errgroup.Group

	// The destination's listing, from the first range not matched after a matched one (or
	// the start), read ahead while the ranges that follow are not matched either.
	list     *lister
	listedTo string // the upper bound of the last range merged with list
	cur      origin.Object
	listErr  error
	more     bool
}

// flush decides the objects of the range c: present all of them when c matches the record,
// else each by the destination's listing.
func (m *merger) flush(c *closedRange) error {
	if c.matched {
		// The listing, if one was read, is behind the next range not matched: it is read
		// again from there.
		m.stopListing()
		for _, it := range c.items {
			if !m.cfg.selected(it.Key) {
				m.p.Excluded.Add(1)
				continue
			}
			m.p.Present.Add(1)
			m.p.BytesPresent.Add(it.Size)
			m.p.Unlisted.Add(1)
		}
		return nil
	}
	if len(c.items) == 0 {
		if m.list != nil && m.listedTo == c.after {
			m.listedTo = c.entry.Last
		}
		return nil
	}
	if m.list == nil || m.listedTo != c.after {
		m.stopListing()
		m.list = listAheadOf(m.ctx, m.dst, c.after)
		m.cur, m.listErr, m.more = m.list.next()
	}
	m.listedTo = c.entry.Last
	for _, it := range c.items {
		if err := m.merge(it, c.bad); err != nil {
			return err
		}
	}
	return nil
}

// merge decides one object by the destination's listing: present, a conflict, or to copy;
// bad is set when the object will not be in the destination once the run is over.
func (m *merger) merge(it Item, bad *atomic.Bool) error {
	cfg, p := m.cfg, m.p
	if !cfg.selected(it.Key) {
		p.Excluded.Add(1)
		if cfg.Skip == nil || !cfg.Skip(it.Key) {
			bad.Store(true) // filtered out, not deleted: another run may be told to copy it
		}
		return nil
	}
	for m.more && m.listErr == nil && m.cur.Key < it.Key {
		m.cur, m.listErr, m.more = m.list.next()
	}
	if m.listErr != nil {
		return fmt.Errorf("backfill: listing the bucket: %w", m.listErr)
	}
	if m.more && m.cur.Key == it.Key {
		if conflict(it, m.cur) {
			bad.Store(true)
			p.Conflicts.Add(1)
			p.list(&p.conflicts, it.Key)
			cfg.Logger.Warn("backfill: conflict: the bucket holds this key with other bytes; not overwritten", "source", m.src.Name(),
				"key", it.Key, "source_size", it.Size, "bucket_size", m.cur.Size, "source_etag", it.ETag, "bucket_etag", m.cur.ETag)
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
			bad.Store(true)
			p.PrivateSkipped.Add(1)
			p.list(&p.privateSkipped, it.Key)
			return nil
		}
		acl = origin.ACLPrivate
	}
	p.ToCopy.Add(1)
	p.BytesToCopy.Add(it.Size)
	if cfg.DryRun {
		bad.Store(true)
		if it.aclKnown && it.private {
			p.Private.Add(1)
		}
		if cfg.OnPlan != nil {
			cfg.OnPlan(it.Key, it.Size, acl)
		}
		return nil
	}
	if m.files != nil {
		if err := m.files.Wait(m.ctx); err != nil {
			return err
		}
	}
	m.pool.Go(func() error {
		if !m.c.copy(m.ctx, m.src, it, true) {
			bad.Store(true)
		}
		return nil
	})
	return nil
}

// stopListing ends the listing being read, if any.
func (m *merger) stopListing() {
	if m.list != nil {
		m.list.stop()
		m.list = nil
	}
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

// listAheadOf starts listing bucket from after its key after ("" from the start). The caller
// calls stop when done with it.
func listAheadOf(ctx context.Context, bucket origin.Lister, after string) *lister {
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
		err := bucket.List(ctx, after, func(o origin.Object) error {
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
