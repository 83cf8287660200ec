package cache_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/fedicache/fedicache/cache"
	"github.com/fedicache/fedicache/cache/disk"
	"github.com/fedicache/fedicache/cache/memory"
	"github.com/fedicache/fedicache/origin"
	"github.com/fedicache/fedicache/origin/origintest"
	"github.com/fedicache/fedicache/origin/volume"
)

// suiteVolume writes objects to a new old volume and opens it.
func suiteVolume(t *testing.T, objects map[string][]byte) *volume.Volume {
	t.Helper()
	dir := t.TempDir()
	for k, b := range objects {
		p := filepath.Join(dir, filepath.FromSlash(k))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	v, err := volume.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	return v
}

// allowAll is a Guard that refuses nothing, with a generation, as a loaded state without
// tombstones is.
type allowAll struct{}

func (allowAll) Check(string) error { return nil }
func (allowAll) Generation() uint64 { return 7 }

// suiteCache returns a Layered cache with both tiers and a Guard in front of o.
func suiteCache(t *testing.T, o origin.Sourced) *cache.Layered {
	t.Helper()
	m, err := memory.New(memory.Config{MaxBytes: 16 << 20, MaxObjectBytes: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	d, err := disk.Open(disk.Config{Dir: t.TempDir(), MaxBytes: 256 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	l := cache.New(o, m, d, cache.Config{SpoolDir: t.TempDir(), Guard: allowAll{}})
	t.Cleanup(l.Close)
	return l
}

// TestSuiteLayered runs the Origin contract on what the front actually asks: the cache with its
// guard, in front of the fallback chain (an empty primary, then the old volume), cold (every
// answer from a fetch) and warm (every object in the tiers first).
func TestSuiteLayered(t *testing.T) {
	chain := func(t *testing.T, objects map[string][]byte) *origin.FallbackOrigin {
		return origin.Fallback(suiteVolume(t, nil), suiteVolume(t, objects))
	}
	t.Run("Fallback", func(t *testing.T) {
		origintest.Run(t, func(t *testing.T, objects map[string][]byte) origin.Origin { return chain(t, objects) })
	})
	t.Run("Cold", func(t *testing.T) {
		origintest.Run(t, func(t *testing.T, objects map[string][]byte) origin.Origin {
			return suiteCache(t, chain(t, objects))
		})
	})
	t.Run("Warm", func(t *testing.T) {
		origintest.Run(t, func(t *testing.T, objects map[string][]byte) origin.Origin {
			l := suiteCache(t, chain(t, objects))
			for k := range objects {
				body, _, err := l.Get(t.Context(), k, nil)
				if err != nil {
					t.Fatalf("warming %q: %v", k, err)
				}
				_ = origintest.ReadAll(t, body)
			}
			l.Settle()
			return l
		})
	})
}
