package admin_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/fedicache/fedicache/origin"
	"github.com/fedicache/fedicache/proxy/cluster"
	"github.com/fedicache/fedicache/proxy/proxytest"
)

// stateStub is a ClusterState that records what it is asked, and a cache Guard that answers
// ErrNotReady until it is loaded, as cache/state does.
type stateStub struct {
	loaded    atomic.Bool
	recordErr error

	mu       sync.Mutex
	recorded []string // "kind key"
	applied  []string
}

func (s *stateStub) Apply(kind, key, entry string) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.applied = append(s.applied, strings.TrimSpace(kind+" "+key+" "+entry))
	return 1, nil
}

func (s *stateStub) Record(_ context.Context, kind, key string) (int, string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.recorded = append(s.recorded, kind+" "+key)
	if s.recordErr != nil {
		return 1, "", s.recordErr
	}
	return 1, "entry-" + kind, nil
}

func (s *stateStub) Loaded() bool { return s.loaded.Load() }

func (s *stateStub) LastError() string {
	if s.loaded.Load() {
		return ""
	}
	return "s3: list: SlowDown"
}

func (s *stateStub) Status() any { return map[string]bool{"loaded": s.loaded.Load()} }

func (s *stateStub) Check(string) error {
	if !s.loaded.Load() {
		return origin.ErrNotReady
	}
	return nil
}

func (s *stateStub) take() (recorded, applied []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	recorded, applied, s.recorded, s.applied = s.recorded, s.applied, nil, nil
	return recorded, applied
}

// TestNothingServedBeforeTheStateLoads: until the record of deleted and hidden media is loaded,
// media answers 503 with Retry-After (never bytes, never the old volume), /readyz 503 saying
// why, and /status not ready; then all serve.
func TestNothingServedBeforeTheStateLoads(t *testing.T) {
	st := &stateStub{}
	e := proxytest.NewEnv(t, proxytest.WithTiers, func(c *proxytest.Config) { c.Admin.State = st; c.Cache.Guard = st })
	e.Bucket.Put(t, bucketKey, []byte("bucket bytes"))
	e.PutVolume(t, volumeKey, []byte("volume bytes"))
	for _, k := range []string{bucketKey, volumeKey} {
		for _, method := range []string{"GET", "HEAD"} {
			resp, body := e.Do(t, method, "/"+k)
			if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" || strings.Contains(string(body), "bytes") {
				t.Errorf("%s %s before the state loaded: %d, Retry-After %q, body %q", method, k, resp.StatusCode, resp.Header.Get("Retry-After"), body)
			}
		}
	}
	if n := e.Bucket.TotalGets(); n != 0 {
		t.Errorf("%d bucket GETs before the state loaded", n)
	}
	code, body := e.AdminDo(t, "GET", "/readyz", "")
	if code != 503 || !strings.Contains(body, "loading the record of deleted and hidden media") || !strings.Contains(body, "SlowDown") {
		t.Errorf("readyz before the state loaded: %d %q", code, body)
	}
	_, body = e.AdminDo(t, "GET", "/status", "")
	var status struct {
		Ready bool
		State map[string]bool
	}
	_ = json.Unmarshal([]byte(body), &status)
	if status.Ready || status.State == nil || status.State["loaded"] {
		t.Errorf("status before the state loaded: %s", body)
	}

	st.loaded.Store(true)
	if code, body := e.AdminDo(t, "GET", "/readyz", ""); code != 200 {
		t.Errorf("readyz once loaded: %d %q", code, body)
	}
	if resp, body := e.Do(t, "GET", "/"+bucketKey); resp.StatusCode != 200 || string(body) != "bucket bytes" {
		t.Errorf("once loaded: %d %q", resp.StatusCode, body)
	}
	if resp, body := e.Do(t, "GET", "/"+volumeKey); resp.StatusCode != 200 || string(body) != "volume bytes" {
		t.Errorf("once loaded, the volume: %d %q", resp.StatusCode, body)
	}
}

// TestPurgeGoesThroughTheClusterState: a purge from outside is recorded (every replica replays
// it); one a peer forwarded is applied here only; the kinds Mastodon's deletions and hidings
// need travel with it; a failed record is reported, not hidden.
func TestPurgeGoesThroughTheClusterState(t *testing.T) {
	st := &stateStub{}
	st.loaded.Store(true)
	e := proxytest.NewEnv(t, proxytest.WithTiers, func(c *proxytest.Config) { c.Admin.State = st; c.Cache.Guard = st })
	purge := func(path string, forwarded bool) (int, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest("POST", e.Admin.URL+path, nil)
		req.Header.Set("Authorization", "Bearer "+adminToken)
		if forwarded {
			req.Header.Set(cluster.ForwardedHeader, "1")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var rep map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&rep)
		return resp.StatusCode, rep
	}
	for _, tc := range []struct {
		path      string
		forwarded bool
		recorded  string
		applied   string
	}{
		{"/purge?key=" + bucketKey, false, "purged " + bucketKey, ""},
		{"/purge?key=" + bucketKey + "&kind=hidden", false, "hidden " + bucketKey, ""},
		{"/purge?prefix=media_attachments/", false, "prefix_purged media_attachments/", ""},
		{cluster.PurgePath(cluster.KindDeleted, bucketKey, "e1"), true, "", "deleted " + bucketKey + " e1"},
		{"/purge?key=" + bucketKey + "&tombstone=1", true, "", "deleted " + bucketKey},
		{cluster.PurgePath(cluster.KindHidden, bucketKey, ""), true, "", "hidden " + bucketKey},
		{cluster.PurgePath(cluster.KindPrefixPurged, "cache/", ""), true, "", "prefix_purged cache/"},
	} {
		code, rep := purge(tc.path, tc.forwarded)
		rec, app := st.take()
		if code != 200 || strings.Join(rec, ",") != tc.recorded || strings.Join(app, ",") != tc.applied ||
			(tc.recorded != "") != (rep["recorded"] == true) {
			t.Errorf("%s (forwarded %v): %d %v; recorded %q, applied %q", tc.path, tc.forwarded, code, rep, rec, app)
		}
	}
	if code, _ := purge("/purge?prefix=cache/&kind=deleted", false); code != 400 {
		t.Errorf("a prefix deleted: %d, want 400", code)
	}
	st.recordErr = errors.New("s3: put: SlowDown")
	if code, rep := purge("/purge?key="+bucketKey, false); code != 200 || rep["recorded"] == true || !strings.Contains(rep["error"].(string), "SlowDown") {
		t.Errorf("a failed record: %d %v", code, rep)
	}
}
