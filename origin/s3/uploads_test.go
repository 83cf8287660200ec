package s3

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestAbortStaleUploads(t *testing.T) {
	f := newWriteFake(t)
	cfg := testConfig(f.srv.URL)
	cfg.Prefix = "pre"
	b := newTestBucket(t, cfg)
	ctx := context.Background()

	if n, err := b.AbortStaleUploads(ctx, time.Hour); n != 0 || err != nil {
		t.Fatalf("AbortStaleUploads of a bucket without uploads: %d, %v; want 0, nil", n, err)
	}

	// Uploads started two hours ago, by the fake's clock, and one just now.
	f.clock.Set(time.Now().Add(-2 * time.Hour))
	startUpload(t, b, "pre/old.mp4")
	startUpload(t, b, "pre/old.mp4") // two uploads of one key
	startUpload(t, b, "pre/a/older.mp4")
	startUpload(t, b, "other/old.mp4") // outside the prefix
	f.clock.Set(time.Now())
	startUpload(t, b, "pre/new.mp4")

	n, err := b.AbortStaleUploads(ctx, time.Hour)
	if err != nil || n != 3 {
		t.Fatalf("AbortStaleUploads(1h): %d, %v; want 3, nil", n, err)
	}
	left := pendingUploads(t, b)
	slices.Sort(left)
	if want := []string{"other/old.mp4", "pre/new.mp4"}; !slices.Equal(left, want) {
		t.Errorf("uploads left %v, want %v", left, want)
	}
	for _, c := range f.requests(isAbort) {
		if !strings.HasPrefix(c.Path, "/media/pre/") {
			t.Errorf("aborted %s, outside the prefix", c.Path)
		}
	}

	if n, err := b.AbortStaleUploads(ctx, 0); err != nil || n != 1 {
		t.Fatalf("AbortStaleUploads(0): %d, %v; want 1 (the new one), nil", n, err)
	}
	if left := pendingUploads(t, b); !slices.Equal(left, []string{"other/old.mp4"}) {
		t.Errorf("uploads left %v, want only the one outside the prefix", left)
	}
}
