package main

// The old stores behind the bucket: fallback.dir's volume, then fallback.stores in order (old
// buckets of a provider being left, other volumes), and their health for /readyz and /status.

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/fedicache/fedicache/cmd/fedicache/config"
	"github.com/fedicache/fedicache/origin"
	"github.com/fedicache/fedicache/origin/s3"
	"github.com/fedicache/fedicache/origin/volume"
)

// oldStores are the opened old stores, in the order they are asked.
type oldStores struct {
	list    []origin.OldStore
	volume  *volume.Volume // fallback.dir's, nil without it
	closers []func() error

	mu        sync.Mutex // held while a check runs, so checks never pile up
	checkedAt time.Time
	health    []origin.StoreHealth
}

// names returns the old stores' names, in the order they are asked.
func (o *oldStores) names() []string {
	out := make([]string, len(o.list))
	for i, s := range o.list {
		out[i] = s.Name
	}
	return out
}

// oldStoreCheckTTL is how long a check of the old stores is reused by /readyz and /status.
const oldStoreCheckTTL = 30 * time.Second

// openOldStores opens fallback.dir and fallback.stores, each old bucket with its configuration
// as edit (when set) changes it. An old bucket that does not answer does not stop the start:
// it is logged, reported on /readyz and /status, and asked all the same (its objects come back
// when it does).
func openOldStores(ctx context.Context, cfg config.Config, log *slog.Logger, edit func(*s3.Config)) (*oldStores, error) {
	o := &oldStores{}
	if cfg.FallbackDir != "" {
		vol, err := volume.Open(cfg.FallbackDir)
		if err != nil {
			return nil, fmt.Errorf("fallback.dir: %w", err)
		}
		o.volume = vol
		o.closers = append(o.closers, vol.Close)
		o.list = append(o.list, origin.OldStore{Name: origin.VolumeStoreName, Source: origin.SourceVolume, Origin: vol})
	}
	for i, s := range cfg.FallbackStores {
		at := fmt.Sprintf("fallback.stores[%d] (%s)", i, s.Name)
		if s.Dir != "" {
			vol, err := volume.Open(s.Dir)
			if err != nil {
				o.close()
				return nil, fmt.Errorf("%s: %w", at, err)
			}
			o.closers = append(o.closers, vol.Close)
			o.list = append(o.list, origin.OldStore{Name: s.Name, Source: origin.SourceVolume, Origin: vol})
			continue
		}
		sc := *s.S3
		if edit != nil {
			edit(&sc)
		}
		b, err := s3.New(ctx, sc)
		if err != nil {
			o.close()
			return nil, fmt.Errorf("%s: %w", at, err)
		}
		o.list = append(o.list, origin.OldStore{Name: s.Name, Source: origin.SourceOldBucket, Origin: b})
		// Checked beside the start, not before it: an old bucket down never holds up serving
		// what the new one has.
		go func() {
			pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			if err := b.Ping(pctx); err != nil && ctx.Err() == nil {
				log.Error("an old bucket does not answer; it is asked all the same, and /readyz and /status report it",
					"store", s.Name, "bucket", s.S3.Bucket, "endpoint", s.S3.Endpoint, "err", err)
			}
		}()
	}
	return o, nil
}

func (o *oldStores) close() {
	for i := len(o.closers) - 1; i >= 0; i-- {
		_ = o.closers[i]()
	}
}

// check returns each old store's health, asking them again once oldStoreCheckTTL has passed.
func (o *oldStores) check(ctx context.Context) []origin.StoreHealth {
	if len(o.list) == 0 {
		return nil
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.health != nil && time.Since(o.checkedAt) < oldStoreCheckTTL {
		return o.health
	}
	c, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	o.health = origin.FallbackChain(nil, o.list...).PingOld(c)
	o.checkedAt = time.Now()
	return o.health
}

// byName returns the old store named name.
func (o *oldStores) byName(name string) (origin.OldStore, bool) {
	for _, s := range o.list {
		if s.Name == name {
			return s, true
		}
	}
	return origin.OldStore{}, false
}
