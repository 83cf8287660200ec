package state

// Lock order: State.mu alone; it is never held while calling the store, the cache or the Set
// (which has its own lock).

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fedicache/fedicache/origin"
	"github.com/fedicache/fedicache/origin/fielderr"
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
	DefaultPrefix       = "_fedicache/"
	DefaultRefresh      = 30 * time.Second
	DefaultRetention    = 193 * time.Hour // cache.DefaultTTL + cache.DefaultStaleIfError + 1h
	DefaultCompactEvery = time.Hour
	DefaultOverlap      = 5 * time.Minute
)

// Config says where the state is and how it is kept. Store is required.
type Config struct {
	// Store is the bucket.
	Store Store
	// Prefix is the state prefix inside the bucket: a folder, ending in "/" and not starting
	// with one. Zero means DefaultPrefix, "_fedicache/".
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

// Validate reports the first thing wrong with the settings of c (Store and Cache are the
// caller's to give): a *fielderr.Error naming the field, what is wrong and an example of a right
// value. New does not call it: call it where the settings are read.
func (c Config) Validate() error {
	if c.Prefix != "" && (!strings.HasSuffix(c.Prefix, "/") || strings.HasPrefix(c.Prefix, "/")) {
		return &fielderr.Error{Pkg: "state", Field: "Config.Prefix", Value: fmt.Sprintf("%q", c.Prefix),
			Problem: "is not a folder-like prefix", Fix: "end it in / and start it without one", Example: DefaultPrefix}
	}
	for _, d := range []struct {
		field string
		value time.Duration
		def   time.Duration
	}{
		{"Config.Refresh", c.Refresh, DefaultRefresh},
		{"Config.Retention", c.Retention, DefaultRetention},
		{"Config.CompactEvery", c.CompactEvery, DefaultCompactEvery},
		{"Config.Overlap", c.Overlap, DefaultOverlap},
	} {
		if d.value < 0 {
			return &fielderr.Error{Pkg: "state", Field: d.field, Value: d.value.String(), Problem: "is negative",
				Fix: "set a positive duration, or 0 for the default", Example: d.def.String()}
		}
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.Prefix == "" {
		c.Prefix = DefaultPrefix
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

// Attach sets the cache busts are applied to, for a cache that is built after the state (it
// asks the state as its Guard). Call it before Load and Run.
func (s *State) Attach(c Cache) { s.cfg.Cache = c }

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
