package state

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/fedicache/fedicache/origin"
)

// Load reads the state from the bucket: the newest snapshot of the tombstones (or, with none,
// every tombstone object), then the log: all of it with ReplayAll, else what came after the
// snapshot. Until it has succeeded once, Check answers origin.ErrNotReady. Calling it again
// refreshes.
func (s *State) Load(ctx context.Context) error {
	if s.loaded.Load() {
		return s.Refresh(ctx)
	}
	start := s.cfg.Clock()
	err := s.load(ctx, start)
	s.note(start, err)
	if err == nil {
		s.mu.Lock()
		s.loadedAt = s.cfg.Clock()
		s.mu.Unlock()
		s.loaded.Store(true)
	}
	return err
}

func (s *State) load(ctx context.Context, start time.Time) error {
	snap, covers, err := s.newestSnapshot(ctx)
	if err != nil {
		return err
	}
	if snap != "" {
		hs, err := s.readSnapshot(ctx, snap)
		switch {
		case err == nil:
			s.set.merge(hs)
		case errors.Is(err, errBadSnapshot), errors.Is(err, origin.ErrNotFound):
			// The tombstone objects are the record the snapshot was made from: read them all.
			s.cfg.Logger.Warn("state: the newest snapshot of the tombstones cannot be used; listing every tombstone instead",
				"snapshot", snap, "err", err)
			snap = ""
		default:
			return err
		}
	}
	if snap == "" {
		hs, err := s.listTombstones(ctx)
		if err != nil {
			return err
		}
		s.set.merge(hs)
	}
	from := time.Time{}
	if snap != "" && !s.cfg.ReplayAll {
		from = covers.Add(-s.cfg.Overlap)
	}
	if err := s.readLog(ctx, from, start); err != nil {
		return err
	}
	s.mu.Lock()
	s.snapshot = snap
	s.mu.Unlock()
	return nil
}

// Refresh applies the log entries recorded since the last listing (less Overlap).
func (s *State) Refresh(ctx context.Context) error {
	start := s.cfg.Clock()
	s.mu.Lock()
	from := s.listedAt.Add(-s.cfg.Overlap)
	s.mu.Unlock()
	err := s.readLog(ctx, from, start)
	s.note(start, err)
	return err
}

// note records the outcome of a load or refresh that began at start.
func (s *State) note(start time.Time, err error) {
	s.mu.Lock()
	s.lastAttempt, s.lastErr = start, err
	s.mu.Unlock()
	if err != nil {
		s.failures.Add(1)
	}
}

// readLog lists the log after from (all of it when from is zero), applies the entries not seen
// yet, and records start as the beginning of the last complete listing.
func (s *State) readLog(ctx context.Context, from, start time.Time) error {
	dir := s.folder(logDir)
	after := dir
	if !from.IsZero() {
		after = dir + timeName(from)
	}
	var todo []entry
	err := s.cfg.Store.List(ctx, after, func(o origin.Object) error {
		name, ok := strings.CutPrefix(o.Key, dir)
		if !ok {
			return errStop
		}
		e, err := parseEntry(name)
		if err != nil {
			s.cfg.Logger.Debug("state: not a log entry; ignored", "key", o.Key, "err", err)
			return nil
		}
		s.mu.Lock()
		_, done := s.seen[name]
		s.mu.Unlock()
		if !done {
			todo = append(todo, e)
		}
		return nil
	})
	if err != nil && !errors.Is(err, errStop) {
		return fmt.Errorf("state: list the log: %w", err)
	}
	for _, e := range todo {
		if e.inBody {
			key, err := s.readEntryKey(ctx, e)
			if errors.Is(err, origin.ErrNotFound) {
				continue // compacted away meanwhile
			}
			if err != nil {
				return err // applied next time: nothing after it is marked seen
			}
			e.key = key
		}
		n := s.Apply(e.kind, e.key)
		s.applied.Add(1)
		s.cfg.Logger.Info("state: applied a bust from the log", "kind", e.kind.String(), "key", e.key, "recorded_at", e.at, "purged", n)
		s.mu.Lock()
		s.seen[e.name] = e.at
		if e.kind == Deleted && e.at.After(s.lastDelete) {
			s.lastDelete = e.at
		}
		s.mu.Unlock()
	}
	s.mu.Lock()
	s.listedAt = start
	for name, at := range s.seen {
		if at.Before(start.Add(-2 * s.cfg.Overlap)) {
			delete(s.seen, name) // no listing starts that early any more
		}
	}
	s.mu.Unlock()
	return nil
}

// readEntryKey reads the key of an entry named by its hash from the entry's body.
func (s *State) readEntryKey(ctx context.Context, e entry) (string, error) {
	body, _, err := s.cfg.Store.Get(ctx, s.folder(logDir)+e.name, nil)
	if err != nil {
		return "", fmt.Errorf("state: read log entry %q: %w", e.name, err)
	}
	defer body.Close()
	var b logBody
	if err := json.NewDecoder(io.LimitReader(body, 64<<10)).Decode(&b); err != nil || b.Key == "" {
		return "", fmt.Errorf("state: log entry %q has no key in its body: %v", e.name, err)
	}
	return b.Key, nil
}

// newestSnapshot returns the name (under the snapshot folder) and time of the newest snapshot,
// "" when there is none.
func (s *State) newestSnapshot(ctx context.Context) (string, time.Time, error) {
	names, err := s.snapshots(ctx)
	if err != nil || len(names) == 0 {
		return "", time.Time{}, err
	}
	n := names[len(names)-1]
	return n.name, n.at, nil
}

type snapshotName struct {
	name string
	at   time.Time
}

// snapshots lists the snapshots, oldest first.
func (s *State) snapshots(ctx context.Context) ([]snapshotName, error) {
	dir := s.folder(snapshotDir)
	var out []snapshotName
	err := s.cfg.Store.List(ctx, dir, func(o origin.Object) error {
		name, ok := strings.CutPrefix(o.Key, dir)
		if !ok {
			return errStop
		}
		at, err := time.Parse(timeLayout, strings.TrimSuffix(name, ".bin"))
		if err != nil || !strings.HasSuffix(name, ".bin") {
			return nil
		}
		out = append(out, snapshotName{name: name, at: at})
		return nil
	})
	if err != nil && !errors.Is(err, errStop) {
		return nil, fmt.Errorf("state: list the snapshots: %w", err)
	}
	return out, nil
}

// readSnapshot reads one snapshot's hashes.
func (s *State) readSnapshot(ctx context.Context, name string) ([]hash, error) {
	body, _, err := s.cfg.Store.Get(ctx, s.folder(snapshotDir)+name, nil)
	if err != nil {
		return nil, fmt.Errorf("state: read snapshot %q: %w", name, err)
	}
	defer body.Close()
	hs, err := decodeSnapshot(body)
	if err != nil {
		return nil, fmt.Errorf("state: read snapshot %q: %w", name, err)
	}
	return hs, nil
}

// listTombstones lists every tombstone object and returns their hashes, sorted.
func (s *State) listTombstones(ctx context.Context) ([]hash, error) {
	dir := s.folder(tombstoneDir)
	var hs []hash
	sorted := true
	err := s.cfg.Store.List(ctx, dir, func(o origin.Object) error {
		name, ok := strings.CutPrefix(o.Key, dir)
		if !ok {
			return errStop
		}
		if h, ok := parseTombstone(name); ok {
			if n := len(hs); n > 0 && compareHash(hs[n-1], h) >= 0 {
				sorted = false
			}
			hs = append(hs, h)
		}
		return nil
	})
	if err != nil && !errors.Is(err, errStop) {
		return nil, fmt.Errorf("state: list the tombstones: %w", err)
	}
	if !sorted {
		slices.SortFunc(hs, compareHash)
		hs = slices.CompactFunc(hs, func(x, y hash) bool { return x == y })
	}
	return hs, nil
}
