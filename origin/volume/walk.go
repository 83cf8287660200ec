package volume

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"runtime"
	"slices"
	"strings"
	"sync"
)

// Walk's read-ahead, in records (a file, or a subtree walked by another goroutine): each
// goroutine walking a subtree sends them in batches of walkBatch, and may be walkBuffered
// batches ahead of fn before it waits. A Mastodon id partition (one directory per attachment,
// two files) of a thousand attachments fits, so the goroutines rarely wait on each other.
const (
	walkBatch    = 128
	walkBuffered = 32
)

// walkHelpers bounds the goroutines that walk subtrees beside the first: twice the cores, so
// that some walk while others wait for fn to reach what they walked, at least two, at most
// sixteen.
func walkHelpers() int { return min(max(2*runtime.GOMAXPROCS(0), 2), 16) }

// Walk calls fn for every regular file of the volume, in the lexical order of their keys (the order
// of sort.Strings, which a merge with a bucket's listing needs), and returns the first error fn
// returns; fs.SkipAll from fn ends the walk without an error. fn is called from one goroutine
// at a time, never concurrently.
//
// Walk reads directories in parallel ahead of fn: one goroutine walks the volume depth-first,
// and whenever a helper is free (see walkHelpers), the next subdirectory not yet walked nearest
// the top is handed to it, to walk into a stream of its own that fn reads when it gets there.
// Each goroutine holds the entries of the directories on its path and at most walkBatch *
// walkBuffered records walked ahead, never the whole tree: with the defaults, about a megabyte
// per goroutine.
//
// It visits hidden files (see origin.Hidden), which Get does not serve, so that a copier can
// store them as private. It skips directories it cannot read, files that are not regular,
// names that are not valid keys and symbolic links that lead out of the volume. It does not
// descend into symbolic links to directories, even inside the volume (a link may form a loop),
// so a file reachable only through one is served by Get but not walked. For a symbolic link to a
// file inside the volume, info describes the file.
func (v *Volume) Walk(ctx context.Context, fn func(key string, info fs.FileInfo) error) error {
	w := &walker{v: v, helpers: make(chan struct{}, walkHelpers()), stop: make(chan struct{})}
	top := newStream()
	w.wg.Add(1)
	go w.walk(ctx, top, "")
	err := w.read(ctx, top, fn)
	close(w.stop)
	w.wg.Wait()
	if errors.Is(err, fs.SkipAll) {
		return nil
	}
	return err
}

// walker is one walk: its volume, the tokens of its helpers, and a signal that fn stopped.
type walker struct {
	v       *Volume
	helpers chan struct{}
	stop    chan struct{} // closed when the reader is done: the goroutines stop sending
	wg      sync.WaitGroup
}

// stream is what one goroutine walked, in key order: its batches, then the error that ended
// its walk (nil when it walked all), set before the batches' channel is closed.
type stream struct {
	batches chan []record
	err     error
}

func newStream() *stream { return &stream{batches: make(chan []record, walkBuffered)} }

// record is one file walked, or a subtree another goroutine walks, read in its place.
type record struct {
	key  string
	info fs.FileInfo
	sub  *stream
}

// walkEntry is one walked name of a directory.
type walkEntry struct {
	key   string
	order string      // what the entry sorts by: its name, with a slash after a directory's
	info  fs.FileInfo // nil for a directory
	sub   *stream     // a directory handed to a helper
}

// frame is a directory on a goroutine's path: its entries and the next one to walk.
type frame struct {
	entries []walkEntry
	next    int
	pending int // no entry before it is a directory still to hand out
}

// errStopped ends a goroutine's walk once the reader no longer reads.
var errStopped = errors.New("volume: walk: stopped")

// read calls fn for each file of s in order, reading the subtrees of helpers in their places.
func (w *walker) read(ctx context.Context, s *stream, fn func(string, fs.FileInfo) error) error {
	for batch := range s.batches {
		for _, r := range batch {
			if r.sub != nil {
				if err := w.read(ctx, r.sub, fn); err != nil {
					return err
				}
				continue
			}
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("volume: walk: %w", err)
			}
			if err := fn(r.key, r.info); err != nil {
				return err
			}
		}
	}
	return s.err
}

// walk walks the directory dir ("" for the volume's own) depth-first into s.
func (w *walker) walk(ctx context.Context, s *stream, dir string) {
	defer w.wg.Done()
	batch := make([]record, 0, walkBatch)
	send := func() error {
		select {
		case s.batches <- batch:
			batch = make([]record, 0, walkBatch)
			return nil
		case <-w.stop:
			return errStopped
		}
	}
	s.err = w.walkInto(ctx, dir, func(r record) error {
		batch = append(batch, r)
		if len(batch) < walkBatch {
			return nil
		}
		return send()
	})
	if s.err == nil && len(batch) > 0 {
		s.err = send()
	}
	close(s.batches)
}

// walkInto walks dir depth-first, passing its files and the subtrees it hands out to emit.
func (w *walker) walkInto(ctx context.Context, dir string, emit func(record) error) error {
	entries, err := w.v.entries(dir)
	if err != nil {
		if dir != "" && absent(err) {
			return nil // a directory that vanished or may not be read holds nothing to serve
		}
		return err
	}
	path := []frame{{entries: entries}}
	for len(path) > 0 {
		f := &path[len(path)-1]
		if f.next == len(f.entries) {
			path[len(path)-1] = frame{}
			path = path[:len(path)-1]
			continue
		}
		e := f.entries[f.next]
		f.next++
		switch {
		case e.sub != nil:
			if err := emit(record{sub: e.sub}); err != nil {
				return err
			}
		case e.info != nil:
			if err := emit(record{key: e.key, info: e.info}); err != nil {
				return err
			}
		default:
			w.handOut(ctx, path)
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("volume: walk: %w", err)
			}
			entries, err := w.v.entries(e.key)
			if err != nil {
				if absent(err) {
					continue
				}
				return err
			}
			path = append(path, frame{entries: entries})
		}
	}
	return nil
}

// handOut gives helpers, while some are free, the directories still to walk nearest the top of
// path: the largest subtrees, and the ones read soonest after the one being walked.
func (w *walker) handOut(ctx context.Context, path []frame) {
	for i := range path {
		f := &path[i]
		for f.pending = max(f.pending, f.next); f.pending < len(f.entries); f.pending++ {
			e := &f.entries[f.pending]
			if e.info != nil || e.sub != nil {
				continue
			}
			select {
			case w.helpers <- struct{}{}:
			default:
				return
			}
			e.sub = newStream()
			w.wg.Add(1)
			go func(s *stream, dir string) {
				w.walk(ctx, s, dir)
				<-w.helpers
			}(e.sub, e.key)
		}
	}
}

// entries reads the directory dir and returns the entries to walk, sorted so that the keys they
// lead to come in lexical order: a directory d sorts as "d/", since every key beneath it starts
// with that, and no file name holds a slash, so comparing "d/" with a file's name decides the
// order of every key beneath d against that file's key.
func (v *Volume) entries(dir string) ([]walkEntry, error) {
	name := dir
	if name == "" {
		name = "."
	}
	d, err := v.openDir(name)
	if err != nil {
		return nil, wrap("walk", dir, err)
	}
	defer d.Close()
	des, err := d.ReadDir(-1)
	if err != nil {
		return nil, wrap("walk", dir, err)
	}
	out := make([]walkEntry, 0, len(des))
	for _, de := range des {
		key := de.Name()
		if dir != "" {
			key = dir + "/" + key
		}
		if !validKey(key) {
			continue
		}
		if de.IsDir() {
			out = append(out, walkEntry{key: key, order: de.Name() + "/"})
			continue
		}
		// A link is resolved through the volume, not de.Info: it is followed only within the
		// volume, and the linked file described rather than the link. Any other entry is
		// described in place, beneath d (one fstatat), or through the volume where the system
		// cannot.
		var info fs.FileInfo
		serr := errNoBeneath
		if de.Type()&fs.ModeSymlink == 0 {
			info, serr = statIn(d, de.Name())
		}
		if errors.Is(serr, errNoBeneath) {
			info, serr = v.stat(key)
		}
		if serr == nil {
			serr = regular(info)
		}
		if serr != nil {
			if absent(serr) {
				continue
			}
			return nil, wrap("walk", key, serr)
		}
		out = append(out, walkEntry{key: key, order: de.Name(), info: info})
	}
	slices.SortFunc(out, func(a, b walkEntry) int { return strings.Compare(a.order, b.order) })
	return out, nil
}
