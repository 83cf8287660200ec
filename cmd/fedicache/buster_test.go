package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fedicache/fedicache/cmd/fedicache/config"
	"github.com/fedicache/fedicache/origin/origintest"
)

// replica is a serve started in process for a test.
type replica struct {
	public, admin string
	stop          context.CancelFunc
	done          chan error
}

func startReplica(t *testing.T, yaml string) *replica {
	t.Helper()
	cfg, err := config.Load(writeConfig(t, yaml), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &replica{stop: cancel, done: make(chan error, 1)}
	started := make(chan addrs, 1)
	go func() { r.done <- serve(ctx, cfg, discardLog(), func(a addrs) { started <- a }) }()
	select {
	case a := <-started:
		r.public, r.admin = a.public.String(), a.admin.String()
	case err := <-r.done:
		t.Fatalf("serve: %v", err)
	}
	t.Cleanup(func() { r.close() })
	return r
}

func (r *replica) close() {
	r.stop()
	<-r.done
	r.done <- nil // close is idempotent
}

func (r *replica) get(t *testing.T, key string, hdr ...string) (int, http.Header, []byte) {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+r.public+"/"+key, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

// TestCacheBusterAcrossReplicas: Mastodon's cache buster for a key only on the old volume drops
// it on every replica and tombstones it: 404 from then on, and the backfill never copies it.
func TestCacheBusterAcrossReplicas(t *testing.T) {
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	ln, err := net.Listen("tcp", "127.0.0.2:0") // a second loopback address for the second replica
	if err != nil {
		t.Skipf("no second loopback address: %v", err)
	}
	ln.Close()
	adminPort := freeAdminPort(t) // the same on both addresses, out of the ephemeral range
	lookupPeers = func(context.Context, string) ([]net.IP, error) {
		return []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("127.0.0.2")}, nil
	}
	t.Cleanup(func() { lookupPeers = nil })

	bucket := origintest.NewFakeBucket(t)
	vol := t.TempDir()
	const deleted = "cache/media_attachments/files/000/000/001/original/dddddddddddddddd.jpg"
	const public = "media_attachments/files/000/000/002/original/pppppppppppppppp.jpg"
	secretBytes := []byte("a deleted post's photo")
	writeTree(t, vol, map[string][]byte{deleted: secretBytes})
	bucket.Put(t, public, []byte("public photo"))
	base := `
` + bucketYAML(bucket) + `fallback:
  dir: ` + vol + `
cache_buster:
  secret_header: X-Cache-Buster-Secret
  secret: s3cret
cluster:
  peers: fedicache-peers
  fill: false
admin:
  token: t0ken
`
	a := startReplica(t, base+"listen: \"127.0.0.1:0\"\nadmin_listen: \"127.0.0.1:"+adminPort+"\"\n")
	b := startReplica(t, base+"listen: \"127.0.0.2:0\"\nadmin_listen: \"127.0.0.2:"+adminPort+"\"\n")

	for _, r := range []*replica{a, b} {
		if st, h, body := r.get(t, deleted); st != 200 || h.Get("X-Cache") != "FALLBACK" || !bytes.Equal(body, secretBytes) {
			t.Fatalf("before the buster: %d %q", st, h.Get("X-Cache"))
		}
	}
	// A wrong secret is an ordinary request: no purge.
	if st, h, _ := a.get(t, deleted, "X-Cache-Buster-Secret", "guess"); st != 200 || h.Get("X-Cache") != "HIT" {
		t.Errorf("wrong secret: %d, X-Cache %q; want an ordinary hit", st, h.Get("X-Cache"))
	}
	st, _, body := a.get(t, deleted, "X-Cache-Buster-Secret", "s3cret")
	var rep struct {
		Purged     int
		Tombstoned bool
		Peers      []struct {
			Peer string
			Err  string `json:"error"`
		}
	}
	_ = json.Unmarshal(body, &rep)
	if st != 200 || bytes.Contains(body, secretBytes) || !rep.Tombstoned || rep.Purged < 1 || len(rep.Peers) != 1 || rep.Peers[0].Err != "" {
		t.Fatalf("buster: %d %s", st, body)
	}
	for name, r := range map[string]*replica{"this replica": a, "the other replica": b} {
		if st, _, body := r.get(t, deleted); st != 404 || bytes.Contains(body, secretBytes) {
			t.Errorf("%s after the buster: %d", name, st)
		}
	}
	// A new replica learns the tombstone from the bucket.
	bucket.Put(t, "unrelated.png", []byte("x"))
	code, out, errOut := runCLI(t, "backfill", "--config", writeConfig(t, base))
	if code != 0 || !strings.Contains(out, "copied           0 files") {
		t.Errorf("backfill after the buster: exit %d\n%s%s", code, out, errOut)
	}
	if bucket.PutHeader(deleted) != nil {
		t.Error("the backfill copied a deleted key back into the bucket")
	}

	// A peer down: the purge still happens here and the failure is reported.
	b.close()
	a.get(t, public)
	start := time.Now()
	st, _, body = a.get(t, public, "X-Cache-Buster-Secret", "s3cret")
	_ = json.Unmarshal(body, &rep)
	if st != 200 || rep.Tombstoned || len(rep.Peers) != 1 || rep.Peers[0].Err == "" {
		t.Errorf("buster with a peer down: %d %s", st, body)
	}
	if time.Since(start) > 20*time.Second {
		t.Errorf("a peer down held the buster for %v", time.Since(start))
	}
	if _, h, _ := a.get(t, public); h.Get("X-Cache") != "MISS" {
		t.Errorf("after the buster: X-Cache %q, want MISS (purged)", h.Get("X-Cache"))
	}

	// Mastodon hides the (cached) object: 404 at once after its buster, and no tombstone, as
	// an unsuspension may bring it back.
	bucket.SetACL(public, "private")
	if _, h, _ := a.get(t, public); h.Get("X-Cache") != "HIT" {
		t.Fatalf("before the buster: X-Cache %q", h.Get("X-Cache"))
	}
	_, _, body = a.get(t, public, "X-Cache-Buster-Secret", "s3cret")
	_ = json.Unmarshal(body, &rep)
	if rep.Tombstoned {
		t.Errorf("a hidden object was tombstoned: %s", body)
	}
	if st, _, body := a.get(t, public); st != 404 || bytes.Contains(body, []byte("public photo")) {
		t.Errorf("a hidden object after its buster: %d", st)
	}
}

func discardLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// TestCacheBusterPurgesCloudflare: with cloudflare.zone_id and api_token, a cache-buster request
// purges its public URL at Cloudflare (a stand-in answering as Cloudflare documents).
func TestCacheBusterPurgesCloudflare(t *testing.T) {
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	got := make(chan string, 4)
	cf := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct{ Files []string }
		_ = json.NewDecoder(r.Body).Decode(&body)
		if r.URL.Path != "/zones/zone42/purge_cache" || r.Header.Get("Authorization") != "Bearer cf-token" {
			http.Error(w, `{"success":false,"errors":[{"code":10000,"message":"Authentication error"}]}`, http.StatusForbidden)
			return
		}
		got <- strings.Join(body.Files, ",")
		_, _ = io.WriteString(w, `{"success":true,"errors":[],"messages":[],"result":{"id":"zone42"}}`)
	}))
	defer cf.Close()
	cloudflareAPI = cf.URL
	t.Cleanup(func() { cloudflareAPI = "" })

	bucket := origintest.NewFakeBucket(t)
	const key = "media_attachments/files/000/000/003/original/cccccccccccccccc.png"
	bucket.Put(t, key, []byte("photo"))
	r := startReplica(t, `
listen: "127.0.0.1:0"
admin_listen: "127.0.0.1:0"
`+bucketYAML(bucket)+`cache_buster:
  secret_header: X-Cache-Buster-Secret
  secret: s3cret
cloudflare:
  zone_id: zone42
  api_token: cf-token
`)
	req, _ := http.NewRequest("GET", "http://"+r.public+"/"+key+"?1600000000", nil)
	req.Host = "media.example.social"
	req.Header.Set("X-Cache-Buster-Secret", "s3cret")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"cdn_purge_queued":true`) {
		t.Fatalf("buster: %d %s", resp.StatusCode, body)
	}
	select {
	case files := <-got:
		if files != "https://media.example.social/"+key {
			t.Errorf("Cloudflare was asked to purge %q", files)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Cloudflare was never asked to purge")
	}
}

// TestCacheBusterMissingPlaceholders: Mastodon's busts of its missing.png placeholders (files
// that never existed) cost nothing: no bucket request for the key, no tombstone or log entry
// written, no word to the other replicas. A real bust on the same replica still asks the
// bucket, tombstones the deleted key, tells the peer, and the key answers 404 from then on.
func TestCacheBusterMissingPlaceholders(t *testing.T) {
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	ln, err := net.Listen("tcp", "127.0.0.2:0") // the peer's address
	if err != nil {
		t.Skipf("no second loopback address: %v", err)
	}
	ln.Close()
	adminPort := freeAdminPort(t)
	// The other replica: a stand-in that counts what it is told and takes it.
	var told atomic.Int32
	peerLn, err := net.Listen("tcp", "127.0.0.2:"+adminPort)
	if err != nil {
		t.Fatal(err)
	}
	peer := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		told.Add(1)
		_, _ = io.WriteString(w, `{"purged":0}`)
	})}
	go func() { _ = peer.Serve(peerLn) }()
	t.Cleanup(func() { peer.Close() })
	lookupPeers = func(context.Context, string) ([]net.IP, error) {
		return []net.IP{net.ParseIP("127.0.0.2")}, nil
	}
	t.Cleanup(func() { lookupPeers = nil })

	bucket := origintest.NewFakeBucket(t)
	const deleted = "media_attachments/files/000/000/009/original/9999999999999999.png"
	bucket.Put(t, deleted, []byte("a photo Mastodon deletes"))
	r := startReplica(t, bucketYAML(bucket)+`listen: "127.0.0.1:0"
admin_listen: "127.0.0.1:`+adminPort+`"
cache_buster:
  secret_header: X-Cache-Buster-Secret
  secret: s3cret
cluster:
  peers: fedicache-peers
  fill: false
admin:
  token: t0ken
`)
	if st, h, _ := r.get(t, deleted); st != 200 || h.Get("X-Cache") != "MISS" {
		t.Fatalf("before the busts: %d %q", st, h.Get("X-Cache"))
	}
	type report struct {
		Kind       string
		Tombstoned bool
		Peers      []json.RawMessage
	}
	puts := bucket.Puts()
	for _, key := range []string{
		"avatars/original/missing.png", "avatars/static/missing.png",
		"headers/original/missing.png", "headers/static/missing.png",
		"files/original/missing.png", "files/small/missing.png", "thumbnails/original/missing.png",
	} {
		st, _, body := r.get(t, key, "X-Cache-Buster-Secret", "s3cret")
		var rep report
		if err := json.Unmarshal(body, &rep); err != nil || st != 200 || rep.Kind != "placeholder" || rep.Tombstoned || len(rep.Peers) != 0 {
			t.Errorf("bust of %s: %d %s", key, st, body)
		}
		if n := bucket.Gets(key) + bucket.Heads(key); n != 0 {
			t.Errorf("bust of %s: %d bucket requests for the key, want 0", key, n)
		}
	}
	if n := bucket.Puts() - puts; n != 0 {
		t.Errorf("the busts of placeholders wrote %d objects to the bucket (tombstones, log entries), want 0", n)
	}
	if n := told.Load(); n != 0 {
		t.Errorf("the busts of placeholders were passed to the peer %d times, want 0", n)
	}

	// A real bust: the bucket no longer holds the key.
	bucket.Delete(t, deleted)
	st, _, body := r.get(t, deleted, "X-Cache-Buster-Secret", "s3cret")
	var rep report
	if err := json.Unmarshal(body, &rep); err != nil || st != 200 || rep.Kind != "deleted" || !rep.Tombstoned || len(rep.Peers) != 1 {
		t.Fatalf("a real bust: %d %s", st, body)
	}
	if bucket.Heads(deleted)+bucket.Gets(deleted) == 0 {
		t.Error("a real bust did not ask the bucket")
	}
	if bucket.Puts() == puts {
		t.Error("a real bust wrote no tombstone")
	}
	if told.Load() == 0 {
		t.Error("a real bust was not passed to the peer")
	}
	if st, _, body := r.get(t, deleted); st != 404 || bytes.Contains(body, []byte("a photo")) {
		t.Errorf("the deleted key after its bust: %d", st)
	}
}
