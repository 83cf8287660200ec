// Package cluster is what one replica of fedicache does with the others and with the CDN in
// front of them: it finds the peer replicas by DNS and passes admin purges on to them
// (Peers, PurgePath), and purges public URLs from Cloudflare's cache (Cloudflare). Both retry
// through one helper (retry.go): a few attempts, separated by a capped backoff with jitter or by
// the wait a Retry-After asks for, and none once the caller's context ends.
package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ForwardedHeader marks an admin request that one replica forwarded to the others. A replica
// that receives it acts on the request itself and never forwards it again.
const ForwardedHeader = "X-Fedicache-Forwarded"

// Limits of one forwarded request's answer: how much of an error's body goes into its message,
// and how much of any body is read so that the connection can be reused.
const (
	peerErrBodyBytes   = 256
	peerDrainBodyBytes = 64 << 10
)

// Backoff between attempts: the n-th wait is between half and all of peerBackoffBase<<(n-1),
// never more than peerBackoffMax.
const (
	peerBackoffBase = 100 * time.Millisecond
	peerBackoffMax  = time.Second
)

// PeersConfig says how to find the other replicas and how to reach them. Only Name is required.
type PeersConfig struct {
	// Name is the DNS name of a Kubernetes headless Service whose A/AAAA records are the
	// replicas, e.g. "fedicache-peers.mastodon.svc.cluster.local". It is resolved again on
	// every Forward, since the answer changes as pods come and go. Outside Kubernetes it may
	// instead list the replicas' addresses, separated by commas ("10.0.0.5,10.0.0.6").
	Name string
	// Port is the admin port of the peers. Zero means 9090.
	Port int
	// Token is sent to the peers as "Authorization: Bearer <Token>": the admin token, which
	// every replica shares. Zero means no Authorization header.
	Token string
	// Timeout bounds one attempt on one peer, and the lookup of Name. Zero means 2s.
	Timeout time.Duration
	// Attempts is how many times a peer is tried when it does not answer or answers 5xx; a
	// short backoff with jitter separates the attempts. A 4xx is never retried. Zero means 3.
	Attempts int
	// Lookup resolves Name to the replicas' addresses. Zero means
	// net.DefaultResolver.LookupIP(ctx, "ip", host).
	Lookup func(ctx context.Context, host string) ([]net.IP, error)
	// Self returns this replica's own addresses, which are never forwarded to. Zero means the
	// addresses of the host's interfaces (net.InterfaceAddrs).
	Self func() ([]net.IP, error)
	// Client sends the requests. Zero means a client of its own that dials within Timeout,
	// bypasses any HTTP proxy of the environment and does not follow redirects.
	Client *http.Client
	// OnResult, when set, is called once per PeerResult before Forward returns, from the
	// goroutine that called Forward, with the result's Peer and whether it succeeded (to count
	// failures, say). Zero means nothing is called.
	OnResult func(peer string, ok bool)
}

// Validate reports a value of c that Forward cannot work with, naming the field and the fix.
func (c PeersConfig) Validate() error {
	switch {
	case strings.TrimSpace(c.Name) == "":
		return badField("PeersConfig", "Name", "", "is empty", "give the DNS name of the headless Service of the replicas", "fedicache-peers")
	case strings.Contains(c.Name, ",") && staticPeers(c.Name) == nil:
		return badField("PeersConfig", "Name", c.Name, "is neither a DNS name nor a list of addresses", "give a DNS name, or the replicas' IP addresses separated by commas", "10.0.0.5,10.0.0.6")
	case c.Port < 0 || c.Port > 65535:
		return badField("PeersConfig", "Port", strconv.Itoa(c.Port), "is not a TCP port", "give the admin port, 1-65535 (zero means 9090)", "")
	case c.Timeout < 0:
		return badField("PeersConfig", "Timeout", c.Timeout.String(), "is negative", "give a duration (zero means 2s)", "2s")
	case c.Attempts < 0:
		return badField("PeersConfig", "Attempts", strconv.Itoa(c.Attempts), "is negative", "give 1 or more (zero means 3)", "")
	}
	return nil
}

func (c PeersConfig) withDefaults() PeersConfig {
	if c.Port == 0 {
		c.Port = 9090
	}
	if c.Timeout <= 0 {
		c.Timeout = 2 * time.Second
	}
	if c.Attempts <= 0 {
		c.Attempts = 3
	}
	if c.Lookup == nil {
		if ips := staticPeers(c.Name); ips != nil {
			c.Lookup = func(context.Context, string) ([]net.IP, error) { return slices.Clone(ips), nil }
		} else {
			c.Lookup = func(ctx context.Context, host string) ([]net.IP, error) {
				return net.DefaultResolver.LookupIP(ctx, "ip", host)
			}
		}
	}
	if c.Self == nil {
		c.Self = interfaceIPs
	}
	if c.Client == nil {
		c.Client = newPeerClient(c.Timeout, c.Timeout, c.Timeout, 4)
	}
	return c
}

// newPeerClient returns a client of requests to the peers: the dial bounded by dial, the
// answer's headers by headers, the whole request by overall (0: not at all, for bodies that may
// take minutes), idlePerPeer connections kept to each peer, the environment's HTTP proxy never
// used (peers are pod addresses), no transparent gzip, and a redirect an answer of its own
// rather than a request elsewhere.
func newPeerClient(dial, headers, overall time.Duration, idlePerPeer int) *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			DialContext:           (&net.Dialer{Timeout: dial, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConnsPerHost:   idlePerPeer,
			IdleConnTimeout:       90 * time.Second,
			ResponseHeaderTimeout: headers,
			DisableCompression:    true,
		},
		Timeout:       overall,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// staticPeers returns the addresses name lists, separated by commas, or nil when it is not
// such a list (a DNS name).
func staticPeers(name string) []net.IP {
	var ips []net.IP
	for item := range strings.SplitSeq(name, ",") {
		ip := net.ParseIP(strings.TrimSpace(item))
		if ip == nil {
			return nil
		}
		ips = append(ips, ip)
	}
	return ips
}

// interfaceIPs returns the addresses of the host's interfaces.
func interfaceIPs() ([]net.IP, error) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil, fmt.Errorf("peers: list own addresses: %w", err)
	}
	ips := make([]net.IP, 0, len(addrs))
	for _, a := range addrs {
		switch a := a.(type) {
		case *net.IPNet:
			ips = append(ips, a.IP)
		case *net.IPAddr:
			ips = append(ips, a.IP)
		}
	}
	return ips, nil
}

// PeerResult is the outcome of forwarding one request to one peer.
type PeerResult struct {
	// Peer is the peer's address and port, e.g. "10.42.0.17:9090" or "[fd00::17]:9090"; the
	// configured Name when the peers could not be listed at all.
	Peer string `json:"peer"`
	// Status is the HTTP status of the last answer, zero when there was none.
	Status int `json:"status,omitempty"`
	// Err says why the peer failed; empty when it answered 2xx.
	Err string `json:"error,omitempty"`
	// Attempts is how many requests were sent to the peer.
	Attempts int `json:"attempts"`
}

// OK reports whether the peer took the request (answered 2xx).
func (r PeerResult) OK() bool { return r.Err == "" }

// Peers forwards admin requests from this replica to the other replicas. Its methods are safe
// for concurrent use.
type Peers struct {
	cfg PeersConfig
	err error // a configuration error that every Forward reports
}

// NewPeers returns the forwarder cfg describes. A cfg that Validate rejects gives a Peers whose
// every Forward returns that error as its one result.
func NewPeers(cfg PeersConfig) *Peers {
	return &Peers{cfg: cfg.withDefaults(), err: cfg.Validate()}
}

// Forward POSTs path (with its query, e.g. "/purge?key=K") to every replica but this one, all at
// once, with the admin token and ForwardedHeader, and returns one result per peer, sorted by
// address. Name is resolved on every call; a failure to resolve it (or a bad configuration or
// path) gives one result that carries the error. A peer that does not answer within Timeout or
// answers 5xx is tried again, up to Attempts times in all; one that answers 4xx is not.
//
// Forward returns within about Timeout (the lookup) + Attempts*Timeout + the backoffs, sooner
// when ctx ends. A purge should reach the peers even when its own client hangs up, so callers
// pass a ctx detached from the request's cancellation (context.WithoutCancel). When this
// replica's own addresses cannot be listed, none are dropped: forwarding to itself is harmless,
// because a request that carries ForwardedHeader is never forwarded again.
//
// Forward on a nil *Peers returns nil: forwarding is off.
func (p *Peers) Forward(ctx context.Context, path string) []PeerResult {
	if p == nil {
		return nil
	}
	results := p.forward(ctx, path)
	if p.cfg.OnResult != nil {
		for _, r := range results {
			p.cfg.OnResult(r.Peer, r.OK())
		}
	}
	return results
}

// CloseIdleConnections closes the idle keep-alive connections to the peers, at shutdown say.
func (p *Peers) CloseIdleConnections() {
	if p != nil {
		p.cfg.Client.CloseIdleConnections()
	}
}

func (p *Peers) forward(ctx context.Context, path string) []PeerResult {
	fail := func(err error) []PeerResult {
		return []PeerResult{{Peer: p.cfg.Name, Err: err.Error()}}
	}
	if p.err != nil {
		return fail(p.err)
	}
	target, err := url.ParseRequestURI(path)
	if err != nil || !strings.HasPrefix(path, "/") || target.Host != "" {
		return fail(fmt.Errorf("peers: forward %q: want an absolute path with its query, e.g. /purge?key=K", path))
	}
	addrs, err := p.peers(ctx)
	if err != nil {
		return fail(err)
	}
	results := make([]PeerResult, len(addrs))
	var wg sync.WaitGroup
	for i, a := range addrs {
		wg.Go(func() { results[i] = p.send(ctx, a, target) })
	}
	wg.Wait()
	return results
}

// peers resolves Name and returns the addresses of the other replicas, without duplicates and
// sorted.
func (p *Peers) peers(ctx context.Context) ([]netip.AddrPort, error) {
	lctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
	defer cancel()
	ips, err := p.cfg.Lookup(lctx, p.cfg.Name)
	if err != nil {
		return nil, fmt.Errorf("peers: lookup %s: %w", p.cfg.Name, err)
	}
	self := map[netip.Addr]bool{}
	if own, err := p.cfg.Self(); err == nil {
		for _, ip := range own {
			if a, ok := netip.AddrFromSlice(ip); ok {
				self[a.Unmap()] = true
			}
		}
	}
	seen := make(map[netip.Addr]bool, len(ips))
	addrs := make([]netip.AddrPort, 0, len(ips))
	for _, ip := range ips {
		a, ok := netip.AddrFromSlice(ip)
		if !ok {
			continue
		}
		a = a.Unmap()
		if self[a] || seen[a] {
			continue
		}
		seen[a] = true
		addrs = append(addrs, netip.AddrPortFrom(a, uint16(p.cfg.Port)))
	}
	slices.SortFunc(addrs, func(x, y netip.AddrPort) int { return x.Addr().Compare(y.Addr()) })
	return addrs, nil
}

// send POSTs target to peer, trying again after a network error or a 5xx while attempts remain
// and ctx lasts.
func (p *Peers) send(ctx context.Context, peer netip.AddrPort, target *url.URL) PeerResult {
	u := *target
	u.Scheme, u.Host = "http", peer.String()
	res := PeerResult{Peer: peer.String()}
	r := retry{attempts: p.cfg.Attempts, base: peerBackoffBase, max: peerBackoffMax}
	out := r.do(ctx, func(int) try {
		status, err := p.attempt(ctx, &u)
		res.Status = status
		return try{err: err, again: status == 0 || status >= 500, after: -1}
	})
	res.Attempts = out.attempts
	if out.err != nil {
		res.Err = fmt.Sprintf("peers: POST %s to %s: %v", target.RequestURI(), res.Peer, out.err)
		if out.stopped != nil {
			res.Err += fmt.Sprintf(" (gave up after attempt %d: %v)", out.attempts, out.stopped)
		}
	}
	return res
}

// attempt sends one POST to u within Timeout. It returns the status of the answer, if any, and
// an error unless the status is 2xx.
func (p *Peers) attempt(ctx context.Context, u *url.URL) (int, error) {
	actx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(actx, http.MethodPost, u.String(), nil)
	if err != nil {
		return 0, err
	}
	if p.cfg.Token != "" {
		req.Header.Set("Authorization", "Bearer "+p.cfg.Token)
	}
	req.Header.Set(ForwardedHeader, "1")
	req.Header.Set("User-Agent", "fedicache-peers")
	// A purge can be repeated safely: this lets the transport resend it on a keep-alive
	// connection the peer had closed, without sending the header.
	req.Header["Idempotency-Key"] = nil
	resp, err := p.cfg.Client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			err = fmt.Errorf("no answer within %v", p.cfg.Timeout)
		}
		return 0, err
	}
	defer func() {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, peerDrainBodyBytes))
		_ = resp.Body.Close()
	}()
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return resp.StatusCode, nil
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, peerErrBodyBytes))
	msg := "status " + strconv.Itoa(resp.StatusCode)
	if b := strings.Join(strings.Fields(strings.ToValidUTF8(string(body), "")), " "); b != "" {
		msg += ": " + b
	}
	return resp.StatusCode, errors.New(msg)
}
