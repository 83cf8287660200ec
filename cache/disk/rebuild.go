package disk

import (
	"cmp"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

const (
	// lockBatch is how many entries the rebuild, DeletePrefix and the rebuild's eviction handle
	// per hold of the index lock, so that hits never wait long.
	lockBatch = 1024
	// rebuildWorkers is how many goroutines read headers at once: the reads are small and
	// random, and a solid-state disk serves several at a time.
	rebuildWorkers = 8
)

// found is an entry the rebuild read: its key, the length of its file and the file's mtime.
type found struct {
	key   string
	size  int64
	mtime int64
}

// rebuild indexes the files in the hash directories. It reads the prefix and header of each
// (deleting those that are corrupt, truncated or filed under the wrong name), orders them by
// mtime and inserts them behind the entries that hits and commits indexed meanwhile, in
// batches, unverified after an unclean shutdown. Then it evicts down to MaxBytes, and the index
// answers for the directory. It returns the entries it found, most recently used first, and
// false when Close stopped it.
func (d *Disk) rebuild() ([]found, bool) {
	if d.rebuildGate != nil {
		select {
		case <-d.rebuildGate:
		case <-d.stop:
			return nil, false
		}
	}
	start, dropped := time.Now(), d.dropped.Load()
	entries, ok := d.walk()
	if !ok {
		return nil, false
	}
	// Newest first: each goes to the back, so the oldest ends at the back.
	slices.SortFunc(entries, func(a, b found) int { return cmp.Compare(b.mtime, a.mtime) })
	for chunk := range slices.Chunk(entries, lockBatch) {
		if d.stopped() {
			return nil, false
		}
		d.mu.Lock()
		for _, f := range chunk {
			switch {
			case d.idx.get(f.key) != nil:
				// A hit or a commit indexed it first.
			case d.purge.covers(f.key):
				d.removeFileLocked(f.key, pathOf(d.dir, f.key))
			default:
				d.idx.pushBack(f.key, f.size, minutes(time.Unix(0, f.mtime)))
				if d.unclean {
					d.idx.markUnverified(f.key)
				}
			}
		}
		d.mu.Unlock()
	}
	for {
		d.mu.Lock()
		done := d.evictLocked(lockBatch)
		if done {
			d.purge = nil
			d.ready.Store(true)
		}
		d.mu.Unlock()
		if done {
			break
		}
		if d.stopped() {
			return nil, false
		}
	}
	st := d.Stats()
	d.log.Info("disk cache: index rebuilt", "dir", d.dir, "entries", st.Entries, "bytes", st.Bytes,
		"dropped", d.dropped.Load()-dropped, "took", time.Since(start).Round(time.Millisecond))
	return entries, true
}

// stopped reports whether Close asked the rebuild to stop.
func (d *Disk) stopped() bool {
	select {
	case <-d.stop:
		return true
	default:
		return false
	}
}

// walk reads the entries in the hash directories, with rebuildWorkers goroutines, moving those
// of the two-level layout into place (see moveOld); ok is false when Close stopped it.
func (d *Disk) walk() (entries []found, ok bool) {
	tops, err := os.ReadDir(d.dir)
	if err != nil {
		d.log.Warn("disk cache: cannot list the cache directory; nothing indexed", "dir", d.dir, "err", err)
		return nil, true
	}
	dirs := make(chan string)
	var (
		wg sync.WaitGroup
		mu sync.Mutex
		mv oldLayout
	)
	for range rebuildWorkers {
		wg.Go(func() {
			var mine []found
			for top := range dirs {
				mine = d.walkTop(top, mine, &mv)
			}
			mu.Lock()
			entries = append(entries, mine...)
			mu.Unlock()
		})
	}
feed:
	for _, t := range tops {
		if !t.IsDir() || !isHex(t.Name(), 2) {
			continue
		}
		d.dirs.markTop(t.Name())
		select {
		case dirs <- filepath.Join(d.dir, t.Name()):
		case <-d.stop:
			break feed
		}
	}
	close(dirs)
	wg.Wait()
	if n, failed := mv.moved.Load(), mv.failed.Load(); n != 0 || failed != 0 {
		d.log.Info("disk cache: moved entries of the two-level layout into their hash directories",
			"dir", d.dir, "entries", n, "left", failed)
	}
	if d.stopped() {
		return nil, false
	}
	return entries, true
}

// walkTop appends the entries in one hash directory to out and returns it: its regular files
// whose names are entries' names of that directory (see isEntryName), and the entries of the
// two-level layout in its subdirectories, which it moves into it first (see moveOld). Anything
// else is left alone. It returns early when Close asks the rebuild to stop.
func (d *Disk) walkTop(top string, out []found, mv *oldLayout) []found {
	ents, err := os.ReadDir(top)
	if err != nil {
		d.log.Warn("disk cache: cannot list a directory", "dir", top, "err", err)
		return out
	}
	prefix := filepath.Base(top)
	for _, ent := range ents {
		if d.stopped() {
			return out
		}
		name := ent.Name()
		switch {
		case ent.Type().IsRegular() && isEntryName(name, prefix):
			if e, ok := d.readFound(filepath.Join(top, name)); ok {
				out = append(out, e)
			}
		case ent.IsDir() && isHex(name, 2):
			out = d.moveOld(top, name, out, mv)
		}
	}
	return out
}

// oldLayout counts, for the log, the entries of the two-level layout that the rebuild moved and
// those it could not move.
type oldLayout struct{ moved, failed atomic.Int64 }

// moveOld moves the entries in the subdirectory sub of the hash directory top, where versions
// before the one-level layout filed them (dir/ab/cd/abcd...), into top, appends them to out as
// walkTop does and removes sub once it is empty. Anything in sub that is not an entry's file
// of that place is left alone, and sub with it. It returns early when Close asks the rebuild
// to stop; the next rebuild moves the rest.
func (d *Disk) moveOld(top, sub string, out []found, mv *oldLayout) []found {
	old := filepath.Join(top, sub)
	files, err := os.ReadDir(old)
	if err != nil {
		d.log.Warn("disk cache: cannot list a directory", "dir", old, "err", err)
		return out
	}
	prefix := filepath.Base(top) + sub
	for _, f := range files {
		if d.stopped() {
			return out
		}
		name := f.Name()
		if !f.Type().IsRegular() || !isEntryName(name, prefix) {
			continue // not an entry's file: left alone
		}
		p := filepath.Join(top, name)
		if !d.moveFile(filepath.Join(old, name), p, mv) {
			continue
		}
		if e, ok := d.readFound(p); ok {
			out = append(out, e)
		}
	}
	_ = os.Remove(old) // fails when something is left in it: then it stays
	return out
}

// moveFile moves an entry's file from its place in the two-level layout, from, to its place now,
// to, and reports whether it did. The rebuild runs while the tier serves, and a commit may have
// filed a newer entry of the same key at to meanwhile: os.Link, unlike a rename, never replaces
// it, and when it finds a file there the old one is removed instead. d.mu is held around the
// link, as around every rename into the hash directories.
func (d *Disk) moveFile(from, to string, mv *oldLayout) bool {
	d.mu.Lock()
	err := os.Link(from, to)
	d.mu.Unlock()
	if err != nil && !errors.Is(err, fs.ErrExist) {
		if mv.failed.Add(1) == 1 {
			d.log.Warn("disk cache: cannot move an entry of the two-level layout; left where it is",
				"file", from, "err", err)
		}
		return false
	}
	if rerr := os.Remove(from); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
		d.log.Warn("disk cache: cannot remove an entry of the two-level layout", "file", from, "err", rerr)
	}
	if err != nil {
		return false // a newer entry is in place
	}
	mv.moved.Add(1)
	return true
}

// readFound reads the prefix and header of the file at p. A file that is no whole entry filed
// under its key's name is deleted, and ok is false; so is a file that cannot be read.
func (d *Disk) readFound(p string) (found, bool) {
	f, err := os.Open(p)
	if err != nil {
		return found{}, false
	}
	defer f.Close()
	e, _, info, err := readEntry(f, "")
	if err != nil {
		if errors.Is(err, errCorrupt) {
			d.dropFound(p, info, err)
		}
		return found{}, false
	}
	return found{key: e.Key, size: info.Size(), mtime: info.ModTime().UnixNano()}, true
}

// dropFound removes the corrupt file at p, opened as info, unless a commit replaced it.
func (d *Disk) dropFound(p string, info os.FileInfo, why error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	cur, err := os.Stat(p)
	if err != nil || !os.SameFile(cur, info) {
		return
	}
	if err := os.Remove(p); err != nil {
		d.log.Warn("disk cache: cannot remove a corrupt file", "file", p, "err", err)
		return
	}
	d.dropped.Add(1)
	d.log.Debug("disk cache: dropped a corrupt file", "file", p, "err", why)
}

// isEntryName reports whether name is the name of an entry's file (see hashName) that belongs
// in the hash directory named prefix, or, for the two-level layout, prefix = top + sub.
func isEntryName(name, prefix string) bool {
	return isHex(name, nameLen) && strings.HasPrefix(name, prefix)
}

// isHex reports whether s is n lowercase hexadecimal digits.
func isHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := range len(s) {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// purgeLog remembers, while the rebuild runs, what was removed: keys (by Delete or eviction)
// and prefixes (by DeletePrefix). The rebuild skips such entries it read before their removal,
// and Open does not serve an unindexed file under a purged prefix. The nil purgeLog, once the
// rebuild has finished, records nothing and covers nothing. The Disk's mutex guards it.
type purgeLog struct {
	keys     map[string]struct{}
	prefixes []string
}

// newPurgeLog returns an empty purgeLog.
func newPurgeLog() *purgeLog { return &purgeLog{keys: make(map[string]struct{})} }

// removed records that key's entry was removed.
func (l *purgeLog) removed(key string) {
	if l != nil {
		l.keys[key] = struct{}{}
	}
}

// addPrefix records that the entries under prefix were removed.
func (l *purgeLog) addPrefix(prefix string) {
	if l != nil && !slices.Contains(l.prefixes, prefix) {
		l.prefixes = append(l.prefixes, prefix)
	}
}

// covers reports whether key was removed while the log was kept.
func (l *purgeLog) covers(key string) bool {
	if l == nil {
		return false
	}
	if _, ok := l.keys[key]; ok {
		return true
	}
	for _, p := range l.prefixes {
		if strings.HasPrefix(key, p) {
			return true
		}
	}
	return false
}
