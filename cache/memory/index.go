package memory

// Lock order: index.mu before index.goneMu. Under index.mu the index calls only ristretto's
// Set, which never waits for ristretto's goroutine; Del, Wait and Close, which can, are called
// without it.

import (
	"strings"
	"sync"

	"github.com/dgraph-io/ristretto/v2"
)

// index is the set of keys the tier may hold, which ristretto cannot list, for DeletePrefix
// and Stats.Entries.
//
// It counts, per key, the items ristretto took into its buffers and has not let go of yet:
// still buffered, or stored. Ristretto lets go of every item it took exactly once, whatever the
// way (rejected by the policy, evicted, deleted, replaced by a later Set of its key, dropped by
// Close), and tells Config.OnExit, on its own goroutine or inside Set and Del. A key whose
// count is above zero is indexed; every key ristretto can return therefore is, also while a
// Set of it is buffered behind others. Once the buffers are applied (Wait) the index holds
// exactly the stored keys.
//
// Counting, rather than remembering each key's latest item, matters when two Puts of a key
// reach ristretto as new items (the second came while the first was buffered) and a third
// replaces the first in place: the second is still buffered and may yet be applied, though the
// item the key last named is gone.
type index struct {
	c *ristretto.Cache[string, *item] // set once, before the first put

	mu   sync.Mutex
	keys map[string]int // key -> items of it taken and not let go of

	goneMu sync.Mutex
	// gone holds the keys of items let go of, not yet subtracted from keys: the keys only,
	// so that nothing holds on to the bodies.
	gone []string
}

func newIndex() *index {
	return &index{keys: map[string]int{}}
}

// exited queues it, which ristretto let go of, for the next sweep. It is Config.OnExit, which
// ristretto also calls with nil (a Del that found nothing). It cannot take mu: Set calls it
// while put holds mu.
func (x *index) exited(it *item) {
	if it == nil {
		return
	}
	x.goneMu.Lock()
	x.gone = append(x.gone, it.entry.Key)
	x.goneMu.Unlock()
}

// sweepLocked subtracts the queued items from their keys' counts. The caller holds x.mu. An
// item may be queued before put has counted it (ristretto can reject it at once), but it is
// subtracted only here, under mu, which put holds from the Set to the count.
func (x *index) sweepLocked() {
	x.goneMu.Lock()
	gone := x.gone
	x.gone = nil
	x.goneMu.Unlock()
	for _, k := range gone {
		if n := x.keys[k]; n > 1 {
			x.keys[k] = n - 1
		} else {
			delete(x.keys, k)
		}
	}
}

// sweep is sweepLocked for a caller that does not hold x.mu.
func (x *index) sweep() {
	x.mu.Lock()
	x.sweepLocked()
	x.mu.Unlock()
}

// put hands it to ristretto and counts it when ristretto takes it into its buffers. It
// reports whether ristretto took it.
func (x *index) put(it *item) bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.sweepLocked()
	if !x.c.Set(it.entry.Key, it, it.cost) {
		return false
	}
	x.keys[it.entry.Key]++
	return true
}

// withPrefix returns the indexed keys that start with prefix.
func (x *index) withPrefix(prefix string) []string {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.sweepLocked()
	var keys []string
	for k := range x.keys {
		if strings.HasPrefix(k, prefix) {
			keys = append(keys, k)
		}
	}
	return keys
}

// len returns how many keys the index holds.
func (x *index) len() int {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.sweepLocked()
	return len(x.keys)
}
