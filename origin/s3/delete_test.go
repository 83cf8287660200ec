package s3_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fedicache/fedicache/origin"
	"github.com/fedicache/fedicache/origin/origintest"
	"github.com/fedicache/fedicache/origin/s3"
)

func TestDelete(t *testing.T) {
	fb := origintest.NewFakeBucket(t)
	fb.Put(t, "pre/a.png", []byte("png"))
	fb.Put(t, "a.png", []byte("outside the prefix"))
	cfg := publicConfig(fb)
	cfg.Anonymous, cfg.RequirePublicRead, cfg.Prefix = false, false, "pre"
	cfg.MaxBackoff = 10 * time.Millisecond
	var (
		mu  sync.Mutex
		ops []string
	)
	cfg.Observe = func(op string, _ time.Duration, err error) {
		mu.Lock()
		defer mu.Unlock()
		ops = append(ops, op)
		if err != nil && !errors.Is(err, origin.ErrNotFound) {
			t.Errorf("observed %s failing: %v", op, err)
		}
	}
	b := newBucket(t, cfg)
	ctx := context.Background()

	// One request in two fails 503: the Stat passes, the DeleteObject's first attempt fails and
	// its retry passes.
	fb.FailEvery(2, http.StatusServiceUnavailable)
	if _, err := b.Stat(ctx, "a.png"); err != nil {
		t.Fatal(err)
	}
	if err := b.Delete(ctx, "a.png"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	fb.FailEvery(0, 0)
	if _, err := b.Stat(ctx, "a.png"); !errors.Is(err, origin.ErrNotFound) {
		t.Errorf("Stat after Delete: %v, want ErrNotFound", err)
	}
	if err := b.Delete(ctx, "a.png"); err != nil {
		t.Errorf("Delete of a key that does not exist: %v, want nil", err)
	}
	mu.Lock()
	if want := "HeadObject DeleteObject HeadObject DeleteObject"; strings.Join(ops, " ") != want {
		t.Errorf("observed %v, want %s", ops, want)
	}
	mu.Unlock()

	// The key outside the prefix is untouched.
	cfg.Prefix, cfg.Observe = "", nil
	if _, err := newBucket(t, cfg).Stat(ctx, "a.png"); err != nil {
		t.Errorf("Stat of the key outside the prefix: %v", err)
	}
}

func TestDeleteStall(t *testing.T) {
	fb := origintest.NewFakeBucket(t)
	cfg := publicConfig(fb)
	cfg.Anonymous, cfg.Timeout = false, 200*time.Millisecond
	b := newBucket(t, cfg)
	fb.SetMode(origintest.Stall)
	err := b.Delete(context.Background(), "a.png")
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), `s3: delete "a.png"`) {
		t.Errorf("Delete from a stalled bucket: %v, want a timeout naming the operation and key", err)
	}
}

var _ origin.Deleter = (*s3.Bucket)(nil)
