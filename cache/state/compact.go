package state

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/fedicache/fedicache/origin"
)

// keepSnapshots is how many snapshots compaction leaves: the newest, and the one before it for a
// replica that is reading it right now.
const keepSnapshots = 2

// Compact writes a new snapshot of the tombstones when tombstones were added since the newest
// one and no replica wrote one within CompactEvery, then deletes older snapshots and the log
// entries past Retention that a snapshot covers. Any replica may run it; two at once only do
// the work twice.
func (s *State) Compact(ctx context.Context) error {
	if !s.loaded.Load() {
		return nil
	}
	snaps, err := s.snapshots(ctx)
	if err != nil {
		return err
	}
	now := s.cfg.Clock()
	s.mu.Lock()
	listedAt, lastDelete := s.listedAt, s.lastDelete
	s.mu.Unlock()
	var newest snapshotName
	if len(snaps) > 0 {
		newest = snaps[len(snaps)-1]
	}
	covers := listedAt.Add(-s.cfg.Overlap)
	stale := len(snaps) == 0 && s.set.Len() > 0 || lastDelete.After(newest.at)
	if stale && now.Sub(newest.at) >= s.cfg.CompactEvery && covers.After(newest.at) {
		if newest, err = s.writeSnapshot(ctx, covers); err != nil {
			return err
		}
		snaps = append(snaps, newest)
	}
	var errs []error
	if len(snaps) > keepSnapshots {
		for _, old := range snaps[:len(snaps)-keepSnapshots] {
			if err := s.cfg.Store.Delete(ctx, s.folder(snapshotDir)+old.name); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if !newest.at.IsZero() {
		cutoff := now.Add(-s.cfg.Retention)
		if c := newest.at.Add(-s.cfg.Overlap); c.Before(cutoff) {
			cutoff = c // entries the newest snapshot does not cover stay
		}
		if err := s.pruneLog(ctx, cutoff); err != nil {
			errs = append(errs, err)
		}
	}
	s.mu.Lock()
	s.compactedAt = now
	s.mu.Unlock()
	return errors.Join(errs...)
}

// writeSnapshot writes every tombstone this replica knows, with every tombstone object the
// bucket lists (also those of writers that did not log them), as the snapshot covering up to
// covers.
func (s *State) writeSnapshot(ctx context.Context, covers time.Time) (snapshotName, error) {
	listed, err := s.listTombstones(ctx)
	if err != nil {
		return snapshotName{}, err
	}
	s.set.merge(listed)
	hs := s.set.all()
	name := timeName(covers) + ".bin"
	body := encodeSnapshot(hs)
	err = s.cfg.Store.Put(ctx, s.folder(snapshotDir)+name, body, body.Size(),
		origin.PutOptions{ContentType: "application/octet-stream", ACL: "private"})
	if err != nil {
		return snapshotName{}, fmt.Errorf("state: write snapshot %q: %w", name, err)
	}
	s.cfg.Logger.Info("state: wrote a snapshot of the tombstones", "name", name, "tombstones", len(hs))
	return snapshotName{name: name, at: covers}, nil
}

// pruneLog deletes the log entries recorded before cutoff.
func (s *State) pruneLog(ctx context.Context, cutoff time.Time) error {
	dir := s.folder(logDir)
	var old []string
	err := s.cfg.Store.List(ctx, dir, func(o origin.Object) error {
		name, ok := strings.CutPrefix(o.Key, dir)
		if !ok {
			return errStop
		}
		e, err := parseEntry(name)
		if err != nil {
			return nil
		}
		if !e.at.Before(cutoff) {
			return errStop
		}
		old = append(old, o.Key)
		return nil
	})
	if err != nil && !errors.Is(err, errStop) {
		return fmt.Errorf("state: list the log to prune it: %w", err)
	}
	for _, k := range old {
		if err := s.cfg.Store.Delete(ctx, k); err != nil {
			return fmt.Errorf("state: prune the log: %w", err)
		}
	}
	if len(old) > 0 {
		s.cfg.Logger.Info("state: pruned the log", "entries", len(old), "before", cutoff)
	}
	return nil
}
