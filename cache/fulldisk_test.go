package cache_test

import (
	"bytes"
	"context"
	"io"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fedicache/fedicache/cache/disk"
	"github.com/fedicache/fedicache/cache/tiertest"
	"github.com/fedicache/fedicache/origin/origintest"
)

// fill takes all but keep bytes of the free space of the file system at dir, with a file that
// the test can remove to free it again.
func fill(t *testing.T, dir string, keep int64) string {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	free := int64(st.Bavail) * int64(st.Bsize)
	p := dir + "/ballast"
	if err := os.WriteFile(p, make([]byte, max(free-keep, 0)), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestFullDiskFillsUp is the operator's full disk: the disk tier (and the spool folder) on a
// small file system, cache.disk.max_bytes far above it, cold objects larger than the memory
// tier's limit and larger than the space left. No client is cut: one client, and ten sharing
// one fetch, all get every byte, from one bucket GET; nothing half-written stays on the disk.
func TestFullDiskFillsUp(t *testing.T) {
	origintest.CheckLeaks(t)
	fsDir := tiertest.TinyFS(t, 16<<20)
	h := newHarness(t, harnessOpts{noDisk: true})
	h.diskDir = fsDir + "/cache"
	h.cfg.SpoolDir = fsDir + "/spool" // no room elsewhere either
	if err := os.Mkdir(h.cfg.SpoolDir, 0o700); err != nil {
		t.Fatal(err)
	}
	d, err := disk.Open(disk.Config{Dir: h.diskDir, MaxBytes: 10 << 30})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	h.disk = d
	h.build()
	t.Cleanup(h.l.Close)
	select {
	case <-d.Rebuilt():
	case <-time.After(10 * time.Second):
		t.Fatal("the disk index is not rebuilt")
	}
	ballast := fill(t, fsDir, 3<<20) // 3 MiB left
	objs := faultObjects(t, h, 6<<20, 6<<20+1, 5<<20)
	i := 0
	for key, want := range objs {
		clients := []int{1, 10, 3}[i]
		i++
		gate := h.bucket.GateBody(key, 64<<10) // every client joins the one fetch
		var wg sync.WaitGroup
		bodies := make([]io.ReadCloser, clients)
		for c := range bodies {
			body, _, err := h.l.Get(context.Background(), key, nil)
			if err != nil {
				t.Fatalf("%s, client %d: %v", key, c, err)
			}
			bodies[c] = body
		}
		gate.Open()
		for c, body := range bodies {
			wg.Go(func() {
				defer body.Close()
				got, err := io.ReadAll(body)
				if err != nil || !bytes.Equal(got, want) {
					t.Errorf("%s, client %d of %d: %d of %d bytes, %v", key, c, clients, len(got), len(want), err)
				}
			})
		}
		wg.Wait()
		if n := h.bucket.Gets(key); n != 1 {
			t.Errorf("%s: %d bucket GETs for %d clients, want 1", key, n, clients)
		}
	}
	h.l.Settle()
	if st := h.l.Stats(); st.Disk.Entries != 0 {
		t.Errorf("%d disk entries on a full disk", st.Disk.Entries)
	}
	if err := os.Remove(ballast); err != nil {
		t.Fatal(err)
	}
	h.checkTiers(t, map[string][]byte{}) // nothing half-written left, in the tier or the spool folder
}

// TestFullDiskSlowReader: after the spool fails, a fast and a slow client share the fetch
// through its bounded window: the fast one waits for the slow one rather than the window
// overwriting bytes the slow one has still to read; both get every byte right.
func TestFullDiskSlowReader(t *testing.T) {
	origintest.CheckLeaks(t)
	fsDir := tiertest.TinyFS(t, 4<<20)
	h := newHarness(t, harnessOpts{noDisk: true})
	h.cfg.SpoolDir = fsDir + "/spool"
	if err := os.Mkdir(h.cfg.SpoolDir, 0o700); err != nil {
		t.Fatal(err)
	}
	h.build()
	t.Cleanup(h.l.Close)
	fill(t, fsDir, 256<<10) // the spool fails after a quarter MiB
	objs := faultObjects(t, h, 13<<20+5)
	for key, want := range objs {
		fast, _, err := h.l.Get(context.Background(), key, nil)
		if err != nil {
			t.Fatal(err)
		}
		slow, _, err := h.l.Get(context.Background(), key, nil)
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		wg.Go(func() {
			defer fast.Close()
			got, err := io.ReadAll(fast)
			if err != nil || !bytes.Equal(got, want) {
				t.Errorf("the fast client: %d of %d bytes, %v", len(got), len(want), err)
			}
		})
		wg.Go(func() {
			defer slow.Close()
			var got bytes.Buffer
			small := make([]byte, 4099)
			for got.Len() < 6<<20 { // crawls through the first 6 MiB, beyond the window
				n, err := slow.Read(small)
				got.Write(small[:n])
				if err != nil {
					t.Errorf("the slow client after %d bytes: %v", got.Len(), err)
					return
				}
			}
			if _, err := io.Copy(&got, slow); err != nil || !bytes.Equal(got.Bytes(), want) {
				t.Errorf("the slow client: %d of %d bytes, %v", got.Len(), len(want), err)
			}
		})
		wg.Wait()
	}
	h.checkTiers(t, map[string][]byte{})
}
