package s3

import (
	"context"
	"errors"
	"testing"

	"github.com/fedicache/fedicache/origin"
)

func TestValidateConditional(t *testing.T) {
	f := newFake(t, "", map[string][]byte{"a/b.png": []byte("version one")})
	b := newTestBucket(t, testConfig(f.srv.URL))
	ctx := context.Background()
	m, err := b.Stat(ctx, "a/b.png")
	if err != nil {
		t.Fatal(err)
	}
	if _, same, err := b.Revalidate(ctx, "a/b.png", m.ETag); err != nil || !same {
		t.Errorf("Validate with the current ETag: same %v, err %v; want unchanged", same, err)
	}
	seen := f.requests()
	if last := seen[len(seen)-1]; last.Method != "HEAD" || last.Header.Get("If-None-Match") != m.ETag || last.Status != 304 {
		t.Errorf("the revalidation reached the bucket as %s with If-None-Match %q and answer %d; want a conditional HEAD answered 304",
			last.Method, last.Header.Get("If-None-Match"), last.Status)
	}
	got, same, err := b.Revalidate(ctx, "a/b.png", `"stale"`)
	if err != nil || same || got.ETag != m.ETag || got.Size != m.Size {
		t.Errorf("Validate with an old ETag: %+v, same %v, err %v; want the current meta", got, same, err)
	}
	if _, _, err := b.Revalidate(ctx, "a/none.png", m.ETag); !errors.Is(err, origin.ErrNotFound) {
		t.Errorf("Validate of a deleted key: %v, want ErrNotFound", err)
	}
}
