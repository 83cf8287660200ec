package cache

import (
	"strings"
	"sync"
	"time"
)

// maxNegative bounds the not-found memory, so a scanner asking for random keys cannot grow it
// without end.
const maxNegative = 100_000

// negative remembers keys the origin did not have, for ttl.
type negative struct {
	ttl   time.Duration
	clock func() time.Time

	mu      sync.Mutex
	expires map[string]time.Time
}

func newNegative(ttl time.Duration, clock func() time.Time) *negative {
	return &negative{ttl: ttl, clock: clock, expires: map[string]time.Time{}}
}

func (n *negative) has(key string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	exp, ok := n.expires[key]
	if !ok {
		return false
	}
	if n.clock().Before(exp) {
		return true
	}
	delete(n.expires, key)
	return false
}

func (n *negative) add(key string) {
	now := n.clock()
	n.mu.Lock()
	defer n.mu.Unlock()
	if len(n.expires) >= maxNegative {
		for k, exp := range n.expires {
			if !now.Before(exp) {
				delete(n.expires, k)
			}
		}
		if len(n.expires) >= maxNegative {
			// All fresh: forget the lot rather than grow; the cost is a few origin requests.
			clear(n.expires)
		}
	}
	n.expires[key] = now.Add(n.ttl)
}

func (n *negative) del(key string) {
	n.mu.Lock()
	delete(n.expires, key)
	n.mu.Unlock()
}

func (n *negative) delPrefix(prefix string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for k := range n.expires {
		if strings.HasPrefix(k, prefix) {
			delete(n.expires, k)
		}
	}
}

func (n *negative) len() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.expires)
}
