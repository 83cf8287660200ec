package backfill_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fedicache/fedicache/backfill"
	"github.com/fedicache/fedicache/origin/origintest"
	"github.com/fedicache/fedicache/origin/s3"
	"github.com/fedicache/fedicache/origin/s3/s3test"
)

// buckets is an old bucket and a new one, with the clients the backfill uses: on two fake
// services (the copy streams through the copier), or on one under two prefixes (the new
// bucket copies server-side).
type buckets struct {
	oldFake, newFake *origintest.FakeBucket
	old, new         *s3.Bucket
	oldPrefix        string // "" or "old/": where the old bucket's keys are in oldFake
	newPrefix        string
	objects          map[string][]byte
}

// fastRetries keeps a test's retries short.
func fastRetries(c *s3.Config) { c.MaxAttempts, c.MaxBackoff = 8, 20*time.Millisecond }

// twoServices returns an old bucket holding objects and an empty new one, on two fakes.
func twoServices(t *testing.T, objects map[string][]byte) *buckets {
	t.Helper()
	b := &buckets{oldFake: origintest.NewFakeBucket(t), newFake: origintest.NewFakeBucket(t), objects: objects}
	b.old, b.new = s3test.New(t, b.oldFake, fastRetries), s3test.New(t, b.newFake, fastRetries)
	b.fill(t)
	return b
}

// oneService returns an old bucket holding objects and an empty new one, under the prefixes
// old and new of one fake: the same service and credentials, so the new one copies itself.
func oneService(t *testing.T, objects map[string][]byte) *buckets {
	t.Helper()
	fake := origintest.NewFakeBucket(t)
	b := &buckets{oldFake: fake, newFake: fake, oldPrefix: "old/", newPrefix: "new/", objects: objects}
	b.old = s3test.New(t, fake, fastRetries, func(c *s3.Config) { c.Prefix = "old" })
	b.new = s3test.New(t, fake, fastRetries, func(c *s3.Config) { c.Prefix = "new" })
	b.fill(t)
	return b
}

// fill stores the objects in the old bucket, with a Content-Type and Cache-Control of their own
// (not those of their extension and Config), public-read.
func (b *buckets) fill(t *testing.T) {
	for k, v := range b.objects {
		b.oldFake.PutWithHeaders(t, b.oldPrefix+k, v, "image/x-test", "public, max-age=42")
	}
}

func (b *buckets) run(t *testing.T, cfg backfill.Config) backfill.Snapshot {
	t.Helper()
	p := backfill.NewProgress()
	if err := backfill.RunSource(context.Background(), backfill.NewBucketSource("old-bucket", b.old), b.new, cfg, p); err != nil {
		t.Fatalf("RunSource: %v", err)
	}
	return p.Snapshot()
}

// newObject returns the bytes the new bucket holds under key, nil when none.
func (b *buckets) newObject(key string) []byte {
	data, err := b.newFake.Object(b.newPrefix + key)
	if err != nil {
		return nil
	}
	return data
}

// sortedKeys returns m's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func TestBucketToBucketStreamedCarriesBytesHeadersAndACLs(t *testing.T) {
	b := twoServices(t, mastodonTree(40))
	keys := sortedKeys(b.objects)
	private := keys[7]
	b.oldFake.SetACL(private, "private")
	s := b.run(t, backfill.Config{ACL: backfill.MastodonACL, Concurrency: 4})
	if s.Source != "old-bucket" || s.Copied != 40 || s.Private != 1 || s.Failed != 0 || s.TotalFiles != 40 || !s.Done {
		t.Fatalf("first run: %+v", s)
	}
	for _, k := range keys {
		if got := b.newObject(k); !bytes.Equal(got, b.objects[k]) {
			t.Errorf("%s: %d bytes in the new bucket, %d in the old", k, len(got), len(b.objects[k]))
		}
		h := b.newFake.PutHeader(k)
		wantACL := "public-read"
		if k == private {
			wantACL = "private"
		}
		if h.Get("Content-Type") != "image/x-test" || h.Get("Cache-Control") != "public, max-age=42" || h.Get("X-Amz-Acl") != wantACL {
			t.Errorf("%s: PUT with Content-Type %q, Cache-Control %q, ACL %q; want the old object's and %s",
				k, h.Get("Content-Type"), h.Get("Cache-Control"), h.Get("X-Amz-Acl"), wantACL)
		}
		if h.Get("X-Amz-Copy-Source") != "" {
			t.Errorf("%s: copied server-side between two services", k)
		}
		if h.Get("Content-Md5") == "" {
			t.Errorf("%s: a small object went up without Content-MD5", k)
		}
		if b.oldFake.Gets(k) != 1 {
			t.Errorf("%s: %d GETs of the old object, want 1", k, b.oldFake.Gets(k))
		}
	}
	puts := b.newFake.Puts()
	s = b.run(t, backfill.Config{ACL: backfill.MastodonACL})
	if s.Copied != 0 || s.Present != 40 || s.BytesRead != 0 {
		t.Errorf("rerun: %+v; want nothing copied", s)
	}
	if b.newFake.Puts() != puts {
		t.Errorf("the rerun sent %d PUTs", b.newFake.Puts()-puts)
	}
	for _, k := range keys {
		if b.oldFake.Gets(k) != 1 || b.oldFake.Heads(k) != 1 {
			t.Errorf("%s: the rerun asked the old bucket for it", k)
		}
	}
}

func TestBucketWithoutACLsGivesConfigACLToAll(t *testing.T) {
	b := twoServices(t, mastodonTree(6))
	keys := sortedKeys(b.objects)
	b.oldFake.SetACL(keys[2], "private") // unreadable: the service answers no ACL request
	b.oldFake.NoACLs(true)
	s := b.run(t, backfill.Config{ACL: backfill.MastodonACL})
	if s.Copied != 6 || s.Private != 0 || s.PrivateSkipped != 0 {
		t.Fatalf("%+v", s)
	}
	for _, k := range keys {
		if acl := b.newFake.PutHeader(k).Get("X-Amz-Acl"); acl != "public-read" {
			t.Errorf("%s: ACL %q, want Config.ACL for a source without ACLs", k, acl)
		}
	}
}

func TestPrivateObjectsSkippedForADestinationWithoutACLs(t *testing.T) {
	b := twoServices(t, mastodonTree(8))
	keys := sortedKeys(b.objects)
	private := keys[3]
	b.oldFake.SetACL(private, "private")
	s := b.run(t, backfill.Config{ACL: ""})
	if s.Copied != 7 || s.PrivateSkipped != 1 || len(s.PrivateSkips) != 1 || s.PrivateSkips[0] != private || s.ToCopy != 7 {
		t.Fatalf("%+v", s)
	}
	if b.newObject(private) != nil {
		t.Error("a private object was copied to a bucket without ACLs")
	}
	if b.oldFake.Gets(private) != 0 {
		t.Error("the bytes of a private object to skip were read")
	}
	for _, k := range keys {
		if k != private && b.newFake.PutHeader(k).Get("X-Amz-Acl") != "" {
			t.Errorf("%s: an ACL sent to a bucket without ACLs", k)
		}
	}
}

func TestBucketConflictsAreReportedNotOverwritten(t *testing.T) {
	b := twoServices(t, mastodonTree(10))
	keys := sortedKeys(b.objects)
	sameSize := bytes.Clone(b.objects[keys[1]])
	sameSize[0] ^= 0xff
	b.newFake.Put(t, keys[1], sameSize)                 // same size, another MD5
	b.newFake.Put(t, keys[4], []byte("another object")) // another size
	b.newFake.Put(t, keys[6], b.objects[keys[6]])       // the same bytes
	aclAsks := b.oldFake.Heads(keys[6])
	s := b.run(t, backfill.Config{ACL: backfill.MastodonACL})
	if s.Conflicts != 2 || s.Present != 1 || s.Copied != 7 || strings.Join(s.ConflictKeys, " ") != keys[1]+" "+keys[4] {
		t.Fatalf("%+v", s)
	}
	if !bytes.Equal(b.newObject(keys[1]), sameSize) || string(b.newObject(keys[4])) != "another object" {
		t.Error("a conflicting object was overwritten")
	}
	if b.oldFake.Heads(keys[6]) != aclAsks || b.oldFake.Gets(keys[6]) != 0 {
		t.Error("an object the new bucket holds was asked of the old one")
	}
}

func TestBucketCopyStoppedThenRerunCompletes(t *testing.T) {
	b := twoServices(t, mastodonTree(120))
	for _, after := range []int{1, 9, 50} {
		ctx, cancel := context.WithCancel(context.Background())
		var n atomic.Int64
		cfg := backfill.Config{ACL: backfill.MastodonACL, Concurrency: 4, OnCopied: func(string) {
			if n.Add(1) == int64(after) {
				cancel()
			}
		}}
		_ = backfill.RunSource(ctx, backfill.NewBucketSource("", b.old), b.new, cfg, nil)
		cancel()
	}
	held := 0
	for k := range b.objects {
		if b.newObject(k) != nil {
			held++
		}
	}
	s := b.run(t, backfill.Config{ACL: backfill.MastodonACL})
	if s.Failed != 0 || s.Present != int64(held) || s.Copied != int64(120-held) {
		t.Errorf("rerun after stops with %d objects held: %+v; want those present and only the others copied", held, s)
	}
	for k, v := range b.objects {
		if !bytes.Equal(b.newObject(k), v) {
			t.Errorf("%s: a partial or wrong object", k)
		}
	}
}

func TestBucketTombstonesAndFilters(t *testing.T) {
	objects := mastodonTree(10)
	objects["backups/dumps/000/000/001/original/archive.zip"] = []byte("export")
	b := twoServices(t, objects)
	deleted := sortedKeys(mastodonTree(10))[5]
	s := b.run(t, backfill.Config{ACL: backfill.MastodonACL, DenyPrefixes: []string{"backups/"},
		Skip: func(k string) bool { return k == deleted }})
	if s.Copied != 9 || s.Excluded != 2 {
		t.Fatalf("%+v", s)
	}
	if b.newObject(deleted) != nil || b.newObject("backups/dumps/000/000/001/original/archive.zip") != nil {
		t.Error("a deleted or denied key was copied")
	}
	if b.oldFake.Gets(deleted) != 0 {
		t.Error("a deleted key was read from the old bucket")
	}
}

func TestServerSideCopyWithinOneService(t *testing.T) {
	b := oneService(t, mastodonTree(12))
	keys := sortedKeys(b.objects)
	b.oldFake.SetACL("old/"+keys[0], "private")
	s := b.run(t, backfill.Config{ACL: backfill.MastodonACL, Concurrency: 3})
	if s.Copied != 12 || s.Failed != 0 || s.Private != 1 {
		t.Fatalf("%+v", s)
	}
	for _, k := range keys {
		if !bytes.Equal(b.newObject(k), b.objects[k]) {
			t.Errorf("%s: the copy differs", k)
		}
		if b.oldFake.Gets("old/"+k) != 0 {
			t.Errorf("%s: the bytes travelled through the copier (%d GETs)", k, b.oldFake.Gets("old/"+k))
		}
		h := b.newFake.PutHeader("new/" + k)
		wantACL := "public-read"
		if k == keys[0] {
			wantACL = "private"
		}
		// The service keeps the old object's headers (no HEAD of it needed) and sets the ACL.
		if h.Get("X-Amz-Copy-Source") == "" || h.Get("X-Amz-Metadata-Directive") != "COPY" || h.Get("X-Amz-Acl") != wantACL {
			t.Errorf("%s: copy request with source %q, metadata directive %q, ACL %q", k,
				h.Get("X-Amz-Copy-Source"), h.Get("X-Amz-Metadata-Directive"), h.Get("X-Amz-Acl"))
		}
		resp, err := http.Head(b.newFake.URL + "/" + origintest.BucketName + "/new/" + k)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.Header.Get("Content-Type") != "image/x-test" || resp.Header.Get("Cache-Control") != "public, max-age=42" {
			t.Errorf("%s: the copy's headers %q, %q; want the old object's", k, resp.Header.Get("Content-Type"), resp.Header.Get("Cache-Control"))
		}
		if n := b.oldFake.Heads("old/" + k); n != 0 {
			t.Errorf("%s: the old object was asked %d HEADs; a server-side copy needs none", k, n)
		}
		// The copy's ETag, the MD5 of its bytes as the service answered, checks it: no HEAD of
		// the copy either (the one above is this test's, after the copy's count).
		if n := b.newFake.Heads("new/" + k); n != 1 {
			t.Errorf("%s: the copy was asked %d HEADs; its ETag checks it", k, n-1)
		}
	}
	if s := b.run(t, backfill.Config{ACL: backfill.MastodonACL}); s.Copied != 0 || s.Present != 12 {
		t.Errorf("rerun: %+v", s)
	}
}

// TestLargeObjectsStreamInRangesNotBuffered copies objects larger than a worker's buffer, one
// in one PUT (with the old ETag's MD5 as its Content-MD5) and one in parts read concurrently
// through ranged GETs.
func TestLargeObjectsStreamInRangesNotBuffered(t *testing.T) {
	oldFake, newFake := origintest.NewFakeBucket(t), origintest.NewFakeBucket(t)
	old := s3test.New(t, oldFake, fastRetries)
	dst := s3test.New(t, newFake, fastRetries, func(c *s3.Config) { c.MultipartThreshold, c.PartSize = 6<<20, 5<<20 })
	sizes := map[string]int64{
		"media_attachments/files/000/000/001/original/aaaaaaaaaaaaaaaa.mp4": backfill.BufferBytes + 12345, // one PUT
		"media_attachments/files/000/000/002/original/bbbbbbbbbbbbbbbb.mp4": 13<<20 + 7,                   // three parts
	}
	for k, n := range sizes {
		data, _ := io.ReadAll(io.LimitReader(&origintest.Pattern{}, n))
		oldFake.Put(t, k, data)
	}
	p := backfill.NewProgress()
	if err := backfill.RunSource(context.Background(), backfill.NewBucketSource("", old), dst, backfill.Config{ACL: backfill.MastodonACL}, p); err != nil {
		t.Fatal(err)
	}
	if s := p.Snapshot(); s.Copied != 2 || s.Failed != 0 {
		t.Fatalf("%+v", s)
	}
	for k, n := range sizes {
		got, err := newFake.Object(k)
		if err != nil || int64(len(got)) != n {
			t.Fatalf("%s: %d bytes, %v; want %d", k, len(got), err, n)
		}
		want, _ := io.ReadAll(io.LimitReader(&origintest.Pattern{}, n))
		if !bytes.Equal(got, want) {
			t.Errorf("%s: the copy's bytes differ", k)
		}
	}
}

func TestQueueCopiesFromABucket(t *testing.T) {
	b := twoServices(t, mastodonTree(5))
	keys := sortedKeys(b.objects)
	p := backfill.NewProgress()
	copied := make(chan string, 4)
	cfg := backfill.Config{ACL: backfill.MastodonACL, OnCopied: func(k string) { copied <- k }}
	q := backfill.NewSourceQueue(backfill.NewBucketSource("", b.old), b.new, cfg, p, 10)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { q.Run(ctx, 2); close(done) }()
	defer func() { cancel(); <-done }()
	// A key the old bucket lacks first: it is left alone, and the other still copied.
	if !q.Enqueue("media_attachments/files/999/999/999/original/ffffffffffffffff.jpg") || !q.Enqueue(keys[2]) {
		t.Fatal("Enqueue refused a key")
	}
	select {
	case k := <-copied:
		if k != keys[2] {
			t.Fatalf("the queue copied %s", k)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the queue copied nothing")
	}
	if !bytes.Equal(b.newObject(keys[2]), b.objects[keys[2]]) {
		t.Error("the queued key's bytes differ")
	}
	if s := p.Snapshot(); s.Copied != 1 || s.Failed != 0 || s.Changed != 0 {
		t.Errorf("%+v", s)
	}
}

func TestVerifyAcrossABucketSource(t *testing.T) {
	b := twoServices(t, mastodonTree(20))
	b.run(t, backfill.Config{ACL: backfill.MastodonACL})
	keys := sortedKeys(b.objects)
	changed, missing := keys[4], keys[11]
	flipped := bytes.Clone(b.objects[changed])
	flipped[len(flipped)-1] ^= 0xff
	b.newFake.Put(t, changed, flipped)
	b.newFake.Delete(t, missing)
	src := backfill.NewBucketSource("", b.old)
	var safe bytes.Buffer
	rep, err := backfill.VerifySource(context.Background(), src, b.new, backfill.VerifySize, backfill.Config{}, &safe)
	if err != nil || rep.Checked != 20 || rep.Verified != 18 || rep.Mismatched != 1 || rep.Missing != 1 {
		t.Errorf("by size: %+v, %v (a same-size object with another MD5 is a mismatch even by size)", rep, err)
	}
	safe.Reset()
	rep, err = backfill.VerifySource(context.Background(), src, b.new, backfill.VerifyHash, backfill.Config{}, &safe)
	if err != nil || rep.Verified != 18 || rep.Mismatched != 1 || rep.Missing != 1 || rep.Bad[0] != changed {
		t.Errorf("by hash: %+v, %v", rep, err)
	}
	if n := len(strings.Fields(safe.String())); n != 18 || strings.Contains(safe.String(), changed) || strings.Contains(safe.String(), missing) {
		t.Errorf("the safe list has %d keys and must not name %s or %s", n, changed, missing)
	}
}

// TestBlobSizes keeps mastodonTree's objects below a worker's buffer, which the tests of the
// buffered path rely on.
func TestBlobSizes(t *testing.T) {
	for k, v := range mastodonTree(200) {
		if len(v) > backfill.BufferBytes {
			t.Fatalf("%s: %d bytes", k, len(v))
		}
	}
}
