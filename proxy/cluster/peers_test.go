package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fedicache/fedicache/origin/origintest"
	"github.com/fedicache/fedicache/proxy/cluster"
)

const (
	peersName  = "fedicache-peers.mastodon.svc.cluster.local"
	peersToken = "peer-token"
	// peersPath carries escapes that must reach the peers exactly as written.
	peersPath = "/purge?key=media_attachments/files/000/000/001/original/a%2Bb%20c.jpg"
)

// peerRequest is what a fake peer saw of one request.
type peerRequest struct {
	method, uri, host, auth, forwarded string
}

// fakePeer is one replica's admin listener. It records every request and answers with answer,
// which gets the request's 1-based number; nil answers 200.
type fakePeer struct {
	answer func(n int, w http.ResponseWriter, r *http.Request)

	mu   sync.Mutex
	seen []peerRequest
}

func (f *fakePeer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.seen = append(f.seen, peerRequest{
		method: r.Method, uri: r.RequestURI, host: r.Host,
		auth: r.Header.Get("Authorization"), forwarded: r.Header.Get(cluster.ForwardedHeader),
	})
	n := len(f.seen)
	f.mu.Unlock()
	if f.answer != nil {
		f.answer(n, w, r)
		return
	}
	_, _ = w.Write([]byte(`{"purged":1}`))
}

func (f *fakePeer) requests() []peerRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.seen)
}

// loopback returns 127.0.0.i, in the 16-byte form a resolver gives.
func loopback(i int) net.IP { return net.IPv4(127, 0, 0, byte(i)) }

// peerAddr is the Peer of a result for 127.0.0.i.
func peerAddr(i, port int) string { return net.JoinHostPort(loopback(i).String(), strconv.Itoa(port)) }

// startPeers serves peers[i] on 127.0.0.(i+1), all on one port, as the replicas behind a
// headless Service share one port, and returns that port. Linux routes all of 127.0.0.0/8 to
// the loopback; where that fails the test is skipped.
func startPeers(t *testing.T, peers ...*fakePeer) int {
	t.Helper()
	for range 10 {
		first, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("listen on 127.0.0.1: %v", err)
		}
		port := first.Addr().(*net.TCPAddr).Port
		ls := []net.Listener{first}
		for i := 2; i <= len(peers) && ls != nil; i++ {
			l, err := net.Listen("tcp", peerAddr(i, port))
			if err != nil {
				for _, l := range ls {
					_ = l.Close()
				}
				if !errors.Is(err, syscall.EADDRINUSE) {
					t.Skipf("cannot listen on %s (needs 127.0.0.0/8 on the loopback): %v", peerAddr(i, port), err)
				}
				ls = nil // the port is taken there: try another
				break
			}
			ls = append(ls, l)
		}
		if ls == nil {
			continue
		}
		for i, l := range ls {
			srv := httptest.NewUnstartedServer(peers[i])
			_ = srv.Listener.Close()
			srv.Listener = l
			srv.Start()
			t.Cleanup(srv.Close)
		}
		return port
	}
	t.Fatal("found no port free on every loopback address")
	return 0
}

// resultLog records the calls of PeersConfig.OnResult.
type resultLog struct {
	mu  sync.Mutex
	got map[string][]bool
}

func (l *resultLog) record(peer string, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.got == nil {
		l.got = map[string][]bool{}
	}
	l.got[peer] = append(l.got[peer], ok)
}

func (l *resultLog) calls() map[string][]bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.got
}

// newTestPeers returns the forwarder of cfg with the test's defaults filled in: the test name
// and token, a lookup that answers ips, and an own address no peer has.
func newTestPeers(t *testing.T, cfg cluster.PeersConfig, ips ...net.IP) *cluster.Peers {
	t.Helper()
	if cfg.Name == "" {
		cfg.Name = peersName
	}
	if cfg.Token == "" {
		cfg.Token = peersToken
	}
	if cfg.Lookup == nil {
		cfg.Lookup = func(ctx context.Context, host string) ([]net.IP, error) {
			if host != peersName {
				return nil, fmt.Errorf("lookup of %q, want %q", host, peersName)
			}
			return ips, nil
		}
	}
	if cfg.Self == nil {
		cfg.Self = func() ([]net.IP, error) { return []net.IP{net.ParseIP("10.255.255.1")}, nil }
	}
	p := cluster.NewPeers(cfg)
	t.Cleanup(p.CloseIdleConnections)
	return p
}

// checkResult compares one result with want, ignoring Err but for whether it is empty and
// whether it holds wantErr.
func checkResult(t *testing.T, got, want cluster.PeerResult, wantErr string) {
	t.Helper()
	if got.Peer != want.Peer || got.Status != want.Status || got.Attempts != want.Attempts {
		t.Errorf("result %+v, want peer %s, status %d, attempts %d", got, want.Peer, want.Status, want.Attempts)
	}
	switch {
	case wantErr == "" && got.Err != "":
		t.Errorf("%s: error %q, want none", got.Peer, got.Err)
	case wantErr != "" && !strings.Contains(got.Err, wantErr):
		t.Errorf("%s: error %q, want one with %q", got.Peer, got.Err, wantErr)
	}
	if got.OK() != (wantErr == "") {
		t.Errorf("%s: OK() = %v with error %q", got.Peer, got.OK(), got.Err)
	}
}

func TestPeersForwardReachesEveryPeerInParallel(t *testing.T) {
	origintest.CheckLeaks(t)
	// Each peer holds its answer until all three have the request: forwarding one at a time
	// would never get past the first.
	arrived := make(chan struct{}, 4)
	release := make(chan struct{})
	releaseAll := sync.OnceFunc(func() { close(release) })
	defer releaseAll()
	hold := func(_ int, w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		select {
		case <-release:
			_, _ = w.Write([]byte(`{"purged":1}`))
		case <-r.Context().Done():
		}
	}
	peers := []*fakePeer{{answer: hold}, {answer: hold}, {answer: hold}, {answer: hold}}
	port := startPeers(t, peers...)
	var log resultLog
	p := newTestPeers(t, cluster.PeersConfig{
		Port:     port,
		Timeout:  10 * time.Second,
		Attempts: 1,
		// 127.0.0.3 is this replica, given in the 16-byte form next to an address no peer has.
		Self:     func() ([]net.IP, error) { return []net.IP{loopback(3), net.ParseIP("10.255.255.1")}, nil },
		OnResult: log.record,
	}, loopback(4), loopback(1), loopback(3), loopback(2), loopback(4).To4())

	done := make(chan []cluster.PeerResult, 1)
	go func() { done <- p.Forward(context.Background(), peersPath) }()
	for i := range 3 {
		select {
		case <-arrived:
		case <-time.After(5 * time.Second):
			t.Fatalf("%d of 3 peers had the request after 5s: they are not asked in parallel", i)
		}
	}
	releaseAll()
	results := <-done

	want := []string{peerAddr(1, port), peerAddr(2, port), peerAddr(4, port)}
	if len(results) != len(want) {
		t.Fatalf("%d results %+v, want one each for %v", len(results), results, want)
	}
	for i, r := range results {
		checkResult(t, r, cluster.PeerResult{Peer: want[i], Status: http.StatusOK, Attempts: 1}, "")
	}
	for i, f := range peers {
		reqs := f.requests()
		if i == 2 {
			if len(reqs) != 0 {
				t.Errorf("this replica (127.0.0.3) was sent %d requests, want none", len(reqs))
			}
			continue
		}
		wantReq := peerRequest{method: http.MethodPost, uri: peersPath, host: peerAddr(i+1, port),
			auth: "Bearer " + peersToken, forwarded: "1"}
		if len(reqs) != 1 || reqs[0] != wantReq {
			t.Errorf("127.0.0.%d saw %+v, want once %+v", i+1, reqs, wantReq)
		}
	}
	calls := log.calls()
	if len(calls) != len(want) {
		t.Errorf("OnResult calls %v, want one each for %v", calls, want)
	}
	for _, peer := range want {
		if !slices.Equal(calls[peer], []bool{true}) {
			t.Errorf("OnResult for %s: %v, want [true]", peer, calls[peer])
		}
	}
}

func TestPeersForwardBoundedWhenPeersAreDown(t *testing.T) {
	origintest.CheckLeaks(t)
	release := make(chan struct{})
	defer close(release)
	hang := func(_ int, _ http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}
	up, hung := &fakePeer{}, &fakePeer{answer: hang}
	port := startPeers(t, up, hung)
	const timeout, attempts = 200 * time.Millisecond, 3
	var log resultLog
	p := newTestPeers(t, cluster.PeersConfig{Port: port, Timeout: timeout, Attempts: attempts, OnResult: log.record},
		loopback(1), loopback(2), loopback(200)) // nothing listens on 127.0.0.200

	start := time.Now()
	results := p.Forward(context.Background(), peersPath)
	took := time.Since(start)

	if took > 10*time.Second {
		t.Errorf("Forward took %v with Timeout %v and %d attempts", took, timeout, attempts)
	}
	if took < attempts*timeout {
		t.Errorf("Forward took %v, less than %d attempts on a peer that never answers (%v each)", took, attempts, timeout)
	}
	if len(results) != 3 {
		t.Fatalf("results %+v, want 3", results)
	}
	checkResult(t, results[0], cluster.PeerResult{Peer: peerAddr(1, port), Status: http.StatusOK, Attempts: 1}, "")
	checkResult(t, results[1], cluster.PeerResult{Peer: peerAddr(2, port), Attempts: attempts}, "no answer within 200ms")
	checkResult(t, results[2], cluster.PeerResult{Peer: peerAddr(200, port), Attempts: attempts}, "peers: POST "+peersPath)
	if n := len(up.requests()); n != 1 {
		t.Errorf("the peer that is up saw %d requests, want 1", n)
	}
	calls := log.calls()
	for peer, want := range map[string]bool{peerAddr(1, port): true, peerAddr(2, port): false, peerAddr(200, port): false} {
		if !slices.Equal(calls[peer], []bool{want}) {
			t.Errorf("OnResult for %s: %v, want [%v]", peer, calls[peer], want)
		}
	}
}

func TestPeersForwardRetries5xxButNot4xx(t *testing.T) {
	origintest.CheckLeaks(t)
	flaky := &fakePeer{answer: func(n int, w http.ResponseWriter, _ *http.Request) {
		if n <= 2 {
			http.Error(w, "bucket hiccup", http.StatusInternalServerError)
			return
		}
		_, _ = w.Write([]byte(`{"purged":1}`))
	}}
	refusing := &fakePeer{answer: func(_ int, w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "wrong token", http.StatusForbidden)
	}}
	broken := &fakePeer{answer: func(_ int, w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
	}}
	port := startPeers(t, flaky, refusing, broken)
	p := newTestPeers(t, cluster.PeersConfig{Port: port}, loopback(1), loopback(2), loopback(3))

	results := p.Forward(context.Background(), peersPath)
	if len(results) != 3 {
		t.Fatalf("results %+v, want 3", results)
	}
	checkResult(t, results[0], cluster.PeerResult{Peer: peerAddr(1, port), Status: http.StatusOK, Attempts: 3}, "")
	checkResult(t, results[1], cluster.PeerResult{Peer: peerAddr(2, port), Status: http.StatusForbidden, Attempts: 1}, "status 403: wrong token")
	checkResult(t, results[2], cluster.PeerResult{Peer: peerAddr(3, port), Status: http.StatusServiceUnavailable, Attempts: 3}, "status 503: shutting down")
	for _, c := range []struct {
		name string
		f    *fakePeer
		want int
	}{{"500, 500, 200", flaky, 3}, {"403", refusing, 1}, {"503", broken, 3}} {
		if n := len(c.f.requests()); n != c.want {
			t.Errorf("the peer answering %s saw %d requests, want %d", c.name, n, c.want)
		}
	}
}

func TestPeersForwardLookup(t *testing.T) {
	origintest.CheckLeaks(t)
	t.Run("error", func(t *testing.T) {
		var log resultLog
		var hadDeadline bool
		p := newTestPeers(t, cluster.PeersConfig{
			OnResult: log.record,
			Lookup: func(ctx context.Context, host string) ([]net.IP, error) {
				_, hadDeadline = ctx.Deadline()
				return nil, &net.DNSError{Err: "server misbehaving", Name: host, IsTemporary: true}
			},
		})
		results := p.Forward(context.Background(), peersPath)
		if len(results) != 1 {
			t.Fatalf("results %+v, want 1", results)
		}
		checkResult(t, results[0], cluster.PeerResult{Peer: peersName}, "peers: lookup "+peersName+": ")
		if !strings.Contains(results[0].Err, "server misbehaving") {
			t.Errorf("error %q does not say what the resolver said", results[0].Err)
		}
		if !hadDeadline {
			t.Error("the lookup had no deadline")
		}
		if calls := log.calls(); len(calls) != 1 || !slices.Equal(calls[peersName], []bool{false}) {
			t.Errorf("OnResult calls %v, want one failure for %s", calls, peersName)
		}
	})
	t.Run("only self", func(t *testing.T) {
		var log resultLog
		p := newTestPeers(t, cluster.PeersConfig{
			OnResult: log.record,
			Self:     func() ([]net.IP, error) { return []net.IP{loopback(7)}, nil },
		}, loopback(7))
		if results := p.Forward(context.Background(), peersPath); len(results) != 0 {
			t.Errorf("results %+v, want none: this replica is the only one", results)
		}
		if calls := log.calls(); len(calls) != 0 {
			t.Errorf("OnResult calls %v, want none", calls)
		}
	})
}

func TestPeersForwardIPv6(t *testing.T) {
	origintest.CheckLeaks(t)
	l, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	peer := &fakePeer{}
	srv := httptest.NewUnstartedServer(peer)
	_ = srv.Listener.Close()
	srv.Listener = l
	srv.Start()
	t.Cleanup(srv.Close)
	port := l.Addr().(*net.TCPAddr).Port
	p := newTestPeers(t, cluster.PeersConfig{Port: port}, net.ParseIP("::1"))

	results := p.Forward(context.Background(), peersPath)
	want := "[::1]:" + strconv.Itoa(port)
	if len(results) != 1 {
		t.Fatalf("results %+v, want 1", results)
	}
	checkResult(t, results[0], cluster.PeerResult{Peer: want, Status: http.StatusOK, Attempts: 1}, "")
	if reqs := peer.requests(); len(reqs) != 1 || reqs[0].host != want || reqs[0].uri != peersPath {
		t.Errorf("the peer saw %+v, want one request for %s at %s", reqs, peersPath, want)
	}
}

func TestPeersDefaultSelfIsTheInterfaces(t *testing.T) {
	origintest.CheckLeaks(t)
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Skipf("cannot list the interfaces: %v", err)
	}
	if !slices.ContainsFunc(addrs, func(a net.Addr) bool {
		n, ok := a.(*net.IPNet)
		return ok && n.IP.Equal(loopback(1))
	}) {
		t.Skip("127.0.0.1 is not an interface address here")
	}
	own, other := &fakePeer{}, &fakePeer{}
	port := startPeers(t, own, other)
	p := cluster.NewPeers(cluster.PeersConfig{
		Name: peersName, Port: port, Token: peersToken,
		Lookup: func(context.Context, string) ([]net.IP, error) { return []net.IP{loopback(1), loopback(2)}, nil },
	})
	t.Cleanup(p.CloseIdleConnections)

	results := p.Forward(context.Background(), peersPath)
	if len(results) != 1 {
		t.Fatalf("results %+v, want only 127.0.0.2: 127.0.0.1 is this host's", results)
	}
	checkResult(t, results[0], cluster.PeerResult{Peer: peerAddr(2, port), Status: http.StatusOK, Attempts: 1}, "")
	if n := len(own.requests()); n != 0 {
		t.Errorf("this host's address saw %d requests, want none", n)
	}
}

func TestPeersCanceledContextGivesUp(t *testing.T) {
	origintest.CheckLeaks(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	p := newTestPeers(t, cluster.PeersConfig{Port: 9, Timeout: time.Minute, Attempts: 5}, loopback(200))
	results := p.Forward(ctx, peersPath)
	if len(results) != 1 {
		t.Fatalf("results %+v, want 1", results)
	}
	checkResult(t, results[0], cluster.PeerResult{Peer: peerAddr(200, 9), Attempts: 1}, context.Canceled.Error())
}

func TestPeersConfigErrors(t *testing.T) {
	if err := (cluster.PeersConfig{Name: peersName}).Validate(); err != nil {
		t.Errorf("a config with only Name: %v, want it valid", err)
	}
	for _, c := range []struct {
		cfg  cluster.PeersConfig
		want string
	}{
		{cluster.PeersConfig{}, "Name is empty"},
		{cluster.PeersConfig{Name: " "}, "Name is empty"},
		{cluster.PeersConfig{Name: peersName, Port: -1}, "Port -1"},
		{cluster.PeersConfig{Name: peersName, Port: 65536}, "Port 65536"},
		{cluster.PeersConfig{Name: peersName, Timeout: -time.Second}, "Timeout -1s"},
		{cluster.PeersConfig{Name: peersName, Attempts: -1}, "Attempts -1"},
	} {
		err := c.cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Validate(%+v) = %v, want an error with %q", c.cfg, err, c.want)
			continue
		}
		var log resultLog
		c.cfg.OnResult = log.record
		results := cluster.NewPeers(c.cfg).Forward(context.Background(), peersPath)
		if len(results) != 1 || results[0].Err != err.Error() || results[0].OK() {
			t.Errorf("Forward with %+v = %+v, want one result with %q", c.cfg, results, err)
		}
		if calls := log.calls(); len(calls[c.cfg.Name]) != 1 {
			t.Errorf("OnResult calls %v, want one failure", calls)
		}
	}

	lookups := 0
	p := newTestPeers(t, cluster.PeersConfig{Lookup: func(context.Context, string) ([]net.IP, error) {
		lookups++
		return []net.IP{loopback(200)}, nil
	}})
	for _, path := range []string{"", "purge?key=a", "http://elsewhere/purge?key=a"} {
		results := p.Forward(context.Background(), path)
		if len(results) != 1 || !strings.Contains(results[0].Err, "want an absolute path") {
			t.Errorf("Forward(%q) = %+v, want one result refusing the path", path, results)
		}
	}
	if lookups != 0 {
		t.Errorf("%d lookups for paths that were refused, want none", lookups)
	}

	var off *cluster.Peers
	if results := off.Forward(context.Background(), peersPath); results != nil {
		t.Errorf("Forward on a nil *Peers = %+v, want nil", results)
	}
	off.CloseIdleConnections()
}
