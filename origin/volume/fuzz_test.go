package volume_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"

	"github.com/fedicache/fedicache/origin"
)

// FuzzVolumeKey feeds arbitrary keys to a volume with a canary beside it: no key may return the
// canary's bytes (or /etc/passwd's), panic, or make Stat and Get disagree.
func FuzzVolumeKey(f *testing.F) {
	v, canary := canaryVolume(f)
	for _, key := range []string{
		"files/real.jpg", "link-in", "../canary", "link-rel", "a/../../canary", "/etc/passwd",
		"..\\canary", "canary\x00", "fifo", "link-dir-out/canary", "./files/real.jpg",
	} {
		f.Add(key)
	}
	f.Fuzz(func(t *testing.T, key string) {
		ctx := context.Background()
		_, statErr := v.Stat(ctx, key)
		for _, r := range []*origin.Range{nil, {Start: 0, End: -1}} {
			body, _, err := v.Get(ctx, key, r)
			if (err == nil) != (statErr == nil) && !errors.Is(err, origin.ErrRangeNotSatisfiable) {
				t.Errorf("Stat(%q): %v, but Get(%v): %v", key, statErr, r, err)
			}
			if err != nil {
				if body != nil {
					t.Errorf("Get(%q, %v) failed (%v) and returned a body", key, r, err)
					body.Close()
				}
				continue
			}
			b, err := io.ReadAll(io.LimitReader(body, 1<<20))
			body.Close()
			if err != nil {
				t.Errorf("Get(%q, %v): read: %v", key, r, err)
			}
			if bytes.Contains(b, canary) || bytes.Contains(b, []byte("root:")) {
				t.Fatalf("Get(%q, %v) returned bytes from outside the volume: %q", key, r, b)
			}
		}
	})
}
