package memory

import (
	"sync/atomic"
	"time"

	"github.com/fedicache/fedicache/cache"
)

// entryOverhead is what an entry costs beyond its body and key, in bytes of memory: the item
// below (208 bytes on 64-bit), the ETag and HTTP date it holds (about 80), ristretto's store
// record and map slot for it (about 75), its policy's cost record (about 25) and the key
// index's count (about 30): about 420, rounded up. Charging it keeps a tier full of tiny
// objects (emoji, avatars) within MaxBytes of real memory; ristretto's own internal cost is
// switched off in favour of it (see New).
const entryOverhead = 448

// httpDate is the layout of an HTTP date (RFC 9110's IMF-fixdate), as net/http's TimeFormat.
const httpDate = "Mon, 02 Jan 2006 15:04:05 GMT"

// item is what the tier stores per key. Everything but validatedAt is written once, before
// the item is handed to ristretto, and only read after; hits therefore read it without locks.
type item struct {
	// entry is the entry as Put gave it, with ValidatedAt zeroed: the live value is
	// validatedAt.
	entry cache.Entry
	// body is the whole object, its capacity cut to its length so that no reader's append
	// can write into memory another reader sees.
	body []byte
	// lastModified is entry.Meta.LastModified as an HTTP date, "" when that is zero.
	lastModified string
	// cost is what the entry is charged against MaxBytes.
	cost int64
	// validatedAt is ValidatedAt in Unix nanoseconds, 0 for the zero time. MarkValidated
	// moves it forward without a new Set.
	validatedAt atomic.Int64
	// allowed is kept for the cache's Guard (cache.Hit.Allowed).
	allowed atomic.Uint64
}

// newItem builds the item for e and body, taking body over.
func newItem(e cache.Entry, body []byte) *item {
	it := &item{entry: e, body: body[:len(body):len(body)]}
	it.entry.ValidatedAt = time.Time{}
	if !e.Meta.LastModified.IsZero() {
		it.lastModified = e.Meta.LastModified.UTC().Format(httpDate)
	}
	it.cost = int64(cap(body)) + int64(len(e.Key)) + entryOverhead
	it.validatedAt.Store(unixNano(e.ValidatedAt))
	return it
}

// validated returns when the origin last confirmed the item.
func (it *item) validated() time.Time {
	n := it.validatedAt.Load()
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// markValidated moves the item's ValidatedAt forward to at; an earlier at changes nothing, so
// that confirmations arriving out of order never make an entry look older.
func (it *item) markValidated(at time.Time) {
	n := unixNano(at)
	for {
		old := it.validatedAt.Load()
		if n <= old || it.validatedAt.CompareAndSwap(old, n) {
			return
		}
	}
}

// unixNano returns t in Unix nanoseconds, 0 for the zero time.
func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}
