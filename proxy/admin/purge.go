package admin

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/fedicache/fedicache/proxy/cluster"
)

// ClusterState is the record of purges and busts that every replica replays from the bucket
// (cache/state), so that a replica that was down or cut off when one happened still applies it.
type ClusterState interface {
	// Apply carries out a purge of one of cluster's kinds (cluster.KindPurged...) on this
	// replica only (a peer's forwarded word) and returns how many cache entries went. entry,
	// when not empty, names the record the peer wrote, so that it is applied once, whichever
	// comes first.
	Apply(kind, key, entry string) (int, error)
	// Record applies it here and records it in the bucket for every replica; it returns the
	// name of the record ("" when none was written) for the peers told at once.
	Record(ctx context.Context, kind, key string) (int, string, error)
	// Loaded reports whether the state has been loaded once: the replica is not ready before.
	Loaded() bool
	// LastError says why the last load or refresh failed ("" when it did not).
	LastError() string
	// Status is what /status shows of the state.
	Status() any
}

// purgeReport is the answer of POST /purge.
type purgeReport struct {
	Purged int `json:"purged"`
	// Recorded is true when the purge was recorded in the bucket for every replica.
	Recorded bool                 `json:"recorded,omitempty"`
	Error    string               `json:"error,omitempty"`
	Peers    []cluster.PeerResult `json:"peers,omitempty"`
}

// purge answers POST /purge?key=K or ?prefix=P (with kind=hidden or kind=deleted for a key
// Mastodon hid or deleted): it drops the entries from every tier of this process and answers
// how many went. A purge from outside is also recorded in the bucket, where every replica
// finds it at its next refresh, and passed on to the peers at once; one a peer forwarded
// (cluster.ForwardedHeader) is applied here only. It needs "Authorization: Bearer <token>": 401
// without, 403 with a wrong token, 404 when no token is configured (writes are off).
func (h *Handler) purge(w http.ResponseWriter, r *http.Request) {
	if h.cfg.Token == "" || (h.cfg.Cache == nil && h.cfg.State == nil) {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || token == "" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="fedicache admin"`)
		http.Error(w, "missing bearer token", http.StatusUnauthorized)
		return
	}
	if subtle.ConstantTimeCompare([]byte(token), []byte(h.cfg.Token)) != 1 {
		http.Error(w, "wrong token", http.StatusForbidden)
		return
	}
	q := r.URL.Query()
	key, prefix := strings.TrimPrefix(q.Get("key"), "/"), strings.TrimPrefix(q.Get("prefix"), "/")
	kind := q.Get("kind")
	if q.Get("tombstone") == "1" { // the form of replicas before the state log
		kind = cluster.KindDeleted
	}
	switch {
	case key != "" && prefix == "" && (kind == "" || kind == cluster.KindPurged || kind == cluster.KindHidden || kind == cluster.KindDeleted):
		if kind == "" {
			kind = cluster.KindPurged
		}
	case prefix != "" && key == "" && (kind == "" || kind == cluster.KindPrefixPurged):
		kind, key = cluster.KindPrefixPurged, prefix
	default:
		http.Error(w, "give exactly one of key or prefix, and for a key at most kind=hidden or kind=deleted, "+
			"e.g. POST /purge?key=media_attachments/files/000/000/001/original/0123456789abcdef.jpg", http.StatusBadRequest)
		return
	}
	forwarded := r.Header.Get(cluster.ForwardedHeader) != ""
	var rep purgeReport
	var err error
	entry := q.Get("entry")
	switch {
	case h.cfg.State == nil && kind == cluster.KindPrefixPurged:
		rep.Purged = h.cfg.Cache.PurgePrefix(key)
	case h.cfg.State == nil:
		rep.Purged = h.cfg.Cache.Purge(key)
	case forwarded:
		rep.Purged, err = h.cfg.State.Apply(kind, key, entry)
	default:
		// Recorded before it is passed on: a peer that misses the word finds the record.
		c, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 30*time.Second)
		rep.Purged, entry, err = h.cfg.State.Record(c, kind, key)
		cancel()
		rep.Recorded = err == nil
	}
	if err != nil {
		rep.Error = err.Error()
	}
	// A purge sent by a peer stops here; one from outside goes to every peer.
	if h.cfg.Peers != nil && !forwarded {
		// A caller that hangs up must not leave some peers unpurged; Forward bounds its time.
		rep.Peers = h.cfg.Peers.Forward(context.WithoutCancel(r.Context()), cluster.PurgePath(kind, key, entry))
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(rep)
}
