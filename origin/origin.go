// Package origin owns the contract between the front and the stores that hold media: the Origin
// interface, the metadata and byte ranges it speaks in, the sentinel errors every implementation
// translates its own failures into, and Fallback, which puts the old volume behind the bucket.
package origin

import (
	"context"
	"encoding/hex"
	"errors"
	"io"
	"strings"
	"time"
)

// Meta describes one stored object.
type Meta struct {
	// Size is the length of the whole object, also when a Get returned only a range of it.
	Size int64
	// ContentType is the media type the store reports (or derives from the key's extension).
	ContentType string
	// ETag is the entity tag with its quotes, e.g. `"5d41402abc4b2a76b9719d911017c592"`.
	ETag string
	// LastModified is the time the object was stored.
	LastModified time.Time
}

// Source names the store (or cache tier) an answer came from, for headers, logs and metrics.
type Source string

// From says where an answer came from. It travels beside the Meta, which describes the object
// only.
type From struct {
	// Source names the store or tier that answered.
	Source Source
	// Stale is set on an answer from a cache past its freshness, given because the store
	// behind it failed to confirm the object.
	Stale bool
	// Peer is, for an answer another replica gave (Source SourcePeer), where that replica's
	// answer came from: one of its tiers, the bucket, an old store.
	Peer Source
	// Store names the old store an answer came from (Source SourceVolume or SourceOldBucket,
	// or Peer one of them): its name in the configuration, e.g. "volume" or "wasabi".
	Store string
}

// Old reports whether s is an old store: a fallback behind the bucket (see FallbackChain).
func (s Source) Old() bool { return s == SourceVolume || s == SourceOldBucket }

// The stores of this package's implementations.
const (
	SourceBucket Source = "bucket"
	SourceVolume Source = "volume"
	// SourceOldBucket is an old bucket, a fallback behind the bucket while a move between
	// providers copies it (From.Store names which).
	SourceOldBucket Source = "old-bucket"
	// SourcePeer is another replica of the cluster, the key's owner (from its tiers or its own
	// fetch): a replica does not keep its peers' objects on disk.
	SourcePeer Source = "peer"
)

// Origin is a read-only store of media objects addressed by key (a path relative to the store,
// without a leading slash, already validated by the caller).
type Origin interface {
	// Stat returns key's metadata without its bytes.
	Stat(ctx context.Context, key string) (Meta, error)
	// Get returns key's bytes, all of them when r is nil, else only the range r asks for
	// (see Range.Resolve for which bytes those are). The caller closes the body.
	Get(ctx context.Context, key string, r *Range) (io.ReadCloser, Meta, error)
}

// Sourced is an Origin made of several stores that also says which of them answered: Fallback
// is one, and so is the cache in front of it. The cache asks its origin through it, and the
// front asks the cache.
type Sourced interface {
	Origin
	// StatFrom is Stat, with where the answer came from.
	StatFrom(ctx context.Context, key string) (Meta, From, error)
	// GetFrom is Get, with where the answer came from.
	GetFrom(ctx context.Context, key string, r *Range) (io.ReadCloser, Meta, From, error)
}

// Revalidator is an optional ability: a conditional request (If-None-Match) asking whether key
// still holds the version with entity tag etag. It returns unchanged true when it does (m may
// then be empty), else the current metadata; origin.ErrNotFound when the key is gone.
type Revalidator interface {
	Revalidate(ctx context.Context, key, etag string) (m Meta, unchanged bool, err error)
}

// Pinger is an optional ability: a cheap request that tells whether the store answers.
type Pinger interface {
	Ping(ctx context.Context) error
}

// Errors an Origin returns, possibly wrapped; callers compare with errors.Is.
var (
	// ErrNotFound means the store answered and holds no object under the key.
	ErrNotFound = errors.New("origin: not found")
	// ErrRangeNotSatisfiable means the object exists but the range lies wholly beyond its end.
	// Get returns it with the object's Meta when the store knows it (for the 416's
	// Content-Range), else with an empty Meta.
	ErrRangeNotSatisfiable = errors.New("origin: range not satisfiable")
	// ErrHidden means the store holds the object but it must not be served: Mastodon hid it
	// (its ACL grants the public no read) or deleted it (a tombstone). It is also ErrNotFound
	// for errors.Is, so it is answered as absent, and Fallback never looks further for it.
	ErrHidden error = hiddenError{}
	// ErrNotReady means nothing may be served yet: the replica has not loaded the record of
	// what Mastodon deleted and hid (see cache/state), so it cannot tell which answers would
	// leak. It is answered 503.
	ErrNotReady = errors.New("origin: not ready: the record of deleted and hidden media is not loaded yet")
)

type hiddenError struct{}

func (hiddenError) Error() string        { return "origin: hidden" }
func (hiddenError) Is(target error) bool { return target == ErrNotFound }

// ETagMD5 returns the hex MD5 that etag carries when it is a plain MD5 of the body (the ETag
// of a single-part upload in S3), and false for any other tag (weak, multipart, a volume's).
func ETagMD5(etag string) (string, bool) {
	if strings.HasPrefix(etag, "W/") {
		return "", false
	}
	s := strings.Trim(etag, `"`)
	if len(s) != 32 {
		return "", false
	}
	if _, err := hex.DecodeString(s); err != nil {
		return "", false
	}
	return strings.ToLower(s), true
}
