package proxy

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
)

// purger is a cache that can drop entries.
type purger interface {
	Purge(key string) int
	PurgePrefix(prefix string) int
}

// purge answers POST /purge?key=K or ?prefix=P: it drops the entries from every tier of this
// process and answers how many went. It needs "Authorization: Bearer <token>": 401 without,
// 403 with a wrong token, 404 when no token is configured (writes are off).
func (a *Admin) purge(w http.ResponseWriter, r *http.Request) {
	if a.cfg.Token == "" || a.purger == nil {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || token == "" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="fedicache admin"`)
		http.Error(w, "missing bearer token", http.StatusUnauthorized)
		return
	}
	if subtle.ConstantTimeCompare([]byte(token), []byte(a.cfg.Token)) != 1 {
		http.Error(w, "wrong token", http.StatusForbidden)
		return
	}
	q := r.URL.Query()
	key, prefix := strings.TrimPrefix(q.Get("key"), "/"), strings.TrimPrefix(q.Get("prefix"), "/")
	var rep struct {
		Purged int          `json:"purged"`
		Peers  []PeerResult `json:"peers,omitempty"`
	}
	switch {
	case key != "" && prefix == "":
		rep.Purged = a.purger.Purge(key)
		if q.Get("tombstone") == "1" && a.cfg.Remember != nil {
			a.cfg.Remember(key)
		}
	case prefix != "" && key == "":
		rep.Purged = a.purger.PurgePrefix(prefix)
	default:
		http.Error(w, "give exactly one of key or prefix, e.g. POST /purge?key=media_attachments/files/000/000/001/original/0123456789abcdef.jpg", http.StatusBadRequest)
		return
	}
	// A purge sent by a peer stops here; one from outside goes to every peer.
	if a.cfg.Peers != nil && r.Header.Get(ForwardedHeader) == "" {
		// A caller that hangs up must not leave some peers unpurged; Forward bounds its time.
		rep.Peers = a.cfg.Peers.Forward(context.WithoutCancel(r.Context()), r.URL.RequestURI())
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(rep)
}

// PurgePath is the admin path that purges key, telling the peer it was tombstoned.
func PurgePath(key string, tombstoned bool) string {
	q := url.Values{"key": {key}}
	if tombstoned {
		q.Set("tombstone", "1")
	}
	return "/purge?" + q.Encode()
}
