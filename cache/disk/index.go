package disk

import (
	"strings"
	"time"
)

// node is one indexed entry. A large cache indexes millions, so nodes are packed 40 bytes
// apiece (besides the key's bytes, which the index map shares) in fixed chunks that never move,
// and link each other by number, not by pointer: no allocation per node, and little for the
// garbage collector to scan.
type node struct {
	key string
	// size is the length of the file: prefix, header and body.
	size int64
	// touched is when the file's mtime was last set, in minutes since the Unix epoch: its mtime
	// when the rebuild found it, else the time of its commit or of the last touch by a hit.
	touched uint32
	// self is the node's number; prev and next link the recency list. Number 0 is the list's
	// sentinel.
	self, prev, next uint32
}

// minutes returns t in the unit of node.touched.
func minutes(t time.Time) uint32 { return uint32(t.Unix() / 60) }

const (
	chunkBits = 12
	chunkLen  = 1 << chunkBits
)

// index maps keys to nodes and orders the nodes by recency in a circular list through the
// sentinel node 0: its next is the most recently used entry, its prev the least. The zero
// index is not usable; call init. The Disk's mutex guards it.
type index struct {
	m      map[string]uint32
	chunks []*[chunkLen]node
	free   uint32 // a free node, chained through next; 0: none
	used   uint32 // nodes handed out so far, the sentinel included
	bytes  int64
	// unverified holds the keys of the entries not to be served before their checksum is
	// checked (see verify.go). It is nil but after an unclean shutdown, until all are checked:
	// a set apart from the nodes, rather than a flag in each, costs nothing in the usual case.
	unverified map[string]struct{}
}

// init empties the index.
func (x *index) init() {
	*x = index{m: make(map[string]uint32), chunks: []*[chunkLen]node{new([chunkLen]node)}, used: 1}
}

// at returns node i.
func (x *index) at(i uint32) *node { return &x.chunks[i>>chunkBits][i&(chunkLen-1)] }

// get returns key's node, or nil. The pointer stays valid until the node is removed.
func (x *index) get(key string) *node {
	i, ok := x.m[key]
	if !ok {
		return nil
	}
	return x.at(i)
}

// len returns the number of entries.
func (x *index) len() int { return len(x.m) }

// alloc returns a fresh node for key.
func (x *index) alloc(key string, size int64, touched uint32) *node {
	i := x.free
	if i != 0 {
		x.free = x.at(i).next
	} else {
		i = x.used
		x.used++
		if int(i>>chunkBits) == len(x.chunks) {
			x.chunks = append(x.chunks, new([chunkLen]node))
		}
	}
	n := x.at(i)
	*n = node{key: key, size: size, touched: touched, self: i}
	x.m[key] = i
	x.bytes += size
	return n
}

// link inserts n after node at.
func (x *index) link(n *node, at uint32) {
	a := x.at(at)
	n.prev = at
	n.next = a.next
	x.at(a.next).prev = n.self
	a.next = n.self
}

// unlink takes n out of the list.
func (x *index) unlink(n *node) {
	x.at(n.prev).next = n.next
	x.at(n.next).prev = n.prev
}

// pushFront adds key as the most recently used entry, replacing any node it had (and so its
// unverified mark: a new file), and returns its node.
func (x *index) pushFront(key string, size int64, touched uint32) *node {
	if n := x.get(key); n != nil {
		delete(x.unverified, key)
		x.bytes += size - n.size
		n.size, n.touched = size, touched
		x.moveToFront(n)
		return n
	}
	n := x.alloc(key, size, touched)
	x.link(n, 0)
	return n
}

// pushBack adds key, which must be absent, as the least recently used entry.
func (x *index) pushBack(key string, size int64, touched uint32) {
	n := x.alloc(key, size, touched)
	x.link(n, x.at(0).prev)
}

// moveToFront marks n as the most recently used entry.
func (x *index) moveToFront(n *node) {
	if x.at(0).next == n.self {
		return
	}
	x.unlink(n)
	x.link(n, 0)
}

// remove drops n from the index. n is not valid afterwards.
func (x *index) remove(n *node) {
	x.unlink(n)
	delete(x.m, n.key)
	delete(x.unverified, n.key)
	x.bytes -= n.size
	*n = node{self: n.self, next: x.free}
	x.free = n.self
}

// back returns the least recently used node, or nil when the index is empty.
func (x *index) back() *node {
	i := x.at(0).prev
	if i == 0 {
		return nil
	}
	return x.at(i)
}

// keysWithPrefix returns the keys that start with prefix.
func (x *index) keysWithPrefix(prefix string) []string {
	var keys []string
	for k := range x.m {
		if strings.HasPrefix(k, prefix) {
			keys = append(keys, k)
		}
	}
	return keys
}

// markUnverified marks key's entry, which must be indexed, as unverified.
func (x *index) markUnverified(key string) {
	if x.unverified == nil {
		x.unverified = make(map[string]struct{})
	}
	x.unverified[key] = struct{}{}
}

// isUnverified reports whether key's entry is marked unverified.
func (x *index) isUnverified(key string) bool {
	if x.unverified == nil {
		return false
	}
	_, ok := x.unverified[key]
	return ok
}

// setVerified takes the unverified mark off key's entry, and reports whether it had one.
func (x *index) setVerified(key string) bool {
	if !x.isUnverified(key) {
		return false
	}
	delete(x.unverified, key)
	return true
}

// unverifiedLen returns the number of entries marked unverified.
func (x *index) unverifiedLen() int { return len(x.unverified) }

// dropUnverified forgets the unverified set, for its memory, once it is empty.
func (x *index) dropUnverified() { x.unverified = nil }
