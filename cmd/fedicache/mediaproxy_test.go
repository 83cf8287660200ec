package main

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/fedicache/fedicache/origin/origintest"
)

// ask sends r's public listener a request that is not followed if redirected, with Host host
// when not empty, and returns the status, headers and body of the answer.
func (r *replica) ask(t *testing.T, method, key, host string) (int, http.Header, string) {
	t.Helper()
	req, _ := http.NewRequest(method, "http://"+r.public+"/"+key, nil)
	if host != "" {
		req.Host = host
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// TestRemovedRemoteMediaRedirects: with mastodon.web_domain, a request for a remote media
// attachment's file that neither the bucket nor any old store holds (tootctl media remove
// deleted it) is redirected to Mastodon's media proxy, GET and HEAD alike, after the stores
// confirmed the key is absent. Nothing else is: local media, avatars and thumbnails (the media
// proxy serves attachments' files only), a key the bucket hides or Mastodon deleted, a key an old
// store holds, a request that arrived on the web domain itself, and a store's failure (502).
func TestRemovedRemoteMediaRedirects(t *testing.T) {
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	bucket := origintest.NewFakeBucket(t)
	old := origintest.NewFakeBucket(t)
	vol := t.TempDir()
	const (
		removed    = "cache/media_attachments/files/111/222/333/444/555/666/original/abcdef0123456789.png"
		removedOld = "cache/media_attachments/files/000/000/042/small/0123456789abcdef.jpg"
		local      = "media_attachments/files/111/222/333/444/555/667/original/abcdef0123456789.png"
		avatar     = "cache/accounts/avatars/111/222/333/444/555/668/original/abcdef0123456789.png"
		thumbnail  = "cache/media_attachments/thumbnails/111/222/333/444/555/669/original/abcdef0123456789.png"
		hidden     = "cache/media_attachments/files/111/222/333/444/555/670/original/abcdef0123456789.png"
		deleted    = "cache/media_attachments/files/111/222/333/444/555/671/original/abcdef0123456789.png"
		onVolume   = "cache/media_attachments/files/111/222/333/444/555/672/original/abcdef0123456789.png"
		oldFails   = "cache/media_attachments/files/111/222/333/444/555/673/original/abcdef0123456789.png"
		failing    = "cache/media_attachments/files/111/222/333/444/555/674/original/abcdef0123456789.png"
	)
	bucket.Put(t, hidden, []byte("a suspended account's photo"))
	bucket.SetACL(hidden, "private")
	bucket.Put(t, deleted, []byte("a deleted post's photo"))
	writeTree(t, vol, map[string][]byte{onVolume: []byte("not copied yet")})
	old.FailKey(oldFails, 500)
	bucket.FailKey(failing, 500)
	r := startReplica(t, `
listen: "127.0.0.1:0"
admin_listen: "127.0.0.1:0"
`+bucketYAML(bucket)+`fallback:
  dir: `+vol+`
  stores:
`+oldBucketYAML("old-provider", old)+`cache_buster:
  secret_header: X-Cache-Buster-Secret
  secret: s3cret
mastodon:
  web_domain: Example.Social
`)

	redirected := 0
	for _, c := range []struct {
		method, key, location string
	}{
		{"GET", removed, "https://example.social/media_proxy/111222333444555666/original"},
		{"GET", removed, "https://example.social/media_proxy/111222333444555666/original"},
		{"HEAD", removed, "https://example.social/media_proxy/111222333444555666/original"},
		{"GET", removedOld, "https://example.social/media_proxy/42/small"},
	} {
		st, h, body := r.ask(t, c.method, c.key, "media.example.social")
		if st != 302 || h.Get("Location") != c.location || h.Get("Cache-Control") != "public, max-age=3600" {
			t.Errorf("%s %s: %d, Location %q, Cache-Control %q; want 302 to %s", c.method, c.key, st, h.Get("Location"), h.Get("Cache-Control"), c.location)
		}
		if h.Get("Access-Control-Allow-Origin") != "*" || c.method == "GET" && !strings.Contains(body, c.location) {
			t.Errorf("%s %s: CORS %q, body %q", c.method, c.key, h.Get("Access-Control-Allow-Origin"), body)
		}
		redirected++
	}
	// The first answer: the fetch (one GET) and the confirmation (one HEAD); the others, the
	// confirmation only (the cache remembers the key is absent, but not that it is not hidden).
	if g, hd := bucket.Gets(removed), bucket.Heads(removed); g != 1 || hd != 3 {
		t.Errorf("bucket requests for the removed key: %d GETs, %d HEADs; want 1 and 3", g, hd)
	}

	// Mastodon deletes a cached key (a post deleted): a tombstone, 404 from then on.
	if st, _, _ := r.ask(t, "GET", deleted, ""); st != 200 {
		t.Fatalf("before its deletion: %d", st)
	}
	bucket.Delete(t, deleted)
	if st, _, body := r.get(t, deleted, "X-Cache-Buster-Secret", "s3cret"); st != 200 || !strings.Contains(string(body), `"tombstoned":true`) {
		t.Fatalf("cache buster: %d %s", st, body)
	}

	for _, c := range []struct {
		name, key, host string
		status          int
	}{
		{"local media", local, "", 404},
		{"an avatar", avatar, "", 404},
		{"a custom thumbnail", thumbnail, "", 404},
		{"hidden by its ACL", hidden, "", 404},
		{"hidden, asked again", hidden, "", 404}, // the cache's not-found memory says only "not found"
		{"deleted (tombstone)", deleted, "", 404},
		{"on the old volume", onVolume, "", 200},
		{"an old store failing", oldFails, "", 502},
		{"the bucket failing", failing, "", 502},
		{"asked on the web domain", removed, "example.social:443", 404},
	} {
		st, h, _ := r.ask(t, "GET", c.key, c.host)
		if st != c.status || h.Get("Location") != "" {
			t.Errorf("%s: %d, Location %q; want %d and no redirect", c.name, st, h.Get("Location"), c.status)
		}
	}

	// Counted in /metrics and /status.
	resp, err := http.Get("http://" + r.admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(metrics), "fedicache_media_proxy_redirects_total 4\n") {
		t.Errorf("/metrics: no fedicache_media_proxy_redirects_total 4")
	}
	resp, err = http.Get("http://" + r.admin + "/status")
	if err != nil {
		t.Fatal(err)
	}
	var status struct {
		Sections struct {
			MediaProxy struct {
				WebDomain string `json:"web_domain"`
				Redirects int    `json:"redirects"`
			} `json:"media_proxy"`
		} `json:"sections"`
	}
	err = json.NewDecoder(resp.Body).Decode(&status)
	resp.Body.Close()
	if mp := status.Sections.MediaProxy; err != nil || mp.Redirects != redirected || mp.WebDomain != "example.social" {
		t.Errorf("/status media_proxy: %+v (%v); want %d redirects to example.social", mp, err, redirected)
	}
}

// TestRemovedRemoteMediaWithoutWebDomain: without mastodon.web_domain, removed remote media
// answers 404 as before, and no store is asked twice.
func TestRemovedRemoteMediaWithoutWebDomain(t *testing.T) {
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	bucket := origintest.NewFakeBucket(t)
	const removed = "cache/media_attachments/files/111/222/333/444/555/666/original/abcdef0123456789.png"
	r := startReplica(t, "listen: \"127.0.0.1:0\"\nadmin_listen: \"127.0.0.1:0\"\n"+bucketYAML(bucket))
	if st, h, _ := r.ask(t, "GET", removed, ""); st != 404 || h.Get("Location") != "" {
		t.Errorf("removed remote media: %d, Location %q; want 404", st, h.Get("Location"))
	}
	if n := bucket.Gets(removed) + bucket.Heads(removed); n != 1 {
		t.Errorf("bucket requests for the removed key: %d, want 1", n)
	}
}
