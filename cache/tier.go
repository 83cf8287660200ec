package cache

import (
	"io"
	"sync/atomic"
	"time"

	"github.com/fedicache/fedicache/origin"
)

// Sources of answers given by the cache tiers (origin.From.Source): each tier's Name.
const (
	SourceMemory origin.Source = "memory"
	SourceDisk   origin.Source = "disk"
)

// Entry describes one cached object.
type Entry struct {
	// Key is the object's key.
	Key string
	// Meta is the object's metadata as the origin gave it (Size, ContentType, ETag,
	// LastModified).
	Meta origin.Meta
	// StoredAt is when the object entered the cache.
	StoredAt time.Time
	// ValidatedAt is when the origin last confirmed the object (its fill or a revalidation);
	// the entry is fresh until ValidatedAt plus the cache TTL.
	ValidatedAt time.Time
}

// Tier is one level of the cache (memory, disk). Each tier also has a way to store entries of
// its own kind (memory: Put of a byte slice; disk: a streaming Writer); reading, revalidation
// and removal are common. Implementations are safe for concurrent use.
type Tier interface {
	// Name is the tier's name as X-Cache-Tier says it: "memory" or "disk".
	Name() string
	// Open returns the entry of key and a reader of its body, all of it when r is nil, else
	// the bytes r selects (see origin.Range.Resolve). It returns origin.ErrNotFound when the
	// tier holds no such entry (a corrupt entry is dropped and reported so), and
	// origin.ErrRangeNotSatisfiable for a range beyond the end. The caller closes the body.
	Open(key string, r *origin.Range) (io.ReadCloser, Entry, error)
	// MarkValidated records that the origin confirmed key's entry at the given time. It
	// reports false when the tier holds no such entry.
	MarkValidated(key string, at time.Time) bool
	// Delete removes key's entry and reports whether there was one.
	Delete(key string) bool
	// DeletePrefix removes every entry whose key starts with prefix and returns how many.
	DeletePrefix(prefix string) int
	// Stats returns the tier's counters.
	Stats() TierStats
}

// TierStats are a tier's counters, read for metrics and the status page.
type TierStats struct {
	// Entries and Bytes are what the tier holds now (Bytes counts what the tier charges for
	// an entry: body plus headers).
	Entries int64 `json:"entries"`
	Bytes   int64 `json:"bytes"`
	// MaxBytes is the tier's capacity.
	MaxBytes int64 `json:"max_bytes"`
	// Evictions counts entries removed to make room.
	Evictions uint64 `json:"evictions"`
	// Disabled is true while the tier refuses writes (a full or read-only disk).
	Disabled bool `json:"disabled"`
	// Dropped counts corrupt or truncated entries removed instead of being served.
	Dropped uint64 `json:"dropped"`
	// WriteErrors counts failed writes.
	WriteErrors uint64 `json:"write_errors"`
}

// MemoryTier is what Layered needs of the memory tier.
type MemoryTier interface {
	Tier
	// Put stores body (which the tier then owns) under e; it may refuse or drop it.
	Put(e Entry, body []byte) bool
	// Peek returns key's entry without allocating, for the hot path.
	Peek(key string) (Hit, bool)
	// Wait returns once the Puts made before it are readable.
	Wait()
	// MaxObjectBytes is the largest body Put accepts.
	MaxObjectBytes() int64
}

// DiskTier is what Layered needs of the disk tier.
type DiskTier interface {
	Tier
	// Spool starts writing e's body into the tier; it fails quickly while the tier is off.
	Spool(e Entry) (Spool, error)
}

// Spool is an object being written into a tier while clients read it.
type Spool interface {
	// Write appends body bytes.
	io.Writer
	// ReadAt reads body bytes already written, concurrently with Write.
	io.ReaderAt
	// Commit makes the entry part of the tier once the whole body is written.
	Commit() error
	// Abort drops what was written.
	Abort()
	// Close releases the spool once nobody reads it any more (after Commit or Abort).
	Close() error
}

// Hit is a memory hit, shaped so that serving it allocates nothing.
type Hit struct {
	// Body is the whole object; callers must not modify it.
	Body []byte
	// Entry describes it; callers must not modify it.
	Entry *Entry
	// LastModified is Entry.Meta.LastModified as an HTTP date ("" when unknown).
	LastModified string
	// ValidatedAt is when the origin last confirmed the entry.
	ValidatedAt time.Time
	// Allowed is kept with the entry for the cache's Guard: the guard generation (plus one) at
	// which the entry was last allowed. Nil when the tier keeps none.
	Allowed *atomic.Uint64
}
