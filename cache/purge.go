package cache

// Lock order: Layered.mu (the flights map) before flight.mu, as in layered.go.

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
	if f := l.detach(key); f != nil {
		f.purge(cut)
		if f.complete() {
			<-f.stored
		}
	}
	return l.dropAll(key)
}

// detach takes key's fetch out of the map, so that no request joins it any more, and returns it.
func (l *Layered) detach(key string) *flight {
	l.mu.Lock()
	defer l.mu.Unlock()
	f := l.flights[key]
	if f != nil {
		delete(l.flights, key)
	}
	return f
}

// PurgePrefix removes every key starting with prefix, as Purge does, and returns how many
// entries went.
func (l *Layered) PurgePrefix(prefix string) int {
	l.neg.delPrefix(prefix)
	var storing []*flight
	l.mu.Lock()
	for k, f := range l.flights {
		if len(k) >= len(prefix) && k[:len(prefix)] == prefix {
			delete(l.flights, k)
			f.purge(false)
			if f.complete() {
				storing = append(storing, f)
			}
		}
	}
	l.mu.Unlock()
	for _, f := range storing {
		<-f.stored
	}
	n := 0
	for _, t := range l.tiers {
		n += t.DeletePrefix(prefix)
	}
	return n
}

// Forget drops what the cache remembers of key being absent, so an object that has just been
// stored (say by the backfill) is served at once.
func (l *Layered) Forget(key string) { l.neg.del(key) }
