package state

// Lock order: State.mu alone; it is never held while calling the store, the cache or the Set
// (which has its own lock).

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fedicache/fedicache/origin"
)

// Store is where the state lives: the bucket, read and written with signed requests that no
// ACL check hides (the state objects are private).
type Store interface {
	origin.Origin
	origin.Lister
	origin.Putter
	origin.Deleter
}

// Cache is what busts are applied to: the tiers of this replica (cache.Layered).
type Cache interface {
	// Purge drops key from every tier and keeps a fetch under way from storing it.
	Purge(key string) int
	// Drop is Purge that also cuts a fetch under way (a deleted or hidden object).
	Drop(key string) int
	// PurgePrefix drops every key under prefix.
	PurgePrefix(prefix string) int
}

// Defaults of Config.
const (
	DefaultRefresh      = 30 * time.Second
	DefaultRetention    = 193 * time.Hour // cache.ttl + cache.stale_if_error + 1h, by default
	DefaultCompactEvery = time.Hour
	DefaultOverlap      = 5 * time.Minute
)

// Config says where the state is and how it is kept. Store is required.
type Config struct {
	// Store is the bucket.
	Store Store
	// Prefix is the state prefix inside the bucket, ending in "/". Zero means "_fedicache/".
	Prefix string
	// Refresh is how often the log is read for what is new. Zero means 30s.
	Refresh time.Duration
	// Retention is how long log entries are kept: at least as long as a cached entry can be
	// served without the bucket confirming it (cache TTL plus stale-if-error), since a replica
	// that comes back with its disk tier replays them all. Zero means 193h.
	Retention time.Duration
	// CompactEvery is how often a replica writes a new snapshot of the tombstones (when some
	// were added) and deletes log entries past Retention. Zero means 1h.
	CompactEvery time.Duration
	// Overlap is how far back each listing of the log starts before the previous one began,
	// to cover clocks that differ between replicas and writes still under way. Zero means 5m.
	Overlap time.Duration
	// ReplayAll applies every entry of the log at the first load, not only those after the
	// snapshot: the tiers may hold keys busted while this replica was down (a disk tier).
	ReplayAll bool
	// Cache receives the busts; nil for a process that only needs the tombstones (backfill).
	Cache Cache
	// Logger reports what was applied and what failed. Zero means slog.Default().
	Logger *slog.Logger
	// Clock returns the time. Zero means time.Now.
	Clock func() time.Time
}

func (c Config) withDefaults() Config {
	if c.Prefix == "" {
		c.Prefix = "_fedicache/"
	}
	if c.Refresh <= 0 {
		c.Refresh = DefaultRefresh
	}
	if c.Retention <= 0 {
		c.Retention = DefaultRetention
	}
	if c.CompactEvery <= 0 {
		c.CompactEvery = DefaultCompactEvery
	}
	if c.Overlap <= 0 {
		c.Overlap = DefaultOverlap
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Clock == nil {
		c.Clock = time.Now
	}
	return c
}

// errTombstoned is the Guard's answer for a deleted key: origin.ErrHidden, so it is a 404 and
// no store is asked.
var errTombstoned = fmt.Errorf("state: Mastodon deleted the key (a tombstone): %w", origin.ErrHidden)

// errStop ends a listing once it has left the folder it reads.
var errStop = errors.New("state: past the folder")

// State is this replica's copy of the cluster's record of deletions, hidings and purges. Its
// methods are safe for concurrent use.
type State struct {
	cfg  Config
	set  Set
	host string

	loaded   atomic.Bool
	applied  atomic.Uint64 // log entries of other writers applied here
	recorded atomic.Uint64 // entries this replica wrote
	failures atomic.Uint64 // loads and refreshes that failed

	mu          sync.Mutex
	seen        map[string]time.Time // log entries applied (by name), while a listing may show them again
	listedAt    time.Time            // when the last complete listing of the log began
	loadedAt    time.Time
	lastAttempt time.Time
	lastErr     error
	snapshot    string // the snapshot the first load read
	compactedAt time.Time
	lastDelete  time.Time // newest Deleted entry seen (name time)
}

// New returns the state cfg describes; nothing is read until Load.
func New(cfg Config) *State {
	host, _ := os.Hostname()
	return &State{cfg: cfg.withDefaults(), host: host, seen: map[string]time.Time{}}
}

// Check implements cache.Guard: origin.ErrNotReady until the state has been loaded once, an
// error that is origin.ErrHidden for a tombstoned key, nil for the rest. It does not allocate.
func (s *State) Check(key string) error {
	if !s.loaded.Load() {
		return origin.ErrNotReady
	}
	if s.set.Has(key) {
		return errTombstoned
	}
	return nil
}

// Generation implements cache.GuardGeneration: it moves whenever Check may refuse a key it
// allowed before (a tombstone added), and when the state loads.
func (s *State) Generation() uint64 {
	g := 2 * s.set.gen.Load()
	if s.loaded.Load() {
		g++
	}
	return g
}

// Has reports whether key is tombstoned (Mastodon deleted it).
func (s *State) Has(key string) bool { return s.set.Has(key) }

// Loaded reports whether the state has been loaded once.
func (s *State) Loaded() bool { return s.loaded.Load() }

func (s *State) folder(dir string) string { return s.cfg.Prefix + dir }

// Apply carries out a bust or purge on this replica only, and returns how many cache entries
// went: a peer's forwarded word, or this replica's own record.
func (s *State) Apply(k Kind, key string) int {
	if k == Deleted {
		s.set.add(hashOf(key)) // before the purge: a fill storing meanwhile sees it (cache.Guard)
	}
	c := s.cfg.Cache
	if c == nil {
		return 0
	}
	switch k {
	case Deleted, Hidden:
		return c.Drop(key)
	case Purged:
		return c.Purge(key)
	case PrefixPurged:
		return c.PurgePrefix(key)
	}
	return 0
}

// logBody is the content of a log entry: what its name says, for people and for keys too long
// for a name.
type logBody struct {
	Kind string    `json:"kind"`
	Key  string    `json:"key"`
	At   time.Time `json:"at"`
	Host string    `json:"host,omitempty"`
}

// tombstoneBody is the content of a tombstone object.
type tombstoneBody struct {
	Key       string    `json:"key"`
	DeletedAt time.Time `json:"deleted_at"`
}

// Record applies a bust or purge here, then records it in the bucket, where every replica
// applies it at its next refresh (or its next start). For Deleted it first writes the key's
// permanent tombstone. It returns how many cache entries went here, the name of the log entry
// (for the peers told at once, see ApplyEntry; "" when it was not written), and the error of
// the record (the local purge happened all the same).
func (s *State) Record(ctx context.Context, k Kind, key string) (int, string, error) {
	n := s.Apply(k, key)
	at := s.cfg.Clock().UTC()
	private := origin.PutOptions{ContentType: "application/json", ACL: "private"}
	if k == Deleted {
		body, _ := json.Marshal(tombstoneBody{Key: key, DeletedAt: at})
		err := s.cfg.Store.Put(ctx, s.folder(tombstoneDir)+tombstoneName(key), bytes.NewReader(body), int64(len(body)), private)
		if err != nil && !errors.Is(err, origin.ErrExists) {
			return n, "", fmt.Errorf("state: tombstone of %q: %w", key, err)
		}
	}
	name, _ := entryName(at, k, key)
	s.mu.Lock()
	s.seen[name] = at // this replica has applied it already
	if k == Deleted && at.After(s.lastDelete) {
		s.lastDelete = at
	}
	s.mu.Unlock()
	body, _ := json.Marshal(logBody{Kind: k.String(), Key: key, At: at, Host: s.host})
	if err := s.cfg.Store.Put(ctx, s.folder(logDir)+name, bytes.NewReader(body), int64(len(body)), private); err != nil {
		return n, "", fmt.Errorf("state: record the %s of %q: %w", k, key, err)
	}
	s.recorded.Add(1)
	return n, name, nil
}

// ApplyEntry is Apply for the word of a peer that recorded the bust as the log entry named
// entry: the entry is then not applied again when a refresh lists it (which would cost one more
// fetch of a key purged while visible), and the word is not applied when a refresh already did.
// An empty or unknown entry applies the word as it is.
func (s *State) ApplyEntry(k Kind, key, entry string) int {
	if e, err := parseEntry(entry); err == nil && e.kind == k && (e.inBody || e.key == key) {
		s.mu.Lock()
		_, done := s.seen[entry]
		s.seen[entry] = e.at
		s.mu.Unlock()
		if done {
			return 0
		}
	}
	return s.Apply(k, key)
}

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
		hs = mergeSorted(nil, sortedCopy(hs))
	}
	return hs, nil
}

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

// Stats is what /status shows of the state.
type Stats struct {
	// Loaded is true once the state was loaded; the replica serves nothing before.
	Loaded bool `json:"loaded"`
	// LoadedAt is when the first load completed.
	LoadedAt time.Time `json:"loaded_at,omitzero"`
	// RefreshedAt is when the last complete listing of the log began: every bust recorded
	// before it (less the overlap) has been applied here.
	RefreshedAt time.Time `json:"refreshed_at,omitzero"`
	// LagSeconds is how far behind the bucket's record this replica may be: the time since
	// RefreshedAt (since the start, before the first load).
	LagSeconds float64 `json:"lag_seconds"`
	// LastError is the error of the last load or refresh, if it failed.
	LastError string `json:"last_error,omitempty"`
	// Failures counts loads and refreshes that failed.
	Failures uint64 `json:"failures"`
	// Tombstones is how many keys are tombstoned.
	Tombstones int `json:"tombstones"`
	// BustsApplied counts the log entries of other replicas applied here.
	BustsApplied uint64 `json:"busts_applied"`
	// BustsRecorded counts the entries this replica wrote to the log.
	BustsRecorded uint64 `json:"busts_recorded"`
	// Snapshot is the snapshot the first load read ("" when there was none).
	Snapshot string `json:"snapshot,omitempty"`
	// CompactedAt is when this replica last wrote a snapshot or pruned the log.
	CompactedAt time.Time `json:"compacted_at,omitzero"`
}

// Stats returns the figures of the state.
func (s *State) Stats() Stats {
	now := s.cfg.Clock()
	s.mu.Lock()
	st := Stats{
		LoadedAt:    s.loadedAt,
		RefreshedAt: s.listedAt,
		Snapshot:    s.snapshot,
		CompactedAt: s.compactedAt,
	}
	if s.lastErr != nil {
		st.LastError = s.lastErr.Error()
	}
	s.mu.Unlock()
	st.Loaded = s.loaded.Load()
	st.Failures = s.failures.Load()
	st.Tombstones = s.set.Len()
	st.BustsApplied = s.applied.Load()
	st.BustsRecorded = s.recorded.Load()
	if !st.RefreshedAt.IsZero() {
		st.LagSeconds = now.Sub(st.RefreshedAt).Seconds()
	}
	return st
}

// Attach sets the cache busts are applied to, for a cache that is built after the state (it
// asks the state as its Guard). Call it before Load and Run.
func (s *State) Attach(c Cache) { s.cfg.Cache = c }
