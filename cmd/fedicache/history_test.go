package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/fedicache/fedicache/origin/origintest"
	"github.com/fedicache/fedicache/proxy/admin"
)

// useHistoryStep makes serve take a point of its history every step for the test.
func useHistoryStep(t *testing.T, step time.Duration) {
	t.Helper()
	old := historyStep
	historyStep = step
	t.Cleanup(func() { historyStep = old })
}

// tally is public traffic as its answers' headers told it: answers by what gave them, the
// body bytes received, and those of the misses (which the bucket sent).
type tally struct {
	Memory, Disk, Bucket, OldStore uint64
	Served, BucketBytes            uint64
}

// fetch GETs key from r n times, checks the bytes against want, and counts the answers by
// their X-Cache and X-Cache-Tier headers.
func (c *tally) fetch(t *testing.T, r *replica, key string, want []byte, n int) {
	t.Helper()
	for range n {
		code, hdr, body := r.get(t, key)
		if code != http.StatusOK || !bytes.Equal(body, want) {
			t.Fatalf("GET %s: %d, %d bytes, want %d", key, code, len(body), len(want))
		}
		size := uint64(len(body))
		c.Served += size
		switch x, tier := hdr.Get("X-Cache"), hdr.Get("X-Cache-Tier"); {
		case x == "HIT" && tier == "memory":
			c.Memory++
		case x == "HIT" && tier == "disk":
			c.Disk++
		case x == "MISS":
			c.Bucket++
			c.BucketBytes += size
		case x == "FALLBACK":
			c.OldStore++
		default:
			t.Fatalf("GET %s: X-Cache %q, X-Cache-Tier %q", key, x, tier)
		}
	}
}

// historyTotals is the sum of every interval of h, as a tally.
func historyTotals(h *admin.HistoryStatus) tally {
	sum := func(xs []uint64) uint64 {
		var s uint64
		for _, x := range xs {
			s += x
		}
		return s
	}
	return tally{
		Memory: sum(h.Answers.Memory), Disk: sum(h.Answers.Disk), Bucket: sum(h.Answers.Bucket), OldStore: sum(h.Answers.OldStore),
		Served: sum(h.Bytes.Served), BucketBytes: sum(h.Bytes.Bucket),
	}
}

// waitHistory polls /status of the admin at addr until its history satisfies ok, and returns
// it. The sampler takes its points in a goroutine of its own, on its clock: /status is the
// only way to see them, asked on a ticker.
func waitHistory(t *testing.T, addr, what string, ok func(*admin.HistoryStatus) bool) *admin.HistoryStatus {
	t.Helper()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/status")
		if err != nil {
			t.Fatal(err)
		}
		var st admin.Status
		err = json.NewDecoder(resp.Body).Decode(&st)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if st.History == nil {
			t.Fatal("/status of serve has no history")
		}
		if ok(st.History) {
			return st.History
		}
		if time.Now().After(deadline) {
			t.Fatalf("the history never showed %s: %+v", what, historyTotals(st.History))
		}
		<-tick.C
	}
}

// historyWorld is a bucket with a small object (kept in memory) and a large one (on disk
// only), and an old volume with a file the bucket lacks (answered FALLBACK).
type historyWorld struct {
	bucket             *origintest.FakeBucket
	vol                string
	small, large, old  string
	smallB, largeB, vB []byte
}

func newHistoryWorld(t *testing.T) *historyWorld {
	t.Helper()
	w := &historyWorld{
		bucket: origintest.NewFakeBucket(t),
		vol:    t.TempDir(),
		small:  "media_attachments/files/000/000/001/original/0000000000000001.png",
		large:  "media_attachments/files/000/000/002/original/0000000000000002.mp4",
		old:    "media_attachments/files/000/000/003/original/0000000000000003.png",
		smallB: bytes.Repeat([]byte("s"), 30_000),
		largeB: bytes.Repeat([]byte("L"), 3<<20),
		vB:     bytes.Repeat([]byte("v"), 50_000),
	}
	w.bucket.Put(t, w.small, w.smallB)
	w.bucket.Put(t, w.large, w.largeB)
	p := filepath.Join(w.vol, filepath.FromSlash(w.old))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, w.vB, 0o644); err != nil {
		t.Fatal(err)
	}
	return w
}

// config is serve's configuration for w, with extra appended.
func (w *historyWorld) config(t *testing.T, s3URL, extra string) string {
	return `
listen: "127.0.0.1:0"
admin_listen: "127.0.0.1:0"
s3:
  endpoint: ` + s3URL + `
  bucket: ` + origintest.BucketName + `
  access_key_id: AKID
  secret_access_key: secret
  timeout: 120s
fallback:
  dir: ` + w.vol + `
cache:
  memory:
    max_bytes: 64MiB
    max_object_bytes: 1MiB
  disk:
    dir: ` + t.TempDir() + `
    max_bytes: 256MiB
` + extra
}

// traffic sends w's known traffic to r: the small object three times (a miss, then hits), the
// large one twice (a miss, then a disk hit), the old volume's file twice.
func (w *historyWorld) traffic(t *testing.T, r *replica) tally {
	t.Helper()
	var c tally
	c.fetch(t, r, w.small, w.smallB, 3)
	c.fetch(t, r, w.large, w.largeB, 2)
	c.fetch(t, r, w.old, w.vB, 2)
	if c.Bucket < 2 || c.OldStore < 1 || c.Memory+c.Disk < 2 {
		t.Fatalf("the traffic was not answered as planned: %+v", c)
	}
	return c
}

// TestHistorySamplesServe: serve's sampler puts the answers it gave, by what gave them, and the
// bytes it served and received from the bucket into its history, interval by interval, as
// /status shows.
func TestHistorySamplesServe(t *testing.T) {
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	const step = 200 * time.Millisecond
	useHistoryStep(t, step)
	w := newHistoryWorld(t)
	r := startReplica(t, w.config(t, w.bucket.URL, ""))

	// Before any traffic: points of nothing, and when the next comes.
	h := waitHistory(t, r.admin, "a first point", func(h *admin.HistoryStatus) bool { return h.Points() > 0 })
	if got := historyTotals(h); got != (tally{}) || h.StepSeconds != step.Seconds() || h.SpanSeconds != 288*step.Seconds() || h.NextUnixMS <= h.EndUnixMS[h.Points()-1] {
		t.Errorf("before traffic: %+v, %+v", got, h)
	}

	sent := w.traffic(t, r)
	h = waitHistory(t, r.admin, fmt.Sprintf("the traffic sent (%+v)", sent), func(h *admin.HistoryStatus) bool {
		return historyTotals(h) == sent
	})
	if sent.BucketBytes != uint64(len(w.smallB)+len(w.largeB)) {
		t.Logf("the bucket sent %d bytes (the objects again after a dropped memory write)", sent.BucketBytes)
	}
	for i := range h.Points() {
		if start, end := h.Interval(i); !end.After(start) {
			t.Errorf("interval %d: %s to %s", i, start, end)
		}
	}
	if len(h.Backfill) != 0 {
		t.Errorf("a serve without backfill has the backfill's history: %+v", h.Backfill)
	}
}
