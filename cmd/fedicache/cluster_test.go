package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fedicache/fedicache/cmd/fedicache/config"
	"github.com/fedicache/fedicache/origin"
	"github.com/fedicache/fedicache/origin/origintest"
	"github.com/fedicache/fedicache/origin/s3/s3test"
	"github.com/fedicache/fedicache/proxy/cluster"
)

// Timing of the cluster tests.
const (
	clusterRefresh = time.Second           // state_refresh of every replica
	clusterMargin  = 2 * time.Second       // what one refresh may take beyond its period
	pollEvery      = 50 * time.Millisecond // how often a condition is checked
	pollDeadline   = 10 * time.Second      // when a condition that never holds fails the test
)

// The cache-buster header and secret, and the admin token, of every replica.
const (
	clusterBustHeader = "X-Cache-Buster-Secret"
	clusterBustSecret = "s3cret"
	clusterToken      = "t0ken"
	clusterLogPrefix  = "_fedicache/log/" // state_prefix's log of busts and purges
	clusterUnreached  = "127.0.0.4"       // an address nothing listens on: a replica cut off
)

// clusterBody returns n bytes repeating mark, so that an answer carrying any of them shows.
func clusterBody(mark string, n int) []byte {
	return bytes.Repeat([]byte(mark), n/len(mark)+1)[:n]
}

// within checks cond every pollEvery until it holds and fails the test unless it held within
// limit (fatally when it still does not hold after pollDeadline). cond returns whether it holds
// and what it saw. within returns how long it took.
func within(t *testing.T, limit time.Duration, what string, cond func() (bool, string)) time.Duration {
	t.Helper()
	start := time.Now()
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	for {
		ok, saw := cond()
		took := time.Since(start)
		if ok {
			if took > limit {
				t.Errorf("%s took %v, want at most %v", what, took.Round(time.Millisecond), limit)
			}
			return took
		}
		if took > pollDeadline {
			t.Fatalf("%s: not within %v; last saw %s", what, pollDeadline, saw)
		}
		<-tick.C
	}
}

// clusterOptions adds to the configuration of every replica.
type clusterOptions struct {
	s3      string // lines under s3:, indented by two spaces
	cache   string // lines under cache:, indented by two spaces
	cluster string // lines under cluster:, indented by two spaces; zero: "fill: false"
}

// testCluster is three replicas serving on 127.0.0.1, 127.0.0.2 and 127.0.0.3, in front of one
// bucket and one old volume, each with a disk tier that survives its restarts. They find each
// other through lookupPeers, whose answer the test changes to cut a replica off.
type testCluster struct {
	bucket *origintest.FakeBucket
	vol    string
	port   string // the admin port, the same on every address
	yaml   [3]string
	r      [3]*replica
	fill   bool // cluster.fill: a replica answers through a key's owner

	mu    sync.Mutex
	peers []string // what cluster.peers resolves to
}

// replicaIP is the address of replica i (0, 1, 2).
func replicaIP(i int) string { return "127.0.0." + strconv.Itoa(i+1) }

// newTestCluster starts the three replicas; it skips the test when 127.0.0.2 and 127.0.0.3
// cannot be bound.
func newTestCluster(t *testing.T, opt clusterOptions) *testCluster {
	t.Helper()
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	for _, ip := range []string{"127.0.0.2", "127.0.0.3"} {
		ln, err := net.Listen("tcp", ip+":0")
		if err != nil {
			t.Skipf("no loopback address %s: %v", ip, err)
		}
		ln.Close()
	}
	c := &testCluster{
		bucket: origintest.NewFakeBucket(t),
		vol:    t.TempDir(),
		port:   freeAdminPort(t),
		peers:  []string{replicaIP(0), replicaIP(1), replicaIP(2)},
	}
	lookupPeers = func(context.Context, string) ([]net.IP, error) {
		c.mu.Lock()
		defer c.mu.Unlock()
		ips := make([]net.IP, len(c.peers))
		for i, p := range c.peers {
			ips[i] = net.ParseIP(p)
		}
		return ips, nil
	}
	t.Cleanup(func() { lookupPeers = nil })
	// Most of these tests follow one object through each replica's own cache (purges, busts,
	// partitions, restarts): they run with each replica filling its own, as cluster.fill: false
	// does. The peer fill has tests of its own (clusterfill_test.go).
	if opt.cluster == "" {
		opt.cluster = "  fill: false\n"
	}
	c.fill = strings.Contains(opt.cluster, "fill: true")
	for i := range c.r {
		ip := replicaIP(i)
		c.yaml[i] = `listen: "` + ip + `:0"
admin_listen: "` + ip + `:` + c.port + `"
` + bucketYAML(c.bucket) + opt.s3 + `fallback:
  dir: ` + c.vol + `
cache_buster:
  secret_header: ` + clusterBustHeader + `
  secret: ` + clusterBustSecret + `
cluster:
  peers: fedicache-peers
` + opt.cluster + `admin:
  token: ` + clusterToken + `
state_refresh: ` + clusterRefresh.String() + `
cache:
  memory:
    max_object_bytes: 1KiB
  disk:
    dir: ` + t.TempDir() + `
` + opt.cache
	}
	for i := range c.r {
		c.r[i] = startReplica(t, c.yaml[i])
	}
	return c
}

// bothFillModes runs a cluster test with each replica filling its own cache (cluster.fill:
// false) and with the peer fill (each key from its owner): purges, busts, hiding and restarts
// must hold the same either way.
func bothFillModes(t *testing.T, test func(t *testing.T, fill string)) {
	for _, fill := range []string{"  fill: false\n", "  fill: true\n"} {
		t.Run(strings.TrimSpace(fill), func(t *testing.T) { test(t, fill) })
	}
}

// freeAdminPort returns a port free on the three replicas' addresses, below the range the
// kernel hands out to outgoing connections, so that no client socket of another test takes it
// between this check and the replicas' binds.
func freeAdminPort(t *testing.T) string {
	t.Helper()
	low, _ := ephemeralPorts()
	for range 200 {
		port := strconv.Itoa(10_000 + rand.IntN(low-10_000))
		var lns []net.Listener
		for _, ip := range []string{"127.0.0.1", "127.0.0.2", "127.0.0.3"} {
			if l, err := net.Listen("tcp", ip+":"+port); err == nil {
				lns = append(lns, l)
			}
		}
		for _, l := range lns {
			l.Close()
		}
		if len(lns) == 3 {
			return port
		}
	}
	t.Fatal("no port free on 127.0.0.1, 127.0.0.2 and 127.0.0.3")
	return ""
}

// ephemeralPorts returns the range of local ports the kernel picks for outgoing connections
// (Linux's default when it cannot be read).
func ephemeralPorts() (low, high int) {
	low, high = 32768, 60999
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			l, err1 := strconv.Atoi(f[0])
			h, err2 := strconv.Atoi(f[1])
			if err1 == nil && err2 == nil && l > 11_000 {
				low, high = l, h
			}
		}
	}
	return low, high
}

// partition cuts replica i off the fan-out: cluster.peers resolves to an address where nothing
// listens instead of its own, while it still reaches the bucket and serves its clients.
func (c *testCluster) partition(i int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.peers = []string{replicaIP(0), replicaIP(1), replicaIP(2)}
	c.peers[i] = clusterUnreached
}

// heal makes cluster.peers resolve to the three replicas again.
func (c *testCluster) heal() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.peers = []string{replicaIP(0), replicaIP(1), replicaIP(2)}
}

// restart stops replica i (when running) and starts it again with the same configuration, and
// so the same disk tier.
func (c *testCluster) restart(t *testing.T, i int) {
	t.Helper()
	c.r[i].close()
	c.r[i] = startReplica(t, c.yaml[i])
}

// peerAddr is the admin address that a fan-out names for the peer at ip.
func (c *testCluster) peerAddr(ip string) string { return ip + ":" + c.port }

// clusterBust is the JSON answer of a cache-buster request.
type clusterBust struct {
	Purged     int                  `json:"purged"`
	Kind       string               `json:"kind"`
	Tombstoned bool                 `json:"tombstoned"`
	Peers      []cluster.PeerResult `json:"peers"`
	Error      string               `json:"error"`
}

// peerResult returns the result for the peer at addr, and whether there was one.
func peerResult(peers []cluster.PeerResult, addr string) (cluster.PeerResult, bool) {
	for _, p := range peers {
		if p.Peer == addr {
			return p, true
		}
	}
	return cluster.PeerResult{}, false
}

// bust sends Mastodon's cache buster for key to replica i and returns its report; it fails the
// test unless the answer is a 200 report without a byte of secret.
func (c *testCluster) bust(t *testing.T, i int, key string, secret []byte) clusterBust {
	t.Helper()
	st, _, body := c.r[i].get(t, key, clusterBustHeader, clusterBustSecret)
	var rep clusterBust
	if err := json.Unmarshal(body, &rep); st != 200 || err != nil {
		t.Fatalf("cache buster for %s on replica %d: %d %s (%v)", key, i+1, st, body, err)
	}
	if secret != nil && bytes.Contains(body, secret[:64]) {
		t.Errorf("the cache buster's answer for %s carries the object's bytes", key)
	}
	return rep
}

// wantPeers checks a fan-out: the peers at ok answered, those at failed did not, and no other
// peer was asked.
func (c *testCluster) wantPeers(t *testing.T, what string, peers []cluster.PeerResult, ok, failed []string) {
	t.Helper()
	if len(peers) != len(ok)+len(failed) {
		t.Errorf("%s: peers %+v, want %d (ok %v, failed %v)", what, peers, len(ok)+len(failed), ok, failed)
	}
	for _, ip := range ok {
		if p, found := peerResult(peers, c.peerAddr(ip)); !found || p.Err != "" {
			t.Errorf("%s: peer %s: %+v (found %v), want it to have taken the word", what, ip, p, found)
		}
	}
	for _, ip := range failed {
		if p, found := peerResult(peers, c.peerAddr(ip)); !found || p.Err == "" {
			t.Errorf("%s: peer %s: %+v (found %v), want a failure reported", what, ip, p, found)
		}
	}
}

// warm fetches key twice from every replica: first from the stores (X-Cache first: MISS or
// FALLBACK), then from the disk tier (HIT, X-Cache-Tier disk), want each time.
// firstAnswer is the X-Cache values replica i may give to the first GET of an object that the
// replicas before it were asked first: first itself, or with cluster.fill also HIT (the owner's
// copy).
func (c *testCluster) firstAnswer(i int, first string) []string {
	if c.fill && i > 0 {
		return []string{first, "HIT"}
	}
	return []string{first}
}

// With cluster.fill, only the first replica's first GET is first: the others get the owner's
// copy (X-Cache HIT, tier peer, or disk on the owner).
func (c *testCluster) warm(t *testing.T, key, first string, want []byte) {
	t.Helper()
	for i, r := range c.r {
		firsts := c.firstAnswer(i, first)
		if st, h, body := r.get(t, key); st != 200 || !slices.Contains(firsts, h.Get("X-Cache")) || !bytes.Equal(body, want) {
			t.Fatalf("replica %d, first GET of %s: %d X-Cache %q, %d bytes; want 200 %s with the object", i+1, key, st, h.Get("X-Cache"), len(body), firsts)
		} else if (h.Get("X-Cache") == "FALLBACK") != (h.Get("X-Cache-Store") == "volume") {
			t.Errorf("replica %d, first GET of %s: X-Cache %q with X-Cache-Store %q; an old store's answer names it, and only one", i+1, key, h.Get("X-Cache"), h.Get("X-Cache-Store"))
		}
		tiers := []string{"disk"}
		if c.fill {
			tiers = append(tiers, "peer")
		}
		if st, h, body := r.get(t, key); st != 200 || h.Get("X-Cache") != "HIT" || !slices.Contains(tiers, h.Get("X-Cache-Tier")) || !bytes.Equal(body, want) {
			t.Fatalf("replica %d, second GET of %s: %d X-Cache %q tier %q; want 200 HIT from %v", i+1, key, st, h.Get("X-Cache"), h.Get("X-Cache-Tier"), tiers)
		}
	}
}

// gone reports whether replica i answers key 404, as no cache and no store holds it, without a
// byte of secret; saw says what it answered.
func (c *testCluster) gone(t *testing.T, i int, key string, secret []byte) (ok bool, saw string) {
	t.Helper()
	st, h, body := c.r[i].get(t, key)
	saw = fmt.Sprintf("%d X-Cache %q", st, h.Get("X-Cache"))
	return st == 404 && h.Get("X-Cache") == "" && !bytes.Contains(body, secret[:64]), saw
}

// wantGone fails the test unless replica i answers key 404 without a byte of secret.
func (c *testCluster) wantGone(t *testing.T, i int, key string, secret []byte) {
	t.Helper()
	if ok, saw := c.gone(t, i, key, secret); !ok {
		t.Errorf("replica %d, GET %s: %s; want 404 without its bytes", i+1, key, saw)
	}
}

// wantServed fails the test unless replica i answers key 200 with want, X-Cache one of xcache.
func (c *testCluster) wantServed(t *testing.T, i int, key string, want []byte, xcache ...string) {
	t.Helper()
	st, h, body := c.r[i].get(t, key)
	got := h.Get("X-Cache")
	if st != 200 || !bytes.Equal(body, want) || !slices.Contains(xcache, got) {
		t.Errorf("replica %d, GET %s: %d X-Cache %q, %d bytes; want 200 %v with the object", i+1, key, st, got, len(body), xcache)
	}
}

// admin sends method path to replica i's admin listener and returns the status and body.
func (c *testCluster) admin(t *testing.T, i int, method, path string, hdr ...string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+c.r[i].admin+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for j := 0; j+1 < len(hdr); j += 2 {
		req.Header.Set(hdr[j], hdr[j+1])
	}
	client := &http.Client{Timeout: 30 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s on replica %d: %v", method, path, i+1, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, body
}

// readyz returns replica i's /readyz status.
func (c *testCluster) readyz(t *testing.T, i int) (int, string) {
	t.Helper()
	st, body := c.admin(t, i, "GET", "/readyz")
	return st, strings.TrimSpace(string(body))
}

// clusterStateStatus is the "state" section of /status.
type clusterStateStatus struct {
	Loaded        bool      `json:"loaded"`
	RefreshedAt   time.Time `json:"refreshed_at"`
	LagSeconds    float64   `json:"lag_seconds"`
	LastError     string    `json:"last_error"`
	Tombstones    int       `json:"tombstones"`
	BustsApplied  uint64    `json:"busts_applied"`
	BustsRecorded uint64    `json:"busts_recorded"`
	Failures      uint64    `json:"failures"`
}

// state returns the state section of replica i's /status.
func (c *testCluster) state(t *testing.T, i int) clusterStateStatus {
	t.Helper()
	st, body := c.admin(t, i, "GET", "/status")
	var s struct {
		State *clusterStateStatus `json:"state"`
	}
	if err := json.Unmarshal(body, &s); st != 200 || err != nil || s.State == nil {
		t.Fatalf("replica %d /status: %d %s (%v); want a state section", i+1, st, body, err)
	}
	return *s.State
}

// waitRefreshed waits until replica i has begun a complete read of the bucket's log after
// after: every bust recorded before after is then applied there.
func (c *testCluster) waitRefreshed(t *testing.T, i int, after time.Time) {
	t.Helper()
	within(t, time.Until(after)+clusterRefresh+clusterMargin, fmt.Sprintf("replica %d reading the log after %s", i+1, after.Format(time.StampMilli)), func() (bool, string) {
		s := c.state(t, i)
		return s.RefreshedAt.After(after), "refreshed_at " + s.RefreshedAt.Format(time.StampMilli)
	})
}

// clusterPurge is the JSON answer of POST /purge.
type clusterPurge struct {
	Purged   int                  `json:"purged"`
	Recorded bool                 `json:"recorded"`
	Error    string               `json:"error"`
	Peers    []cluster.PeerResult `json:"peers"`
}

// purge sends an operator's POST /purge?key=key to replica i's admin listener.
func (c *testCluster) purge(t *testing.T, i int, key string, hdr ...string) clusterPurge {
	t.Helper()
	hdr = append([]string{"Authorization", "Bearer " + clusterToken}, hdr...)
	st, body := c.admin(t, i, "POST", "/purge?key="+key, hdr...)
	var rep clusterPurge
	if err := json.Unmarshal(body, &rep); st != 200 || err != nil {
		t.Fatalf("POST /purge?key=%s on replica %d: %d %s (%v)", key, i+1, st, body, err)
	}
	return rep
}

// errPastLog ends a listing once it has left the log's folder.
var errPastLog = errors.New("past the log")

// logEntries counts the entries of the bucket's log of busts and purges, listed with a client of
// its own.
func (c *testCluster) logEntries(t *testing.T) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b := s3test.New(t, c.bucket)
	n := 0
	err := b.List(ctx, clusterLogPrefix, func(o origin.Object) error {
		if !strings.HasPrefix(o.Key, clusterLogPrefix) {
			return errPastLog
		}
		n++
		return nil
	})
	if err != nil && !errors.Is(err, errPastLog) {
		t.Fatalf("list the log: %v", err)
	}
	return n
}

// TestClusterRestartWithCacheDir reproduces a replica that was down while Mastodon deleted
// media and comes back with its disk tier: a bucket key deleted from the bucket, a key only the
// old volume holds, and a bucket key hidden by its ACL, all three busted on another replica
// while it was down and still on its disk. Once ready it serves none of them, and neither do
// the others.
func TestClusterRestartWithCacheDir(t *testing.T) { bothFillModes(t, testClusterRestartWithCacheDir) }

func testClusterRestartWithCacheDir(t *testing.T, fill string) {
	c := newTestCluster(t, clusterOptions{cluster: fill})
	const (
		k1 = "media_attachments/files/109/852/623/730/091/815/original/3f2a9c1e5b7d4a60.jpg"
		k2 = "cache/media_attachments/files/000/000/042/original/8c1d2e3f4a5b6c7d.png"
		k3 = "accounts/avatars/000/000/007/original/0a1b2c3d4e5f6a7b.jpg"
	)
	b1 := clusterBody("K1: a deleted post's photo. ", 4096)
	b2 := clusterBody("K2: an old volume's remote photo. ", 4096)
	b3 := clusterBody("K3: a suspended account's avatar. ", 4096)
	c.bucket.Put(t, k1, b1)
	c.bucket.Put(t, k3, b3)
	writeTree(t, c.vol, map[string][]byte{k2: b2})
	c.warm(t, k1, "MISS", b1)
	c.warm(t, k2, "FALLBACK", b2)
	c.warm(t, k3, "MISS", b3)

	c.r[2].close()
	c.bucket.Delete(t, k1)
	c.bucket.SetACL(k3, "private")
	for _, k := range []struct {
		key, kind string
		body      []byte
	}{{k1, "deleted", b1}, {k2, "deleted", b2}, {k3, "hidden", b3}} {
		rep := c.bust(t, 0, k.key, k.body)
		if rep.Kind != k.kind || rep.Tombstoned != (k.kind == "deleted") {
			t.Errorf("cache buster for %s: kind %q tombstoned %v; want %s", k.key, rep.Kind, rep.Tombstoned, k.kind)
		}
		c.wantPeers(t, "cache buster for "+k.key, rep.Peers, []string{replicaIP(1)}, []string{replicaIP(2)})
	}

	c.restart(t, 2)
	within(t, clusterMargin, "replica 3 ready after its restart", func() (bool, string) {
		st, body := c.readyz(t, 2)
		return st == 200, fmt.Sprintf("%d %s", st, body)
	})
	for i := range c.r {
		c.wantGone(t, i, k1, b1)
		c.wantGone(t, i, k2, b2)
		c.wantGone(t, i, k3, b3)
	}
	// And so it stays once the restarted replica has read the log again.
	c.waitRefreshed(t, 2, time.Now())
	for _, k := range []struct {
		key  string
		body []byte
	}{{k1, b1}, {k2, b2}, {k3, b3}} {
		c.wantGone(t, 2, k.key, k.body)
	}
}

// TestClusterPartitionedReplicaLearnsFromTheBucket reproduces a replica that the fan-out cannot
// reach (a network partition, a pod not yet in the peers' DNS answer) while Mastodon deletes
// media it holds on disk: it is never told by a peer, yet answers 404 within one state_refresh,
// from the bucket's log. Healing the partition changes nothing of that.
func TestClusterPartitionedReplicaLearnsFromTheBucket(t *testing.T) {
	bothFillModes(t, testClusterPartitionedReplicaLearnsFromTheBucket)
}

func testClusterPartitionedReplicaLearnsFromTheBucket(t *testing.T, fill string) {
	c := newTestCluster(t, clusterOptions{cluster: fill})
	const (
		k1 = "media_attachments/files/109/852/623/730/091/815/original/4e5f6a7b8c9d0e1f.mp4"
		k2 = "media_attachments/thumbnails/000/000/042/small/1f2e3d4c5b6a7980.jpg"
		kp = "custom_emojis/images/000/000/005/static/abcdefabcdef0123.png"
	)
	b1 := clusterBody("K1: a deleted video. ", 4096)
	b2 := clusterBody("K2: a deleted thumbnail on the old volume. ", 4096)
	bp := clusterBody("a custom emoji nobody deleted. ", 4096)
	c.bucket.Put(t, k1, b1)
	c.bucket.Put(t, kp, bp)
	writeTree(t, c.vol, map[string][]byte{k2: b2})
	c.warm(t, k1, "MISS", b1)
	c.warm(t, k2, "FALLBACK", b2)
	c.warm(t, kp, "MISS", bp)

	c.partition(2)
	c.bucket.Delete(t, k1)
	for _, k := range []struct {
		key  string
		body []byte
	}{{k1, b1}, {k2, b2}} {
		rep := c.bust(t, 0, k.key, k.body)
		if rep.Kind != "deleted" || !rep.Tombstoned {
			t.Errorf("cache buster for %s: kind %q tombstoned %v; want deleted and tombstoned", k.key, rep.Kind, rep.Tombstoned)
		}
		c.wantPeers(t, "cache buster for "+k.key+" during the partition", rep.Peers, []string{replicaIP(1)}, []string{clusterUnreached})
	}
	for i := range 2 {
		c.wantGone(t, i, k1, b1)
		c.wantGone(t, i, k2, b2)
	}
	for _, k := range []struct {
		key  string
		body []byte
	}{{k1, b1}, {k2, b2}} {
		within(t, clusterRefresh+clusterMargin, "replica 3 (cut off) dropping "+k.key, func() (bool, string) {
			return c.gone(t, 2, k.key, k.body)
		})
	}
	// With the peer fill, replica 3 may answer 404 before it reads the log (the keys' owners
	// know): it still learns both busts from the bucket.
	within(t, clusterRefresh+clusterMargin, "replica 3 applying both busts from the bucket's log", func() (bool, string) {
		s := c.state(t, 2)
		return s.BustsApplied >= 2 && s.Tombstones >= 2, fmt.Sprintf("%+v", s)
	})
	c.wantServed(t, 2, kp, bp, "HIT")

	// The partition heals: nothing comes back, and the fan-out reaches every replica again.
	c.heal()
	healed := time.Now()
	for i := range c.r {
		c.waitRefreshed(t, i, healed)
	}
	rep := c.bust(t, 0, k2, b2)
	if !rep.Tombstoned {
		t.Errorf("a second cache buster for %s: %+v; want it tombstoned still", k2, rep)
	}
	c.wantPeers(t, "cache buster after the partition healed", rep.Peers, []string{replicaIP(1), replicaIP(2)}, nil)
	for i := range c.r {
		c.wantGone(t, i, k1, b1)
		c.wantGone(t, i, k2, b2)
		c.wantServed(t, i, kp, bp, "HIT")
	}
}

// TestClusterRestartWhileBucketDown reproduces a replica that restarts while the bucket fails:
// it cannot load the record of deleted media, so it answers 503 (and is not ready) rather than
// serving the old volume's copy of a key Mastodon deleted, or anything its disk tier holds;
// once the bucket answers, it becomes ready and the key answers 404 for good.
func TestClusterRestartWhileBucketDown(t *testing.T) {
	bothFillModes(t, testClusterRestartWhileBucketDown)
}

func testClusterRestartWhileBucketDown(t *testing.T, fill string) {
	c := newTestCluster(t, clusterOptions{cluster: fill})
	const (
		k1 = "media_attachments/files/000/000/011/original/0011223344556677.jpg"
		k2 = "cache/media_attachments/files/000/000/012/original/8899aabbccddeeff.jpg"
	)
	b1 := clusterBody("K1: a photo nobody deleted. ", 4096)
	b2 := clusterBody("K2: a deleted remote photo, still on the old volume. ", 4096)
	c.bucket.Put(t, k1, b1)
	writeTree(t, c.vol, map[string][]byte{k2: b2})
	c.warm(t, k1, "MISS", b1)
	c.warm(t, k2, "FALLBACK", b2)

	rep := c.bust(t, 0, k2, b2)
	if rep.Kind != "deleted" || !rep.Tombstoned {
		t.Fatalf("cache buster for %s: %+v; want deleted and tombstoned", k2, rep)
	}
	c.wantPeers(t, "cache buster", rep.Peers, []string{replicaIP(1), replicaIP(2)}, nil)

	c.r[2].close()
	c.bucket.SetMode(origintest.Fail503)
	start := time.Now()
	c.r[2] = startReplica(t, c.yaml[2])
	t.Logf("replica 3 started in %v with the bucket down", time.Since(start).Round(time.Millisecond))
	if st, body := c.readyz(t, 2); st != 503 {
		t.Errorf("replica 3 /readyz with the state not loaded: %d %s; want 503", st, body)
	}
	for _, k := range []struct {
		key  string
		body []byte
	}{{k1, b1}, {k2, b2}} {
		st, h, body := c.r[2].get(t, k.key)
		if st != 503 || h.Get("X-Cache") != "" || bytes.Contains(body, k.body[:64]) {
			t.Errorf("replica 3, GET %s with the state not loaded: %d X-Cache %q; want 503 without its bytes", k.key, st, h.Get("X-Cache"))
		}
	}

	c.bucket.SetMode(origintest.Healthy)
	within(t, 5*time.Second, "replica 3 ready once the bucket answers", func() (bool, string) {
		st, body := c.readyz(t, 2)
		return st == 200, fmt.Sprintf("%d %s", st, body)
	})
	c.wantGone(t, 2, k2, b2)
	c.wantServed(t, 2, k1, b1, "HIT")
	c.waitRefreshed(t, 2, time.Now().Add(2*clusterRefresh))
	c.wantGone(t, 2, k2, b2)
	for i := range c.r {
		c.wantGone(t, i, k2, b2)
	}
}

// TestClusterHiddenDuringPartitionIsNoTombstone reproduces a suspension during a partition:
// Mastodon makes a cached object's ACL private and busts it on one replica; the replica cut off
// answers 404 within one state_refresh. The unsuspension (ACL public-read again, and a second
// bust) brings it back on every replica: a hide is not a tombstone.
func TestClusterHiddenDuringPartitionIsNoTombstone(t *testing.T) {
	bothFillModes(t, testClusterHiddenDuringPartitionIsNoTombstone)
}

func testClusterHiddenDuringPartitionIsNoTombstone(t *testing.T, fill string) {
	c := newTestCluster(t, clusterOptions{cluster: fill})
	const k3 = "media_attachments/files/109/852/623/730/091/900/original/fedcba9876543210.jpg"
	b3 := clusterBody("K3: a photo of an account about to be suspended. ", 4096)
	c.bucket.Put(t, k3, b3)
	c.warm(t, k3, "MISS", b3)

	c.partition(2)
	c.bucket.SetACL(k3, "private")
	rep := c.bust(t, 0, k3, b3)
	if rep.Kind != "hidden" || rep.Tombstoned {
		t.Errorf("cache buster for a hidden object: kind %q tombstoned %v; want hidden, not tombstoned", rep.Kind, rep.Tombstoned)
	}
	c.wantPeers(t, "cache buster during the partition", rep.Peers, []string{replicaIP(1)}, []string{clusterUnreached})
	c.wantGone(t, 0, k3, b3)
	c.wantGone(t, 1, k3, b3)
	within(t, clusterRefresh+clusterMargin, "replica 3 (cut off) hiding "+k3, func() (bool, string) {
		return c.gone(t, 2, k3, b3)
	})
	c.wantGone(t, 2, k3, b3)
	for i := range c.r {
		if s := c.state(t, i); s.Tombstones != 0 {
			t.Errorf("replica %d holds %d tombstones after a hide; want none", i+1, s.Tombstones)
		}
	}

	// The unsuspension.
	c.bucket.SetACL(k3, "public-read")
	rep = c.bust(t, 0, k3, nil)
	if rep.Kind != "purged" || rep.Tombstoned {
		t.Errorf("cache buster after the unsuspension: kind %q tombstoned %v; want purged, not tombstoned", rep.Kind, rep.Tombstoned)
	}
	c.wantServed(t, 0, k3, b3, "MISS", "HIT")
	c.wantServed(t, 1, k3, b3, "MISS", "HIT")
	within(t, clusterRefresh+clusterMargin, "replica 3 (cut off) serving "+k3+" again", func() (bool, string) {
		st, h, body := c.r[2].get(t, k3)
		return st == 200 && bytes.Equal(body, b3), fmt.Sprintf("%d X-Cache %q", st, h.Get("X-Cache"))
	})
	// A peer that took the word (with the name of the log's record) does not apply the record
	// again at its next refresh: no second fetch.
	refreshed := time.Now()
	for i := range c.r {
		c.waitRefreshed(t, i, refreshed)
		c.wantServed(t, i, k3, b3, "HIT")
	}
}

// TestClusterOperatorPurgeReachesPartitionedReplica reproduces an operator's purge while one
// replica is cut off: it is recorded in the bucket, and the cut-off replica fetches the object
// again within one state_refresh. A purge a peer forwarded applies to that replica only and
// records nothing.
func TestClusterOperatorPurgeReachesPartitionedReplica(t *testing.T) {
	bothFillModes(t, testClusterOperatorPurgeReachesPartitionedReplica)
}

func testClusterOperatorPurgeReachesPartitionedReplica(t *testing.T, fill string) {
	c := newTestCluster(t, clusterOptions{cluster: fill})
	const k = "preview_cards/images/000/001/234/original/13579bdf2468ace0.jpg"
	b := clusterBody("a preview card the operator purges. ", 4096)
	c.bucket.Put(t, k, b)
	c.warm(t, k, "MISS", b)

	c.partition(2)
	c.wantServed(t, 2, k, b, "HIT")
	entries := c.logEntries(t)
	rep := c.purge(t, 0, k)
	if !rep.Recorded || rep.Error != "" {
		t.Errorf("POST /purge during the partition: %+v; want it recorded", rep)
	}
	c.wantPeers(t, "POST /purge during the partition", rep.Peers, []string{replicaIP(1)}, []string{clusterUnreached})
	if n := c.logEntries(t); n != entries+1 {
		t.Errorf("the log holds %d entries after the purge, %d before; want one more", n, entries)
	}
	c.wantServed(t, 0, k, b, "MISS")
	c.wantServed(t, 1, k, b, "MISS")
	within(t, clusterRefresh+clusterMargin, "replica 3 (cut off) fetching "+k+" again", func() (bool, string) {
		st, h, body := c.r[2].get(t, k)
		x := h.Get("X-Cache")
		if st != 200 || !bytes.Equal(body, b) || (x != "HIT" && x != "MISS") {
			t.Errorf("replica 3 while the purge is on its way: %d X-Cache %q; want 200 HIT, then MISS", st, x)
		}
		return x == "MISS", fmt.Sprintf("%d X-Cache %q", st, x)
	})
	c.wantServed(t, 2, k, b, "HIT")

	// Replica 2 took the word above, with the name of the log's record: its next refresh does
	// not purge the object again.
	c.heal()
	c.waitRefreshed(t, 1, time.Now())
	c.wantServed(t, 1, k, b, "HIT")

	// A purge a peer forwarded: applied where it arrives, recorded nowhere.
	entries = c.logEntries(t)
	rep = c.purge(t, 1, k, cluster.ForwardedHeader, "1")
	if rep.Recorded || rep.Error != "" || len(rep.Peers) != 0 || rep.Purged < 1 {
		t.Errorf("a forwarded POST /purge: %+v; want purged here, not recorded, not passed on", rep)
	}
	if n := c.logEntries(t); n != entries {
		t.Errorf("a forwarded purge changed the log from %d to %d entries; want no record", entries, n)
	}
	c.wantServed(t, 1, k, b, "MISS")
	forwarded := time.Now()
	for _, i := range []int{0, 2} {
		c.waitRefreshed(t, i, forwarded)
		c.wantServed(t, i, k, b, "HIT")
	}
}

// TestClusterStateStatusAndMetrics: a replica that applied a bust from the bucket's log while
// cut off says so in /status (loaded, busts applied, a fresh read of the log, a small lag) and
// in /metrics.
func TestClusterStateStatusAndMetrics(t *testing.T) {
	bothFillModes(t, testClusterStateStatusAndMetrics)
}

func testClusterStateStatusAndMetrics(t *testing.T, fill string) {
	c := newTestCluster(t, clusterOptions{cluster: fill})
	const k = "site_uploads/files/000/000/001/original/2468ace013579bdf.png"
	b := clusterBody("a deleted site upload. ", 4096)
	writeTree(t, c.vol, map[string][]byte{k: b})
	c.warm(t, k, "FALLBACK", b)

	c.partition(2)
	rep := c.bust(t, 0, k, b)
	if !rep.Tombstoned {
		t.Errorf("cache buster for %s: %+v; want tombstoned", k, rep)
	}
	// With the peer fill, replica 3 may answer 404 at once (the key's owner knows): wait for it
	// to have read the bust from the bucket's log too.
	within(t, clusterRefresh+clusterMargin, "replica 3 (cut off) applying the bust of "+k, func() (bool, string) {
		s := c.state(t, 2)
		return s.BustsApplied >= 1, fmt.Sprintf("%+v", s)
	})
	c.wantGone(t, 2, k, b)

	s := c.state(t, 2)
	if !s.Loaded || s.BustsApplied < 1 || s.Tombstones < 1 || s.LastError != "" {
		t.Errorf("replica 3 /status state: %+v; want loaded, a bust applied, a tombstone, no error", s)
	}
	if age := time.Since(s.RefreshedAt); s.RefreshedAt.IsZero() || age > clusterRefresh+clusterMargin || age < -time.Second {
		t.Errorf("replica 3 /status state.refreshed_at %v is %v old; want within %v", s.RefreshedAt, age, clusterRefresh+clusterMargin)
	}
	if s.LagSeconds < 0 || s.LagSeconds > (clusterRefresh+clusterMargin).Seconds() {
		t.Errorf("replica 3 /status state.lag_seconds %v; want at most %v", s.LagSeconds, (clusterRefresh + clusterMargin).Seconds())
	}
	if s := c.state(t, 0); s.BustsRecorded < 1 {
		t.Errorf("replica 1 /status state.busts_recorded %d; want at least 1", s.BustsRecorded)
	}

	st, body := c.admin(t, 2, "GET", "/metrics")
	if st != 200 {
		t.Fatalf("replica 3 /metrics: %d", st)
	}
	metric := func(name string) (float64, bool) {
		m := regexp.MustCompile(`(?m)^` + name + ` (\S+)$`).FindSubmatch(body)
		if m == nil {
			return 0, false
		}
		v, err := strconv.ParseFloat(string(m[1]), 64)
		return v, err == nil
	}
	if v, ok := metric("fedicache_state_loaded"); !ok || v != 1 {
		t.Errorf("replica 3 fedicache_state_loaded %v (found %v); want 1", v, ok)
	}
	if v, ok := metric("fedicache_state_busts_applied_total"); !ok || v < 1 {
		t.Errorf("replica 3 fedicache_state_busts_applied_total %v (found %v); want at least 1", v, ok)
	}
}

// TestClusterAnonymousACLAwareBucket runs the replicas with s3.anonymous against a bucket that
// refuses unsigned reads of non-public objects, as AWS does: public media is served, hidden
// media answers 404 whether cold, busted, or cached and then hidden without a bust (once past
// cache.ttl, never stale), even when the old volume holds a copy; a key the bucket does not
// hold at all is still served from the old volume; fedicache's own state is read signed, so
// the replicas become ready.
func TestClusterAnonymousACLAwareBucket(t *testing.T) {
	bothFillModes(t, testClusterAnonymousACLAwareBucket)
}

func testClusterAnonymousACLAwareBucket(t *testing.T, fill string) {
	c := newTestCluster(t, clusterOptions{s3: "  anonymous: true\n", cache: "  ttl: 1s\n", cluster: fill})
	c.bucket.RequireSignatures(true)
	const (
		public  = "accounts/avatars/000/000/042/original/1a2b3c4d5e6f7a8b.png"
		hidden  = "media_attachments/files/109/852/623/730/091/815/original/9e8d7c6b5a4f3e2d.jpg"
		hiddenB = "media_attachments/files/109/852/623/730/091/816/small/0f1e2d3c4b5a6978.jpg"
		cached  = "media_attachments/files/000/000/077/original/a1b2c3d4e5f6a7b8.mp4"
		volOnly = "media_attachments/files/000/000/003/original/5566778899aabbcc.jpg"
		size    = 4096
	)
	bPublic := clusterBody("a public avatar. ", size)
	bHidden := clusterBody("a suspended account's photo, also on the old volume. ", size)
	bHiddenB := clusterBody("a suspended account's thumbnail. ", size)
	bCached := clusterBody("a video cached, then hidden without a bust. ", size)
	bVol := clusterBody("a photo not copied to the bucket yet. ", size)
	c.bucket.Put(t, public, bPublic)
	c.bucket.Put(t, hidden, bHidden)
	c.bucket.SetACL(hidden, "private")
	c.bucket.Put(t, hiddenB, bHiddenB)
	c.bucket.SetACL(hiddenB, "private")
	c.bucket.Put(t, cached, bCached)
	writeTree(t, c.vol, map[string][]byte{hidden: bHidden, volOnly: bVol})

	for i := range c.r {
		within(t, clusterMargin, fmt.Sprintf("replica %d ready", i+1), func() (bool, string) {
			st, body := c.readyz(t, i)
			return st == 200, fmt.Sprintf("%d %s", st, body)
		})
	}
	for i := range c.r {
		c.wantServed(t, i, public, bPublic, c.firstAnswer(i, "MISS")...)
		c.wantGone(t, i, hidden, bHidden)
		c.wantGone(t, i, hiddenB, bHiddenB)
		c.wantServed(t, i, volOnly, bVol, c.firstAnswer(i, "FALLBACK")...)
	}
	rep := c.bust(t, 0, hidden, bHidden)
	if rep.Kind != "hidden" || rep.Tombstoned {
		t.Errorf("cache buster for a hidden object: kind %q tombstoned %v; want hidden, not tombstoned", rep.Kind, rep.Tombstoned)
	}
	c.wantPeers(t, "cache buster", rep.Peers, []string{replicaIP(1), replicaIP(2)}, nil)
	for i := range c.r {
		c.wantGone(t, i, hidden, bHidden)
	}

	// Cached, then hidden without a bust (a suspension whose buster never arrived): served
	// until cache.ttl, then 404, never stale.
	for i := range c.r {
		c.wantServed(t, i, cached, bCached, c.firstAnswer(i, "MISS")...)
		c.wantServed(t, i, cached, bCached, "HIT")
	}
	c.bucket.SetACL(cached, "private")
	for i := range c.r {
		within(t, time.Second+clusterMargin, fmt.Sprintf("replica %d hiding %s past cache.ttl", i+1, cached), func() (bool, string) {
			st, h, body := c.r[i].get(t, cached)
			if x := h.Get("X-Cache"); st != 404 && (st != 200 || x != "HIT" || !bytes.Equal(body, bCached)) {
				t.Errorf("replica %d, GET %s after it was hidden: %d X-Cache %q; want a fresh HIT, then 404", i+1, cached, st, x)
			}
			return c.gone(t, i, cached, bCached)
		})
		c.wantGone(t, i, cached, bCached)
	}
}

// TestClusterAnonymousWithoutCredentialsRefused: s3.anonymous without any credentials cannot
// read nor write fedicache's own state, so serve refuses to start and names the key to set.
func TestClusterAnonymousWithoutCredentialsRefused(t *testing.T) {
	s3test.NoCredentials(t)
	bucket := origintest.NewFakeBucket(t)
	bucket.RequireSignatures(true)
	cfg, err := config.Load(writeConfig(t, `listen: "127.0.0.1:0"
admin_listen: "127.0.0.1:0"
s3:
  endpoint: `+bucket.URL+`
  bucket: `+origintest.BucketName+`
  anonymous: true
`), nil)
	if err != nil {
		t.Fatalf("the configuration itself: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err = serve(ctx, cfg, discardLog(), func(a addrs) {
		t.Errorf("serve started (%v) with s3.anonymous and no credentials for its state", a.public)
		cancel()
	})
	if err == nil || !strings.Contains(err.Error(), "s3.access_key_id") {
		t.Errorf("serve with s3.anonymous and no credentials: %v; want an error naming s3.access_key_id", err)
	}
}

// link forwards TCP connections to a server, as the network between a replica and the bucket
// does, and can go down: while down it refuses new connections and cuts the open ones.
type link struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	down  bool
	conns map[net.Conn]bool
}

func newLink(t *testing.T, target string) *link {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := &link{ln: ln, target: target, conns: map[net.Conn]bool{}}
	t.Cleanup(func() { ln.Close(); l.setDown(true) })
	go l.serve()
	return l
}

func (l *link) url() string { return "http://" + l.ln.Addr().String() }

func (l *link) serve() {
	for {
		c, err := l.ln.Accept()
		if err != nil {
			return
		}
		l.mu.Lock()
		down := l.down
		if !down {
			l.conns[c] = true
		}
		l.mu.Unlock()
		if down {
			c.Close()
			continue
		}
		go l.pipe(c)
	}
}

func (l *link) pipe(c net.Conn) {
	defer func() {
		l.mu.Lock()
		delete(l.conns, c)
		l.mu.Unlock()
		c.Close()
	}()
	up, err := net.Dial("tcp", l.target)
	if err != nil {
		return
	}
	defer up.Close()
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(up, c); done <- struct{}{} }()
	go func() { _, _ = io.Copy(c, up); done <- struct{}{} }()
	<-done
}

// setDown takes the link down (cutting every open connection) or brings it up.
func (l *link) setDown(down bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.down = down
	if down {
		for c := range l.conns {
			c.Close()
		}
	}
}

// TestClusterIsolatedReplicaConvergesWhenItsLinkReturns reproduces a replica whose link goes down
// altogether (no peer reaches it, and it reaches no bucket) while Mastodon deletes a key it holds
// on disk and hides another: its refreshes fail meanwhile, it keeps serving what it has, and once
// the link is back it drops both within one state_refresh, without any peer retrying at it.
func TestClusterIsolatedReplicaConvergesWhenItsLinkReturns(t *testing.T) {
	bothFillModes(t, testClusterIsolatedReplicaConvergesWhenItsLinkReturns)
}

func testClusterIsolatedReplicaConvergesWhenItsLinkReturns(t *testing.T, fill string) {
	c := newTestCluster(t, clusterOptions{cluster: fill})
	net3 := newLink(t, strings.TrimPrefix(c.bucket.URL, "http://"))
	c.yaml[2] = strings.Replace(c.yaml[2], "endpoint: "+c.bucket.URL, "endpoint: "+net3.url(), 1)
	c.restart(t, 2)
	within(t, clusterMargin, "replica 3 ready behind its own link", func() (bool, string) {
		st, body := c.readyz(t, 2) // as the kubelet's probe asks
		return st == 200, fmt.Sprintf("%d %s", st, body)
	})
	const (
		k1 = "media_attachments/files/109/852/623/730/091/816/original/5a6b7c8d9e0f1a2b.jpg"
		k3 = "accounts/headers/000/000/008/original/6b7c8d9e0f1a2b3c.jpg"
	)
	b1 := clusterBody("K1: deleted while its replica was isolated. ", 4096)
	b3 := clusterBody("K3: hidden while its replica was isolated. ", 4096)
	c.bucket.Put(t, k1, b1)
	c.bucket.Put(t, k3, b3)
	c.warm(t, k1, "MISS", b1)
	c.warm(t, k3, "MISS", b3)

	c.partition(2)
	net3.setDown(true)
	failures := c.state(t, 2).Failures
	c.bucket.Delete(t, k1)
	c.bucket.SetACL(k3, "private")
	for _, k := range []string{k1, k3} {
		rep := c.bust(t, 0, k, nil)
		c.wantPeers(t, "cache buster with replica 3 isolated", rep.Peers, []string{replicaIP(1)}, []string{clusterUnreached})
	}
	within(t, 3*clusterRefresh+clusterMargin, "replica 3 failing to read the log while isolated", func() (bool, string) {
		s := c.state(t, 2)
		return s.Failures >= failures+2, fmt.Sprintf("%d failures, last error %q", s.Failures, s.LastError)
	})
	// Isolated, it cannot know: it still serves from its disk, and stays ready. With the peer
	// fill it holds k1 only if it owns it; otherwise it asks the owner, which knows.
	if st, h, _ := c.r[2].get(t, k1); !(st == 200 && h.Get("X-Cache") == "HIT") && !(c.fill && st == 404) {
		t.Errorf("replica 3 isolated, GET %s: %d X-Cache %q; want 200 HIT from its disk (or 404 from the owner with the peer fill)", k1, st, h.Get("X-Cache"))
	}
	if st, body := c.readyz(t, 2); st != 200 {
		t.Errorf("replica 3 isolated after it was ready: readyz %d %s; want it ready, serving its cache", st, body)
	}

	net3.setDown(false)
	c.heal()
	for _, k := range []struct {
		key  string
		body []byte
	}{{k1, b1}, {k3, b3}} {
		within(t, clusterRefresh+clusterMargin, "replica 3 dropping "+k.key+" once its link is back", func() (bool, string) {
			return c.gone(t, 2, k.key, k.body)
		})
	}
}
