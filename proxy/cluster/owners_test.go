package cluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fedicache/fedicache/origin/fielderr"
	"github.com/fedicache/fedicache/origin/origintest"
)

const ownersName = "fedicache-peers.mastodon.svc.cluster.local"

// ownersKeys returns n keys shaped as the media keys are.
func ownersKeys(n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("media_attachments/files/%03d/%03d/%03d/original/%016x.jpg", i/1000000, i/1000%1000, i%1000, i*7919)
	}
	return keys
}

// ownersIP returns 10.0.0.i.
func ownersIP(i int) net.IP { return net.IPv4(10, 0, 0, byte(i)) }

// ownersMember is the member of 10.0.0.i on the default port.
func ownersMember(i int) string { return fmt.Sprintf("10.0.0.%d:9090", i) }

// ownersDNS is a fake resolver whose answer the test sets. It counts the lookups.
type ownersDNS struct {
	mu    sync.Mutex
	ips   []net.IP
	err   error
	calls int
}

func (d *ownersDNS) set(err error, ips ...net.IP) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.ips, d.err = ips, err
}

func (d *ownersDNS) lookup(ctx context.Context, host string) ([]net.IP, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.calls++
	if host != ownersName {
		return nil, fmt.Errorf("lookup of %q, want %q", host, ownersName)
	}
	if _, ok := ctx.Deadline(); !ok {
		return nil, errors.New("the lookup has no deadline")
	}
	return slices.Clone(d.ips), d.err
}

// ownersSelf returns a Self that lists ips.
func ownersSelf(ips ...net.IP) func() ([]net.IP, error) {
	return func() ([]net.IP, error) { return ips, nil }
}

// newTestOwners returns Owners over dns, with cfg's other fields, refreshed once.
func newTestOwners(t testing.TB, dns *ownersDNS, cfg OwnersConfig) *Owners {
	t.Helper()
	cfg.Peers.Name = ownersName
	cfg.Peers.Lookup = dns.lookup
	if cfg.Peers.Self == nil {
		cfg.Peers.Self = ownersSelf()
	}
	o, err := NewOwners(cfg)
	if err != nil {
		t.Fatalf("NewOwners: %v", err)
	}
	if err := o.Refresh(context.Background()); err != nil {
		t.Fatalf("Refresh: %v", err)
	}
	return o
}

// ownersOf returns the owner of every key.
func ownersOf(o *Owners, keys []string) []string {
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i], _ = o.Owner(k)
	}
	return out
}

func TestOwnersEveryKeyHasOneOwner(t *testing.T) {
	dns := &ownersDNS{}
	// The answer comes unsorted, with a duplicate and an IPv4-mapped form.
	dns.set(nil, ownersIP(3), ownersIP(1), ownersIP(2), ownersIP(1).To4())
	var replicas []*Owners
	for i := 1; i <= 3; i++ {
		o := newTestOwners(t, dns, OwnersConfig{Peers: PeersConfig{Self: ownersSelf(net.ParseIP("127.0.0.1"), ownersIP(i))}})
		if got := o.Self(); got != ownersMember(i) {
			t.Fatalf("replica %d: Self() = %q, want %q", i, got, ownersMember(i))
		}
		if got := o.Share(); got != 1.0/3 {
			t.Errorf("replica %d: Share() = %v, want 1/3", i, got)
		}
		replicas = append(replicas, o)
	}
	want := []string{ownersMember(1), ownersMember(2), ownersMember(3)}
	if got := replicas[0].Members(); !slices.Equal(got, want) {
		t.Fatalf("Members() = %q, want %q", got, want)
	}

	keys := ownersKeys(10000)
	owned := map[string]int{}
	for _, k := range keys {
		peer, self := replicas[0].Owner(k)
		selves := 0
		for i, o := range replicas {
			p, s := o.Owner(k)
			if p != peer {
				t.Fatalf("key %q: replica %d says %q owns it, replica 1 says %q", k, i+1, p, peer)
			}
			if s {
				selves++
				if o.Self() != p {
					t.Fatalf("key %q: replica %d (%s) says it owns it, the owner is %s", k, i+1, o.Self(), p)
				}
			}
		}
		if selves != 1 {
			t.Fatalf("key %q: %d replicas say they own it, want 1 (first says %q, %v)", k, selves, peer, self)
		}
		owned[peer]++
	}
	for _, m := range want {
		if share := float64(owned[m]) / float64(len(keys)); share < 0.28 || share > 0.39 {
			t.Errorf("%s owns %.3f of the keys, want 0.28-0.39 (all: %v)", m, share, owned)
		}
	}
}

func TestOwnersMembersComeAndGo(t *testing.T) {
	keys := ownersKeys(10000)
	for _, tc := range []struct {
		name        string
		before      []int // the members, as 10.0.0.i
		after       []int
		joined      int // the member that joined, or 0
		left        int // the member that left, or 0
		movedAbout  float64
		movedMargin float64
	}{
		{name: "join 4th", before: []int{1, 2, 3}, after: []int{1, 2, 3, 4}, joined: 4, movedAbout: 1.0 / 4, movedMargin: 0.05},
		{name: "join 7th", before: []int{1, 2, 3, 4, 5, 6}, after: []int{1, 2, 3, 4, 5, 6, 7}, joined: 7, movedAbout: 1.0 / 7, movedMargin: 0.04},
		{name: "join 2nd", before: []int{5}, after: []int{1, 5}, joined: 1, movedAbout: 1.0 / 2, movedMargin: 0.05},
		{name: "leave of 4", before: []int{1, 2, 3, 4}, after: []int{1, 3, 4}, left: 2, movedAbout: 1.0 / 4, movedMargin: 0.05},
		{name: "leave of 7", before: []int{1, 2, 3, 4, 5, 6, 7}, after: []int{1, 2, 3, 4, 5, 6}, left: 7, movedAbout: 1.0 / 7, movedMargin: 0.04},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ips := func(idx []int) []net.IP {
				var out []net.IP
				for _, i := range idx {
					out = append(out, ownersIP(i))
				}
				return out
			}
			dns := &ownersDNS{}
			dns.set(nil, ips(tc.before)...)
			o := newTestOwners(t, dns, OwnersConfig{})
			before := ownersOf(o, keys)
			dns.set(nil, ips(tc.after)...)
			if err := o.Refresh(context.Background()); err != nil {
				t.Fatalf("Refresh: %v", err)
			}
			if got := len(o.Members()); got != len(tc.after) {
				t.Fatalf("Members() = %q, want %d", o.Members(), len(tc.after))
			}
			after := ownersOf(o, keys)
			moved := 0
			for i, k := range keys {
				if before[i] == after[i] {
					if tc.left != 0 && before[i] == ownersMember(tc.left) {
						t.Fatalf("key %q stayed with %s, which left", k, before[i])
					}
					continue
				}
				moved++
				if tc.joined != 0 && after[i] != ownersMember(tc.joined) {
					t.Fatalf("key %q moved from %s to %s, want only moves to %s, which joined", k, before[i], after[i], ownersMember(tc.joined))
				}
				if tc.left != 0 && before[i] != ownersMember(tc.left) {
					t.Fatalf("key %q moved from %s to %s, want only moves from %s, which left", k, before[i], after[i], ownersMember(tc.left))
				}
			}
			if share := float64(moved) / float64(len(keys)); share < tc.movedAbout-tc.movedMargin || share > tc.movedAbout+tc.movedMargin {
				t.Errorf("%.3f of the keys moved, want %.3f±%.2f", share, tc.movedAbout, tc.movedMargin)
			}
		})
	}
}

func TestOwnersRefreshKeepsMembersOnFailure(t *testing.T) {
	dns := &ownersDNS{}
	dns.set(nil, ownersIP(1), ownersIP(2))
	o := newTestOwners(t, dns, OwnersConfig{Peers: PeersConfig{Self: ownersSelf(ownersIP(1))}})
	two := []string{ownersMember(1), ownersMember(2)}
	if err := o.LastError(); err != nil {
		t.Fatalf("LastError() = %v after a good Refresh", err)
	}
	dnsErr := &net.DNSError{Err: "server misbehaving", Name: ownersName, IsTemporary: true}
	for _, tc := range []struct {
		name string
		err  error
		ips  []net.IP
		want string // in the error
	}{
		{"lookup error", dnsErr, nil, "server misbehaving"},
		{"empty answer", nil, nil, "no addresses"},
		{"no valid address", nil, []net.IP{{1, 2, 3}}, "no addresses"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dns.set(tc.err, tc.ips...)
			err := o.Refresh(context.Background())
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), ownersName) {
				t.Errorf("Refresh() = %v, want an error naming %s with %q", err, ownersName, tc.want)
			}
			if tc.err != nil && !errors.Is(err, tc.err) {
				t.Errorf("Refresh() = %v, does not wrap %v", err, tc.err)
			}
			if last := o.LastError(); last != err {
				t.Errorf("LastError() = %v, want %v", last, err)
			}
			if got := o.Members(); !slices.Equal(got, two) {
				t.Errorf("Members() = %q, want the ones from before, %q", got, two)
			}
			if o.Self() != ownersMember(1) || o.Share() != 0.5 {
				t.Errorf("Self() = %q, Share() = %v, want %s and 0.5 as before", o.Self(), o.Share(), ownersMember(1))
			}
		})
	}

	dns.set(nil, ownersIP(3), ownersIP(2))
	if err := o.Refresh(context.Background()); err != nil {
		t.Fatalf("Refresh() = %v after a good answer", err)
	}
	if err := o.LastError(); err != nil {
		t.Errorf("LastError() = %v after a good answer, want nil", err)
	}
	if got, want := o.Members(), []string{ownersMember(2), ownersMember(3)}; !slices.Equal(got, want) {
		t.Errorf("Members() = %q, want %q", got, want)
	}
	if o.Self() != "" || o.Share() != 0 {
		t.Errorf("Self() = %q, Share() = %v, want \"\" and 0: 10.0.0.1 left", o.Self(), o.Share())
	}
}

func TestOwnersSelf(t *testing.T) {
	v6a, v6b := net.ParseIP("fd00::17"), net.ParseIP("fd00::18")
	selfErr := errors.New("no interfaces")
	for _, tc := range []struct {
		name    string
		port    int
		answer  []net.IP
		self    func() ([]net.IP, error)
		members []string
		want    string   // Self()
		selves  []string // the members Owner says self for
		share   float64
		err     error // of Refresh
	}{
		{
			name: "IPv4", answer: []net.IP{ownersIP(2), ownersIP(1)}, self: ownersSelf(net.IPv4(127, 0, 0, 1), ownersIP(2)),
			members: []string{ownersMember(1), ownersMember(2)}, want: ownersMember(2), selves: []string{ownersMember(2)}, share: 0.5,
		},
		{
			name: "IPv6", port: 8080, answer: []net.IP{v6b, v6a}, self: ownersSelf(net.IPv6loopback, v6a),
			members: []string{"[fd00::17]:8080", "[fd00::18]:8080"}, want: "[fd00::17]:8080", selves: []string{"[fd00::17]:8080"}, share: 0.5,
		},
		{
			name: "mixed", answer: []net.IP{v6a, ownersIP(1), ownersIP(2)}, self: ownersSelf(v6a),
			members: []string{ownersMember(1), ownersMember(2), "[fd00::17]:9090"}, want: "[fd00::17]:9090", selves: []string{"[fd00::17]:9090"}, share: 1.0 / 3,
		},
		{
			name: "not a member", answer: []net.IP{ownersIP(1), ownersIP(2)}, self: ownersSelf(ownersIP(9)),
			members: []string{ownersMember(1), ownersMember(2)}, want: "", share: 0,
		},
		{
			name: "Self fails", answer: []net.IP{ownersIP(1), ownersIP(2)},
			self:    func() ([]net.IP, error) { return []net.IP{ownersIP(1)}, selfErr },
			members: []string{ownersMember(1), ownersMember(2)}, want: "", share: 0, err: selfErr,
		},
		{
			name: "dual stack", answer: []net.IP{ownersIP(1), ownersIP(2), v6a, v6b}, self: ownersSelf(ownersIP(1), v6a),
			members: []string{ownersMember(1), ownersMember(2), "[fd00::17]:9090", "[fd00::18]:9090"}, want: ownersMember(1), selves: []string{ownersMember(1), "[fd00::17]:9090"}, share: 0.5,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dns := &ownersDNS{}
			dns.set(nil, tc.answer...)
			o, err := NewOwners(OwnersConfig{Peers: PeersConfig{Name: ownersName, Port: tc.port, Lookup: dns.lookup, Self: tc.self}})
			if err != nil {
				t.Fatal(err)
			}
			if err := o.Refresh(context.Background()); !errors.Is(err, tc.err) || (tc.err == nil) != (err == nil) {
				t.Fatalf("Refresh() = %v, want %v", err, tc.err)
			}
			if !errors.Is(o.LastError(), tc.err) {
				t.Errorf("LastError() = %v, want %v", o.LastError(), tc.err)
			}
			if got := o.Members(); !slices.Equal(got, tc.members) {
				t.Errorf("Members() = %q, want %q", got, tc.members)
			}
			if got := o.Self(); got != tc.want {
				t.Errorf("Self() = %q, want %q", got, tc.want)
			}
			if got := o.Share(); got != tc.share {
				t.Errorf("Share() = %v, want %v", got, tc.share)
			}
			selves := map[string]bool{}
			for _, k := range ownersKeys(2000) {
				peer, self := o.Owner(k)
				if !slices.Contains(tc.members, peer) {
					t.Fatalf("Owner(%q) = %q, not a member", k, peer)
				}
				if self {
					selves[peer] = true
				}
			}
			var got []string
			for p := range selves {
				got = append(got, p)
			}
			slices.Sort(got)
			if !slices.Equal(got, tc.selves) {
				t.Errorf("Owner says self for %q, want %q", got, tc.selves)
			}
		})
	}
}

func TestOwnersNoMembersYet(t *testing.T) {
	o, err := NewOwners(OwnersConfig{Peers: PeersConfig{Name: ownersName, Lookup: (&ownersDNS{}).lookup, Self: ownersSelf(ownersIP(1))}})
	if err != nil {
		t.Fatal(err)
	}
	if peer, self := o.Owner("a"); peer != "" || !self {
		t.Errorf("Owner() = %q, %v before any Refresh, want \"\", true", peer, self)
	}
	if o.Share() != 1 || o.Members() != nil || o.Self() != "" || o.LastError() != nil {
		t.Errorf("Share %v, Members %q, Self %q, LastError %v before any Refresh, want 1, none, \"\", nil",
			o.Share(), o.Members(), o.Self(), o.LastError())
	}
	if err := o.Refresh(context.Background()); err == nil {
		t.Error("Refresh() with an empty answer = nil, want an error")
	}
	if peer, self := o.Owner("a"); peer != "" || !self || o.Share() != 1 {
		t.Errorf("Owner() = %q, %v, Share %v after an empty answer, want \"\", true, 1", peer, self, o.Share())
	}
}

func TestOwnersMembersIsACopy(t *testing.T) {
	dns := &ownersDNS{}
	dns.set(nil, ownersIP(1), ownersIP(2))
	o := newTestOwners(t, dns, OwnersConfig{})
	m := o.Members()
	m[0] = "changed"
	if got := o.Members(); got[0] != ownersMember(1) {
		t.Errorf("Members()[0] = %q after the caller changed its copy", got[0])
	}
}

func TestOwnersSnapshotKeptWhenNothingChanged(t *testing.T) {
	dns := &ownersDNS{}
	dns.set(nil, ownersIP(2), ownersIP(1))
	o := newTestOwners(t, dns, OwnersConfig{Peers: PeersConfig{Self: ownersSelf(ownersIP(1))}})
	first := o.snap.Load()
	dns.set(nil, ownersIP(1), ownersIP(2), ownersIP(2))
	if err := o.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if o.snap.Load() != first {
		t.Error("Refresh replaced the snapshot, though the members and self are the same")
	}
}

func TestOwnersSkip(t *testing.T) {
	clock := origintest.NewClock(time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC))
	for _, tc := range []struct {
		name    string
		skipFor time.Duration
		want    time.Duration // how long a peer stays skipped
	}{
		{"default", 0, 10 * time.Second},
		{"set", 3 * time.Second, 3 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dns := &ownersDNS{}
			dns.set(nil, ownersIP(1), ownersIP(2))
			o := newTestOwners(t, dns, OwnersConfig{SkipFor: tc.skipFor, Now: clock.Now})
			a, b := ownersMember(1), ownersMember(2)
			if o.Skipped(a) {
				t.Fatalf("Skipped(%s) before any Skip", a)
			}
			o.Skip(a)
			clock.Advance(tc.want - time.Nanosecond)
			if !o.Skipped(a) || o.Skipped(b) {
				t.Errorf("just before SkipFor: Skipped(%s) = %v, Skipped(%s) = %v, want true, false", a, o.Skipped(a), b, o.Skipped(b))
			}
			o.Skip(b) // again, from now
			clock.Advance(time.Nanosecond)
			if o.Skipped(a) {
				t.Errorf("Skipped(%s) = true once SkipFor has passed", a)
			}
			if !o.Skipped(b) {
				t.Errorf("Skipped(%s) = false, skipped a nanosecond ago", b)
			}
			if _, ok := o.skips.Load(a); ok {
				t.Errorf("the skip of %s is kept after it expired", a)
			}
			o.Skip(a) // skipped again: a second failure restarts the wait
			if !o.Skipped(a) {
				t.Errorf("Skipped(%s) = false right after Skip", a)
			}
			clock.Advance(tc.want)
			if err := o.Refresh(context.Background()); err != nil {
				t.Fatal(err)
			}
			o.skips.Range(func(peer, _ any) bool {
				t.Errorf("the expired skip of %v is kept after a Refresh", peer)
				return true
			})
		})
	}
}

func TestOwnersNil(t *testing.T) {
	var o *Owners
	if peer, self := o.Owner("media_attachments/files/1.jpg"); peer != "" || !self {
		t.Errorf("Owner() = %q, %v, want \"\", true", peer, self)
	}
	o.Skip(ownersMember(1))
	if o.Skipped(ownersMember(1)) {
		t.Error("Skipped() = true")
	}
	if o.Share() != 1 || o.Members() != nil || o.Self() != "" || o.LastError() != nil {
		t.Errorf("Share %v, Members %q, Self %q, LastError %v, want 1, nil, \"\", nil", o.Share(), o.Members(), o.Self(), o.LastError())
	}
	if err := o.Refresh(context.Background()); err != nil {
		t.Errorf("Refresh() = %v, want nil", err)
	}
	o.Run(context.Background()) // returns at once
}

func TestOwnersConfigValidate(t *testing.T) {
	ok := OwnersConfig{Peers: PeersConfig{Name: ownersName}}
	for _, tc := range []struct {
		name string
		edit func(*OwnersConfig)
		want string // the field named; empty: valid
	}{
		{"zero defaults", func(*OwnersConfig) {}, ""},
		{"all set", func(c *OwnersConfig) {
			c.Peers.Port, c.Peers.Timeout, c.Refresh, c.SkipFor = 9091, time.Second, time.Minute, time.Minute
		}, ""},
		{"ignored fields", func(c *OwnersConfig) { c.Peers.Attempts = -1 }, ""},
		{"no name", func(c *OwnersConfig) { c.Peers.Name = "" }, "OwnersConfig.Peers.Name"},
		{"blank name", func(c *OwnersConfig) { c.Peers.Name = " " }, "OwnersConfig.Peers.Name"},
		{"negative port", func(c *OwnersConfig) { c.Peers.Port = -1 }, "OwnersConfig.Peers.Port"},
		{"port too big", func(c *OwnersConfig) { c.Peers.Port = 65536 }, "OwnersConfig.Peers.Port"},
		{"negative timeout", func(c *OwnersConfig) { c.Peers.Timeout = -time.Second }, "OwnersConfig.Peers.Timeout"},
		{"negative refresh", func(c *OwnersConfig) { c.Refresh = -time.Second }, "OwnersConfig.Refresh"},
		{"negative skip", func(c *OwnersConfig) { c.SkipFor = -time.Second }, "OwnersConfig.SkipFor"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := ok
			tc.edit(&c)
			err := c.Validate()
			o, nerr := NewOwners(c)
			if tc.want == "" {
				if err != nil || nerr != nil || o == nil {
					t.Errorf("Validate() = %v, NewOwners() = %v, %v, want it valid", err, o, nerr)
				}
				return
			}
			var fe *fielderr.Error
			if !errors.As(err, &fe) || fe.Field != tc.want || fe.Fix == "" {
				t.Errorf("Validate() = %v, want an error naming %s and the fix", err, tc.want)
			}
			if o != nil || nerr == nil || nerr.Error() != err.Error() {
				t.Errorf("NewOwners() = %v, %v, want nil and %v", o, nerr, err)
			}
		})
	}
}

func TestOwnersRunRefreshes(t *testing.T) {
	origintest.CheckLeaks(t)
	looked := make(chan int)
	var calls atomic.Int32
	lookup := func(ctx context.Context, host string) ([]net.IP, error) {
		n := int(calls.Add(1))
		select {
		case looked <- n:
			return []net.IP{ownersIP(n)}, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	o, err := NewOwners(OwnersConfig{Peers: PeersConfig{Name: ownersName, Lookup: lookup, Self: ownersSelf()}, Refresh: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		o.Run(ctx)
	}()
	for want := 1; want <= 3; want++ {
		if n := <-looked; n != want {
			t.Fatalf("lookup %d, want %d", n, want)
		}
	}
	cancel()
	<-done
	// A fourth lookup, if one began, was cut by cancel and kept the members of the third.
	if m := o.Members(); !slices.Equal(m, []string{ownersMember(3)}) {
		t.Errorf("Members() = %q after three refreshes, want those of the third", m)
	}
	before := calls.Load()
	o.Run(ctx) // ctx has ended: returns without a lookup
	if calls.Load() != before {
		t.Error("Run looked up Name again with its ctx ended")
	}
}

func TestOwnersConcurrentOwnerAndRefresh(t *testing.T) {
	dns := &ownersDNS{}
	sets := [][]net.IP{{ownersIP(1), ownersIP(2), ownersIP(3)}, {ownersIP(2), ownersIP(3), ownersIP(4), ownersIP(5)}}
	dns.set(nil, sets[0]...)
	o := newTestOwners(t, dns, OwnersConfig{Peers: PeersConfig{Self: ownersSelf(ownersIP(2))}})
	valid := map[string]bool{}
	for i := 1; i <= 5; i++ {
		valid[ownersMember(i)] = true
	}
	keys := ownersKeys(1000)

	stop := make(chan struct{})
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				k := keys[(i*4+g)%len(keys)]
				peer, self := o.Owner(k)
				if !valid[peer] || self != (peer == ownersMember(2)) {
					t.Errorf("Owner(%q) = %q, %v", k, peer, self)
					return
				}
				if s := o.Share(); s != 1.0/3 && s != 1.0/4 {
					t.Errorf("Share() = %v, want 1/3 or 1/4", s)
					return
				}
				if m := o.Members(); len(m) != 3 && len(m) != 4 {
					t.Errorf("Members() = %q", m)
					return
				}
				if o.Skipped(peer) {
					_ = o.Self()
				}
				if i%97 == 0 {
					o.Skip(peer)
				}
			}
		})
	}
	for i := range 200 {
		dns.set(nil, sets[i%2]...)
		if err := o.Refresh(context.Background()); err != nil {
			t.Errorf("Refresh: %v", err)
		}
	}
	close(stop)
	wg.Wait()
}

func BenchmarkOwner(b *testing.B) {
	keys := ownersKeys(1024)
	for _, n := range []int{3, 6} {
		b.Run(fmt.Sprintf("members=%d", n), func(b *testing.B) {
			dns := &ownersDNS{}
			var ips []net.IP
			for i := 1; i <= n; i++ {
				ips = append(ips, ownersIP(i))
			}
			dns.set(nil, ips...)
			o := newTestOwners(b, dns, OwnersConfig{Peers: PeersConfig{Self: ownersSelf(ownersIP(1))}})
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				_, _ = o.Owner(keys[i%len(keys)])
				i++
			}
		})
	}
}

// TestStaticPeers: cluster.peers may list the replicas' addresses instead of a DNS name; a list
// with anything but addresses is refused, naming the field.
func TestStaticPeers(t *testing.T) {
	c := PeersConfig{Name: "10.0.0.5, 10.0.0.6,fd00::7"}.withDefaults()
	ips, err := c.Lookup(context.Background(), c.Name)
	if err != nil || len(ips) != 3 || !ips[2].Equal(net.ParseIP("fd00::7")) {
		t.Fatalf("lookup of a list: %v, %v", ips, err)
	}
	if err := (PeersConfig{Name: "10.0.0.5,fedicache-peers"}).Validate(); err == nil || !strings.Contains(err.Error(), "Name") {
		t.Errorf("a list with a name in it: %v; want an error naming Name", err)
	}
	if err := (PeersConfig{Name: "fedicache-peers.mastodon.svc.cluster.local"}).Validate(); err != nil {
		t.Errorf("a DNS name: %v", err)
	}
}

// TestOwnerFuncAgreesWithOwners: a tool outside the replicas (the cluster benchmark) computes
// the same owner for every key as the replicas do, whatever the order it lists them in.
func TestOwnerFuncAgreesWithOwners(t *testing.T) {
	ips := []net.IP{net.ParseIP("10.0.0.7"), net.ParseIP("10.0.0.5"), net.ParseIP("10.0.0.6")}
	o, err := NewOwners(OwnersConfig{Peers: PeersConfig{
		Name: ownersName, Port: 9090,
		Lookup: func(context.Context, string) ([]net.IP, error) { return ips, nil },
		Self:   func() ([]net.IP, error) { return ips[:1], nil },
	}})
	if err != nil {
		t.Fatal(err)
	}
	if err := o.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	owner := OwnerFunc([]string{"10.0.0.6:9090", "10.0.0.7:9090", "10.0.0.5:9090"})
	for i := range 2000 {
		key := fmt.Sprintf("media_attachments/files/%03d/original/k.png", i)
		if got, _ := o.Owner(key); got != owner(key) {
			t.Fatalf("%s: Owners says %s, OwnerFunc %s", key, got, owner(key))
		}
	}
}
