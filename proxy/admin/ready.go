package admin

import (
	"context"
	"net/http"
	"time"
)

// readyz answers 503 while the replica shuts down, until the cluster's state (tombstones and
// busts) has been loaded once (before, it cannot tell deleted media from the rest, and serves
// nothing), and until the bucket has answered once: a replica with a wrong endpoint or
// credentials never joins the Service, so a rollout stops before it replaces a working one.
// Once the bucket has answered, its later failures keep the replica ready: the cache and the
// old volume still serve, and failing every replica's readiness at once would take even those
// answers away. /status and the metrics report them. An old store that fails (an old bucket
// down, its credentials wrong) is said in the answer, which stays ready.
func (h *Handler) readyz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if h.draining() {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte("shutting down\n"))
		return
	}
	if h.cfg.State != nil && !h.cfg.State.Loaded() {
		w.WriteHeader(http.StatusServiceUnavailable)
		msg := "loading the record of deleted and hidden media from the bucket"
		if e := h.cfg.State.LastError(); e != "" {
			msg += ": " + e
		}
		_, _ = w.Write([]byte(msg + "\n"))
		return
	}
	answered, err := h.check(r.Context())
	switch {
	case err == nil:
		_, _ = w.Write([]byte("ready\n"))
	case answered:
		_, _ = w.Write([]byte("ready; the bucket is failing, serving from the cache and the old stores: " + err.Error() + "\n"))
	default:
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte("bucket not answering: " + err.Error() + "\n"))
		return
	}
	if h.cfg.OldStores != nil {
		for _, s := range h.cfg.OldStores(r.Context()) {
			if s.Err != "" {
				_, _ = w.Write([]byte("old store " + s.Name + " (" + string(s.Source) + ") not answering, its objects not copied yet are not served: " + s.Err + "\n"))
			}
		}
	}
}

// draining reports whether the front shuts down; a process without a front never drains.
func (h *Handler) draining() bool { return h.cfg.Draining != nil && h.cfg.Draining() }

// check returns the bucket's last readiness result, asking it again once ReadyTTL has passed,
// and whether the bucket has ever answered.
func (h *Handler) check(ctx context.Context) (answered bool, err error) {
	if h.cfg.Bucket == nil {
		return true, nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if time.Since(h.checkedAt) < h.cfg.ReadyTTL {
		return h.answered, h.pingErr
	}
	c, cancel := context.WithTimeout(context.WithoutCancel(ctx), h.cfg.PingTimeout)
	defer cancel()
	h.pingErr = h.cfg.Bucket.Ping(c)
	h.checkedAt = time.Now()
	h.answered = h.answered || h.pingErr == nil
	return h.answered, h.pingErr
}
