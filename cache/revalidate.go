package cache

import (
	"errors"

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
// find it stale at the same moment, and updates the tiers accordingly.
func (l *Layered) revalidate(key string, e Entry) (revalOutcome, error) {
	v, err, _ := l.reval.Do(key, func() (any, error) {
		_, same, err := origin.Validate(l.base, l.origin, key, e.Meta.ETag)
		now := l.cfg.Clock()
		switch {
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
