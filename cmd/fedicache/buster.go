package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/fedicache/fedicache/cache/state"
	"github.com/fedicache/fedicache/origin"
	"github.com/fedicache/fedicache/origin/volume"
	"github.com/fedicache/fedicache/proxy"
	"github.com/fedicache/fedicache/proxy/cluster"
)

// buster carries out Mastodon's cache-buster requests for serve. It asks the stores what
// Mastodon did: the bucket no longer holds the key (deleted: a permanent tombstone, so the old
// volume's copy is never served again, here or by the backfill), or refuses it (hidden: an ACL
// turned private, or a 0600 file on the volume, which an unsuspension may bring back), or
// holds it visible (purged). It then records that in the bucket's log of busts, which every
// replica applies at its next refresh or start, applies it here at once (every tier, and a fetch
// under way), passes the word to the other replicas as a shortcut, and queues the public URL for
// a purge at Cloudflare.
type buster struct {
	state  *state.State
	bucket origin.Origin
	volume *volume.Volume      // nil without fallback.dir
	peers  *cluster.Peers      // nil without cluster.peers
	cdn    *cluster.Cloudflare // nil without cloudflare.zone_id
}

// Bust implements proxy.Buster.
func (b *buster) Bust(ctx context.Context, key, publicURL string) (proxy.BustReport, error) {
	var rep proxy.BustReport
	if b.cdn != nil {
		rep.CDNQueued = b.cdn.Purge(publicURL)
	}
	var errs []error
	kind, err := b.what(ctx, key)
	if err != nil {
		errs = append(errs, err)
	}
	var entry string
	rep.Purged, entry, err = b.state.Record(ctx, kind, key)
	if err != nil {
		errs = append(errs, err)
	}
	rep.Tombstoned = kind == state.Deleted && err == nil
	rep.Kind = kind.String()
	if b.peers != nil {
		for _, p := range b.peers.Forward(ctx, cluster.PurgePath(kind.String(), key, entry)) {
			rep.Peers = append(rep.Peers, proxy.PeerResult(p))
			if p.Err != "" {
				errs = append(errs, fmt.Errorf("peer %s: %s", p.Peer, p.Err))
			}
		}
	}
	return rep, errors.Join(errs...)
}

// what asks the stores what Mastodon did to key. When the bucket cannot say, the key is treated
// as hidden: dropped everywhere now, fetched and checked again later, never tombstoned on a guess.
func (b *buster) what(ctx context.Context, key string) (state.Kind, error) {
	_, err := b.bucket.Stat(ctx, key)
	switch {
	case err == nil:
		return state.Purged, nil // visible: an unsuspension, say
	case errors.Is(err, origin.ErrHidden):
		return state.Hidden, nil
	case !errors.Is(err, origin.ErrNotFound):
		return state.Hidden, fmt.Errorf("could not ask the bucket whether the key is gone: %w", err)
	}
	if b.volume != nil {
		if f, info, err := b.volume.OpenFile(key); err == nil {
			f.Close()
			if origin.Hidden(info.Mode()) {
				return state.Hidden, nil // a 0600 file: a suspension before the move to the bucket
			}
		}
	}
	return state.Deleted, nil
}

var _ proxy.Buster = (*buster)(nil)
