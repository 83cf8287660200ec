package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/fedicache/fedicache/cache/state"
	"github.com/fedicache/fedicache/cache/tiertest"
	"github.com/fedicache/fedicache/proxy/admin"
)

// TestClusterFillOneBucketGetPerObject: three replicas with cluster.fill, every key asked of
// every replica (as a Service spreads requests): one bucket GET per key, each answer the
// object's bytes; the objects on their owners' disks only. Mastodon then deletes one and sends
// its cache buster to one replica: every replica answers 404, no peer serves what was deleted.
func TestClusterFillOneBucketGetPerObject(t *testing.T) {
	c := newTestCluster(t, clusterOptions{cluster: "  fill: true\n"}) // the default
	const keys = 6
	data := map[string][]byte{}
	for k := range keys {
		key := fmt.Sprintf("media_attachments/files/000/002/%03d/original/f%015d.png", k, k)
		data[key] = tiertest.Blob(uint64(700+k), 20_000)
		c.bucket.Put(t, key, data[key])
	}
	for key, want := range data {
		for i := range c.r {
			c.wantServed(t, i, key, want, "MISS", "HIT")
		}
		if gets := c.bucket.Gets(key); gets != 1 {
			t.Errorf("%s: %d bucket GETs from 3 replicas, want 1", key, gets)
		}
	}
	var entries int64
	for i := range c.r {
		entries += c.diskEntries(t, i)
	}
	if entries != keys {
		t.Errorf("%d disk entries over the cluster, want %d: each object on its owner's disk only", entries, keys)
	}
	// Each non-owner asked the owner once per key: 2 asks per key, all answered, across the
	// cluster; each replica owns a third of the keys and says so on /status and /metrics.
	var asks, served, bucketBytes, peerBytes uint64
	for i := range c.r {
		st := c.clusterStatus(t, i)
		if len(st.Members) != 3 || st.Self != c.peerAddr(replicaIP(i)) || st.Share < 0.33 || st.Share > 0.34 {
			t.Errorf("replica %d /status cluster: %+v", i+1, st)
		}
		asks += st.Asked.Asks
		served += st.Served.Served
		bucketBytes += st.BucketBytes
		peerBytes += st.Asked.Bytes
		if code, body := c.admin(t, i, "GET", "/metrics"); code != 200 || !bytes.Contains(body, []byte("fedicache_peer_fill_asks_total")) ||
			!bytes.Contains(body, []byte("fedicache_cluster_owner_share 0.33")) {
			t.Errorf("replica %d /metrics: %d, no peer fill figures", i+1, code)
		}
		if code, body := c.admin(t, i, "GET", "/"); code != 200 || !bytes.Contains(body, []byte(`id="cluster-share">33.3%<`)) ||
			!bytes.Contains(body, []byte("among 3 replicas")) || !bytes.Contains(body, []byte(st.Self)) {
			t.Errorf("replica %d status page: %d, no cluster card with its share", i+1, code)
		}
	}
	if asks != 2*keys || served != 2*keys {
		t.Errorf("%d asks sent and %d served over the cluster, want %d each", asks, served, 2*keys)
	}
	// The bucket sent each object once, to its owner; the others got it from the owners.
	if bucketBytes != keys*20_000 || peerBytes != 2*keys*20_000 {
		t.Errorf("bytes from the bucket %d and from peers %d over the cluster; want %d and %d", bucketBytes, peerBytes, keys*20_000, 2*keys*20_000)
	}
	// fedicache's own state is never served, to a peer either (the token does not open it).
	stateKey := state.DefaultPrefix + "peer-test/secret.json"
	c.bucket.Put(t, stateKey, []byte(`{"secret":true}`))
	for i := range c.r {
		if code, _ := c.admin(t, i, "GET", "/peer/object?key="+stateKey, "Authorization", "Bearer "+clusterToken); code != 404 {
			t.Errorf("replica %d, peer ask for %s: %d, want 404", i+1, stateKey, code)
		}
	}
	for key, secret := range data {
		c.bucket.Delete(t, key) // Mastodon deletes the file, then sends the cache buster
		rep := c.bust(t, 1, key, secret)
		if rep.Error != "" {
			t.Fatalf("bust %s: %s", key, rep.Error)
		}
		for i := range c.r {
			c.wantGone(t, i, key, secret)
		}
		break
	}
}

// clusterStatus returns the cluster section of replica i's /status.
func (c *testCluster) clusterStatus(t *testing.T, i int) admin.ClusterStatus {
	t.Helper()
	st, body := c.admin(t, i, "GET", "/status")
	var s struct {
		Cluster *admin.ClusterStatus `json:"cluster"`
	}
	if err := json.Unmarshal(body, &s); st != 200 || err != nil || s.Cluster == nil {
		t.Fatalf("replica %d /status: %d %s (%v); want a cluster section", i+1, st, body, err)
	}
	return *s.Cluster
}

// diskEntries returns the entries of replica i's disk tier, from its /status.
func (c *testCluster) diskEntries(t *testing.T, i int) int64 {
	t.Helper()
	st, body := c.admin(t, i, "GET", "/status")
	var s struct {
		Cache struct {
			Disk struct {
				Entries int64 `json:"entries"`
			} `json:"disk"`
		} `json:"cache"`
	}
	if err := json.Unmarshal(body, &s); st != 200 || err != nil {
		t.Fatalf("replica %d /status: %d (%v)", i+1, st, err)
	}
	return s.Cache.Disk.Entries
}
