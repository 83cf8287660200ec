// This file holds the ownership of keys among the replicas (Owners): each key belongs to one
// replica, chosen by rendezvous (highest random weight) hashing over the replicas that the
// peers' DNS name lists, so that every replica that sees the same list picks the same owner, and
// a replica coming or going moves only the keys it owns or will own.

package cluster

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/dgryski/go-rendezvous"
)

// OwnersConfig says how to find the replicas and how long to trust what was found. Only
// Peers.Name is required.
type OwnersConfig struct {
	// Peers says how the replicas are found: Name (required), Port (zero means 9090), Lookup,
	// Self and Timeout (which bounds one lookup here; zero means 2s) as for Peers. Its other
	// fields are ignored.
	Peers PeersConfig
	// Refresh is how often Run resolves Peers.Name again. Zero means 5s.
	Refresh time.Duration
	// SkipFor is how long a peer reported failing (Skip) is skipped. Zero means 10s.
	SkipFor time.Duration
	// Now reads the clock of Skip and Skipped. Zero means time.Now.
	Now func() time.Time
}

// Validate reports a value of c that Owners cannot work with, naming the field and the fix.
func (c OwnersConfig) Validate() error {
	switch {
	case strings.TrimSpace(c.Peers.Name) == "":
		return badField("OwnersConfig", "Peers.Name", "", "is empty", "give the DNS name of the headless Service of the replicas", "fedicache-peers")
	case c.Peers.Port < 0 || c.Peers.Port > 65535:
		return badField("OwnersConfig", "Peers.Port", strconv.Itoa(c.Peers.Port), "is not a TCP port", "give the admin port, 1-65535 (zero means 9090)", "")
	case c.Peers.Timeout < 0:
		return badField("OwnersConfig", "Peers.Timeout", c.Peers.Timeout.String(), "is negative", "give a duration (zero means 2s)", "2s")
	case c.Refresh < 0:
		return badField("OwnersConfig", "Refresh", c.Refresh.String(), "is negative", "give a duration (zero means 5s)", "5s")
	case c.SkipFor < 0:
		return badField("OwnersConfig", "SkipFor", c.SkipFor.String(), "is negative", "give a duration (zero means 10s)", "10s")
	}
	return nil
}

func (c OwnersConfig) withDefaults() OwnersConfig {
	c.Peers = c.Peers.withDefaults()
	c.Peers.Client = nil // Owners sends no requests
	if c.Refresh <= 0 {
		c.Refresh = 5 * time.Second
	}
	if c.SkipFor <= 0 {
		c.SkipFor = 10 * time.Second
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Owners says which replica owns a key. It learns the replicas from Peers.Name (Refresh, Run)
// and picks the owner of a key among them by rendezvous hashing (Owner): every replica that
// knows the same members picks the same owner, and a member joining or leaving moves only the
// keys that it gains or loses. It also remembers the peers that failed to answer for a while
// (Skip, Skipped), so that a caller can go around them.
//
// Its methods are safe for concurrent use. Owner, Skipped and the other readers take no lock:
// they read an immutable snapshot through an atomic pointer, which Refresh replaces when the
// members change. The one lock, mu, only keeps two Refreshes from crossing.
//
// A nil *Owners is no cluster: this replica owns every key.
type Owners struct {
	cfg     OwnersConfig                   // with its defaults
	snap    atomic.Pointer[ownersSnapshot] // never nil
	lastErr atomic.Pointer[ownersError]    // nil before the first Refresh
	skips   sync.Map                       // peer string -> time.Time until which it is skipped

	mu sync.Mutex // held through one Refresh, lookup included
}

// ownersSnapshot is what Refresh found, never changed once stored: Refresh stores another.
type ownersSnapshot struct {
	members []string               // "ip:port", sorted, without duplicates
	self    []string               // the members that are this replica: usually one, none when it is not a member
	table   *rendezvous.Rendezvous // over members
}

// ownersError boxes the error of the last Refresh, which may be nil, for an atomic pointer.
type ownersError struct{ err error }

// NewOwners returns the Owners cfg describes, or the error of cfg.Validate. It knows no members
// until the first Refresh (Run does one at once); until then it owns every key.
func NewOwners(cfg OwnersConfig) (*Owners, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	o := &Owners{cfg: cfg.withDefaults()}
	o.snap.Store(&ownersSnapshot{table: newOwnerTable(nil)})
	return o, nil
}

// Refresh resolves Peers.Name once, within Peers.Timeout, and takes the addresses it gives (on
// Peers.Port) as the members. An error of the lookup, or an answer without addresses, keeps the
// members from before and is returned. It also finds which members are this replica: those
// whose address is one of Peers.Self's. When Self fails, Refresh still takes the new members,
// none of them this replica, and returns Self's error. LastError keeps what Refresh returned.
//
// Refresh on a nil *Owners does nothing.
func (o *Owners) Refresh(ctx context.Context) error {
	if o == nil {
		return nil
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	err := o.refresh(ctx)
	o.lastErr.Store(&ownersError{err})
	o.dropExpiredSkips()
	return err
}

func (o *Owners) refresh(ctx context.Context) error {
	members, err := o.lookup(ctx)
	if err != nil {
		return err
	}
	own, selfErr := o.ownMembers()
	var self []string
	for _, m := range members {
		if own[m] {
			self = append(self, m)
		}
	}
	old := o.snap.Load()
	switch {
	case !slices.Equal(old.members, members):
		o.snap.Store(&ownersSnapshot{members: members, self: self, table: newOwnerTable(members)})
	case !slices.Equal(old.self, self):
		o.snap.Store(&ownersSnapshot{members: old.members, self: self, table: old.table})
	}
	return selfErr
}

// lookup resolves Name and returns the members it gives: "ip:port", sorted, without
// duplicates. An answer without addresses is an error.
func (o *Owners) lookup(ctx context.Context) ([]string, error) {
	lctx, cancel := context.WithTimeout(ctx, o.cfg.Peers.Timeout)
	defer cancel()
	ips, err := o.cfg.Peers.Lookup(lctx, o.cfg.Peers.Name)
	if err != nil {
		return nil, fmt.Errorf("owners: lookup %s: %w (keeping the members found before)", o.cfg.Peers.Name, err)
	}
	members := make([]string, 0, len(ips))
	for _, ip := range ips {
		if a, ok := netip.AddrFromSlice(ip); ok {
			members = append(members, o.member(a))
		}
	}
	if len(members) == 0 {
		return nil, fmt.Errorf("owners: lookup %s: %w (keeping the members found before)", o.cfg.Peers.Name, errNoReplicas)
	}
	slices.Sort(members)
	return slices.Compact(members), nil
}

// OwnerFunc returns the owner of each key among members ("ip:port", as Members gives them), by
// the same hashing as Owners: for a tool outside a replica that must know which replica owns a
// key (the cluster benchmark).
func OwnerFunc(members []string) func(key string) string {
	return newOwnerTable(members).Lookup
}

// newOwnerTable is the rendezvous table of members.
func newOwnerTable(members []string) *rendezvous.Rendezvous {
	return rendezvous.New(members, xxhash.Sum64String)
}

// errNoReplicas is the error of a lookup that gave no address.
var errNoReplicas = errors.New("no addresses")

// ownMembers returns the members this replica would be: each of the addresses Peers.Self lists,
// on Peers.Port, written as lookup writes the members.
func (o *Owners) ownMembers() (map[string]bool, error) {
	ips, err := o.cfg.Peers.Self()
	if err != nil {
		return nil, fmt.Errorf("owners: list own addresses: %w (no member is taken for this replica)", err)
	}
	own := make(map[string]bool, len(ips))
	for _, ip := range ips {
		if a, ok := netip.AddrFromSlice(ip); ok {
			own[o.member(a)] = true
		}
	}
	return own, nil
}

// member writes the member of address a: "ip:port", IPv6 in brackets, an IPv4-mapped IPv6
// address as IPv4.
func (o *Owners) member(a netip.Addr) string {
	return netip.AddrPortFrom(a.Unmap(), uint16(o.cfg.Peers.Port)).String()
}

// Run calls Refresh at once and then every Refresh, until ctx ends. It returns when ctx ends.
// The errors are not logged: LastError reports the last one. Run on a nil *Owners returns at
// once.
func (o *Owners) Run(ctx context.Context) {
	if o == nil {
		return
	}
	t := time.NewTicker(o.cfg.Refresh)
	defer t.Stop()
	for ctx.Err() == nil {
		_ = o.Refresh(ctx)
		select {
		case <-ctx.Done():
		case <-t.C:
		}
	}
}

// Owner returns the member that owns key, by rendezvous hashing over the current members, and
// whether that member is this replica. With no members yet (or on a nil *Owners) it returns
// ("", true): a replica that knows no peers owns every key. It takes no lock and allocates
// nothing.
func (o *Owners) Owner(key string) (peer string, self bool) {
	if o == nil {
		return "", true
	}
	s := o.snap.Load()
	if len(s.members) == 0 {
		return "", true
	}
	peer = s.table.Lookup(key)
	return peer, slices.Contains(s.self, peer)
}

// Skip records that peer failed to answer: Skipped(peer) reports true for SkipFor from now.
// Skip on a nil *Owners does nothing.
func (o *Owners) Skip(peer string) {
	if o == nil {
		return
	}
	o.skips.Store(peer, o.cfg.Now().Add(o.cfg.SkipFor))
}

// Skipped reports whether peer failed to answer (Skip) less than SkipFor ago. It is false on a
// nil *Owners.
func (o *Owners) Skipped(peer string) bool {
	if o == nil {
		return false
	}
	v, ok := o.skips.Load(peer)
	if !ok {
		return false
	}
	if o.cfg.Now().Before(v.(time.Time)) {
		return true
	}
	o.skips.CompareAndDelete(peer, v)
	return false
}

// dropExpiredSkips forgets the peers whose SkipFor has passed, so that the skips of replicas
// long gone do not pile up.
func (o *Owners) dropExpiredSkips() {
	now := o.cfg.Now()
	o.skips.Range(func(peer, until any) bool {
		if !now.Before(until.(time.Time)) {
			o.skips.CompareAndDelete(peer, until)
		}
		return true
	})
}

// Members returns a copy of the current members ("ip:port", sorted), nil when there are none
// or on a nil *Owners.
func (o *Owners) Members() []string {
	if o == nil {
		return nil
	}
	return slices.Clone(o.snap.Load().members)
}

// Self returns the member that is this replica, "" when none is (or on a nil *Owners). Should
// this replica be more than one member (a dual-stack Service lists both its IPv4 and its IPv6
// address), Self returns the first, and Owner says self for each.
func (o *Owners) Self() string {
	if o == nil {
		return ""
	}
	if s := o.snap.Load(); len(s.self) > 0 {
		return s.self[0]
	}
	return ""
}

// Share returns the share of the keys this replica owns: 1/len(Members()) when it is a member,
// 0 when it is not, 1 when there are no members (or on a nil *Owners).
func (o *Owners) Share() float64 {
	if o == nil {
		return 1
	}
	s := o.snap.Load()
	if len(s.members) == 0 {
		return 1
	}
	return float64(len(s.self)) / float64(len(s.members))
}

// LastError returns the error of the last Refresh: nil after a good one, before the first, and
// on a nil *Owners.
func (o *Owners) LastError() error {
	if o == nil {
		return nil
	}
	if e := o.lastErr.Load(); e != nil {
		return e.err
	}
	return nil
}
