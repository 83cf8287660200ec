package cache

import (
	"crypto/md5"
	"encoding/hex"
	"errors"
	"io"

	"github.com/fedicache/fedicache/origin"
)

// revalOutcome is what a revalidation decided about an entry.
type revalOutcome int

const (
	revalFresh   revalOutcome = iota // the origin confirmed it: fresh again
	revalChanged                     // the origin holds another version: dropped, fetch anew
	revalGone                        // the origin no longer has it: dropped, not found
	revalStale                       // the origin failed; the entry is still within StaleIfError
	revalFailed                      // the origin failed and the entry is too old to serve
)

// revalidate asks the origin whether e is still current, once per key however many requests
// find it stale at the same moment, and updates the tiers accordingly. It de-duplicates with a
// singleflight.Group rather than a fetch: its callers share a small answer, once it is known,
// with no body to stream, no readers to count and nothing to store.
func (l *Layered) revalidate(key string, e Entry) (revalOutcome, error) {
	v, err, _ := l.reval.Do(key, func() (any, error) {
		_, same, err := origin.Revalidate(l.base, l.origin, key, e.Meta.ETag)
		now := l.cfg.Clock()
		switch {
		case err == nil && same && l.damaged(key, e):
			// The bucket still holds this version, but the copy here no longer matches it: never
			// confirm a damaged copy, fetch it again.
			l.stats.revalChanged.Add(1)
			l.dropAll(key)
			return revalChanged, nil
		case err == nil && same:
			l.stats.revalFresh.Add(1)
			for _, t := range l.tiers {
				t.MarkValidated(key, now)
			}
			return revalFresh, nil
		case err == nil:
			l.stats.revalChanged.Add(1)
			l.dropAll(key)
			return revalChanged, nil
		case errors.Is(err, origin.ErrNotFound):
			l.stats.revalGone.Add(1)
			l.dropAll(key)
			l.neg.add(key)
			return revalGone, err
		}
		l.stats.revalErrors.Add(1)
		if now.Sub(e.ValidatedAt) < l.cfg.TTL+l.cfg.StaleIfError {
			l.log.Warn("cache: revalidation failed, serving the stale entry", "key", key, "err", err)
			return revalStale, nil
		}
		l.log.Warn("cache: revalidation failed and the entry is too old to serve", "key", key, "err", err)
		return revalFailed, err
	})
	return v.(revalOutcome), err
}

// damaged reports whether the disk tier's copy of key no longer matches what the origin sent:
// its length, or the MD5 of its body where e's ETag is one. It reads the whole body, once per
// revalidation of an entry (once per TTL at most), and logs what it finds.
func (l *Layered) damaged(key string, e Entry) bool {
	want, ok := origin.ETagMD5(e.Meta.ETag)
	if l.disk == nil || !ok {
		return false
	}
	body, de, err := l.disk.Open(key, nil)
	if err != nil {
		return false // not on disk (or dropped as corrupt already)
	}
	defer body.Close()
	sum := md5.New()
	n, err := io.Copy(sum, body)
	if err == nil && n == de.Meta.Size && hex.EncodeToString(sum.Sum(nil)) == want {
		return false
	}
	l.log.Warn("cache: a disk entry no longer matches its ETag; dropped rather than revalidated", "key", key, "bytes", n, "err", err)
	return true
}
