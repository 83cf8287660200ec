package admin_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fedicache/fedicache/origin/origintest"
	"github.com/fedicache/fedicache/proxy/admin"
	"github.com/fedicache/fedicache/proxy/proxytest"
)

// TestReadinessGatesOnTheBucketsFirstAnswerOnly: a replica whose bucket never answered is not
// ready (a wrong endpoint or key stops a rollout before it replaces a working replica); once
// the bucket has answered, its failures keep the replica ready, so the cache and the old volume
// go on serving, and /status tells the bucket is failing.
func TestReadinessGatesOnTheBucketsFirstAnswerOnly(t *testing.T) {
	e := proxytest.NewEnv(t, proxytest.WithTiers, func(c *proxytest.Config) { c.Admin.ReadyTTL = time.Nanosecond })
	e.Bucket.Put(t, bucketKey, []byte("bucket bytes"))
	e.PutVolume(t, volumeKey, []byte("volume bytes"))
	readyz := func() (int, string) {
		t.Helper()
		resp, err := http.Get(e.Admin.URL + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	status := func() admin.Status {
		t.Helper()
		resp, err := http.Get(e.Admin.URL + "/status")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var st admin.Status
		if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
			t.Fatal(err)
		}
		return st
	}

	e.Bucket.SetMode(origintest.Fail500)
	if code, body := readyz(); code != http.StatusServiceUnavailable || !strings.Contains(body, "bucket not answering") {
		t.Errorf("bucket failing from the start: %d %q, want 503", code, body)
	}
	if st := status(); st.Ready || st.Bucket.OK {
		t.Errorf("status before the bucket answered: ready %v, bucket ok %v", st.Ready, st.Bucket.OK)
	}

	e.Bucket.SetMode(origintest.Healthy)
	if code, body := readyz(); code != http.StatusOK || body != "ready\n" {
		t.Errorf("bucket answering: %d %q, want 200", code, body)
	}
	resp, _ := e.Do(t, "GET", "/"+bucketKey)
	if resp.StatusCode != 200 {
		t.Fatalf("GET: %d", resp.StatusCode)
	}

	e.Bucket.SetMode(origintest.Fail500)
	if code, body := readyz(); code != http.StatusOK || !strings.Contains(body, "the bucket is failing") {
		t.Errorf("bucket failing after it answered: %d %q, want 200 saying the bucket fails", code, body)
	}
	if st := status(); !st.Ready || st.Bucket.OK || st.Bucket.Error == "" {
		t.Errorf("status with the bucket failing: ready %v, bucket %+v", st.Ready, st.Bucket)
	}
	// What the replica holds is still served.
	if resp, _ := e.Do(t, "GET", "/"+bucketKey); resp.StatusCode != 200 || resp.Header.Get("X-Cache") != "HIT" {
		t.Errorf("cached object with the bucket failing: %d %s", resp.StatusCode, resp.Header.Get("X-Cache"))
	}
	if resp, _ := e.Do(t, "GET", "/"+volumeKey); resp.StatusCode != 200 {
		t.Errorf("volume object with the bucket failing: %d", resp.StatusCode)
	}
}
