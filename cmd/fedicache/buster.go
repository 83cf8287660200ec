package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

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

// Bust implements proxy.Buster. A bust of one of Mastodon's missing.png placeholders costs
// nothing: no store is asked, nothing is recorded or passed on (see missingPlaceholder).
func (b *buster) Bust(ctx context.Context, key, publicURL string) (proxy.BustReport, error) {
	if missingPlaceholder(key) {
		return proxy.BustReport{Kind: placeholderKind}, nil
	}
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

// placeholderKind is the Kind of the report of a bust of a missing.png placeholder.
const placeholderKind = "placeholder"

// missingPlaceholder reports whether key is one of the missing.png placeholders Mastodon has sent
// busts for: the URL Paperclip gives an attachment that has no file, its default_url
// "/:attachment/:style/missing.png" (avatars/original/missing.png, headers/static/missing.png,
// files/small/missing.png, thumbnails/original/missing.png, images/original/missing.png...).
// It names a file that never existed: no media key has this shape (a key has a class, an
// attachment, an id partition, a style and a file name), so nothing is there to drop, and
// tombstoning it would only write to the bucket.
func missingPlaceholder(key string) bool {
	attachment, rest, ok := strings.Cut(key, "/")
	if !ok {
		return false
	}
	style, name, ok := strings.Cut(rest, "/")
	return ok && name == "missing.png" && lowerWord(attachment) && lowerWord(style)
}

// lowerWord reports whether s is a non-empty word of lowercase letters, digits and underscores,
// as Paperclip's attachment and style names are.
func lowerWord(s string) bool {
	for _, c := range []byte(s) {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '_' {
			return false
		}
	}
	return s != ""
}

var _ proxy.Buster = (*buster)(nil)
