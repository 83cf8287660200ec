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

// TestACLReadAlongsideTheObject: the ACL request of a fill goes out with the object's request,
// not after its answer, so it adds no round trip before the first byte. The fake holds every
// GET and HEAD of a paired key until that key's ACL request has arrived (and fails it after
// origintest.PairWait): a client asking one after the other fails here. A hidden object's
// bytes are still never handed out.
func TestACLReadAlongsideTheObject(t *testing.T) {
	fb := origintest.NewFakeBucket(t)
	keys := []string{"get.png", "stat.png", "revalidate.png", "hidden.png"}
	for _, k := range keys {
		fb.Put(t, k, []byte("object "+k))
	}
	fb.SetACL("hidden.png", "private")
	ctx := context.Background()
	m, err := aclBucket(t, fb, true).Stat(ctx, "revalidate.png") // before the pairing
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		fb.PairACL(k)
	}
	b := aclBucket(t, fb, true)

	body, _, err := b.Get(ctx, "get.png", nil)
	if err != nil {
		t.Fatalf("Get: %v (the ACL request did not go out with the GET)", err)
	}
	if got := string(origintest.ReadAll(t, body)); got != "object get.png" {
		t.Errorf("Get: %q", got)
	}
	if _, err := b.Stat(ctx, "stat.png"); err != nil {
		t.Errorf("Stat: %v (the ACL request did not go out with the HEAD)", err)
	}
	if _, same, err := b.Revalidate(ctx, "revalidate.png", m.ETag); err != nil || !same {
		t.Errorf("Revalidate: %v, unchanged %v (the ACL request did not go out with the HEAD)", err, same)
	}
	if body, _, err := b.Get(ctx, "hidden.png", nil); !errors.Is(err, origin.ErrHidden) || body != nil {
		t.Errorf("Get of a hidden object: body %v, err %v; want no body and ErrHidden", body != nil, err)
	}
	for _, k := range []string{"get.png", "hidden.png"} {
		if n := fb.Gets(k); n != 1 {
			t.Errorf("%s: %d GETs, want 1", k, n)
		}
	}
}
