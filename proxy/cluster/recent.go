package cluster

// What this replica purged lately (Recent), so that the peer fill does not ask an owner that may
// not know of it yet.

import (
	"strings"
	"sync"
	"time"
)

// recentMaxKeys bounds the keys Recent holds: beyond, the expired ones go, and if that is not
// enough the oldest half.
const recentMaxKeys = 100_000

// Recent is the keys and prefixes this replica purged within a window (busts, Mastodon's
// deletions and hides, operator purges, those it learned from its peers or the bucket's log).
// An owner learns of a purge from the same fan-out and the same log, but a replica cut off for a
// while learns late: until the window has passed, the peer fill asks the bucket for such a key
// rather than an owner that could still hold what Mastodon hid. Its methods are safe for
// concurrent use; a nil *Recent holds nothing.
type Recent struct {
	window time.Duration
	now    func() time.Time

	mu       sync.Mutex
	keys     map[string]time.Time // key -> when it was purged
	prefixes map[string]time.Time
}

// NewRecent returns a Recent that remembers purges for window; now reads the clock (zero
// means time.Now).
func NewRecent(window time.Duration, now func() time.Time) *Recent {
	if now == nil {
		now = time.Now
	}
	return &Recent{window: window, now: now, keys: map[string]time.Time{}, prefixes: map[string]time.Time{}}
}

// Add records the purge of key, or of every key under it when prefix is set.
func (r *Recent) Add(key string, prefix bool) {
	if r == nil {
		return
	}
	now := r.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if prefix {
		r.prefixes[key] = now
		r.prune(r.prefixes, now)
		return
	}
	r.keys[key] = now
	r.prune(r.keys, now)
}

// prune drops the expired entries of m once it grows past recentMaxKeys, and the oldest half
// if that is not enough. r.mu is held.
func (r *Recent) prune(m map[string]time.Time, now time.Time) {
	if len(m) <= recentMaxKeys {
		return
	}
	for k, at := range m {
		if now.Sub(at) >= r.window {
			delete(m, k)
		}
	}
	if len(m) <= recentMaxKeys {
		return
	}
	cut := now.Add(-r.window / 2)
	for k, at := range m {
		if at.Before(cut) {
			delete(m, k)
		}
	}
}

// Has reports whether key, or a prefix of it, was purged within the window.
func (r *Recent) Has(key string) bool {
	if r == nil {
		return false
	}
	now := r.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if at, ok := r.keys[key]; ok {
		if now.Sub(at) < r.window {
			return true
		}
		delete(r.keys, key)
	}
	for p, at := range r.prefixes {
		if now.Sub(at) >= r.window {
			delete(r.prefixes, p)
		} else if strings.HasPrefix(key, p) {
			return true
		}
	}
	return false
}
