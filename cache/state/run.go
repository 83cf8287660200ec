package state

import (
	"context"
	"math/rand/v2"
	"time"
)

// Run keeps the state current until ctx ends: it loads it (retrying soon after a failure,
// since the replica serves nothing until then), then refreshes it every Refresh and compacts
// it every CompactEvery (with jitter, so that replicas take turns). A refresh that fails is
// tried again after 1s, 2s, 4s (at most retryMax, at most Refresh): a replica cut off from the
// bucket converges within seconds of reaching it again, not a whole period later.
func (s *State) Run(ctx context.Context) {
	wait := time.Second
	for !s.loaded.Load() {
		if err := s.Load(ctx); err != nil { // unbounded: the first load may list every tombstone
			if ctx.Err() != nil {
				return
			}
			s.cfg.Logger.Error("state: cannot load the record of deleted and hidden media; serving nothing until it loads",
				"err", err, "retry_in", wait.String())
			if !sleep(ctx, wait) {
				return
			}
			wait = min(2*wait, s.cfg.Refresh)
		}
	}
	s.cfg.Logger.Info("state loaded", "tombstones", s.set.Len(), "busts_applied", s.applied.Load())
	delay, wait := s.cfg.Refresh, time.Second
	nextCompact := s.cfg.Clock().Add(jitter(s.cfg.CompactEvery / 4))
	for sleep(ctx, delay) {
		if err := s.attempt(ctx, s.Refresh); err != nil && ctx.Err() == nil {
			delay, wait = min(wait, retryMax, s.cfg.Refresh), 2*wait
			s.cfg.Logger.Warn("state: could not read the log of busts", "err", err, "retry_in", delay.String())
			continue
		}
		delay, wait = s.cfg.Refresh, time.Second
		if now := s.cfg.Clock(); !now.Before(nextCompact) {
			if err := s.Compact(ctx); err != nil && ctx.Err() == nil {
				s.cfg.Logger.Warn("state: compaction failed; retrying later", "err", err)
			}
			nextCompact = now.Add(s.cfg.CompactEvery/2 + jitter(s.cfg.CompactEvery))
		}
	}
}

// retryMax bounds the wait before a failed refresh is tried again.
const retryMax = 5 * time.Second

// attempt runs one refresh, bounded by the longer of Refresh and attemptMin, so that one
// stuck on a connection that went dead never holds up the next.
func (s *State) attempt(ctx context.Context, f func(context.Context) error) error {
	c, cancel := context.WithTimeout(ctx, max(s.cfg.Refresh, attemptMin))
	defer cancel()
	return f(c)
}

// attemptMin is the least time one refresh is given.
const attemptMin = 10 * time.Second

// jitter returns a random duration in [0, d).
func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return rand.N(d)
}

// sleep waits d or until ctx ends, and reports whether it waited d.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
