package proxy

import (
	"crypto/subtle"
	"encoding/json"
	"net/http"
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
	key, prefix := q.Get("key"), q.Get("prefix")
	var n int
	switch {
	case key != "" && prefix == "":
		n = a.purger.Purge(strings.TrimPrefix(key, "/"))
	case prefix != "" && key == "":
		n = a.purger.PurgePrefix(strings.TrimPrefix(prefix, "/"))
	default:
		http.Error(w, "give exactly one of key or prefix, e.g. POST /purge?key=media_attachments/files/000/000/001/original/0123456789abcdef.jpg", http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]int{"purged": n})
}
