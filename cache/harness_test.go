package cache_test

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/fedicache/fedicache/cache"
	"github.com/fedicache/fedicache/cache/disk"
	"github.com/fedicache/fedicache/cache/memory"
	"github.com/fedicache/fedicache/origin"
	"github.com/fedicache/fedicache/origin/origintest"
	"github.com/fedicache/fedicache/origin/s3"
	"github.com/fedicache/fedicache/origin/s3/s3test"
)

// harness is a Layered cache in front of a fake bucket, with the tiers the options ask for.
type harness struct {
	bucket  *origintest.FakeBucket
	origin  origin.Sourced
	clock   *origintest.Clock
	diskDir string
	cfg     cache.Config
	mem     *memory.Memory
	disk    *disk.Disk
	l       *cache.Layered
}

type harnessOpts struct {
	noMemory, noDisk bool
	diskMax          int64
	requirePublic    bool // hide objects without a public-read ACL
	realClock        bool // the cache reads the time (the test's clock otherwise)
}

func newHarness(t *testing.T, o harnessOpts) *harness {
	t.Helper()
	h := &harness{bucket: origintest.NewFakeBucket(t), clock: origintest.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))}
	b := s3test.New(t, h.bucket, func(c *s3.Config) { c.RequirePublicRead = o.requirePublic })
	var err error
	h.origin = origin.Fallback(b, nil)
	h.cfg = cache.Config{
		TTL: time.Hour, StaleIfError: 2 * time.Hour, NegativeTTL: 30 * time.Second,
		MemoryObjectBytes: 64 << 10, Clock: h.clock.Now, SpoolDir: t.TempDir(),
	}
	if o.realClock {
		h.cfg.Clock = time.Now
	}
	if !o.noMemory {
		h.mem, err = memory.New(memory.Config{MaxBytes: 16 << 20, MaxObjectBytes: 64 << 10})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(h.mem.Close)
	}
	if !o.noDisk {
		h.diskDir = t.TempDir()
		if o.diskMax == 0 {
			o.diskMax = 256 << 20
		}
		h.openDisk(t, o.diskMax)
	}
	h.build()
	return h
}

func (h *harness) openDisk(t *testing.T, max int64) {
	t.Helper()
	d, err := disk.Open(disk.Config{Dir: h.diskDir, MaxBytes: max})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	h.disk = d
}

// build makes the Layered cache over the harness's tiers.
func (h *harness) build() {
	var mem cache.MemoryTier
	var dsk cache.DiskTier
	if h.mem != nil {
		mem = h.mem
	}
	if h.disk != nil {
		dsk = h.disk
	}
	h.l = cache.New(h.origin, mem, dsk, h.cfg)
}

// get reads key whole through the cache.
func (h *harness) get(t *testing.T, key string) ([]byte, origin.From, error) {
	t.Helper()
	body, _, from, err := h.l.GetFrom(context.Background(), key, nil)
	if err != nil {
		return nil, from, err
	}
	b, err := io.ReadAll(body)
	body.Close()
	h.l.Settle() // what a fetch stores, it stores after the client has its bytes
	return b, from, err
}
