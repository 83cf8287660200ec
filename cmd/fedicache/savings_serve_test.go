package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fedicache/fedicache/cache/tiertest"
	"github.com/fedicache/fedicache/origin/origintest"
	"github.com/fedicache/fedicache/proxy/admin"
)

// savingsOfReplica returns the savings section of the /status at adminAddr.
func savingsOfReplica(t *testing.T, adminAddr string) admin.Savings {
	t.Helper()
	var doc struct {
		Sections struct {
			Savings *admin.Savings `json:"savings"`
		} `json:"sections"`
	}
	getJSON(t, "http://"+adminAddr+"/status", &doc)
	if doc.Sections.Savings == nil {
		t.Fatalf("%s/status has no sections.savings", adminAddr)
	}
	return *doc.Sections.Savings
}

// fastSavings publishes and reads the savings every few tenths of a second for the test.
func fastSavings(t *testing.T) {
	t.Helper()
	every, readEvery := savingsEvery, savingsReadEvery
	savingsEvery, savingsReadEvery = 100*time.Millisecond, 200*time.Millisecond
	t.Cleanup(func() { savingsEvery, savingsReadEvery = every, readEvery })
}

// TestSavingsThroughTheFront: real requests through the front, a miss then hits from disk and
// memory (a 304 and a HEAD among them): /status, /metrics and the status page show the bytes
// and the requests the bucket did not get, and their money at the configured prices. A restart
// keeps the day's counts: the first process published them at shutdown, beside which the
// second publishes its own.
func TestSavingsThroughTheFront(t *testing.T) {
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	bucket := origintest.NewFakeBucket(t)
	const key = "media_attachments/files/000/000/777/original/7777777777777777.png"
	const size = 50_000
	data := tiertest.Blob(77, size)
	bucket.Put(t, key, data)
	yaml := `listen: "127.0.0.1:0"
admin_listen: "127.0.0.1:0"
` + bucketYAML(bucket) + `  permission: ""
cache:
  disk:
    dir: ` + t.TempDir() + `
cost:
  egress_per_gib: 1000
  get_per_1000: 250
  currency: USD
`
	r := startReplica(t, yaml)
	st, h, body := r.get(t, key)
	if st != 200 || h.Get("X-Cache") != "MISS" || !bytes.Equal(body, data) {
		t.Fatalf("first GET: %d %q", st, h.Get("X-Cache"))
	}
	for range 2 {
		if st, h, body := r.get(t, key); st != 200 || h.Get("X-Cache") != "HIT" || !bytes.Equal(body, data) {
			t.Fatalf("GET again: %d %q, want a HIT", st, h.Get("X-Cache"))
		}
	}
	if st, h, _ := r.get(t, key, "If-None-Match", h.Get("ETag")); st != 304 || h.Get("X-Cache") != "HIT" {
		t.Fatalf("conditional GET: %d %q, want 304 from the cache", st, h.Get("X-Cache"))
	}
	resp, err := http.Head("http://" + r.public + "/" + key)
	if err != nil || resp.StatusCode != 200 || resp.Header.Get("X-Cache") != "HIT" {
		t.Fatalf("HEAD: %v %v", resp, err)
	}
	resp.Body.Close()
	if n := bucket.Gets(key); n != 1 {
		t.Fatalf("%d bucket GETs for five answers, want 1", n)
	}

	// Four answers without the bucket (two GETs with bytes, a 304 and a HEAD without).
	// A body's bytes are counted when its stream closes, just after the client has them all.
	want := admin.SavedCounts{TierBytes: 2 * size, TierRequests: 4}
	var s admin.Savings
	within(t, 5*time.Second, "the answers counted", func() (bool, string) {
		s = savingsOfReplica(t, r.admin)
		return s.Day.SavedCounts == want, fmt.Sprintf("%+v", s.Day.SavedCounts)
	})
	wantCounts(t, "/status month", s.Month.SavedCounts, want)
	// 100,000 bytes at 1000 a GiB, 4 requests at 250 per 1,000.
	egressMoney := float64(2*size) / (1 << 30) * 1000
	checkMoney(t, "/status day", s.Day.Money, egressMoney, 1)
	if !s.Priced || s.Currency != "USD" || s.Prices.GetPer1000 != 250 || s.Day.Requests != 4 || s.Day.EgressBytes != 2*size {
		t.Errorf("/status savings: %+v", s)
	}

	metrics := scrapeAdmin(t, r.admin)
	for _, line := range []string{
		`fedicache_saved_egress_bytes{period="day"} 100000`,
		`fedicache_saved_egress_bytes{period="month"} 100000`,
		`fedicache_saved_requests{period="day"} 4`,
		`fedicache_saved_money{currency="USD",kind="requests",period="day"} 1`,
		fmt.Sprintf(`fedicache_saved_money{currency="USD",kind="egress",period="month"} %v`, egressMoney),
	} {
		if !strings.Contains(metrics, line+"\n") {
			t.Errorf("/metrics lacks %s; has:\n%s", line, grepLines(metrics, "saved"))
		}
	}

	page := strings.ReplaceAll(getBody(t, "http://"+r.admin+"/"), "\u00a0", " ") // money keeps to one line
	checkPage(t, page, `id="saved"`, `id="saved-headline">1.09 USD<`, "98 KiB not sent · 0.09 USD",
		"4 requests not asked · 1.00 USD", "today (UTC)")

	// A restart: the first process's counts stay the day's.
	r.close()
	if keys := savingsKeys(t, bucket); len(keys) != 1 {
		t.Fatalf("published at shutdown: %q, want one object", keys)
	}
	r2 := startReplica(t, yaml)
	within(t, 5*time.Second, "the restarted replica shows the day's counts", func() (bool, string) {
		s := savingsOfReplica(t, r2.admin)
		return s.Day.SavedCounts == want, fmt.Sprintf("%+v", s.Day.SavedCounts)
	})
	if st, h, _ := r2.get(t, key); st != 200 || h.Get("X-Cache") != "HIT" {
		t.Fatalf("after the restart: %d %q, want a HIT from disk", st, h.Get("X-Cache"))
	}
	want = admin.SavedCounts{TierBytes: 3 * size, TierRequests: 5}
	within(t, 5*time.Second, "the day with the restarted replica's first answer", func() (bool, string) {
		s := savingsOfReplica(t, r2.admin)
		return s.Day.SavedCounts == want, fmt.Sprintf("%+v", s.Day.SavedCounts)
	})
	r2.close()
	if keys := savingsKeys(t, bucket); len(keys) != 2 {
		t.Errorf("after the second shutdown: %q, want the two processes' counts", keys)
	}
}

// TestSavingsOfThePeerFill: three replicas with cluster.fill, one object asked twice of each:
// one bucket GET, and every other answer saved, from the owner's disk or through the owner's
// tier. Every replica sums the same cluster-wide figures from the counts the others published.
func TestSavingsOfThePeerFill(t *testing.T) {
	fastSavings(t)
	c := newTestCluster(t, clusterOptions{cluster: "  fill: true\n"})
	const key = "media_attachments/files/000/003/001/original/f000000000000031.png"
	const size = 20_000
	data := tiertest.Blob(31, size)
	c.bucket.Put(t, key, data)
	for range 2 {
		for i := range c.r {
			c.wantServed(t, i, key, data, "MISS", "HIT")
		}
	}
	if n := c.bucket.Gets(key); n != 1 {
		t.Fatalf("%d bucket GETs for six answers, want 1", n)
	}
	for i := range c.r {
		within(t, 5*time.Second, fmt.Sprintf("replica %d sums the cluster's savings", i+1), func() (bool, string) {
			s := savingsOfReplica(t, c.r[i].admin)
			m := s.Month
			ok := m.Requests == 5 && m.EgressBytes == 5*size && m.PeerRequests >= 3 && m.PeerBytes == m.PeerRequests*size && s.Counts >= 3
			return ok, fmt.Sprintf("%+v over %d counts", m.SavedCounts, s.Counts)
		})
	}
}

func getBody(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("%s: %d", url, resp.StatusCode)
	}
	return string(b)
}

func checkPage(t *testing.T, page string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(page, w) {
			i := strings.Index(page, `id="saved"`)
			t.Errorf("the status page lacks %q; its card:\n%s", w, page[max(i, 0):min(max(i, 0)+3000, len(page))])
		}
	}
}
