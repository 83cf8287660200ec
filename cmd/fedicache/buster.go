package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/fedicache/fedicache/cache"
	"github.com/fedicache/fedicache/origin"
	"github.com/fedicache/fedicache/proxy"
)

// buster carries out Mastodon's cache-buster requests for serve: it drops the key from this
// replica's tiers, queues the public URL for a purge at Cloudflare, records a tombstone when the bucket no longer holds it (so the old volume's
// copy is never served again, here or by the backfill), and passes the word to the other
// replicas.
type buster struct {
	cache  *cache.Layered
	bucket origin.Origin
	tombs  *origin.Tombstones
	peers  *proxy.Peers      // nil without cluster.peers
	cdn    *proxy.Cloudflare // nil without cloudflare.zone_id
}

// Bust implements proxy.Buster.
func (b *buster) Bust(ctx context.Context, key, publicURL string) (proxy.BustReport, error) {
	rep := proxy.BustReport{Purged: b.cache.Purge(key)}
	if b.cdn != nil {
		rep.CDNQueued = b.cdn.Purge(publicURL)
	}
	var errs []error
	_, err := b.bucket.Stat(ctx, key)
	switch {
	case errors.Is(err, origin.ErrHidden):
		// Hidden, not deleted: the bucket refuses it and an unsuspension brings it back.
	case errors.Is(err, origin.ErrNotFound):
		if err := b.tombs.Add(ctx, key, time.Now()); err != nil {
			errs = append(errs, fmt.Errorf("tombstone: %w", err))
		} else {
			rep.Tombstoned = true
		}
	case err != nil:
		errs = append(errs, fmt.Errorf("could not ask the bucket whether the key is gone: %w", err))
	}
	if b.peers != nil {
		rep.Peers = b.peers.Forward(ctx, proxy.PurgePath(key, rep.Tombstoned))
		for _, p := range rep.Peers {
			if p.Err != "" {
				errs = append(errs, fmt.Errorf("peer %s: %s", p.Peer, p.Err))
			}
		}
	}
	return rep, errors.Join(errs...)
}

var _ proxy.Buster = (*buster)(nil)
