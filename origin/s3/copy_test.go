package s3

import (
	"bytes"
	"context"
	"crypto/md5"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/fedicache/fedicache/origin"
	"github.com/fedicache/fedicache/origin/origintest"
)

// copyConfig returns the configuration of a client of fb under prefix, with the static keys
// whose signatures fb checks.
func copyConfig(fb *origintest.FakeBucket, prefix string) Config {
	return Config{
		Endpoint:        fb.URL,
		Bucket:          origintest.BucketName,
		Prefix:          prefix,
		ForcePathStyle:  true,
		AccessKeyID:     origintest.AccessKeyID,
		SecretAccessKey: origintest.SecretAccessKey,
		Timeout:         5 * time.Second,
	}
}

// opCounter counts the requests a bucket tells Config.Observe about, by operation.
type opCounter struct {
	mu  sync.Mutex
	ops map[string]int
	on  func(op string) // called with each, when set
}

func (c *opCounter) observe(op string, _ time.Duration, _ error) {
	c.mu.Lock()
	if c.ops == nil {
		c.ops = map[string]int{}
	}
	c.ops[op]++
	on := c.on
	c.mu.Unlock()
	if on != nil {
		on(op)
	}
}

func (c *opCounter) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return fmt.Sprint(c.ops)
}

// TestCopyFrom copies between two prefixes of one bucket with one CopyObject: the bytes are
// the source's, the headers and ACL those asked for, a key that needs escaping arrives, the
// request carries no request checksum, and the source is left as it was.
func TestCopyFrom(t *testing.T) {
	fb := origintest.NewFakeBucket(t)
	var ops opCounter
	src := newTestBucket(t, copyConfig(fb, "old"))
	cfg := copyConfig(fb, "new")
	cfg.Observe = ops.observe
	dst := newTestBucket(t, cfg)
	if !dst.CanCopyFrom(src) {
		t.Fatal("CanCopyFrom: false for another prefix of the same bucket")
	}
	ctx := context.Background()
	for _, key := range []string{"media_attachments/files/1/original/a.png", "cache/ä b+c%20(1).png"} {
		data := []byte("bytes of " + key)
		fb.PutWithHeaders(t, "old/"+key, data, "image/gif", "no-cache")
		opts := origin.PutOptions{ContentType: "image/png", CacheControl: "public, max-age=31536000, immutable",
			ACL: origin.ACLPrivate, IfNoneMatch: true}
		etag, err := dst.CopyFrom(ctx, src, key, int64(len(data)), opts)
		if err != nil {
			t.Fatalf("CopyFrom(%s): %v", key, err)
		}
		if want := fmt.Sprintf(`"%x"`, md5.Sum(data)); etag != want {
			t.Errorf("%s: CopyFrom's ETag %s, want the copy's %s", key, etag, want)
		}
		if got, err := fb.Object("new/" + key); err != nil || !bytes.Equal(got, data) {
			t.Errorf("%s: the copy holds %q (%v), want %q", key, got, err, data)
		}
		if _, h, err := dst.ObjectHeaders(ctx, key); err != nil || h.ContentType != opts.ContentType || h.CacheControl != opts.CacheControl {
			t.Errorf("%s: the copy's headers %+v, %v; want those of %+v", key, h, err, opts)
		}
		if acl, err := dst.ObjectACL(ctx, key); acl != origin.ACLPrivate || err != nil {
			t.Errorf("%s: the copy's ACL %q, %v; want private", key, acl, err)
		}
		if _, h, err := src.ObjectHeaders(ctx, key); err != nil || h.ContentType != "image/gif" || h.CacheControl != "no-cache" {
			t.Errorf("%s: the source's headers changed: %+v, %v", key, h, err)
		}
		if acl, _ := src.ObjectACL(ctx, key); acl != origin.ACLPublicRead {
			t.Errorf("%s: the source's ACL changed to %q", key, acl)
		}
		h := fb.PutHeader("new/" + key)
		if h.Get("X-Amz-Copy-Source") == "" || h.Get("X-Amz-Metadata-Directive") != "REPLACE" || h.Get("If-None-Match") != "*" {
			t.Errorf("%s: CopyObject sent copy source %q, directive %q, If-None-Match %q",
				key, h.Get("X-Amz-Copy-Source"), h.Get("X-Amz-Metadata-Directive"), h.Get("If-None-Match"))
		}
		if name, ok := hasChecksum(h); ok {
			t.Errorf("%s: CopyObject carries a request checksum (%s) under request_checksum=when_required", key, name)
		}
	}
	if got := ops.String(); got != "map[CopyObject:2 GetObjectAcl:2 HeadObject:2]" {
		t.Errorf("observed %s, want two of CopyObject and of the reads", got)
	}
}

// TestCopyFromIfNoneMatch checks that a conditional copy onto a key that holds an object, in
// one request or in parts, fails with origin.ErrExists and leaves the object, its headers and
// its ACL as they were, and no upload pending.
func TestCopyFromIfNoneMatch(t *testing.T) {
	fb := origintest.NewFakeBucket(t)
	src := newTestBucket(t, copyConfig(fb, "old"))
	cfg := copyConfig(fb, "new")
	cfg.MultipartThreshold, cfg.PartSize = 5<<20, 5<<20
	dst := newTestBucket(t, cfg)
	ctx := context.Background()
	for key, data := range map[string][]byte{"small.png": []byte("new bytes"), "big.mp4": bigBody()} {
		fb.PutWithHeaders(t, "old/"+key, data, "image/png", "")
		fb.PutWithHeaders(t, "new/"+key, []byte("first"), "image/jpeg", "max-age=1")
		opts := origin.PutOptions{ContentType: "image/png", ACL: origin.ACLPrivate, IfNoneMatch: true}
		if _, err := dst.CopyFrom(ctx, src, key, int64(len(data)), opts); !errors.Is(err, origin.ErrExists) {
			t.Errorf("%s: conditional copy onto an existing key: %v, want origin.ErrExists", key, err)
		}
		if got, _ := fb.Object("new/" + key); string(got) != "first" {
			t.Errorf("%s: the object holds %d bytes after a refused copy, want the first 5", key, len(got))
		}
		if _, h, _ := dst.ObjectHeaders(ctx, key); h.ContentType != "image/jpeg" || h.CacheControl != "max-age=1" {
			t.Errorf("%s: the object's headers changed to %+v", key, h)
		}
		if acl, _ := dst.ObjectACL(ctx, key); acl != origin.ACLPublicRead {
			t.Errorf("%s: the object's ACL changed to %q", key, acl)
		}
	}
	if keys := pendingUploads(t, dst); len(keys) != 0 {
		t.Errorf("a refused copy left uploads pending: %v", keys)
	}
}

// TestCopyFromInParts copies an object above MultipartThreshold in three parts of PartSize
// (5, 5 and 2 MiB) with UploadPartCopy: the bytes arrive whole, with the headers and ACL asked
// for, every part requires the source's ETag, and no upload is left pending.
func TestCopyFromInParts(t *testing.T) {
	fb := origintest.NewFakeBucket(t)
	data := bigBody()
	fb.PutWithHeaders(t, "old/"+bigKey, data, "video/mp4", "")
	var ops opCounter
	src := newTestBucket(t, copyConfig(fb, "old"))
	cfg := copyConfig(fb, "new")
	cfg.MultipartThreshold, cfg.PartSize = 5<<20, 5<<20
	cfg.Observe = ops.observe
	dst := newTestBucket(t, cfg)
	ctx := context.Background()
	opts := origin.PutOptions{ContentType: "video/mp4", CacheControl: "public, max-age=31536000, immutable",
		ACL: origin.ACLPublicRead, IfNoneMatch: true}
	if _, err := dst.CopyFrom(ctx, src, bigKey, int64(len(data)), opts); err != nil {
		t.Fatalf("CopyFrom: %v", err)
	}
	if got := ops.String(); got != "map[CompleteMultipartUpload:1 CreateMultipartUpload:1 UploadPartCopy:3]" {
		t.Errorf("observed %s, want 1 create, 3 part copies, 1 complete (the source tells its HEAD)", got)
	}
	if got, err := fb.Object("new/" + bigKey); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("the copy holds %d bytes (%v), not the source's %d", len(got), err, len(data))
	}
	if _, h, err := dst.ObjectHeaders(ctx, bigKey); err != nil || h.ContentType != opts.ContentType || h.CacheControl != opts.CacheControl {
		t.Errorf("the copy's headers %+v, %v; want those of %+v", h, err, opts)
	}
	if acl, err := dst.ObjectACL(ctx, bigKey); acl != origin.ACLPublicRead || err != nil {
		t.Errorf("the copy's ACL %q, %v; want public-read", acl, err)
	}
	h := fb.PutHeader("new/" + bigKey) // the last part's
	if h.Get("X-Amz-Copy-Source-Range") == "" || h.Get("X-Amz-Copy-Source-If-Match") == "" {
		t.Errorf("a part copy sent range %q and If-Match %q, want both", h.Get("X-Amz-Copy-Source-Range"), h.Get("X-Amz-Copy-Source-If-Match"))
	}
	if name, ok := hasChecksum(h); ok {
		t.Errorf("UploadPartCopy carries a request checksum (%s) under request_checksum=when_required", name)
	}
	if keys := pendingUploads(t, dst); len(keys) != 0 {
		t.Errorf("uploads left pending: %v", keys)
	}
}

// TestCopyFromSourceGone checks that a copy whose source is missing, or vanishes after the
// first part was copied, fails with origin.ErrNotFound and leaves no object and no upload.
func TestCopyFromSourceGone(t *testing.T) {
	fb := origintest.NewFakeBucket(t)
	data := bigBody()
	fb.PutWithHeaders(t, "old/"+bigKey, data, "video/mp4", "")
	var ops opCounter
	var once sync.Once
	ops.on = func(op string) {
		if op == "UploadPartCopy" {
			once.Do(func() { fb.Delete(t, "old/"+bigKey) })
		}
	}
	src := newTestBucket(t, copyConfig(fb, "old"))
	cfg := copyConfig(fb, "new")
	cfg.MultipartThreshold, cfg.PartSize = 5<<20, 5<<20
	cfg.Observe = ops.observe
	dst := newTestBucket(t, cfg)
	ctx := context.Background()
	if _, err := dst.CopyFrom(ctx, src, "missing.png", 10, origin.PutOptions{}); !errors.Is(err, origin.ErrNotFound) {
		t.Errorf("copy of a missing source: %v, want origin.ErrNotFound", err)
	}
	if _, err := fb.Object("new/missing.png"); err == nil {
		t.Error("a copy of a missing source left an object")
	}
	_, err := dst.CopyFrom(ctx, src, bigKey, int64(len(data)), origin.PutOptions{})
	if !errors.Is(err, origin.ErrNotFound) {
		t.Errorf("copy in parts of a source that vanished: %v, want origin.ErrNotFound", err)
	}
	if _, err := fb.Object("new/" + bigKey); err == nil {
		t.Error("a copy whose source vanished left an object")
	}
	if keys := pendingUploads(t, dst); len(keys) != 0 {
		t.Errorf("a copy whose source vanished left uploads pending: %v", keys)
	}
	ops.mu.Lock()
	aborts, completes := ops.ops["AbortMultipartUpload"], ops.ops["CompleteMultipartUpload"]
	ops.mu.Unlock()
	if aborts != 1 || completes != 0 {
		t.Errorf("%d aborts and %d completes, want 1 and 0", aborts, completes)
	}
}

// TestCopyFromCanceled checks that a copy in parts whose caller gives up is aborted all the same.
func TestCopyFromCanceled(t *testing.T) {
	fb := origintest.NewFakeBucket(t)
	data := bigBody()
	fb.PutWithHeaders(t, "old/"+bigKey, data, "video/mp4", "")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var ops opCounter
	ops.on = func(op string) {
		if op == "UploadPartCopy" {
			cancel()
		}
	}
	src := newTestBucket(t, copyConfig(fb, "old"))
	cfg := copyConfig(fb, "new")
	cfg.MultipartThreshold, cfg.PartSize = 5<<20, 5<<20
	cfg.Observe = ops.observe
	dst := newTestBucket(t, cfg)
	if _, err := dst.CopyFrom(ctx, src, bigKey, int64(len(data)), origin.PutOptions{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("copy canceled part way: %v, want context.Canceled", err)
	}
	if keys := pendingUploads(t, dst); len(keys) != 0 {
		t.Errorf("a canceled copy left uploads pending: %v", keys)
	}
	if _, err := fb.Object("new/" + bigKey); err == nil {
		t.Error("a canceled copy left an object")
	}
}

// TestCanCopyFrom checks which sources a bucket copies from: another bucket or prefix of the
// same service with the same credentials (static, or both the AWS chain), not another
// endpoint, other keys, a bucket without credentials, nor an origin that is no bucket.
func TestCanCopyFrom(t *testing.T) {
	fb, other := origintest.NewFakeBucket(t), origintest.NewFakeBucket(t)
	base := copyConfig(fb, "new")
	dst := newTestBucket(t, base)
	edit := func(change func(*Config)) *Bucket {
		cfg := base
		change(&cfg)
		return newTestBucket(t, cfg)
	}
	for _, tc := range []struct {
		name string
		src  origin.Origin
		want bool
	}{
		{"same bucket, another prefix", edit(func(c *Config) { c.Prefix = "old/" }), true},
		{"another bucket", edit(func(c *Config) { c.Bucket = "old-media" }), true},
		{"endpoint spelled otherwise", edit(func(c *Config) { c.Endpoint = "HTTP://" + fb.URL[len("http://"):] + "/" }), true},
		{"anonymous with the same keys", edit(func(c *Config) { c.Anonymous = true }), true},
		{"another endpoint", edit(func(c *Config) { c.Endpoint = other.URL }), false},
		{"another region", edit(func(c *Config) { c.Region = "eu-central-1" }), false},
		{"another secret", edit(func(c *Config) { c.SecretAccessKey = "other" }), false},
		{"another key", edit(func(c *Config) { c.AccessKeyID = "AKIAOTHER" }), false},
		{"the credential chain", edit(func(c *Config) { c.AccessKeyID, c.SecretAccessKey = "", "" }), false},
		{"no bucket", origin.Origin(nil), false},
	} {
		if got := dst.CanCopyFrom(tc.src); got != tc.want {
			t.Errorf("%s: CanCopyFrom %v, want %v", tc.name, got, tc.want)
		}
		if !tc.want {
			if _, err := dst.CopyFrom(context.Background(), tc.src, "a.png", 1, origin.PutOptions{}); err == nil {
				t.Errorf("%s: CopyFrom from a source it cannot copy from succeeded", tc.name)
			}
		}
	}
	// Two buckets both on the chain share its credentials; one without any copies nothing.
	t.Setenv("AWS_ACCESS_KEY_ID", origintest.AccessKeyID)
	t.Setenv("AWS_SECRET_ACCESS_KEY", origintest.SecretAccessKey)
	chainA := edit(func(c *Config) { c.AccessKeyID, c.SecretAccessKey = "", "" })
	chainB := edit(func(c *Config) { c.AccessKeyID, c.SecretAccessKey, c.Prefix = "", "", "old" })
	if !chainA.CanCopyFrom(chainB) {
		t.Error("CanCopyFrom: false between two buckets on the credential chain")
	}
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	bare := edit(func(c *Config) { c.AccessKeyID, c.SecretAccessKey, c.Anonymous = "", "", true })
	if bare.CanCopyFrom(chainB) || chainB.CanCopyFrom(bare) {
		t.Error("CanCopyFrom: true with an anonymous bucket that has no credentials")
	}
}

// TestCopyFromKeepsTheSourceHeaders: with no headers asked for, the copy keeps the source's as
// stored, with one CopyObject (directive COPY) and with parts (the source's HEAD gives them),
// and still gets the ACL asked for.
func TestCopyFromKeepsTheSourceHeaders(t *testing.T) {
	fb := origintest.NewFakeBucket(t)
	small := []byte("a small gif")
	fb.PutWithHeaders(t, "old/small.gif", small, "image/gif", "public, max-age=600")
	big := bigBody()
	fb.PutWithHeaders(t, "old/"+bigKey, big, "video/mp4", "public, max-age=700")
	src := newTestBucket(t, copyConfig(fb, "old"))
	cfg := copyConfig(fb, "new")
	cfg.MultipartThreshold, cfg.PartSize = 5<<20, 5<<20
	dst := newTestBucket(t, cfg)
	ctx := context.Background()
	for _, tc := range []struct {
		key, contentType, cacheControl string
		size                           int
	}{{"small.gif", "image/gif", "public, max-age=600", len(small)}, {bigKey, "video/mp4", "public, max-age=700", len(big)}} {
		if _, err := dst.CopyFrom(ctx, src, tc.key, int64(tc.size), origin.PutOptions{ACL: origin.ACLPrivate}); err != nil {
			t.Fatalf("CopyFrom(%s): %v", tc.key, err)
		}
		if _, h, err := dst.ObjectHeaders(ctx, tc.key); err != nil || h.ContentType != tc.contentType || h.CacheControl != tc.cacheControl {
			t.Errorf("%s: the copy's headers %+v, %v; want the source's %q, %q", tc.key, h, err, tc.contentType, tc.cacheControl)
		}
		if acl, err := dst.ObjectACL(ctx, tc.key); acl != origin.ACLPrivate || err != nil {
			t.Errorf("%s: the copy's ACL %q, %v; want private", tc.key, acl, err)
		}
	}
	if d := fb.PutHeader("new/small.gif").Get("X-Amz-Metadata-Directive"); d != "COPY" {
		t.Errorf("CopyObject's metadata directive %q, want COPY", d)
	}
}
