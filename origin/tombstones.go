package origin

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"sync"
	"time"
)

// TombstoneStore is where tombstones live: the bucket.
type TombstoneStore interface {
	Lister
	Putter
}

// Tombstones remembers the keys Mastodon deleted, so that no replica serves them from the old
// volume (where Mastodon, writing to the bucket now, never deletes them) and no backfill copies
// them back. Each is a small object under the state prefix, named by the SHA-256 of its key
// (so `tootctl media remove-orphans` never takes it for media) and holding the key and the
// time. Every process loads them at start and refreshes them by listing.
type Tombstones struct {
	store  TombstoneStore
	prefix string // statePrefix + "tombstones/"

	mu  sync.RWMutex
	set map[[sha256.Size]byte]struct{}
}

// NewTombstones returns the tombstones kept in store under statePrefix (e.g. "_fedicache/").
func NewTombstones(store TombstoneStore, statePrefix string) *Tombstones {
	return &Tombstones{store: store, prefix: statePrefix + "tombstones/", set: map[[sha256.Size]byte]struct{}{}}
}

// Has reports whether key was deleted.
func (t *Tombstones) Has(key string) bool {
	h := sha256.Sum256([]byte(key))
	t.mu.RLock()
	_, ok := t.set[h]
	t.mu.RUnlock()
	return ok
}

// Len returns how many keys are tombstoned.
func (t *Tombstones) Len() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return len(t.set)
}

// Remember tombstones key in this process only (a peer recorded it in the bucket).
func (t *Tombstones) Remember(key string) {
	h := sha256.Sum256([]byte(key))
	t.mu.Lock()
	t.set[h] = struct{}{}
	t.mu.Unlock()
}

// tombstone is the content of a tombstone object.
type tombstone struct {
	Key       string    `json:"key"`
	DeletedAt time.Time `json:"deleted_at"`
}

// Add records key as deleted, in the bucket and here.
func (t *Tombstones) Add(ctx context.Context, key string, at time.Time) error {
	h := sha256.Sum256([]byte(key))
	body, err := json.Marshal(tombstone{Key: key, DeletedAt: at.UTC()})
	if err != nil {
		return err
	}
	err = t.store.Put(ctx, t.prefix+hex.EncodeToString(h[:]), bytes.NewReader(body), int64(len(body)),
		PutOptions{ContentType: "application/json", ACL: "private"})
	if err != nil && !errors.Is(err, ErrExists) {
		return err
	}
	t.mu.Lock()
	t.set[h] = struct{}{}
	t.mu.Unlock()
	return nil
}

// errStopListing ends a listing once it has passed the tombstones.
var errStopListing = errors.New("past the tombstones")

// Load reads every tombstone's name from the bucket and keeps them, with those remembered
// meanwhile.
func (t *Tombstones) Load(ctx context.Context) error {
	fresh := map[[sha256.Size]byte]struct{}{}
	err := t.store.List(ctx, t.prefix, func(o Object) error {
		name, ok := strings.CutPrefix(o.Key, t.prefix)
		if !ok {
			return errStopListing
		}
		var h [sha256.Size]byte
		if n, err := hex.Decode(h[:], []byte(name)); err == nil && n == sha256.Size {
			fresh[h] = struct{}{}
		}
		return nil
	})
	if err != nil && !errors.Is(err, errStopListing) {
		return err
	}
	t.mu.Lock()
	for h := range t.set {
		fresh[h] = struct{}{} // tombstones are never removed
	}
	t.set = fresh
	t.mu.Unlock()
	return nil
}

// Refresh loads the tombstones every period until ctx ends, reporting failures to onErr.
func (t *Tombstones) Refresh(ctx context.Context, every time.Duration, onErr func(error)) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			if err := t.Load(ctx); err != nil && ctx.Err() == nil && onErr != nil {
				onErr(err)
			}
		}
	}
}

// Without returns an Origin that answers ErrHidden for every key hide reports, and asks o for
// the others: the old volume without the deleted keys.
func Without(o Origin, hide func(key string) bool) Origin {
	return &withoutOrigin{o: o, hide: hide}
}

type withoutOrigin struct {
	o    Origin
	hide func(string) bool
}

func (w *withoutOrigin) Stat(ctx context.Context, key string) (Meta, error) {
	if w.hide(key) {
		return Meta{}, ErrHidden
	}
	return w.o.Stat(ctx, key)
}

func (w *withoutOrigin) Get(ctx context.Context, key string, r *Range) (io.ReadCloser, Meta, error) {
	if w.hide(key) {
		return nil, Meta{}, ErrHidden
	}
	return w.o.Get(ctx, key, r)
}

var _ Origin = (*withoutOrigin)(nil)
