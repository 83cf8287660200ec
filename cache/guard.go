package cache

import "sync/atomic"

// Guard decides whether a key may be served at all, whatever holds it: a tier, a fetch under
// way, the origin. Check must not allocate: it runs on memory hits.
type Guard interface {
	// Check returns nil when key may be served; origin.ErrHidden (or an error that is it) when
	// it must never be (Mastodon deleted it); any other error to answer instead of the object
	// (origin.ErrNotReady while the guard does not know yet).
	Check(key string) error
}

// GuardGeneration is an optional ability of a Guard whose verdicts change only when its
// generation does: a key Check allowed once Generation returned g is allowed while Generation
// still returns g (the generation moves after every refusal added). The memory hit path then
// asks Check once per entry and generation instead of on every hit.
type GuardGeneration interface {
	Generation() uint64
}

// allowedHit reports whether the guard allows a memory hit of key. allowed, kept with the entry,
// is the guard's generation (plus one) at which Check last allowed it: while the generation has
// not moved since, the verdict stands and Check is not asked again.
func (l *Layered) allowedHit(key string, allowed *atomic.Uint64) bool {
	if l.cfg.Guard == nil {
		return true
	}
	if l.guardGen == nil || allowed == nil {
		return l.cfg.Guard.Check(key) == nil
	}
	gen := l.guardGen.Generation() + 1 // read before Check: a refusal added meanwhile moves it
	if allowed.Load() == gen {
		return true
	}
	if l.cfg.Guard.Check(key) != nil {
		return false
	}
	allowed.Store(gen)
	return true
}

// refused returns the Guard's verdict on key: nil when it may be served.
func (l *Layered) refused(key string) error {
	if l.cfg.Guard == nil {
		return nil
	}
	return l.cfg.Guard.Check(key)
}
