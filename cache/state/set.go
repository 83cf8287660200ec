package state

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"slices"
	"sync"
	"sync/atomic"
	"unsafe"
)

// hash identifies a tombstoned key: the first 16 bytes of the SHA-256 of the key, as in the
// names of tombstone objects (whose full 32 bytes are in the name). 128 bits make a collision
// between a million keys a chance of about 2^-88.
type hash [16]byte

// hashOf returns key's hash without allocating.
func hashOf(key string) hash {
	sum := sha256.Sum256(unsafe.Slice(unsafe.StringData(key), len(key)))
	return hash(sum[:16])
}

func compareHash(a, b hash) int { return bytes.Compare(a[:], b[:]) }

// mergeAt is how many recent additions the set keeps in its map before it merges them into its
// sorted slice.
const mergeAt = 4096

// Set holds the hashes of tombstoned keys: a sorted slice (16 bytes a key, read without locks)
// for the many loaded at start, and a small map for those added since. Has neither allocates
// nor takes a lock while nothing was added since the last merge.
//
// Lock order: Set.mu only; it is never held while calling out.
type Set struct {
	n    atomic.Int64           // how many hashes; 0 answers Has at once
	base atomic.Pointer[sorted] // never modified once stored

	mu     sync.RWMutex
	recent map[hash]struct{} // added since the last merge; not in base
	dirty  atomic.Bool       // recent is not empty
	gen    atomic.Uint64     // moves after every addition, once the hash is in
}

// Has reports whether key is tombstoned.
func (s *Set) Has(key string) bool {
	if s.n.Load() == 0 {
		return false
	}
	return s.has(hashOf(key))
}

func (s *Set) has(h hash) bool {
	if b := s.base.Load(); b != nil && b.has(h) {
		return true
	}
	if !s.dirty.Load() {
		return false
	}
	s.mu.RLock()
	_, ok := s.recent[h]
	s.mu.RUnlock()
	return ok
}

// Len returns how many keys are tombstoned.
func (s *Set) Len() int { return int(s.n.Load()) }

// add records h and reports whether it is new.
func (s *Set) add(h hash) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if b := s.base.Load(); b != nil && b.has(h) {
		return false
	}
	if _, ok := s.recent[h]; ok {
		return false
	}
	if s.recent == nil {
		s.recent = map[hash]struct{}{}
	}
	s.recent[h] = struct{}{}
	s.dirty.Store(true)
	s.n.Add(1)
	s.gen.Add(1)
	if len(s.recent) >= mergeAt {
		s.mergeLocked(nil)
	}
	return true
}

// merge adds sorted (ascending, duplicates allowed) to the set.
func (s *Set) merge(sorted []hash) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mergeLocked(sorted)
}

// mergeLocked builds a new sorted slice of base, recent and more (sorted), and empties recent.
func (s *Set) mergeLocked(more []hash) {
	if len(s.recent) == 0 && len(more) == 0 && s.base.Load() != nil {
		return // nothing new: the index and the generation stand
	}
	var old []hash
	if b := s.base.Load(); b != nil {
		old = b.hs
	}
	rec := make([]hash, 0, len(s.recent))
	for h := range s.recent {
		rec = append(rec, h)
	}
	slices.SortFunc(rec, compareHash)
	out := mergeSorted(mergeSorted(old, rec), more)
	s.base.Store(newSorted(out))
	clear(s.recent)
	s.dirty.Store(false)
	s.n.Store(int64(len(out)))
	s.gen.Add(1)
}

// all returns every hash, sorted.
func (s *Set) all() []hash {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mergeLocked(nil)
	return s.base.Load().hs
}

// sorted is an ascending slice of hashes with an index of where each range of leading bits
// starts: the hashes are uniform, so a lookup reads the index, then a few neighbours, rather
// than the twenty far-apart cache lines a binary search of a million hashes touches.
type sorted struct {
	hs    []hash
	idx   []uint32 // idx[p] is the first i with hs[i]'s leading bits >= p; len 1<<bits + 1
	shift uint     // 64 - bits
}

// hashesPerBucket is the number of hashes per index entry the index aims at.
const hashesPerBucket = 8

func newSorted(hs []hash) *sorted {
	bits := uint(0)
	for bits < 24 && len(hs)>>bits > hashesPerBucket {
		bits++
	}
	s := &sorted{hs: hs, idx: make([]uint32, 1<<bits+1), shift: 64 - bits}
	p := 0
	for i := range hs {
		for lead := s.lead(hs[i]); p <= lead; p++ {
			s.idx[p] = uint32(i)
		}
	}
	for ; p < len(s.idx); p++ {
		s.idx[p] = uint32(len(hs))
	}
	return s
}

// lead returns h's leading bits, the index's position for it.
func (s *sorted) lead(h hash) int {
	if s.shift == 64 {
		return 0
	}
	return int(binary.BigEndian.Uint64(h[:8]) >> s.shift)
}

func (s *sorted) has(h hash) bool {
	p := s.lead(h)
	_, ok := slices.BinarySearchFunc(s.hs[s.idx[p]:s.idx[p+1]], h, compareHash)
	return ok
}

// mergeSorted returns the union of two ascending slices, without duplicates. It returns a when
// b is empty (and b when a is), so callers must not modify the result.
func mergeSorted(a, b []hash) []hash {
	if len(b) == 0 {
		return a
	}
	if len(a) == 0 {
		return slices.CompactFunc(slices.Clone(b), func(x, y hash) bool { return x == y })
	}
	out := make([]hash, 0, len(a)+len(b))
	i, j := 0, 0
	push := func(h hash) {
		if n := len(out); n == 0 || out[n-1] != h {
			out = append(out, h)
		}
	}
	for i < len(a) && j < len(b) {
		if c := compareHash(a[i], b[j]); c <= 0 {
			push(a[i])
			i++
		} else {
			push(b[j])
			j++
		}
	}
	for ; i < len(a); i++ {
		push(a[i])
	}
	for ; j < len(b); j++ {
		push(b[j])
	}
	return out
}
