package backfill_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fedicache/fedicache/backfill"
	"github.com/fedicache/fedicache/cache/tiertest"
	"github.com/fedicache/fedicache/origin"
	"github.com/fedicache/fedicache/origin/origintest"
	"github.com/fedicache/fedicache/origin/s3"
	"github.com/fedicache/fedicache/origin/s3/s3test"
	"github.com/fedicache/fedicache/origin/volume"
)

// world is an old volume on disk and a fake bucket, with the clients the backfill uses.
type world struct {
	bucket *origintest.FakeBucket
	s3     *s3.Bucket
	dir    string
	vol    *volume.Volume
	files  map[string][]byte
}

func newWorld(t *testing.T, files map[string][]byte) *world {
	t.Helper()
	w := &world{bucket: origintest.NewFakeBucket(t), dir: t.TempDir(), files: files}
	writeFiles(t, w.dir, files)
	var err error
	if w.vol, err = volume.Open(w.dir); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.vol.Close() })
	w.s3 = s3test.New(t, w.bucket, func(c *s3.Config) { c.MaxAttempts, c.MaxBackoff = 8, 20*time.Millisecond })
	return w
}

// writeFiles writes files (key -> bytes) under dir, readable by all.
func writeFiles(t testing.TB, dir string, files map[string][]byte) {
	t.Helper()
	for k, v := range files {
		p := filepath.Join(dir, filepath.FromSlash(k))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, v, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// mastodonTree returns n files of Mastodon's shapes and sizes (kept small for tests).
func mastodonTree(n int) map[string][]byte {
	files := map[string][]byte{}
	classes := []string{"media_attachments/files", "accounts/avatars", "accounts/headers", "custom_emojis/images", "cache/media_attachments/files"}
	exts := []string{"jpg", "png", "webp", "mp4", "gif", "mp3"}
	for i := range n {
		key := fmt.Sprintf("%s/%03d/%03d/%03d/%s/%016x.%s", classes[i%len(classes)], i/1000, i/10%100, i,
			[]string{"original", "small"}[i%2], i*7919, exts[i%len(exts)])
		files[key] = tiertest.Blob(uint64(i), 100+i*37%20_000)
	}
	return files
}

// contents lists the bucket: key -> bytes.
func (w *world) contents(t *testing.T) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	err := w.s3.List(context.Background(), "", func(o origin.Object) error {
		body, _, err := w.s3.Get(context.Background(), o.Key, nil)
		if err != nil {
			return err
		}
		defer body.Close()
		b, err := io.ReadAll(body)
		out[o.Key] = b
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func (w *world) run(t *testing.T, cfg backfill.Config) backfill.Snapshot {
	t.Helper()
	p := backfill.NewProgress()
	if err := backfill.Run(context.Background(), w.vol, w.s3, cfg, p); err != nil {
		t.Fatalf("Run: %v", err)
	}
	return p.Snapshot()
}

func TestDryRunWritesNothing(t *testing.T) {
	w := newWorld(t, mastodonTree(50))
	var planned []string
	s := w.run(t, backfill.Config{DryRun: true, ACL: "public-read", OnPlan: func(k string, _ int64, _ string) { planned = append(planned, k) }})
	if len(planned) != 50 || s.ToCopy != 50 || s.Copied != 0 {
		t.Errorf("dry run planned %d, ToCopy %d, Copied %d; want 50, 50, 0", len(planned), s.ToCopy, s.Copied)
	}
	if !sort.StringsAreSorted(planned) {
		t.Error("the plan is not in key order")
	}
	if n := w.bucket.Puts(); n != 0 {
		t.Errorf("a dry run sent %d PUTs", n)
	}
}

func TestCopyEverythingOnceThenNothing(t *testing.T) {
	files := mastodonTree(300)
	files["backups/dumps/000/000/001/original/archive.zip"] = []byte("private export")
	w := newWorld(t, files)
	cfg := backfill.Config{ACL: "public-read", DenyPrefixes: []string{"backups/", "imports/"}, Concurrency: 4}
	s := w.run(t, cfg)
	if s.Copied != 300 || s.Failed != 0 || s.Excluded != 1 || s.Scanned != 301 {
		t.Fatalf("first run: %+v", s)
	}
	got := w.contents(t)
	if len(got) != 300 {
		t.Errorf("the bucket holds %d objects, want 300", len(got))
	}
	for k, v := range files {
		if strings.HasPrefix(k, "backups/") {
			if _, ok := got[k]; ok {
				t.Errorf("a denied key was copied: %s", k)
			}
			continue
		}
		if !bytes.Equal(got[k], v) {
			t.Errorf("%s: %d bytes in the bucket, %d on the volume", k, len(got[k]), len(v))
		}
		m, err := w.s3.Stat(context.Background(), k)
		if err != nil || m.ContentType != origin.ContentType(k) {
			t.Errorf("%s: Content-Type %q, want %q (%v)", k, m.ContentType, origin.ContentType(k), err)
		}
		h := w.bucket.PutHeader(k)
		if h.Get("Cache-Control") != backfill.MastodonCacheControl || h.Get("X-Amz-Acl") != "public-read" || h.Get("Content-Md5") == "" {
			t.Errorf("%s: PUT with Cache-Control %q, ACL %q, Content-MD5 %q", k, h.Get("Cache-Control"), h.Get("X-Amz-Acl"), h.Get("Content-Md5"))
		}
	}
	puts, copiedBytes := w.bucket.Puts(), s.BytesCopied
	s = w.run(t, cfg)
	if s.Copied != 0 || s.Present != 300 || s.BytesRead != 0 || s.BytesPresent != copiedBytes {
		t.Errorf("second run: %+v; want nothing copied, every byte present", s)
	}
	if w.bucket.Puts() != puts {
		t.Errorf("the second run sent %d PUTs", w.bucket.Puts()-puts)
	}
}

func TestConflictIsReportedNotOverwritten(t *testing.T) {
	files := mastodonTree(10)
	w := newWorld(t, files)
	var key string
	for k := range files {
		key = k
		break
	}
	w.bucket.Put(t, key, []byte("the bucket's newer truth"))
	s := w.run(t, backfill.Config{ACL: "public-read"})
	if s.Conflicts != 1 || s.Copied != 9 || len(s.ConflictKeys) != 1 || s.ConflictKeys[0] != key {
		t.Errorf("conflict: %+v", s)
	}
	if got := w.contents(t)[key]; string(got) != "the bucket's newer truth" {
		t.Errorf("the conflicting object was overwritten: %q", got)
	}
}

func TestHiddenFilesGoPrivateOrAreSkipped(t *testing.T) {
	files := mastodonTree(6)
	w := newWorld(t, files)
	var hidden string
	for k := range files {
		hidden = k
		break
	}
	if err := os.Chmod(filepath.Join(w.dir, filepath.FromSlash(hidden)), 0o600); err != nil {
		t.Fatal(err)
	}
	s := w.run(t, backfill.Config{ACL: ""})
	if s.PrivateSkipped != 1 || s.Copied != 5 || len(s.PrivateSkips) != 1 || s.PrivateSkips[0] != hidden {
		t.Errorf("without ACLs: %+v", s)
	}
	if h := w.bucket.PutHeader(hidden); h != nil {
		t.Error("a hidden file was copied to a bucket without ACLs")
	}
	s = w.run(t, backfill.Config{ACL: "public-read"})
	if s.Private != 1 || s.Copied != 1 {
		t.Errorf("with ACLs: %+v", s)
	}
	if acl := w.bucket.PutHeader(hidden).Get("X-Amz-Acl"); acl != "private" {
		t.Errorf("a hidden file went up with ACL %q, want private", acl)
	}
}

func TestThrottlingIsRetried(t *testing.T) {
	w := newWorld(t, mastodonTree(60))
	w.bucket.FailEvery(3, http.StatusServiceUnavailable)
	s := w.run(t, backfill.Config{ACL: "public-read", Concurrency: 4})
	w.bucket.FailEvery(0, 0)
	if s.Copied != 60 || s.Failed != 0 {
		t.Errorf("with one request in three throttled: %+v", s)
	}
	if got := w.contents(t); len(got) != 60 {
		t.Errorf("%d objects in the bucket, want 60", len(got))
	}
}

func TestOneFileFailingStopsNothing(t *testing.T) {
	files := mastodonTree(20)
	w := newWorld(t, files)
	var bad string
	for k := range files {
		bad = k
		break
	}
	w.bucket.FailKey(bad, http.StatusInternalServerError) // for good: every attempt
	p := backfill.NewProgress()
	err := backfill.Run(context.Background(), w.vol, w.s3, backfill.Config{ACL: "public-read"}, p)
	s := p.Snapshot()
	if err != nil || s.Copied != 19 || s.Failed != 1 || len(s.Failures) != 1 || s.Failures[0].Key != bad {
		t.Errorf("one key failing: %v, %+v", err, s)
	}
	w.bucket.FailKey(bad, 0)
	if s := w.run(t, backfill.Config{ACL: "public-read"}); s.Copied != 1 || s.Present != 19 {
		t.Errorf("rerun: %+v", s)
	}
}

func TestCancelAtRandomPointsThenRerun(t *testing.T) {
	files := mastodonTree(200)
	w := newWorld(t, files)
	for _, after := range []int{1, 7, 40, 120} {
		ctx, cancel := context.WithCancel(context.Background())
		var n atomic.Int64
		cfg := backfill.Config{ACL: "public-read", Concurrency: 4, OnCopied: func(string) {
			if n.Add(1) == int64(after) {
				cancel()
			}
		}}
		err := backfill.Run(ctx, w.vol, w.s3, cfg, nil)
		cancel()
		if err == nil {
			t.Logf("run stopped after %d copies finished on its own", after)
		}
	}
	s := w.run(t, backfill.Config{ACL: "public-read"})
	if s.Failed != 0 {
		t.Errorf("rerun: %+v", s)
	}
	got := w.contents(t)
	if len(got) != len(files) {
		t.Errorf("%d objects after the reruns, want %d", len(got), len(files))
	}
	for k, v := range files {
		if !bytes.Equal(got[k], v) {
			t.Errorf("%s: a partial or wrong object (%d of %d bytes)", k, len(got[k]), len(v))
		}
	}
}

func TestVerify(t *testing.T) {
	files := mastodonTree(30)
	w := newWorld(t, files)
	w.run(t, backfill.Config{ACL: "public-read"})
	var changed, missing string
	keys := make([]string, 0, len(files))
	for k := range files {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	changed, missing = keys[3], keys[9]
	flipped := bytes.Clone(files[changed])
	flipped[0] ^= 0xff
	w.bucket.Put(t, changed, flipped) // same size, other content
	w.bucket.Delete(t, missing)

	var safe bytes.Buffer
	rep, err := backfill.Verify(context.Background(), w.vol, w.s3, backfill.VerifySize, backfill.Config{}, &safe)
	if err != nil || rep.Verified != 29 || rep.Missing != 1 || rep.Mismatched != 0 {
		t.Errorf("verify by size: %+v, %v", rep, err)
	}
	safe.Reset()
	rep, err = backfill.Verify(context.Background(), w.vol, w.s3, backfill.VerifyHash, backfill.Config{}, &safe)
	if err != nil || rep.Verified != 28 || rep.Missing != 1 || rep.Mismatched != 1 || rep.Bad[0] != changed {
		t.Errorf("verify by hash: %+v, %v", rep, err)
	}
	listed := strings.Fields(safe.String())
	if len(listed) != 28 || strings.Contains(safe.String(), changed) || strings.Contains(safe.String(), missing) {
		t.Errorf("the safe-to-delete list has %d keys and must not name %s or %s", len(listed), changed, missing)
	}
}

func TestDeletedKeysAreNotCopied(t *testing.T) {
	files := mastodonTree(10)
	w := newWorld(t, files)
	var deleted string
	for k := range files {
		deleted = k
		break
	}
	s := w.run(t, backfill.Config{ACL: "public-read", Skip: func(k string) bool { return k == deleted }})
	if s.Copied != 9 || s.Excluded != 1 {
		t.Errorf("%+v", s)
	}
	if w.bucket.PutHeader(deleted) != nil {
		t.Error("a deleted key was copied back into the bucket")
	}
}
