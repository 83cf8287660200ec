package main

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/fedicache/fedicache/cache/tiertest"
)

// TestClusterFillOneBucketGetPerObject: three replicas with cluster.fill, every key asked of
// every replica (as a Service spreads requests): one bucket GET per key, each answer the
// object's bytes; the objects on their owners' disks only. Mastodon then deletes one and sends
// its cache buster to one replica: every replica answers 404, no peer serves what was deleted.
func TestClusterFillOneBucketGetPerObject(t *testing.T) {
	c := newTestCluster(t, clusterOptions{cluster: "  fill: true\n"})
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
