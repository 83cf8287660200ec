package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fedicache/fedicache/origin/origintest"
)

// TestOldBucketsAsFallbacks: the bucket first, then the old volume, then an old bucket of the
// provider being left; each answer says where it came from (X-Cache, X-Cache-Store, the
// metric's label), what the old bucket hides (its private ACL) and the old volume hides (0600)
// is never served, a bust on a key only the old bucket has is final, and an old bucket that
// fails is reported on /readyz and /status without failing what the new bucket has.
func TestOldBucketsAsFallbacks(t *testing.T) {
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	bucket := origintest.NewFakeBucket(t)
	old := origintest.NewFakeBucket(t)
	vol := t.TempDir()
	const (
		inNew     = "media_attachments/files/000/000/001/original/aaaaaaaaaaaaaaaa.jpg"
		inVolume  = "media_attachments/files/000/000/002/original/bbbbbbbbbbbbbbbb.jpg"
		inOld     = "media_attachments/files/000/000/003/original/cccccccccccccccc.png"
		hiddenOld = "media_attachments/files/000/000/004/original/dddddddddddddddd.jpg"
		hiddenVol = "media_attachments/files/000/000/005/original/eeeeeeeeeeeeeeee.jpg"
		busted    = "media_attachments/files/000/000/006/original/ffffffffffffffff.jpg"
		nowhere   = "media_attachments/files/000/000/007/original/0000000000000000.jpg"
	)
	bucket.Put(t, inNew, []byte("in the new bucket"))
	old.Put(t, inNew, []byte("the old bucket's stale copy"))
	writeTree(t, vol, map[string][]byte{inVolume: []byte("on the old volume"), hiddenVol: []byte("hidden on the volume")})
	if err := os.Chmod(filepath.Join(vol, filepath.FromSlash(hiddenVol)), 0o600); err != nil {
		t.Fatal(err)
	}
	old.Put(t, inVolume, []byte("the old bucket's copy of a volume file"))
	old.Put(t, inOld, []byte("only in the old bucket"))
	old.Put(t, hiddenOld, []byte("a suspended account's photo"))
	old.SetACL(hiddenOld, "private")
	old.Put(t, busted, []byte("deleted by Mastodon"))
	r := startReplica(t, `
listen: "127.0.0.1:0"
admin_listen: "127.0.0.1:0"
`+bucketYAML(bucket)+`  permission: ""
fallback:
  dir: `+vol+`
  stores:
`+oldBucketYAML("old-provider", old)+`cache_buster:
  secret_header: X-Cache-Buster-Secret
  secret: s3cret
`)
	for _, tc := range []struct {
		key, xcache, store, body string
		status                   int
	}{
		{inNew, "MISS", "", "in the new bucket", 200},
		{inVolume, "FALLBACK", "volume", "on the old volume", 200},
		{inOld, "FALLBACK", "old-provider", "only in the old bucket", 200},
		{hiddenOld, "", "", "", 404},
		{hiddenVol, "", "", "", 404},
		{nowhere, "", "", "", 404},
	} {
		st, h, body := r.get(t, tc.key)
		if st != tc.status || tc.status == 200 && (h.Get("X-Cache") != tc.xcache || h.Get("X-Cache-Store") != tc.store || string(body) != tc.body) {
			t.Errorf("%s: %d X-Cache %q X-Cache-Store %q %q; want %d %q %q %q", tc.key, st, h.Get("X-Cache"), h.Get("X-Cache-Store"), body,
				tc.status, tc.xcache, tc.store, tc.body)
		}
		if tc.status == 404 && bytes.Contains(body, []byte("photo")) {
			t.Errorf("%s: a hidden object's bytes went out: %q", tc.key, body)
		}
	}
	if m := scrapeAdmin(t, r.admin); !strings.Contains(m, `fedicache_fallback_answers_total{store="old-provider"} 1`) ||
		!strings.Contains(m, `fedicache_fallback_answers_total{store="volume"} 1`) {
		t.Errorf("metrics lack the old stores' answers:\n%s", grepLines(m, "fallback_answers"))
	}

	// Mastodon deletes a file that only the old bucket still holds: gone at once, and for good.
	if st, _, _ := r.get(t, busted); st != 200 {
		t.Fatalf("before the bust: %d", st)
	}
	if st, _, _ := r.get(t, busted, "X-Cache-Buster-Secret", "s3cret"); st >= 300 {
		t.Fatalf("bust: %d", st)
	}
	if st, _, body := r.get(t, busted); st != 404 || bytes.Contains(body, []byte("deleted")) {
		t.Errorf("after the bust: %d %q, want 404", st, body)
	}

	// The old bucket goes down: /readyz stays ready and says so, /status names it, and what
	// the new bucket and the old volume have is still served.
	old.SetMode(origintest.Fail500)
	resp, err := http.Get("http://" + r.admin + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	ready, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(ready), "old store old-provider (old-bucket) not answering") {
		t.Errorf("/readyz with the old bucket down: %d %q", resp.StatusCode, ready)
	}
	var status struct {
		OldStores []struct{ Name, Source, Error string } `json:"old_stores"`
	}
	getJSON(t, "http://"+r.admin+"/status", &status)
	if len(status.OldStores) != 2 || status.OldStores[0].Name != "volume" || status.OldStores[0].Error != "" ||
		status.OldStores[1].Name != "old-provider" || status.OldStores[1].Error == "" {
		t.Errorf("/status old_stores %+v: want the volume answering and old-provider failing", status.OldStores)
	}
	if st, _, body := r.get(t, inNew); st != 200 || string(body) != "in the new bucket" {
		t.Errorf("the new bucket's object with the old bucket down: %d %q", st, body)
	}
	const inVolume2 = "media_attachments/files/000/000/008/original/1111111111111111.jpg"
	writeTree(t, vol, map[string][]byte{inVolume2: []byte("also on the old volume")})
	if st, h, _ := r.get(t, inVolume2); st != 200 || h.Get("X-Cache-Store") != "volume" {
		t.Errorf("the old volume's object with the old bucket down: %d %q", st, h.Get("X-Cache-Store"))
	}
	const inOld2 = "media_attachments/files/000/000/009/original/2222222222222222.jpg"
	if st, _, _ := r.get(t, inOld2); st != 502 && st != 504 {
		t.Errorf("a key the old bucket may hold, with it down: %d, want 502 (a failure, never a 404 that Cloudflare would keep)", st)
	}
}

func scrapeAdmin(t *testing.T, admin string) string {
	t.Helper()
	resp, err := http.Get("http://" + admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}

// oldBucketYAML is an entry of fallback.stores for the fake old bucket, named name.
func oldBucketYAML(name string, old *origintest.FakeBucket) string {
	return "    - name: " + name + "\n      endpoint: " + old.URL + "\n      bucket: " + origintest.BucketName +
		"\n      access_key_id: AKOLD\n      secret_access_key: old-secret\n"
}
