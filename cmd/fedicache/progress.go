package main

// The copy's progress, published under the state prefix by whichever process copies (the
// backfill Job, or a replica with backfill.enabled) and read by every replica, so that the
// migration shows on every status page, and after the Job has ended.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/fedicache/fedicache/cmd/fedicache/config"
	"github.com/fedicache/fedicache/origin"
	"github.com/fedicache/fedicache/origin/s3"
	"github.com/fedicache/fedicache/proxy/admin"
)

// progressDir is the folder, under the state prefix, of the published progress: one object
// per old store, <source>.json, holding an admin.Migration.
const progressDir = "progress/"

// progressEvery is how often a copier publishes its progress; progressStaleAfter is how long
// after its last figures a running copy is taken for stopped. Variables for the tests.
var (
	progressEvery      = 10 * time.Second
	progressStaleAfter = 6 * progressEvery
)

// progressMaxBytes bounds a published progress object read back (a few recent errors and
// conflicting keys, never whole lists).
const progressMaxBytes = 1 << 20

// progressKey is the key of source's published progress under the state prefix.
func progressKey(statePrefix, source string) string {
	return statePrefix + progressDir + source + ".json"
}

// progressStore is what the progress needs of the bucket: its state view.
type progressStore interface {
	origin.Origin
	origin.Lister
	origin.Putter
}

// publishProgress writes the figures of source's copy (m) every progressEvery until ctx ends
// or the copy is done, and once more then: the last figures stay for every replica to show.
func publishProgress(ctx context.Context, store progressStore, statePrefix string, m func() admin.Migration, log *slog.Logger) {
	host, _ := os.Hostname()
	publish := func(ctx context.Context) bool {
		mig := m()
		mig.Reporter, mig.UpdatedAt = host, time.Now().UTC()
		body, err := json.Marshal(mig)
		if err == nil {
			err = store.Put(ctx, progressKey(statePrefix, mig.Source), bytes.NewReader(body), int64(len(body)),
				origin.PutOptions{ContentType: "application/json", CacheControl: "no-store"})
		}
		if err != nil && ctx.Err() == nil {
			log.Warn("backfill: could not publish the progress for the status pages", "source", mig.Source, "err", err)
		}
		return mig.Done
	}
	t := time.NewTicker(progressEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			c, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			publish(c)
			cancel()
			return
		case <-t.C:
			if publish(ctx) {
				return
			}
		}
	}
}

// progressBoard is every old store's copy as this replica shows it: the copies this process
// runs, live, and the others as their copiers last published them.
type progressBoard struct {
	store       progressStore
	statePrefix string
	order       []string // the old stores' names, in the order they are asked
	log         *slog.Logger

	mu        sync.Mutex
	local     map[string]func() admin.Migration
	published map[string]admin.Migration
}

func newProgressBoard(store progressStore, statePrefix string, order []string, log *slog.Logger) *progressBoard {
	return &progressBoard{store: store, statePrefix: statePrefix, order: order, log: log,
		local: map[string]func() admin.Migration{}, published: map[string]admin.Migration{}}
}

// runLocal shows source's copy, which this process runs, from m.
func (b *progressBoard) runLocal(source string, m func() admin.Migration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.local[source] = m
}

// run reads the published progress every every until ctx ends.
func (b *progressBoard) run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if err := b.refresh(ctx); err != nil && ctx.Err() == nil {
			b.log.Warn("could not read the copy's published progress", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

var errProgressListed = errors.New("listed")

// refresh reads every published progress object.
func (b *progressBoard) refresh(ctx context.Context) error {
	dir := b.statePrefix + progressDir
	var keys []string
	err := b.store.List(ctx, dir, func(o origin.Object) error {
		if !strings.HasPrefix(o.Key, dir) {
			return errProgressListed
		}
		if strings.HasSuffix(o.Key, ".json") && o.Size <= progressMaxBytes {
			keys = append(keys, o.Key)
		}
		return nil
	})
	if err != nil && !errors.Is(err, errProgressListed) {
		return fmt.Errorf("list %s: %w", dir, err)
	}
	read := map[string]admin.Migration{}
	for _, k := range keys {
		m, err := b.read(ctx, k)
		if err != nil {
			return err
		}
		if m.Source != "" {
			read[m.Source] = m
		}
	}
	b.mu.Lock()
	b.published = read
	b.mu.Unlock()
	return nil
}

func (b *progressBoard) read(ctx context.Context, key string) (admin.Migration, error) {
	body, _, err := b.store.Get(ctx, key, nil)
	if errors.Is(err, origin.ErrNotFound) {
		return admin.Migration{}, nil
	}
	if err != nil {
		return admin.Migration{}, fmt.Errorf("read %s: %w", key, err)
	}
	defer body.Close()
	var m admin.Migration
	if err := json.NewDecoder(io.LimitReader(body, progressMaxBytes)).Decode(&m); err != nil {
		b.log.Warn("a published progress does not decode; it is left out", "key", key, "err", err)
		return admin.Migration{}, nil
	}
	return m, nil
}

// migrations returns each old store's copy: this process's own when it runs it, else the
// published one (stale when its copier stopped publishing while it ran), in the stores' order
// and then by name.
func (b *progressBoard) migrations() []admin.Migration {
	b.mu.Lock()
	local := make(map[string]func() admin.Migration, len(b.local))
	for k, v := range b.local {
		local[k] = v
	}
	all := make(map[string]admin.Migration, len(b.published)+len(local))
	for k, v := range b.published {
		all[k] = v
	}
	b.mu.Unlock()
	for k, m := range local {
		all[k] = m()
	}
	now := time.Now()
	var out []admin.Migration
	for _, m := range all {
		if _, own := local[m.Source]; !own && (m.Running || m.Waiting) && now.Sub(m.UpdatedAt) > progressStaleAfter {
			m.Stale, m.Running, m.Waiting = true, false, false
		}
		out = append(out, m)
	}
	slices.SortFunc(out, func(x, y admin.Migration) int {
		ix, iy := slices.Index(b.order, x.Source), slices.Index(b.order, y.Source)
		if ix < 0 {
			ix = len(b.order)
		}
		if iy < 0 {
			iy = len(b.order)
		}
		if ix != iy {
			return ix - iy
		}
		return strings.Compare(x.Source, y.Source)
	})
	return out
}

// startProgress starts the board of the copies' progress for serve, reading what copiers
// published every state_refresh (at least every progressEvery); nil when the bucket has no
// signed view to read it with (an anonymous bucket without credentials).
func startProgress(ctx context.Context, bucket *s3.Bucket, cfg config.Config, olds *oldStores, log *slog.Logger) *progressBoard {
	view, err := bucket.StateView()
	if err != nil {
		return nil
	}
	b := newProgressBoard(view, cfg.StatePrefix, olds.names(), log)
	go b.run(ctx, max(cfg.StateRefresh, progressEvery))
	return b
}

// copying shows source's copy, which this process runs, from m, and publishes it for the
// other replicas until ctx ends.
func (b *progressBoard) copying(ctx context.Context, source string, m func() admin.Migration) {
	mig := func() admin.Migration {
		x := m()
		x.Source = source
		return x
	}
	b.runLocal(source, mig)
	go publishProgress(ctx, b.store, b.statePrefix, mig, b.log)
}
