package volume

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"runtime"
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

// walkHeld bounds the directories a goroutine keeps open on its path. Deeper, it closes the
// highest it holds, whose subdirectories are then opened from the volume's directory by their
// keys: a tree nested thousands deep is walked without thousands of descriptors.
const walkHeld = 32

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
// per goroutine. On Linux it holds those directories open too (up to walkHeld) and opens each
// subdirectory by its name beneath its parent, never following a symbolic link, rather than
// resolving its whole key from the volume's directory again (a subdirectory handed to a helper
// is opened so before it is handed); it reads directories with getdents(2) into a buffer per
// goroutine and describes each file with one fstatat(2) beneath its directory: the system calls
// find(1) makes. Elsewhere os.Root opens each directory by its key.
//
// It visits hidden files (see origin.Hidden), which Get does not serve, so that a copier can
// store them as private. It skips directories it cannot read, files that are not regular,
// names that are not valid keys and symbolic links that lead out of the volume. It does not
// descend into symbolic links to directories, even inside the volume (a link may form a loop),
// so a file reachable only through one is served by Get but not walked. For a symbolic link to a
// file inside the volume, info describes the file.
func (v *Volume) Walk(ctx context.Context, fn func(key string, info fs.FileInfo) error) error {
	d, err := v.openWalkDir("")
	if err != nil {
		return wrap("walk", "", err)
	}
	w := &walker{v: v, helpers: make(chan struct{}, walkHelpers()), stop: make(chan struct{})}
	top := newStream()
	w.wg.Add(1)
	go w.walk(ctx, top, "", d, nil)
	err = w.read(ctx, top, fn)
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

// walkEntry is one walked name of a directory: a file to pass to fn, or a directory to walk.
type walkEntry struct {
	key  string
	base int // where the entry's name starts in key
	dir  bool
	info fs.FileInfo // a file's
	sub  *stream     // a directory handed to a helper
}

// name is the entry's name in its directory.
func (e *walkEntry) name() string { return e.key[e.base:] }

// compareEntries orders the entries of one directory as the keys they lead to: by name, a
// directory's as if a slash followed it, since every key beneath a directory d starts with "d/"
// and no name holds a slash, so comparing "d/" with a file's name decides the order of every
// key beneath d against that file's key.
func compareEntries(a, b walkEntry) int {
	an, bn := a.name(), b.name()
	n := min(len(an), len(bn))
	if c := strings.Compare(an[:n], bn[:n]); c != 0 {
		return c
	}
	return cmp.Compare(orderByte(an, a.dir, n), orderByte(bn, b.dir, n))
}

// orderByte is the byte at i of what an entry sorts by (its name, and a slash after a
// directory's), -1 past its end.
func orderByte(name string, dir bool, i int) int {
	switch {
	case i < len(name):
		return int(name[i])
	case dir && i == len(name):
		return '/'
	}
	return -1
}

// frame is a directory on a goroutine's path: the directory, held open while its entries are
// walked (noDir once the path is deeper than walkHeld), its entries and the next one to walk.
type frame struct {
	d       dirHandle
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

// walk walks the directory dir ("" for the volume's own), open as d or failed to open with
// openErr, depth-first into s. It closes d.
func (w *walker) walk(ctx context.Context, s *stream, dir string, d dirHandle, openErr error) {
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
	s.err = w.walkInto(ctx, dir, d, openErr, func(r record) error {
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

// walkInto walks dir, open as d, depth-first, passing its files and the subtrees it hands out
// to emit. It closes every directory it holds before it returns.
func (w *walker) walkInto(ctx context.Context, dir string, d dirHandle, openErr error, emit func(record) error) error {
	if openErr != nil {
		if absent(openErr) {
			return nil // a directory that vanished or may not be read holds nothing to serve
		}
		return wrap("walk", dir, openErr)
	}
	r := newDirReader(w.v)
	defer r.release()
	var path []frame
	defer func() {
		for i := range path {
			closeDir(path[i].d)
		}
	}()
	// descend reads the directory key, open as d, onto path, reusing the entries of a frame
	// walked before at that depth; it skips a directory that vanished or may not be read.
	descend := func(key string, d dirHandle) error {
		var spare []walkEntry
		if len(path) < cap(path) {
			spare = path[:len(path)+1][len(path)].entries
		}
		entries, err := r.read(d, key, spare)
		if err != nil {
			closeDir(d)
			if key != "" && absent(err) {
				return nil
			}
			return err
		}
		path = append(path, frame{d: d, entries: entries})
		if n := len(path); n > walkHeld {
			closeDir(path[n-1-walkHeld].d)
			path[n-1-walkHeld].d = noDir
		}
		return nil
	}
	if err := descend(dir, d); err != nil {
		return err
	}
	for len(path) > 0 {
		f := &path[len(path)-1]
		if f.next == len(f.entries) {
			closeDir(f.d)
			clear(f.entries)
			*f = frame{d: noDir, entries: f.entries[:0]}
			path = path[:len(path)-1]
			continue
		}
		e := &f.entries[f.next]
		f.next++
		switch {
		case e.sub != nil:
			if err := emit(record{sub: e.sub}); err != nil {
				return err
			}
		case !e.dir:
			if err := emit(record{key: e.key, info: e.info}); err != nil {
				return err
			}
		default:
			w.handOut(ctx, path)
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("volume: walk: %w", err)
			}
			sub, err := w.v.openDirIn(f.d, e.key, e.base)
			if err != nil {
				if absent(err) {
					continue
				}
				return wrap("walk", e.key, err)
			}
			if err := descend(e.key, sub); err != nil {
				return err
			}
		}
	}
	return nil
}

// handOut gives helpers, while some are free, the directories still to walk nearest the top of
// path: the largest subtrees, and the ones read soonest after the one being walked. It opens
// each beneath its parent, which path holds open, for the helper to walk.
func (w *walker) handOut(ctx context.Context, path []frame) {
	for i := range path {
		f := &path[i]
		for f.pending = max(f.pending, f.next); f.pending < len(f.entries); f.pending++ {
			e := &f.entries[f.pending]
			if !e.dir || e.sub != nil {
				continue
			}
			select {
			case w.helpers <- struct{}{}:
			default:
				return
			}
			d, err := w.v.openDirIn(f.d, e.key, e.base)
			e.sub = newStream()
			w.wg.Add(1)
			go func(s *stream, dir string) {
				w.walk(ctx, s, dir, d, err)
				<-w.helpers
			}(e.sub, e.key)
		}
	}
}
