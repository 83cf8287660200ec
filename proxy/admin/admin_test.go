package admin_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/fedicache/fedicache/cache"
	"github.com/fedicache/fedicache/proxy/admin"
)

// fakeCache is a Cache with fixed counters that counts its purges.
type fakeCache struct{ purged, prefixPurged atomic.Int32 }

func (c *fakeCache) Stats() cache.Stats {
	return cache.Stats{MemoryHits: 3, Misses: 1, SharedBytes: 24}
}

func (c *fakeCache) Purge(string) int { c.purged.Add(1); return 2 }

func (c *fakeCache) PurgePrefix(string) int { c.prefixPurged.Add(1); return 5 }

// TestConfigIsAllTheAdminKnows: the admin learns that the front drains, what it sent from the
// cache tiers and what the cache holds only through Config, and NewBackfill, which has no front
// nor cache, uses none of them.
func TestConfigIsAllTheAdminKnows(t *testing.T) {
	var draining atomic.Bool
	c := &fakeCache{}
	cfg := admin.Config{Token: adminToken, Cache: c, Draining: draining.Load, HitBytes: func() int64 { return 1000 }}
	get := func(h http.Handler, path string) (int, string) {
		t.Helper()
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		return rec.Code, rec.Body.String()
	}
	status := func(h http.Handler) admin.Status {
		t.Helper()
		_, body := get(h, "/status")
		var st admin.Status
		if err := json.Unmarshal([]byte(body), &st); err != nil {
			t.Fatal(err)
		}
		return st
	}
	purge := func(h http.Handler, query string) (int, string) {
		t.Helper()
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("POST", "/purge?"+query, nil)
		req.Header.Set("Authorization", "Bearer "+adminToken)
		h.ServeHTTP(rec, req)
		return rec.Code, rec.Body.String()
	}

	h := admin.New(cfg)
	if code, body := get(h, "/readyz"); code != 200 || body != "ready\n" {
		t.Errorf("readyz: %d %q", code, body)
	}
	if st := status(h); !st.Ready || st.Draining || st.Cache == nil || st.Cache.MemoryHits != 3 || st.EgressSavedBytes != 1024 {
		t.Errorf("status: %+v, want ready, the cache's figures, 1000+24 bytes saved", st)
	}
	if code, body := purge(h, "key=a/b.png"); code != 200 || !strings.Contains(body, `"purged":2`) || c.purged.Load() != 1 {
		t.Errorf("purge of a key without a State: %d %s, %d purges", code, body, c.purged.Load())
	}
	if code, body := purge(h, "prefix=a/"); code != 200 || !strings.Contains(body, `"purged":5`) || c.prefixPurged.Load() != 1 {
		t.Errorf("purge of a prefix without a State: %d %s, %d purges", code, body, c.prefixPurged.Load())
	}

	draining.Store(true)
	if code, body := get(h, "/readyz"); code != http.StatusServiceUnavailable || body != "shutting down\n" {
		t.Errorf("readyz while draining: %d %q", code, body)
	}
	if st := status(h); st.Ready || !st.Draining {
		t.Errorf("status while draining: ready %v, draining %v", st.Ready, st.Draining)
	}
	if _, body := get(h, "/"); !strings.Contains(body, `class="pill warn">draining<`) {
		t.Error("the page does not say the replica drains")
	}

	b := admin.NewBackfill(cfg)
	if code, body := get(b, "/readyz"); code != 200 || body != "ready\n" {
		t.Errorf("readyz of a backfill given a draining front: %d %q", code, body)
	}
	if st := status(b); !st.Ready || st.Draining || st.Cache != nil || st.EgressSavedBytes != 0 {
		t.Errorf("status of a backfill given a front and a cache: %+v", st)
	}
	if code, _ := purge(b, "key=a/b.png"); code != http.StatusNotFound || c.purged.Load() != 1 {
		t.Errorf("purge on a backfill given a cache: %d, %d purges", code, c.purged.Load())
	}
	if code, body := get(b, "/metrics"); code != 200 || body != "" {
		t.Errorf("/metrics with no registry: %d %q, want 200 and nothing", code, body)
	}
}
