package s3_test

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/fedicache/fedicache/origin"
	"github.com/fedicache/fedicache/origin/origintest"
	"github.com/fedicache/fedicache/origin/s3"
	"github.com/fedicache/fedicache/origin/s3/s3test"
)

// TestObjectACL checks that ObjectACL reports each object's canned ACL as the fake keeps it,
// whatever RequirePublicRead says, origin.ErrNotFound for a key that was never stored, and
// origin.ErrNoACLs on a service without ACLs.
func TestObjectACL(t *testing.T) {
	fb := origintest.NewFakeBucket(t)
	fb.Put(t, "pre/shown.png", []byte("public"))
	fb.Put(t, "pre/hidden.png", []byte("suspended"))
	fb.SetACL("pre/hidden.png", "private")
	ctx := context.Background()
	for _, require := range []bool{false, true} {
		b := s3test.New(t, fb, func(c *s3.Config) { c.Prefix, c.RequirePublicRead = "pre", require })
		for key, want := range map[string]string{"shown.png": origin.ACLPublicRead, "hidden.png": origin.ACLPrivate} {
			if got, err := b.ObjectACL(ctx, key); got != want || err != nil {
				t.Errorf("RequirePublicRead %v: ObjectACL(%s) = %q, %v; want %q", require, key, got, err, want)
			}
		}
		if got, err := b.ObjectACL(ctx, "missing.png"); !errors.Is(err, origin.ErrNotFound) {
			t.Errorf("ObjectACL of a missing key = %q, %v; want origin.ErrNotFound", got, err)
		}
	}
	fb.NoACLs(true)
	b := s3test.New(t, fb, func(c *s3.Config) { c.Prefix = "pre" })
	if got, err := b.ObjectACL(ctx, "shown.png"); !errors.Is(err, origin.ErrNoACLs) {
		t.Errorf("ObjectACL on a service without ACLs = %q, %v; want origin.ErrNoACLs", got, err)
	}
}

// TestObjectACLAnonymous checks that an anonymous bucket reads ACLs with its signed client: the
// fake refuses every unsigned ACL request, as AWS does.
func TestObjectACLAnonymous(t *testing.T) {
	fb := publicFake(t)
	b := newBucket(t, publicConfig(fb))
	ctx := context.Background()
	for key, want := range map[string]string{"pub.png": origin.ACLPublicRead, "priv.png": origin.ACLPrivate} {
		if got, err := b.ObjectACL(ctx, key); got != want || err != nil {
			t.Errorf("anonymous bucket: ObjectACL(%s) = %q, %v; want %q", key, got, err, want)
		}
	}
}

// TestObjectHeaders checks that ObjectHeaders returns the Content-Type and Cache-Control an
// object was stored with, by the fake directly and by Put, and nothing where it has none.
func TestObjectHeaders(t *testing.T) {
	fb := origintest.NewFakeBucket(t)
	fb.PutWithHeaders(t, "stored.png", []byte("png"), "image/png", "public, max-age=60")
	fb.PutWithHeaders(t, "bare.png", []byte("bare"), "", "")
	fb.SetACL("stored.png", "private") // a hidden object is read all the same
	b := s3test.New(t, fb, func(c *s3.Config) { c.RequirePublicRead = true })
	ctx := context.Background()
	put := origin.PutOptions{ContentType: "video/mp4", CacheControl: "public, max-age=31536000, immutable"}
	if err := b.Put(ctx, "put.mp4", bytes.NewReader([]byte("mp4")), 3, put); err != nil {
		t.Fatalf("Put: %v", err)
	}
	for _, tc := range []struct {
		key  string
		size int64
		want origin.ObjectHeaders
	}{
		{"stored.png", 3, origin.ObjectHeaders{ContentType: "image/png", CacheControl: "public, max-age=60"}},
		{"put.mp4", 3, origin.ObjectHeaders{ContentType: put.ContentType, CacheControl: put.CacheControl}},
		{"bare.png", 4, origin.ObjectHeaders{}},
	} {
		m, h, err := b.ObjectHeaders(ctx, tc.key)
		if err != nil || h != tc.want || m.Size != tc.size || m.ETag == "" {
			t.Errorf("ObjectHeaders(%s) = %+v, %+v, %v; want %+v of %d bytes with an ETag", tc.key, m, h, err, tc.want, tc.size)
		}
	}
	if _, _, err := b.ObjectHeaders(ctx, "missing.png"); !errors.Is(err, origin.ErrNotFound) {
		t.Errorf("ObjectHeaders of a missing key: %v, want origin.ErrNotFound", err)
	}
}
