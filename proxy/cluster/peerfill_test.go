package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fedicache/fedicache/cache"
	"github.com/fedicache/fedicache/cache/disk"
	"github.com/fedicache/fedicache/cache/memory"
	"github.com/fedicache/fedicache/cache/tiertest"
	"github.com/fedicache/fedicache/origin"
	"github.com/fedicache/fedicache/origin/origintest"
	"github.com/fedicache/fedicache/origin/s3/s3test"
)

const testToken = "cluster-test-token"

// replica is one replica of a test cluster: its cache behind its peer fill, and its peer
// endpoint on a real listener at ip:port.
type replica struct {
	ip     string
	cache  *cache.Layered
	disk   *disk.Disk
	fill   *PeerFill
	owners *Owners
	srv    *http.Server
	ln     net.Listener
	down   bool
	recent *Recent
	stale  atomic.Bool // its record of deleted media is too old to answer for others
}

// testCluster is replicas on loopback addresses 127.0.0.2, .3, ... sharing one port and one
// bucket, each finding the others through a lookup the test controls.
type testCluster struct {
	t       *testing.T
	bucket  *origintest.FakeBucket
	origin  origin.Sourced
	port    int
	mu      sync.Mutex
	members []net.IP // what the lookup answers
	reps    []*replica
	noSpool bool // the replicas' spool folder does not exist: no temporary file can be made
}

// spoolDir is a replica's folder for temporary files.
func (c *testCluster) spoolDir(t *testing.T) string {
	if c.noSpool {
		return filepath.Join(t.TempDir(), "absent")
	}
	return t.TempDir()
}

func newTestCluster(t *testing.T, n int) *testCluster {
	t.Helper()
	c := &testCluster{t: t, bucket: origintest.NewFakeBucket(t)}
	c.origin = origin.Fallback(s3test.New(t, c.bucket), nil)
	for i := range n {
		c.add(i)
	}
	c.refresh()
	return c
}

// add starts replica i at 127.0.0.(i+2) and adds it to the members.
func (c *testCluster) add(i int) *replica {
	t := c.t
	t.Helper()
	ip := "127.0.0." + strconv.Itoa(i+2)
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(c.port)))
	if err != nil {
		// The first takes any port; the others need the same one on their own address.
		t.Skipf("listen on %s:%d: %v (the cluster tests need loopback addresses beyond 127.0.0.1)", ip, c.port, err)
	}
	c.port = ln.Addr().(*net.TCPAddr).Port
	r := &replica{ip: ip, ln: ln}
	r.owners, err = NewOwners(OwnersConfig{Peers: PeersConfig{
		Name: "fedicache-peers", Port: c.port,
		Lookup: func(context.Context, string) ([]net.IP, error) {
			c.mu.Lock()
			defer c.mu.Unlock()
			return append([]net.IP(nil), c.members...), nil
		},
		Self: func() ([]net.IP, error) { return []net.IP{net.ParseIP(ip)}, nil },
	}})
	if err != nil {
		t.Fatal(err)
	}
	r.recent = NewRecent(time.Minute, nil)
	r.fill = NewPeerFill(PeerFillConfig{Owners: r.owners, Token: testToken, Next: c.origin, Timeout: time.Second, Recent: r.recent})
	mem, err := memory.New(memory.Config{MaxBytes: 16 << 20, MaxObjectBytes: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(mem.Close)
	r.disk, err = disk.Open(disk.Config{Dir: t.TempDir(), MaxBytes: 256 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.disk.Close() })
	r.cache = cache.New(r.fill, mem, r.disk, cache.Config{
		TTL: time.Hour, NegativeTTL: 30 * time.Second, MemoryObjectBytes: 64 << 10, SpoolDir: c.spoolDir(t),
	})
	t.Cleanup(r.cache.Close)
	mux := http.NewServeMux()
	mux.Handle(PeerObjectPath, NewPeerHandler(PeerServeConfig{
		Objects: r.cache, Owners: r.owners, Token: testToken, Stale: r.stale.Load,
	}))
	r.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go r.srv.Serve(ln)
	t.Cleanup(func() { r.srv.Close() })
	c.mu.Lock()
	c.members = append(c.members, net.ParseIP(ip))
	c.reps = append(c.reps, r)
	c.mu.Unlock()
	return r
}

// remove takes replica i out of the members (its pod goes; it keeps running, unasked).
func (c *testCluster) remove(i int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ip := net.ParseIP(c.reps[i].ip)
	for j, m := range c.members {
		if m.Equal(ip) {
			c.members = append(c.members[:j], c.members[j+1:]...)
			break
		}
	}
}

// kill stops replica i's endpoint at once, dropping the connections under way: a pod that died.
func (c *testCluster) kill(i int) {
	c.reps[i].down = true
	c.reps[i].srv.Close()
}

// refresh makes every live replica resolve the members again.
func (c *testCluster) refresh() {
	for _, r := range c.reps {
		if !r.down {
			if err := r.owners.Refresh(context.Background()); err != nil {
				c.t.Fatal(err)
			}
		}
	}
}

// ownerOf returns the index of the replica owning key, as replica 0 sees it.
func (c *testCluster) ownerOf(key string) int {
	peer, _ := c.reps[0].owners.Owner(key)
	for i, r := range c.reps {
		if net.JoinHostPort(r.ip, strconv.Itoa(c.port)) == peer {
			return i
		}
	}
	c.t.Fatalf("no replica is %s", peer)
	return -1
}

// get reads key (r: a range, or nil) through replica i and returns the bytes and the source.
func (c *testCluster) get(i int, key string, r *origin.Range) ([]byte, origin.From, error) {
	body, _, from, err := c.reps[i].cache.GetFrom(context.Background(), key, r)
	if err != nil {
		return nil, from, err
	}
	defer body.Close()
	b, err := io.ReadAll(body)
	return b, from, err
}

func clusterKey(i int) string {
	return fmt.Sprintf("media_attachments/files/000/001/%03d/original/c%013d.png", i, i)
}

// TestClusterOneGetPerKey: 3 replicas x 30 cold keys, each key asked of every replica (as a
// Service spreads requests): the bucket gets 30 GETs, one per key; every answer has the
// object's bytes; each object is on the disk of its owner only, and the non-owners keep the
// small ones in memory.
func TestClusterOneGetPerKey(t *testing.T) {
	c := newTestCluster(t, 3)
	const keys = 30
	data := map[string][]byte{}
	for i := range keys {
		k := clusterKey(i)
		size := 20_000 // small: memory on the non-owners
		if i%3 == 0 {
			size = 300_000 // large: on the owner's disk only
		}
		data[k] = tiertest.Blob(uint64(i), size)
		c.bucket.Put(t, k, data[k])
	}
	for i := range keys {
		k := clusterKey(i)
		for r := range c.reps {
			got, from, err := c.get(r, k, nil)
			if err != nil || !bytes.Equal(got, data[k]) {
				t.Fatalf("replica %d, %s: %d bytes, %v", r, k, len(got), err)
			}
			owner := c.ownerOf(k)
			if r != owner && from.Source != origin.SourcePeer {
				t.Errorf("replica %d is not %s's owner (%d) and answered from %s", r, k, owner, from.Source)
			}
		}
	}
	if gets := c.bucket.TotalGets(); gets != keys {
		t.Errorf("%d bucket GETs for %d keys on %d replicas, want %d", gets, keys, len(c.reps), keys)
	}
	var entries int64
	for _, r := range c.reps {
		r.cache.Settle()
		entries += r.disk.Stats().Entries
	}
	if entries != keys {
		t.Errorf("%d disk entries over the cluster, want %d: each object on its owner's disk only", entries, keys)
	}
	// Again, from every replica: hits at the owners, hot copies or owner asks elsewhere; still
	// no bucket GET.
	for i := range keys {
		for r := range c.reps {
			if got, _, err := c.get(r, clusterKey(i), nil); err != nil || !bytes.Equal(got, data[clusterKey(i)]) {
				t.Fatalf("again: replica %d, key %d: %v", r, i, err)
			}
		}
	}
	if gets := c.bucket.TotalGets(); gets != keys {
		t.Errorf("%d bucket GETs after a second round, want %d", gets, keys)
	}
}

// TestClusterStormOneGet: 99 clients at once on one cold key, spread over 3 replicas: 1 bucket
// GET, every client the object's bytes.
func TestClusterStormOneGet(t *testing.T) {
	c := newTestCluster(t, 3)
	for round, size := range []int{30_000, 2 << 20} {
		k := clusterKey(100 + round)
		data := tiertest.Blob(uint64(100+round), size)
		c.bucket.Put(t, k, data)
		gate := c.bucket.GateBody(k, 1<<10)
		var wg sync.WaitGroup
		errs := make(chan error, 99)
		for i := range 99 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				got, _, err := c.get(i%3, k, nil)
				if err == nil && !bytes.Equal(got, data) {
					err = fmt.Errorf("%d bytes, not the object's", len(got))
				}
				errs <- err
			}()
		}
		<-gate.Passed
		gate.Open()
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		if gets := c.bucket.Gets(k); gets != 1 {
			t.Errorf("%d bytes: %d bucket GETs for 99 clients on 3 replicas, want 1", size, gets)
		}
	}
}

// TestClusterRanges: a range asked of a non-owner comes from the owner, the right bytes, with
// the object's size; a range beyond the end is refused with the size.
func TestClusterRanges(t *testing.T) {
	c := newTestCluster(t, 3)
	k := clusterKey(200)
	data := tiertest.Blob(200, 1<<20)
	c.bucket.Put(t, k, data)
	other := (c.ownerOf(k) + 1) % 3
	for _, r := range []origin.Range{{Start: 10, End: 99}, {Start: 500_000, End: -1}, origin.Suffix(1000)} {
		got, from, err := c.get(other, k, &r)
		first, last, _ := r.Resolve(int64(len(data)))
		if err != nil || !bytes.Equal(got, data[first:last+1]) || from.Source != origin.SourcePeer {
			t.Errorf("range %s: %d bytes from %s, %v", r, len(got), from.Source, err)
		}
	}
	_, m, _, err := c.reps[other].cache.GetFrom(context.Background(), k, &origin.Range{Start: 2 << 20, End: -1})
	if !errors.Is(err, origin.ErrRangeNotSatisfiable) || m.Size != int64(len(data)) {
		t.Errorf("a range beyond the end: %v, size %d", err, m.Size)
	}
}

// TestClusterOwnerDiesMidStream: the owner dies while a non-owner streams an object from it:
// the non-owner's reader gets an error, never the object cut short as if whole; the next request
// is served whole (from the bucket, the dead owner skipped) without waiting for it.
func TestClusterOwnerDiesMidStream(t *testing.T) {
	c := newTestCluster(t, 3)
	k := clusterKey(300)
	data := tiertest.Blob(300, 4<<20)
	c.bucket.Put(t, k, data)
	owner := c.ownerOf(k)
	other := (owner + 1) % 3
	gate := c.bucket.GateBody(k, 1<<20)
	body, _, from, err := c.reps[other].cache.GetFrom(context.Background(), k, nil)
	if err != nil || from.Source != origin.SourcePeer {
		t.Fatalf("%v from %s", err, from.Source)
	}
	<-gate.Passed
	c.kill(owner)
	_, err = io.ReadAll(body)
	body.Close()
	if err == nil {
		t.Fatal("the reader of an owner that died got io.EOF")
	}
	gate.Open()
	c.bucket.GateBody(k, -1)
	start := time.Now()
	got, _, err := c.get(other, k, nil)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("after the owner died: %d bytes, %v", len(got), err)
	}
	if st := c.reps[other].fill.Stats(); st.Errors == 0 || st.Fallbacks == 0 {
		t.Errorf("stats %+v: the dead owner is not counted", st)
	}
	t.Logf("served in %s after the owner died", time.Since(start))
}

// TestClusterMembershipChange: a replica added, then one removed: every key is served, whole,
// from every replica, and the bucket is asked at most once more per key whose owner changed.
func TestClusterMembershipChange(t *testing.T) {
	c := newTestCluster(t, 2)
	const keys = 40
	data := map[string][]byte{}
	for i := range keys {
		k := clusterKey(400 + i)
		data[k] = tiertest.Blob(uint64(400+i), 10_000)
		c.bucket.Put(t, k, data[k])
	}
	check := func(stage string) {
		for k, d := range data {
			for r, rep := range c.reps {
				if rep.down {
					continue
				}
				if got, _, err := c.get(r, k, nil); err != nil || !bytes.Equal(got, d) {
					t.Fatalf("%s: replica %d, %s: %v", stage, r, k, err)
				}
			}
		}
	}
	check("two replicas")
	c.add(2)
	c.refresh()
	check("a third added")
	c.remove(0)
	c.kill(0)
	c.refresh()
	check("the first removed")
	if gets := c.bucket.TotalGets(); gets > 3*keys {
		t.Errorf("%d bucket GETs for %d keys over two membership changes", gets, keys)
	}
}

// TestPeerEndpointRefuses: without the token, with a wrong one, for a key another replica owns,
// for a key that could name a file outside a store, and for a method other than GET and HEAD,
// the endpoint refuses without asking the bucket.
func TestPeerEndpointRefuses(t *testing.T) {
	c := newTestCluster(t, 2)
	k := clusterKey(500)
	c.bucket.Put(t, k, []byte("hello"))
	owner := c.ownerOf(k)
	base := func(i int) string {
		return "http://" + net.JoinHostPort(c.reps[i].ip, strconv.Itoa(c.port)) + PeerObjectPath + "?key=" + k
	}
	for _, tc := range []struct {
		name, method, url, token string
		want                     int
	}{
		{"no token", http.MethodGet, base(owner), "", http.StatusUnauthorized},
		{"wrong token", http.MethodGet, base(owner), "nope", http.StatusUnauthorized},
		{"not the owner", http.MethodGet, base(1 - owner), testToken, http.StatusMisdirectedRequest},
		{"POST", http.MethodPost, base(owner), testToken, http.StatusMethodNotAllowed},
		{"a key escaping the store", http.MethodGet, strings.Replace(base(owner), "key=", "key=media_attachments/../../etc/", 1), testToken, http.StatusBadRequest},
		{"an absolute key", http.MethodGet, strings.Replace(base(owner), "key=", "key=/", 1), testToken, http.StatusBadRequest},
		{"the owner", http.MethodGet, base(owner), testToken, http.StatusOK},
	} {
		req, _ := http.NewRequest(tc.method, tc.url, nil)
		if tc.token != "" {
			req.Header.Set("Authorization", "Bearer "+tc.token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, resp.StatusCode, tc.want)
		}
	}
	if gets := c.bucket.TotalGets(); gets != 1 {
		t.Errorf("%d bucket GETs, want 1 (the owner's answer)", gets)
	}
}

// TestClusterRecentPurgeAndStaleOwner: Mastodon hides an object the owner holds, and the bust
// reaches a non-owner but not the owner. The non-owner asks the bucket for the key while the
// purge is recent (the owner could still serve what was hidden); an owner whose record of
// deleted media is stale refuses every ask, and its peers go to the bucket and skip it.
func TestClusterRecentPurgeAndStaleOwner(t *testing.T) {
	c := newTestCluster(t, 3)
	k := clusterKey(600)
	data := tiertest.Blob(600, 20_000)
	c.bucket.Put(t, k, data)
	owner := c.ownerOf(k)
	other := (owner + 1) % 3
	if got, _, err := c.get(owner, k, nil); err != nil || !bytes.Equal(got, data) {
		t.Fatal(err)
	}
	// The bust reached the non-owner only.
	c.reps[other].cache.Purge(k)
	c.reps[other].recent.Add(k, false)
	c.bucket.Delete(t, k) // as hidden: the bucket no longer gives it to us
	if _, from, err := c.get(other, k, nil); !errors.Is(err, origin.ErrNotFound) {
		t.Fatalf("a key purged here lately, asked of a non-owner: %v from %s; want the bucket's not found, not the owner's stale copy", err, from.Source)
	}
	if st := c.reps[other].fill.Stats(); st.Recent != 1 || st.Asks != 0 {
		t.Errorf("stats %+v: want the bucket asked, not the owner", st)
	}

	// An owner whose record is stale refuses; the asker goes to the bucket and skips it.
	k2 := clusterKey(601)
	c.bucket.Put(t, k2, data)
	owner2 := c.ownerOf(k2)
	asker := (owner2 + 1) % 3
	c.reps[owner2].stale.Store(true)
	got, from, err := c.get(asker, k2, nil)
	if err != nil || !bytes.Equal(got, data) || from.Source == origin.SourcePeer {
		t.Fatalf("asked of a non-owner while the owner is stale: %d bytes from %s, %v", len(got), from.Source, err)
	}
	peer, _ := c.reps[asker].owners.Owner(k2)
	if !c.reps[asker].owners.Skipped(peer) {
		t.Error("the stale owner is not skipped")
	}
}

// TestRecent: a purged key, or one under a purged prefix, is recent for the window, then not.
func TestRecent(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	r := NewRecent(time.Minute, func() time.Time { return now })
	r.Add("media_attachments/files/1/a.png", false)
	r.Add("accounts/avatars/000/000/042/", true)
	for key, want := range map[string]bool{
		"media_attachments/files/1/a.png":             true,
		"media_attachments/files/1/b.png":             false,
		"accounts/avatars/000/000/042/original/x.png": true,
		"accounts/avatars/000/000/043/original/x.png": false,
	} {
		if got := r.Has(key); got != want {
			t.Errorf("Has(%q) = %v, want %v", key, got, want)
		}
	}
	now = now.Add(time.Minute)
	if r.Has("media_attachments/files/1/a.png") || r.Has("accounts/avatars/000/000/042/original/x.png") {
		t.Error("a purge is still recent after the window")
	}
	var nilRecent *Recent
	nilRecent.Add("k", false)
	if nilRecent.Has("k") {
		t.Error("a nil Recent holds a key")
	}
}

// TestClusterLargePeerObjectsNeedNoSpool: a large object another replica owns streams through a
// non-owner without a temporary file (the owner keeps it; a pod's /tmp is small): with no
// spool folder at all, one request costs one ask of the owner, and requests at once on the
// non-owner still cost the bucket one GET.
func TestClusterLargePeerObjectsNeedNoSpool(t *testing.T) {
	c := &testCluster{t: t, bucket: origintest.NewFakeBucket(t), noSpool: true}
	c.origin = origin.Fallback(s3test.New(t, c.bucket), nil)
	for i := range 3 {
		c.add(i)
	}
	c.refresh()
	k := clusterKey(700)
	data := tiertest.Blob(700, 3<<20)
	c.bucket.Put(t, k, data)
	other := (c.ownerOf(k) + 1) % 3
	got, from, err := c.get(other, k, nil)
	if err != nil || !bytes.Equal(got, data) || from.Source != origin.SourcePeer {
		t.Fatalf("through a non-owner: %d bytes from %s, %v", len(got), from.Source, err)
	}
	if st := c.reps[other].fill.Stats(); st.Asks != 1 {
		t.Errorf("%d asks of the owner for one request, want 1: %+v", st.Asks, st)
	}
	var wg sync.WaitGroup
	for range 5 {
		wg.Go(func() {
			if got, _, err := c.get(other, k, nil); err != nil || !bytes.Equal(got, data) {
				t.Errorf("at once: %d bytes, %v", len(got), err)
			}
		})
	}
	wg.Wait()
	if gets := c.bucket.Gets(k); gets != 1 {
		t.Errorf("%d bucket GETs, want 1", gets)
	}
}
