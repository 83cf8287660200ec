package cluster

// The peer fill, the owner's side: the endpoint on the admin listener that answers the other
// replicas' asks for the keys this replica owns (see peerfill.go for the asking side).

import (
	"context"
	"crypto/subtle"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/fedicache/fedicache/origin"
)

// PeerServeConfig says what the peer endpoint serves and to whom.
type PeerServeConfig struct {
	// Objects is this replica's cache: an ask is answered from its tiers or its own single
	// fetch, with its tombstones and hiding, as a client's request would be.
	Objects origin.Sourced
	// Owners says which keys this replica owns: an ask for another's key is refused (421), so
	// that a request never travels further than one replica to another.
	Owners *Owners
	// Token is what peers must send as "Authorization: Bearer <Token>", compared in constant
	// time. Empty refuses every ask: the peer fill needs the admin token.
	Token string
	// OnFallback, when set, is called with the key of an answer from an old store, as the front
	// does for its own (copy-on-read).
	OnFallback func(key, store string)
	// Stale, when set, reports whether this replica's record of deleted and hidden media is too
	// old to answer for others (it could not read the bucket's log for a while): asks are then
	// refused (503), and the peers ask the bucket.
	Stale func() bool
	// Denied, when set, reports the keys the front never serves (its deny prefixes, fedicache's
	// own state): a peer asking for one gets 404, as a client would. Keys with empty, "." or
	// ".." segments are refused whatever it says.
	Denied func(key string) bool
}

// PeerObjectPath is where NewPeerHandler is mounted on the admin listener (the key goes in
// the query, ?key=).
const PeerObjectPath = peerObjectPath

// NewPeerHandler returns the peer endpoint: GET and HEAD of ?key=K, with one byte range at most,
// for a peer that sends the token. It answers 200 or 206 with the object's bytes and headers
// (ETag, Last-Modified, Content-Type, its size in X-Fedicache-Size, where it came from in
// X-Fedicache-Source); 404 for an object absent, hidden or deleted; 416 for a range beyond the
// end; 421 for a key another replica owns; 401 without the token; 502 or 504 when the stores
// fail. A body that fails part way drops the connection, so the peer never takes it for whole.
func NewPeerHandler(cfg PeerServeConfig) *PeerHandler {
	return &PeerHandler{cfg: cfg}
}

// PeerHandler is the peer endpoint (NewPeerHandler).
type PeerHandler struct {
	cfg                            PeerServeConfig
	served, bytes, refused, failed atomic.Uint64
}

// PeerServeStats is a snapshot of the peer endpoint's counters.
type PeerServeStats struct {
	Served  uint64 `json:"served"`  // asks answered with the object (200, 206) or its absence (404, 416)
	Bytes   uint64 `json:"bytes"`   // body bytes sent to peers
	Refused uint64 `json:"refused"` // asks refused: no or a wrong token (401), a key this replica does not own (421), a bad request
	Failed  uint64 `json:"failed"`  // asks the stores failed (502, 504) or whose body broke
}

// Stats returns the counters.
func (h *PeerHandler) Stats() PeerServeStats {
	return PeerServeStats{Served: h.served.Load(), Bytes: h.bytes.Load(), Refused: h.refused.Load(), Failed: h.failed.Load()}
}

// peerCopyBufs are the buffers peer answers are copied through.
var peerCopyBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

func (h *PeerHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		h.refused.Add(1)
		http.Error(w, "405 method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if !h.authorized(r) {
		h.refused.Add(1)
		http.Error(w, "401 unauthorized", http.StatusUnauthorized)
		return
	}
	key := r.URL.Query().Get("key")
	if !cleanKey(key) {
		h.refused.Add(1)
		http.Error(w, "400 bad key", http.StatusBadRequest)
		return
	}
	if h.cfg.Denied != nil && h.cfg.Denied(key) {
		h.refused.Add(1)
		http.Error(w, "404 not found", http.StatusNotFound)
		return
	}
	if _, self := h.cfg.Owners.Owner(key); !self {
		h.refused.Add(1)
		http.Error(w, "421 not the owner", http.StatusMisdirectedRequest)
		return
	}
	if h.cfg.Stale != nil && h.cfg.Stale() {
		h.refused.Add(1)
		http.Error(w, "503 this replica's record of deleted media is stale", http.StatusServiceUnavailable)
		return
	}
	var rng *origin.Range
	if v := r.Header.Get("Range"); v != "" {
		parsed, ok := parseOneRange(v)
		if !ok {
			h.refused.Add(1)
			http.Error(w, "400 bad range", http.StatusBadRequest)
			return
		}
		rng = &parsed
	}
	var (
		body io.ReadCloser
		m    origin.Meta
		from origin.From
		err  error
	)
	if r.Method == http.MethodHead {
		m, from, err = h.cfg.Objects.StatFrom(r.Context(), key)
	} else {
		body, m, from, err = h.cfg.Objects.GetFrom(r.Context(), key, rng)
	}
	hd := w.Header()
	switch {
	case errors.Is(err, origin.ErrRangeNotSatisfiable):
		hd.Set(peerSizeHeader, strconv.FormatInt(m.Size, 10))
		h.served.Add(1)
		http.Error(w, "416 range not satisfiable", http.StatusRequestedRangeNotSatisfiable)
		return
	case errors.Is(err, origin.ErrNotFound), errors.Is(err, origin.ErrHidden):
		h.served.Add(1)
		http.Error(w, "404 not found", http.StatusNotFound)
		return
	case err != nil:
		h.failed.Add(1)
		status := http.StatusBadGateway
		if isTimeout(err) {
			status = http.StatusGatewayTimeout
		}
		http.Error(w, strconv.Itoa(status)+" the stores failed", status)
		return
	}
	if from.Source.Old() && h.cfg.OnFallback != nil {
		h.cfg.OnFallback(key, from.Store)
	}
	hd.Set(peerSizeHeader, strconv.FormatInt(m.Size, 10))
	hd.Set(peerSourceHeader, string(from.Source))
	if from.Store != "" {
		hd.Set(peerStoreHeader, from.Store)
	}
	if m.ContentType != "" {
		hd.Set("Content-Type", m.ContentType)
	}
	if m.ETag != "" {
		hd.Set("ETag", m.ETag)
	}
	if !m.LastModified.IsZero() {
		hd.Set("Last-Modified", m.LastModified.UTC().Format(http.TimeFormat))
	}
	if body == nil { // a HEAD
		hd.Set("Content-Length", strconv.FormatInt(m.Size, 10))
		h.served.Add(1)
		w.WriteHeader(http.StatusOK)
		return
	}
	defer body.Close()
	status, length := http.StatusOK, m.Size
	if rng != nil {
		first, last, _ := rng.Resolve(m.Size)
		status, length = http.StatusPartialContent, last-first+1
		hd.Set("Content-Range", "bytes "+strconv.FormatInt(first, 10)+"-"+strconv.FormatInt(last, 10)+"/"+strconv.FormatInt(m.Size, 10))
	}
	hd.Set("Content-Length", strconv.FormatInt(length, 10))
	w.WriteHeader(status)
	bufp := peerCopyBufs.Get().(*[]byte)
	defer peerCopyBufs.Put(bufp)
	n, err := io.CopyBuffer(onlyWriter{w}, io.LimitReader(body, length), *bufp)
	h.bytes.Add(uint64(n))
	if err != nil || n != length {
		h.failed.Add(1)
		panic(http.ErrAbortHandler) // drop the connection: the peer must not take it for whole
	}
	h.served.Add(1)
}

// authorized reports whether r carries the token, compared in constant time.
func (h *PeerHandler) authorized(r *http.Request) bool {
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return ok && h.cfg.Token != "" && subtle.ConstantTimeCompare([]byte(got), []byte(h.cfg.Token)) == 1
}

// cleanKey reports whether key is a relative path without empty, "." or ".." segments and
// without control characters: what the front lets through, and nothing that could name a file
// outside a store.
func cleanKey(key string) bool {
	if key == "" || len(key) > 1024 {
		return false
	}
	for seg := range strings.SplitSeq(key, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return false
		}
	}
	return !strings.ContainsFunc(key, func(r rune) bool { return r < 0x20 || r == 0x7f })
}

// isTimeout reports whether err is a store's timeout.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}

// onlyWriter hides a ResponseWriter's ReadFrom, so that CopyBuffer uses the pooled buffer.
type onlyWriter struct{ io.Writer }

// parseOneRange parses a Range header of one byte range, as origin.Range.String writes it:
// "bytes=a-b", "bytes=a-" or "bytes=-n".
func parseOneRange(v string) (origin.Range, bool) {
	spec, ok := strings.CutPrefix(v, "bytes=")
	if !ok || strings.Contains(spec, ",") {
		return origin.Range{}, false
	}
	a, b, ok := strings.Cut(spec, "-")
	if !ok {
		return origin.Range{}, false
	}
	if a == "" {
		n, err := strconv.ParseInt(b, 10, 64)
		if err != nil || n <= 0 {
			return origin.Range{}, false
		}
		return origin.Suffix(n), true
	}
	start, err := strconv.ParseInt(a, 10, 64)
	if err != nil || start < 0 {
		return origin.Range{}, false
	}
	if b == "" {
		return origin.Range{Start: start, End: -1}, true
	}
	end, err := strconv.ParseInt(b, 10, 64)
	if err != nil || end < start {
		return origin.Range{}, false
	}
	return origin.Range{Start: start, End: end}, true
}
