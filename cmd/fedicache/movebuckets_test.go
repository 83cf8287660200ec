package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fedicache/fedicache/origin/origintest"
)

// TestBackfillBetweenBuckets: fedicache backfill copies an old bucket into the new one, streamed
// between two services and server-side within one: every object with its bytes, its own
// Content-Type and Cache-Control and its ACL as the public sees it (public-read stays public,
// private stays private); a key the new bucket holds with other bytes is a conflict, never
// overwritten; a key Mastodon deleted (busted) is never copied back; a rerun copies nothing;
// and --verify says the old bucket is safe to retire only once it is.
func TestBackfillBetweenBuckets(t *testing.T) {
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	for _, mode := range []string{"streamed", "server-side"} {
		t.Run(mode, func(t *testing.T) { backfillBetweenBuckets(t, mode) })
	}
}

func backfillBetweenBuckets(t *testing.T, mode string) {
	const (
		photo    = "media_attachments/files/000/000/001/original/aaaaaaaaaaaaaaaa.png"
		hidden   = "media_attachments/files/000/000/002/original/bbbbbbbbbbbbbbbb.jpg"
		avatar   = "accounts/avatars/000/000/003/original/cccccccccccccccc.gif"
		clash    = "media_attachments/files/000/000/004/original/dddddddddddddddd.jpg"
		deleted  = "media_attachments/files/000/000/005/original/eeeeeeeeeeeeeeee.jpg"
		newer    = "media_attachments/files/000/000/006/original/ffffffffffffffff.jpg"
		newCache = "public, max-age=315576000, immutable"
	)
	newBucket := origintest.NewFakeBucket(t)
	old, newPrefix, oldPrefix := origintest.NewFakeBucket(t), "", ""
	if mode == "server-side" {
		// One service and one key: the old bucket is another prefix of the same bucket.
		old, newPrefix, oldPrefix = newBucket, "new/", "old/"
	}
	old.PutWithHeaders(t, oldPrefix+photo, []byte("a photo, png"), "image/png", "public, max-age=600")
	old.SetACL(oldPrefix+photo, "public-read")
	old.PutWithHeaders(t, oldPrefix+hidden, []byte("a suspended account's photo"), "image/jpeg", newCache)
	old.SetACL(oldPrefix+hidden, "private")
	old.PutWithHeaders(t, oldPrefix+avatar, []byte("GIF89a avatar"), "image/gif", newCache)
	old.SetACL(oldPrefix+avatar, "public-read")
	old.PutWithHeaders(t, oldPrefix+clash, []byte("the old bytes"), "image/jpeg", newCache)
	old.SetACL(oldPrefix+clash, "public-read")
	newBucket.Put(t, newPrefix+clash, []byte("the new bytes")) // same size, other bytes
	old.PutWithHeaders(t, oldPrefix+deleted, []byte("deleted by Mastodon"), "image/jpeg", newCache)
	old.SetACL(oldPrefix+deleted, "public-read")
	newBucket.Put(t, newPrefix+newer, []byte("uploaded after the switch"))

	cfg := `
listen: "127.0.0.1:0"
admin_listen: "127.0.0.1:0"
s3:
  endpoint: ` + newBucket.URL + `
  bucket: ` + origintest.BucketName + `
  prefix: "` + newPrefix + `"
  access_key_id: AKID
  secret_access_key: secret
fallback:
  stores:
    - name: old-provider
      endpoint: ` + old.URL + `
      bucket: ` + origintest.BucketName + `
      prefix: "` + oldPrefix + `"
      access_key_id: AKID
      secret_access_key: secret
cache_buster:
  secret_header: X-Cache-Buster-Secret
  secret: s3cret
`
	// Mastodon deletes one of the old bucket's objects while the move is under way.
	r := startReplica(t, cfg)
	if st, h, _ := r.get(t, deleted); st != 200 || h.Get("X-Cache-Store") != "old-provider" {
		t.Fatalf("before the bust: %d %q", st, h.Get("X-Cache-Store"))
	}
	if st, _, _ := r.get(t, deleted, "X-Cache-Buster-Secret", "s3cret"); st != 200 {
		t.Fatalf("bust: %d", st)
	}
	r.close()

	path := writeConfig(t, cfg)
	verifyOut := filepath.Join(t.TempDir(), "safe.txt")
	code, out, errOut := runCLI(t, "backfill", "--config", path, "--verify", "--verify-out", verifyOut)
	if code != 1 || !strings.Contains(out, "old-provider is NOT safe to retire") {
		t.Errorf("verify before the copy: exit %d, want 1\n%s%s", code, out, errOut)
	}
	code, out, errOut = runCLI(t, "backfill", "--config", path)
	if code != 0 || !strings.Contains(out, "backfill summary: old-provider") || !strings.Contains(out, "copied           3 files") ||
		!strings.Contains(out, "conflicts        1") {
		t.Fatalf("copy: exit %d\n%s%s", code, out, errOut)
	}

	// What the public sees of the new bucket.
	newBucket.RequireSignatures(true)
	for _, tc := range []struct {
		key, body, contentType, cacheControl string
		status                               int
	}{
		{photo, "a photo, png", "image/png", "public, max-age=600", 200},
		{avatar, "GIF89a avatar", "image/gif", newCache, 200},
		{hidden, "", "", "", 403}, // copied private
		{clash, "the new bytes", "", "", 200},
		{deleted, "", "", "", 403}, // never copied: the new bucket has no such key
	} {
		resp, err := http.Get(newBucket.URL + "/" + origintest.BucketName + "/" + newPrefix + tc.key)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status || tc.status == 200 && (string(body) != tc.body ||
			tc.contentType != "" && resp.Header.Get("Content-Type") != tc.contentType ||
			tc.cacheControl != "" && resp.Header.Get("Cache-Control") != tc.cacheControl) {
			t.Errorf("%s, unsigned: %d %q %q %q; want %d %q %q %q", tc.key, resp.StatusCode, body,
				resp.Header.Get("Content-Type"), resp.Header.Get("Cache-Control"), tc.status, tc.body, tc.contentType, tc.cacheControl)
		}
	}
	newBucket.RequireSignatures(false)
	if b, err := newBucket.Object(newPrefix + hidden); err != nil || string(b) != "a suspended account's photo" {
		t.Errorf("the hidden object in the new bucket: %q %v", b, err)
	}
	if b, err := newBucket.Object(newPrefix + deleted); err == nil {
		t.Errorf("the deleted object was copied back: %q", b)
	}
	copied := newBucket.PutHeader(newPrefix + photo)
	if server := copied.Get("X-Amz-Copy-Source") != ""; server != (mode == "server-side") {
		t.Errorf("%s copy: the PUT carried x-amz-copy-source %q", mode, copied.Get("X-Amz-Copy-Source"))
	}

	// A rerun copies nothing (its one PUT is the progress it publishes for the status pages);
	// verify now says the clash keeps the old bucket from retiring.
	puts := newBucket.Puts()
	code, out, _ = runCLI(t, "backfill", "--config", path)
	if code != 0 || !strings.Contains(out, "copied           0 files") || newBucket.Puts()-puts > 1 {
		t.Errorf("rerun: exit %d, %d PUTs\n%s", code, newBucket.Puts()-puts, out)
	}
	code, out, _ = runCLI(t, "backfill", "--config", path, "--verify=hash", "--verify-out", verifyOut, "--source", "old-provider")
	listed := readLines(t, strings.TrimSuffix(verifyOut, ".txt")+"-old-provider.txt")
	if code != 1 || !strings.Contains(out, "mismatched 1") || len(listed) != 3 {
		t.Errorf("verify with a clash: exit %d, %d keys safe (%q)\n%s", code, len(listed), listed, out)
	}
	if code, _, errOut := runCLI(t, "backfill", "--config", path, "--source", "wasabi"); code != 2 || !strings.Contains(errOut, "--source wasabi: no old store has that name") {
		t.Errorf("--source of no store: exit %d\n%s", code, errOut)
	}
}

func readLines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Fields(string(b))
}

// TestOldBucketAnswersAreCopiedFirst: with backfill.enabled, an object answered from an old
// bucket (X-Cache: FALLBACK from old-provider) is copied into the new bucket at once, with its
// ACL, even when the walk is held back by a tiny rate; an object the old bucket hides is never
// answered, and stays private when the walk copies it.
func TestOldBucketAnswersAreCopiedFirst(t *testing.T) {
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	newBucket, old := origintest.NewFakeBucket(t), origintest.NewFakeBucket(t)
	const key = "media_attachments/files/000/000/009/original/9999999999999999.jpg"
	for _, k := range []string{"a/1.jpg", "a/2.jpg", "a/3.jpg", key} {
		old.PutWithHeaders(t, k, []byte("bytes of "+k), "image/jpeg", "public, max-age=315576000, immutable")
		old.SetACL(k, "public-read")
	}
	r := startReplica(t, `
listen: "127.0.0.1:0"
admin_listen: "127.0.0.1:0"
`+bucketYAML(newBucket)+`fallback:
  stores:
`+oldBucketYAML("old-provider", old)+`backfill:
  enabled: true
  rate: 0.001
`)
	if st, h, body := r.get(t, key); st != 200 || h.Get("X-Cache") != "FALLBACK" || h.Get("X-Cache-Store") != "old-provider" || string(body) != "bytes of "+key {
		t.Fatalf("from the old bucket: %d %q %q %q", st, h.Get("X-Cache"), h.Get("X-Cache-Store"), body)
	}
	within(t, 20*time.Second, "the object answered from the old bucket reaches the new one", func() (bool, string) {
		b, err := newBucket.Object(key)
		return err == nil && string(b) == "bytes of "+key, fmt.Sprint(err)
	})
	newBucket.RequireSignatures(true)
	resp, err := http.Get(newBucket.URL + "/" + origintest.BucketName + "/" + key)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("the copy, unsigned: %d, want 200 (public-read carried over)", resp.StatusCode)
	}
	newBucket.RequireSignatures(false)
	if st, h, _ := r.get(t, key); st != 200 || h.Get("X-Cache-Store") != "" {
		t.Errorf("after the copy: %d, X-Cache-Store %q; want the cached or new bucket's answer", st, h.Get("X-Cache-Store"))
	}
}
