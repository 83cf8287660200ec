// Package disk owns the bounded on-disk cache tier: one file per object under a directory,
// written to a temporary file and renamed into place, served straight from the file (sendfile),
// indexed in memory for least-recently-used eviction, and re-indexed in the background on start
// so that a large cache serves at once. Entries are not flushed to the disk one by one: a
// checksum in each file, and a mark of a clean shutdown, tell whether they can be trusted after
// a restart (see clean.go and verify.go).
//
// One Disk owns its directory; two processes must not share one.
package disk

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fedicache/fedicache/cache"
	"github.com/fedicache/fedicache/origin"
	"github.com/fedicache/fedicache/origin/fielderr"
)

// touchEvery is how often, at most, a hit sets its file's mtime, so that the rebuild after a
// restart orders the entries roughly by use.
const touchEvery = time.Hour

// Errors of Create, besides the disk's own; callers that get any error from Create don't cache.
var (
	// ErrDisabled means that writes are off for a while: the disk reported full, over quota
	// or read-only (see Config.RetryAfter).
	ErrDisabled = errors.New("disk: writes off for now (disk full or read-only)")
	// ErrTooLarge means that the entry would take more than the whole cache (Config.MaxBytes).
	ErrTooLarge = errors.New("disk: entry larger than the cache")
)

// Disk is the on-disk cache tier. Its methods are safe for concurrent use.
//
// Lock order: Writer.mu before Disk.mu. Disk.mu guards the index and every rename into and
// removal from the hash directories, so that the index and the files agree.
type Disk struct {
	dir, tmp   string
	maxBytes   int64
	retryAfter time.Duration
	log        *slog.Logger

	// now, createTemp and space are time.Now, createTemp (os.CreateTemp) and fsSpace, replaced
	// in tests.
	now        func() time.Time
	createTemp func(dir, pattern string) (*os.File, error)
	space      func(dir string) (free, size int64, ok bool)
	// rebuildGate, when not nil, holds the rebuild back until it is closed (tests).
	rebuildGate chan struct{}
	// onVerify, when not nil, is called before an entry's checksum is checked, by the
	// background pass or by Open (tests).
	onVerify func(key string, background bool)
	// flushEach makes Commit flush each entry's file to the disk: flushEachCommit, or set by
	// the benchmarks that measure what the flush costs.
	flushEach bool

	// unclean is true when Open found no mark of a clean shutdown: the files it finds are
	// unverified (see clean.go). noMarker is true when the mark could not be taken, and Close
	// then writes none.
	unclean, noMarker bool

	mu  sync.Mutex
	idx index
	// purge records what Delete, DeletePrefix and evictions remove while the rebuild runs;
	// nil once it has finished.
	purge  *purgeLog
	closed bool

	ready   atomic.Bool
	rebuilt chan struct{}
	checked chan struct{} // closed when the background verification ends (or had nothing to do)
	stop    chan struct{}
	wg      sync.WaitGroup // the rebuild, the verification and the mtime touches

	verified, verifyFailed atomic.Uint64 // entries checked against their checksum, and dropped

	offUntil                        atomic.Int64 // Unix nanoseconds; 0: writes on
	evictions, dropped, writeErrors atomic.Uint64
	pending                         atomic.Int64 // bytes claimed by writers under way (roomFor)
	lowSpace                        atomic.Bool  // the file system's free space was found short, and said
	// spaceFig is the last reading of the free space, nil when none is to be trusted; spent
	// counts the bytes committed, as they are taken to use the disk (see space.go).
	spaceFig atomic.Pointer[spaceFigure]
	spent    atomic.Int64

	dirs hashDirs // the hash directories known to exist (see dirs.go)
}

// Open opens the cache in cfg.Dir, creating the directory when missing, removes the temporary
// files an earlier process left and takes the mark of a clean shutdown (see clean.go). It
// returns at once: the index is rebuilt from the files in the background (see Ready), and
// entries are served by their path meanwhile; after an unclean shutdown the entries are then
// verified in the background (see Verification). Close stops both.
func Open(cfg Config) (*Disk, error) { return open(cfg, nil) }

// open is Open with a hook that adjusts the Disk before the rebuild starts (tests).
func open(cfg Config, setup func(*Disk)) (*Disk, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	d := &Disk{
		dir:        filepath.Clean(cfg.Dir),
		maxBytes:   cfg.MaxBytes,
		retryAfter: cfg.RetryAfter,
		log:        cfg.Logger,
		now:        time.Now,
		createTemp: createTemp,
		space:      fsSpace,
		purge:      newPurgeLog(),
		flushEach:  flushEachCommit,
		rebuilt:    make(chan struct{}),
		checked:    make(chan struct{}),
		stop:       make(chan struct{}),
	}
	d.tmp = filepath.Join(d.dir, "tmp")
	if d.maxBytes == 0 {
		d.maxBytes = DefaultMaxBytes
	}
	if d.retryAfter == 0 {
		d.retryAfter = DefaultRetryAfter
	}
	if d.log == nil {
		d.log = slog.Default()
	}
	d.idx.init()
	if err := os.MkdirAll(d.tmp, 0o750); err != nil {
		return nil, &fielderr.Error{Pkg: "disk", Field: "Config.Dir", Value: fmt.Sprintf("%q", cfg.Dir),
			Problem: "cannot be created", Fix: "set a directory the process may write", Err: err}
	}
	d.removeTemps()
	clean, err := takeMarker(d.dir)
	if err != nil {
		d.log.Warn("disk cache: the clean-shutdown mark is not usable; none is written at close", "dir", d.dir, "err", err)
		d.noMarker = true
	}
	d.unclean = !clean
	if setup != nil {
		setup(d)
	}
	d.warnIfLarger()
	d.wg.Go(d.run)
	return d, nil
}

// run is the background work of a new Disk: the rebuild, then, after an unclean shutdown, the
// verification of the entries it found.
func (d *Disk) run() {
	defer close(d.checked)
	entries, ok := d.rebuild()
	close(d.rebuilt)
	if ok && d.unclean {
		d.verifyAll(entries)
	}
}

// removeTemps removes what an earlier process left in the temporary directory.
func (d *Disk) removeTemps() {
	ents, err := os.ReadDir(d.tmp)
	if err != nil {
		d.log.Warn("disk cache: cannot list the temporary files", "dir", d.tmp, "err", err)
		return
	}
	for _, ent := range ents {
		if err := os.RemoveAll(filepath.Join(d.tmp, ent.Name())); err != nil {
			d.log.Warn("disk cache: cannot remove a temporary file", "file", ent.Name(), "err", err)
		}
	}
}

// Ready reports whether the rebuild of the index has finished. Until then, Stats, DeletePrefix
// and eviction know only the entries indexed so far (see DeletePrefix).
func (d *Disk) Ready() bool { return d.ready.Load() }

// Rebuilt returns a channel closed when the rebuild ends, because it finished (Ready is then
// true) or because Close stopped it.
func (d *Disk) Rebuilt() <-chan struct{} { return d.rebuilt }

// Name implements cache.Tier.
func (d *Disk) Name() string { return string(cache.SourceDisk) }

// Open implements cache.Tier. Without a range the body is the *os.File itself, positioned at
// the body's first byte, so that a server can hand it to sendfile. With a range the body reads
// only the range's bytes (also by sendfile, see origin.FileRange). A range beyond the end fails with
// origin.ErrRangeNotSatisfiable and the entry, so that the caller can name the size.
//
// A file that is not a whole, well-formed entry of key is deleted and reported as not found; so
// is an unverified entry (see verify.go) whose checksum does not match, read whole before it is
// first served. While the rebuild runs, Open finds entries by their path and indexes them;
// afterwards the index answers misses without touching the disk.
func (d *Disk) Open(key string, r *origin.Range) (io.ReadCloser, cache.Entry, error) {
	ready := d.ready.Load()
	indexed, unverified := d.hit(key)
	if !indexed && ready {
		return nil, cache.Entry{}, fmt.Errorf("disk: open %q: %w", key, origin.ErrNotFound)
	}
	p := pathOf(d.dir, key)
	f, err := os.Open(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			if indexed {
				d.forget(key, p)
			}
			return nil, cache.Entry{}, fmt.Errorf("disk: open %q: %w", key, origin.ErrNotFound)
		}
		return nil, cache.Entry{}, fmt.Errorf("disk: open %q: %w: %w", key, origin.ErrNotFound, err)
	}
	e, bodyOff, info, err := readEntry(f, key)
	if err != nil {
		f.Close()
		if errors.Is(err, errCorrupt) {
			d.drop(key, p, info, err)
		}
		return nil, cache.Entry{}, fmt.Errorf("disk: open %q: %w: %w", key, origin.ErrNotFound, err)
	}
	if unverified {
		if err := d.verifyOpen(key, p, f, info, indexed); err != nil {
			f.Close()
			return nil, cache.Entry{}, fmt.Errorf("disk: open %q: %w: %w", key, origin.ErrNotFound, err)
		}
	}
	if !indexed && !d.adopt(key, p, info, unverified) {
		f.Close()
		return nil, cache.Entry{}, fmt.Errorf("disk: open %q: %w", key, origin.ErrNotFound)
	}
	if r == nil {
		if _, err := f.Seek(bodyOff, io.SeekStart); err != nil {
			f.Close()
			return nil, cache.Entry{}, fmt.Errorf("disk: open %q: %w: %w", key, origin.ErrNotFound, err)
		}
		return f, e, nil
	}
	first, last, ok := r.Resolve(e.Meta.Size)
	if !ok {
		f.Close()
		return nil, e, fmt.Errorf("disk: open %q %s: %w", key, r, origin.ErrRangeNotSatisfiable)
	}
	if _, err := f.Seek(bodyOff+first, io.SeekStart); err != nil {
		f.Close()
		return nil, cache.Entry{}, fmt.Errorf("disk: open %q: %w: %w", key, origin.ErrNotFound, err)
	}
	return origin.FileRange(f, last-first+1), e, nil
}

// hit marks key's entry as used, if indexed, and reports whether it is, and whether its file
// must be verified before it is served: an unverified entry, or, after an unclean shutdown, a
// file not indexed yet. Once per touchEvery it sets the file's mtime, in the background.
func (d *Disk) hit(key string) (indexed, unverified bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := d.idx.get(key)
	if n == nil {
		return false, d.unclean
	}
	d.idx.moveToFront(n)
	d.touchLocked(n)
	return true, d.idx.isUnverified(key)
}

// touchLocked sets n's file's mtime to now, in the background, when it was last set more than
// touchEvery ago. d.mu is held.
func (d *Disk) touchLocked(n *node) {
	now := d.now()
	if minutes(now)-n.touched < uint32(touchEvery/time.Minute) || d.closed {
		return
	}
	n.touched = minutes(now)
	p := pathOf(d.dir, n.key)
	d.wg.Go(func() {
		// Best effort: a failure only makes the next rebuild think the entry older.
		_ = os.Chtimes(p, now, now)
	})
}

// adopt indexes the file of key, found by its path while the rebuild runs, as the most recently
// used entry, verified when checked says that its checksum was. It reports false, and removes
// the file, when a DeletePrefix during the rebuild covers key; false also when the file at p is
// no longer the one opened (info).
func (d *Disk) adopt(key, p string, info fs.FileInfo, checked bool) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if n := d.idx.get(key); n != nil {
		// Indexed meanwhile: by the rebuild (the file checked, then unverified) or by a
		// commit (a new file, never unverified).
		d.idx.moveToFront(n)
		if checked && d.idx.setVerified(key) {
			d.verified.Add(1)
		}
		return true
	}
	cur, err := os.Stat(p)
	if err != nil || !os.SameFile(cur, info) {
		return false
	}
	if d.purge.covers(key) {
		d.removeFileLocked(key, p)
		return false
	}
	n := d.idx.pushFront(key, info.Size(), minutes(info.ModTime()))
	d.touchLocked(n)
	if checked {
		d.verified.Add(1)
	}
	return true
}

// forget drops key's node when its file is gone.
func (d *Disk) forget(key, p string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, err := os.Stat(p); !errors.Is(err, fs.ErrNotExist) {
		return
	}
	if n := d.idx.get(key); n != nil {
		d.idx.remove(n)
	}
}

// drop removes the corrupt file at p, opened as info, and key's node, counts it and logs it.
// When a commit has replaced the file meanwhile, it leaves the new one alone.
func (d *Disk) drop(key, p string, info fs.FileInfo, why error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	cur, err := os.Stat(p)
	if err != nil || !os.SameFile(cur, info) {
		return
	}
	if n := d.idx.get(key); n != nil {
		d.idx.remove(n)
	}
	d.removeFileLocked(key, p)
	d.dropped.Add(1)
	d.log.Warn("disk cache: dropped a corrupt entry", "key", key, "err", why)
}

// removeFileLocked removes key's file at p. d.mu is held.
func (d *Disk) removeFileLocked(key, p string) bool {
	err := os.Remove(p)
	switch {
	case err == nil:
		return true
	case errors.Is(err, fs.ErrNotExist):
		return false
	default:
		d.writeFailed("remove", key, err)
		return false
	}
}

// MarkValidated implements cache.Tier: it rewrites the 8 bytes of ValidatedAt in place. It
// reports false when there is no such entry or the time could not be written.
func (d *Disk) MarkValidated(key string, at time.Time) bool {
	if d.ready.Load() {
		d.mu.Lock()
		n := d.idx.get(key)
		d.mu.Unlock()
		if n == nil {
			return false
		}
	}
	p := pathOf(d.dir, key)
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			d.forget(key, p)
		} else {
			d.writeFailed("mark validated", key, err)
		}
		return false
	}
	defer f.Close()
	_, _, info, err := readEntry(f, key)
	if err != nil {
		if errors.Is(err, errCorrupt) {
			d.drop(key, p, info, err)
		}
		return false
	}
	var b [8]byte
	putTime(b[:], at)
	if _, err := f.WriteAt(b[:], offValidated); err != nil {
		d.writeFailed("mark validated", key, err)
		return false
	}
	return true
}

// Delete implements cache.Tier. It removes key's file also when the rebuild has not indexed it.
func (d *Disk) Delete(key string) bool {
	p := pathOf(d.dir, key)
	d.mu.Lock()
	defer d.mu.Unlock()
	found := false
	if n := d.idx.get(key); n != nil {
		d.idx.remove(n)
		found = true
	}
	d.purge.removed(key)
	if d.removeFileLocked(key, p) {
		found = true
	}
	return found
}

// DeletePrefix implements cache.Tier. It goes through the index, so while the rebuild runs it
// removes and counts only the entries indexed so far; the others under prefix are not served
// from then on, and the rebuild removes them when it reaches them.
func (d *Disk) DeletePrefix(prefix string) int {
	d.mu.Lock()
	keys := d.idx.keysWithPrefix(prefix)
	d.purge.addPrefix(prefix)
	d.mu.Unlock()
	removed := 0
	for chunk := range slices.Chunk(keys, lockBatch) {
		d.mu.Lock()
		for _, k := range chunk {
			if n := d.idx.get(k); n != nil {
				d.idx.remove(n)
				d.removeFileLocked(k, pathOf(d.dir, k))
				removed++
			}
		}
		d.mu.Unlock()
	}
	return removed
}

// Stats implements cache.Tier.
func (d *Disk) Stats() cache.TierStats {
	d.mu.Lock()
	entries, bytes := int64(d.idx.len()), d.idx.bytes
	d.mu.Unlock()
	return cache.TierStats{
		Entries:     entries,
		Bytes:       bytes,
		MaxBytes:    d.maxBytes,
		Evictions:   d.evictions.Load(),
		Disabled:    d.writesOff(),
		Dropped:     d.dropped.Load(),
		WriteErrors: d.writeErrors.Load(),
	}
}

var _ cache.Tier = (*Disk)(nil)
