package cache

// Lock order: Layered.mu (the fetches map) before stream.mu, as in fetch.go.

import "strings"

// dropAll removes key from every tier and returns how many entries went.
func (l *Layered) dropAll(key string) int {
	n := 0
	for _, t := range l.tiers {
		if t.Delete(key) {
			n++
		}
	}
	return n
}

// Purge removes key from every tier and from the not-found memory, and keeps a fetch under
// way from storing it (one already storing is waited for, then removed): the requests reading
// that fetch finish, and later requests start a fetch of their own. It returns how many
// entries went.
func (l *Layered) Purge(key string) int { return l.purge(key, false) }

// Drop is Purge for an object Mastodon deleted or hid: a fetch under way is also cut, so the
// requests reading it fail rather than receive the rest of its bytes.
func (l *Layered) Drop(key string) int { return l.purge(key, true) }

func (l *Layered) purge(key string, cut bool) int {
	l.neg.del(key)
	l.mu.Lock()
	f := l.fetches[key]
	delete(l.fetches, key) // no request joins it any more
	l.mu.Unlock()
	if f != nil {
		l.unstore(f, cut)
	}
	n := l.dropAll(key)
	if l.cfg.OnPurge != nil {
		l.cfg.OnPurge(key, false)
	}
	return n
}

// PurgePrefix removes every key starting with prefix, as Purge does, and returns how many
// entries went.
func (l *Layered) PurgePrefix(prefix string) int {
	l.neg.delPrefix(prefix)
	var purged []*fetch
	l.mu.Lock()
	for k, f := range l.fetches {
		if strings.HasPrefix(k, prefix) {
			delete(l.fetches, k)
			purged = append(purged, f)
		}
	}
	l.mu.Unlock()
	for _, f := range purged {
		l.unstore(f, false)
	}
	n := 0
	for _, t := range l.tiers {
		n += t.DeletePrefix(prefix)
	}
	if l.cfg.OnPurge != nil {
		l.cfg.OnPurge(prefix, true)
	}
	return n
}

// unstore keeps f, taken out of the map, from storing its object; with cut, it also stops f and
// fails its readers. A store already under way is waited for, so that what it stored can go.
func (l *Layered) unstore(f *fetch, cut bool) {
	f.purged.Store(true)
	if cut {
		f.s.cut(errDropped, false)
		f.cancel()
		if a := f.aheadOf(); a != nil {
			a.s.cut(errDropped, false)
			a.cancel()
		}
	}
	if f.s.complete() {
		<-f.stored
	}
}

// Forget drops what the cache remembers of key being absent, so an object that has just been
// stored (say by the backfill) is served at once.
func (l *Layered) Forget(key string) { l.neg.del(key) }
