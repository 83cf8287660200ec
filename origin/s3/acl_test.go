package s3_test

import (
	"context"
	"errors"
	"testing"

	"github.com/fedicache/fedicache/origin"
	"github.com/fedicache/fedicache/origin/origintest"
	"github.com/fedicache/fedicache/origin/s3"
	"github.com/fedicache/fedicache/origin/s3/s3test"
)

func aclBucket(t *testing.T, fb *origintest.FakeBucket, require bool) *s3.Bucket {
	t.Helper()
	return s3test.New(t, fb, func(c *s3.Config) { c.RequirePublicRead = require })
}

func TestPrivateACLHidesTheObject(t *testing.T) {
	fb := origintest.NewFakeBucket(t)
	fb.Put(t, "shown.png", []byte("public"))
	fb.Put(t, "hidden.png", []byte("suspended"))
	fb.SetACL("hidden.png", "private")
	b := aclBucket(t, fb, true)
	ctx := context.Background()
	if has, err := b.CheckACLs(ctx); !has || err != nil {
		t.Fatalf("CheckACLs: %v, %v", has, err)
	}
	if _, err := b.Stat(ctx, "shown.png"); err != nil {
		t.Errorf("Stat of a public object: %v", err)
	}
	body, _, err := b.Get(ctx, "shown.png", nil)
	if err != nil {
		t.Fatalf("Get of a public object: %v", err)
	}
	body.Close()
	if _, err := b.Stat(ctx, "hidden.png"); !errors.Is(err, origin.ErrHidden) || !errors.Is(err, origin.ErrNotFound) {
		t.Errorf("Stat of a private object: %v, want ErrHidden (which is also ErrNotFound)", err)
	}
	if body, _, err := b.Get(ctx, "hidden.png", nil); !errors.Is(err, origin.ErrHidden) {
		if body != nil {
			body.Close()
		}
		t.Errorf("Get of a private object: %v, want ErrHidden", err)
	}
	m, _ := b.Stat(ctx, "shown.png")
	fb.SetACL("shown.png", "private") // Mastodon hides it
	if _, _, err := b.Revalidate(ctx, "shown.png", m.ETag); !errors.Is(err, origin.ErrHidden) {
		t.Errorf("revalidation of an object hidden since: %v, want ErrHidden", err)
	}
	// Without the check, or without ACLs at the service, nothing is hidden.
	if _, err := aclBucket(t, fb, false).Stat(ctx, "hidden.png"); err != nil {
		t.Errorf("Stat without the check: %v", err)
	}
	fb.NoACLs(true)
	nb := aclBucket(t, fb, true)
	if has, err := nb.CheckACLs(ctx); has || err != nil {
		t.Errorf("CheckACLs on a service without ACLs: %v, %v; want false, nil", has, err)
	}
	if _, err := nb.Stat(ctx, "hidden.png"); err != nil {
		t.Errorf("Stat on a service without ACLs: %v", err)
	}
}
