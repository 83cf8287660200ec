package cluster

// The peer fill, the asking side: a replica's miss on a key another replica owns asks the owner
// (PeerFill) instead of the bucket. The owner's side is peerserve.go; ownership is owners.go.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/fedicache/fedicache/origin"
)

// The headers of a peer answer besides the usual ones: the whole object's size (a ranged
// answer carries it in Content-Range too) and where the owner's answer came from.
const (
	peerSizeHeader   = "X-Fedicache-Size"
	peerSourceHeader = "X-Fedicache-Source"
	peerStoreHeader  = "X-Fedicache-Store" // the old store's name, for an answer from one
)

// peerObjectPath is the peer endpoint's path on the admin listener; the key goes in the query
// (?key=), so that no path cleaning ever changes it.
const peerObjectPath = "/peer/object"

// PeerFillConfig says how a replica asks the owners of keys for them.
type PeerFillConfig struct {
	// Owners says which replica owns a key and which are skipped. Nil means no cluster: every
	// request goes to Next.
	Owners *Owners
	// Token is sent to the owner as "Authorization: Bearer <Token>" (the admin token, which the
	// owner's endpoint requires). Empty means the peer fill is off: every request goes to Next.
	Token string
	// Next is what a replica asks itself: the bucket and the old stores (origin.Fallback).
	Next origin.Sourced
	// Recent, when set, is what this replica purged lately: a key in it goes to Next, not to an
	// owner that may not have learned of the purge yet (Mastodon hid the object, say).
	Recent *Recent
	// Timeout bounds the connection to the owner: an owner that cannot be reached within it (a
	// pod that is gone) is skipped for Owners' SkipFor, and the bucket asked. Zero means 1s.
	Timeout time.Duration
	// HeaderTimeout bounds the wait for the owner's answer to begin, which it can only once its
	// own fetch has the bucket's answer: an owner that takes longer is skipped too. Zero means
	// 10s.
	HeaderTimeout time.Duration
	// StallTimeout bounds each wait for more of an owner's body: an owner that goes silent for
	// longer is cut off (its readers get an error, never a short body) and skipped. Zero means 5s.
	StallTimeout time.Duration
	// Client sends the requests. Zero means a client of its own, with Timeout on the dial and
	// HeaderTimeout on the headers, no proxy of the environment, and no redirects.
	Client *http.Client
}

func (c PeerFillConfig) withDefaults() PeerFillConfig {
	if c.Timeout <= 0 {
		c.Timeout = time.Second
	}
	if c.HeaderTimeout <= 0 {
		c.HeaderTimeout = 10 * time.Second
	}
	if c.StallTimeout <= 0 {
		c.StallTimeout = 5 * time.Second
	}
	if c.Client == nil {
		// Every miss of a non-owner is one request: many connections kept to each owner, and no
		// bound on the whole (a body may take minutes; StallTimeout bounds its silences).
		c.Client = newPeerClient(c.Timeout, c.HeaderTimeout, 0, 64)
	}
	return c
}

// PeerFill is an origin.Sourced that asks a key's owner for it, when another replica owns it and
// is not skipped, and Next otherwise, or when the owner fails (it is then skipped for a while):
// a dead replica costs its peers one timeout, then nothing. The owner answers from its tiers or
// its own single fetch, so a key costs the bucket one GET however many replicas miss it. An
// owner's 404 is the answer (the owner asked the same stores, and hides what Mastodon hid); an
// owner that says it does not own the key (its view of the members differs for a moment) is
// not asked again for it, Next is.
type PeerFill struct {
	cfg   PeerFillConfig
	stats fillCounters
}

// fillCounters are PeerFill's event counts.
type fillCounters struct {
	asks, answered, bytes, errors, fallbacks, misdirected, recent atomic.Uint64
}

// PeerFillStats is a snapshot of PeerFill's counters.
type PeerFillStats struct {
	Asks        uint64 `json:"asks"`        // requests sent to owners
	Answered    uint64 `json:"answered"`    // owners' answers passed on (2xx, 404, 416)
	Bytes       uint64 `json:"bytes"`       // body bytes received from owners
	Errors      uint64 `json:"errors"`      // owners that failed: no answer in time, 5xx, a cut body
	Fallbacks   uint64 `json:"fallbacks"`   // requests that went to Next because the owner failed or is skipped
	Misdirected uint64 `json:"misdirected"` // owners that said they do not own the key
	Recent      uint64 `json:"recent"`      // requests sent to Next because this replica purged the key lately
}

// NewPeerFill returns the peer fill cfg describes.
func NewPeerFill(cfg PeerFillConfig) *PeerFill {
	return &PeerFill{cfg: cfg.withDefaults()}
}

// Stats returns the counters.
func (p *PeerFill) Stats() PeerFillStats {
	return PeerFillStats{
		Asks:        p.stats.asks.Load(),
		Answered:    p.stats.answered.Load(),
		Bytes:       p.stats.bytes.Load(),
		Errors:      p.stats.errors.Load(),
		Fallbacks:   p.stats.fallbacks.Load(),
		Misdirected: p.stats.misdirected.Load(),
		Recent:      p.stats.recent.Load(),
	}
}

// owner returns the peer to ask for key, or "" for Next.
func (p *PeerFill) owner(key string) string {
	if p.cfg.Token == "" || p.cfg.Owners == nil {
		return ""
	}
	peer, self := p.cfg.Owners.Owner(key)
	if self || peer == "" {
		return ""
	}
	if p.cfg.Recent.Has(key) {
		p.stats.recent.Add(1)
		return ""
	}
	if p.cfg.Owners.Skipped(peer) {
		p.stats.fallbacks.Add(1)
		return ""
	}
	return peer
}

// GetFrom implements origin.Sourced.
func (p *PeerFill) GetFrom(ctx context.Context, key string, r *origin.Range) (io.ReadCloser, origin.Meta, origin.From, error) {
	if peer := p.owner(key); peer != "" {
		body, m, from, err := p.ask(ctx, http.MethodGet, peer, key, r)
		if !errors.Is(err, errAskNext) {
			return body, m, from, err
		}
	}
	return p.cfg.Next.GetFrom(ctx, key, r)
}

// StatFrom implements origin.Sourced.
func (p *PeerFill) StatFrom(ctx context.Context, key string) (origin.Meta, origin.From, error) {
	if peer := p.owner(key); peer != "" {
		_, m, from, err := p.ask(ctx, http.MethodHead, peer, key, nil)
		if !errors.Is(err, errAskNext) {
			return m, from, err
		}
	}
	return p.cfg.Next.StatFrom(ctx, key)
}

// Get implements origin.Origin.
func (p *PeerFill) Get(ctx context.Context, key string, r *origin.Range) (io.ReadCloser, origin.Meta, error) {
	body, m, _, err := p.GetFrom(ctx, key, r)
	return body, m, err
}

// Stat implements origin.Origin.
func (p *PeerFill) Stat(ctx context.Context, key string) (origin.Meta, error) {
	m, _, err := p.StatFrom(ctx, key)
	return m, err
}

// Revalidate implements origin.Revalidator with Next's: a revalidation asks the stores.
func (p *PeerFill) Revalidate(ctx context.Context, key, etag string) (origin.Meta, bool, error) {
	return origin.Revalidate(ctx, p.cfg.Next, key, etag)
}

// Ping implements origin.Pinger with Next's: a replica's health is its stores'.
func (p *PeerFill) Ping(ctx context.Context) error {
	if pg, ok := p.cfg.Next.(origin.Pinger); ok {
		return pg.Ping(ctx)
	}
	return nil
}

// errAskNext means the owner gave no answer to pass on: Next is asked instead.
var errAskNext = errors.New("cluster: ask the stores")

// ask sends method for key (and r) to peer and returns its answer: the body (nil for a HEAD)
// and Meta of a 2xx, with where the owner's answer came from; origin.ErrNotFound for a 404,
// origin.ErrRangeNotSatisfiable (with the size in Meta) for a 416, or errAskNext when the owner
// failed (it is then skipped) or does not own the key.
func (p *PeerFill) ask(ctx context.Context, method, peer, key string, r *origin.Range) (io.ReadCloser, origin.Meta, origin.From, error) {
	from := origin.From{Source: origin.SourcePeer}
	body, m, err := p.send(ctx, method, peer, key, r, &from)
	return body, m, from, err
}

// send is ask's exchange; it sets from.Peer from the answer.
func (p *PeerFill) send(ctx context.Context, method, peer, key string, r *origin.Range, from *origin.From) (io.ReadCloser, origin.Meta, error) {
	p.stats.asks.Add(1)
	rctx, cancel := context.WithCancel(ctx)
	req, err := http.NewRequestWithContext(rctx, method, "http://"+peer+peerObjectPath+"?key="+url.QueryEscape(key), nil)
	if err != nil {
		cancel()
		return nil, origin.Meta{}, fmt.Errorf("cluster: ask %s for %q: %w", peer, key, err)
	}
	req.Header.Set("Authorization", "Bearer "+p.cfg.Token)
	req.Header.Set(ForwardedHeader, "1")
	if r != nil {
		req.Header.Set("Range", r.String())
	}
	resp, err := p.cfg.Client.Do(req)
	if err != nil {
		cancel()
		if ctx.Err() != nil {
			return nil, origin.Meta{}, ctx.Err() // the caller left: not the owner's fault
		}
		return nil, origin.Meta{}, p.failed(peer)
	}
	m, merr := peerMeta(resp)
	from.Peer = origin.Source(resp.Header.Get(peerSourceHeader))
	if from.Peer.Old() {
		from.Store = resp.Header.Get(peerStoreHeader)
	}
	switch {
	case resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusPartialContent:
		if merr != nil {
			resp.Body.Close()
			cancel()
			return nil, origin.Meta{}, p.failed(peer)
		}
		p.stats.answered.Add(1)
		if method == http.MethodHead {
			resp.Body.Close()
			cancel()
			return nil, m, nil
		}
		return p.watch(ctx, resp.Body, cancel, peer), m, nil
	case resp.StatusCode == http.StatusNotFound:
		drain(resp, cancel)
		p.stats.answered.Add(1)
		return nil, origin.Meta{}, origin.ErrNotFound
	case resp.StatusCode == http.StatusRequestedRangeNotSatisfiable && merr == nil:
		drain(resp, cancel)
		p.stats.answered.Add(1)
		return nil, m, origin.ErrRangeNotSatisfiable
	case resp.StatusCode == http.StatusMisdirectedRequest:
		drain(resp, cancel)
		p.stats.misdirected.Add(1)
		return nil, origin.Meta{}, errAskNext
	default: // 5xx, 401/403 (a token that differs), anything else: the owner cannot serve it
		drain(resp, cancel)
		return nil, origin.Meta{}, p.failed(peer)
	}
}

// failed counts peer's failure, skips it for a while and sends the request to Next.
func (p *PeerFill) failed(peer string) error {
	p.stats.errors.Add(1)
	p.stats.fallbacks.Add(1)
	p.cfg.Owners.Skip(peer)
	return errAskNext
}

// drain reads a little of an answer's body so its connection can be reused, and closes it.
func drain(resp *http.Response, cancel context.CancelFunc) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, peerDrainBodyBytes))
	resp.Body.Close()
	cancel()
}

// peerMeta reads the object's Meta from a peer answer's headers.
func peerMeta(resp *http.Response) (origin.Meta, error) {
	size, err := strconv.ParseInt(resp.Header.Get(peerSizeHeader), 10, 64)
	if err != nil || size < 0 {
		return origin.Meta{}, fmt.Errorf("cluster: the peer's answer has %s %q", peerSizeHeader, resp.Header.Get(peerSizeHeader))
	}
	m := origin.Meta{
		Size:        size,
		ContentType: resp.Header.Get("Content-Type"),
		ETag:        resp.Header.Get("ETag"),
	}
	if lm := resp.Header.Get("Last-Modified"); lm != "" {
		if t, err := http.ParseTime(lm); err == nil {
			m.LastModified = t
		}
	}
	return m, nil
}

// watchedBody is an owner's body whose every Read must make progress within StallTimeout: an
// owner that goes silent mid-body is cut off (the request's context canceled) and skipped, and
// so is one whose body breaks; the Read fails either way, never ending a body short.
type watchedBody struct {
	body   io.ReadCloser
	parent context.Context // the caller's: when it ends, a failed Read is not the owner's fault
	cancel context.CancelFunc
	timer  *time.Timer
	fired  atomic.Bool
	p      *PeerFill
	peer   string
	failed bool
}

// watch returns body under a stall timeout; cancel ends its request.
func (p *PeerFill) watch(parent context.Context, body io.ReadCloser, cancel context.CancelFunc, peer string) *watchedBody {
	b := &watchedBody{body: body, parent: parent, cancel: cancel, p: p, peer: peer}
	b.timer = time.AfterFunc(p.cfg.StallTimeout, func() {
		b.fired.Store(true)
		cancel()
	})
	b.timer.Stop()
	return b
}

// Read implements io.Reader.
func (b *watchedBody) Read(p []byte) (int, error) {
	b.timer.Reset(b.p.cfg.StallTimeout)
	n, err := b.body.Read(p)
	b.timer.Stop()
	b.p.stats.bytes.Add(uint64(n))
	if err != nil && err != io.EOF && !b.failed && b.parent.Err() == nil {
		b.failed = true
		if b.fired.Load() {
			err = fmt.Errorf("cluster: peer %s sent nothing for %s: %w", b.peer, b.p.cfg.StallTimeout, context.DeadlineExceeded)
		}
		b.p.stats.errors.Add(1)
		b.p.cfg.Owners.Skip(b.peer)
	}
	return n, err
}

// Close implements io.Closer: it ends the request.
func (b *watchedBody) Close() error {
	b.timer.Stop()
	err := b.body.Close()
	b.cancel()
	return err
}

var (
	_ origin.Sourced     = (*PeerFill)(nil)
	_ origin.Revalidator = (*PeerFill)(nil)
	_ origin.Pinger      = (*PeerFill)(nil)
)
