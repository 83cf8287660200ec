package cache_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/fedicache/fedicache/cache"
	"github.com/fedicache/fedicache/cache/tiertest"
	"github.com/fedicache/fedicache/origin"
	"github.com/fedicache/fedicache/origin/origintest"
)

// checkTiers stops the cache's fetches and checks what its tiers kept: every entry a tier
// holds for a key of objects reads back as exactly its bytes, the disk folder holds nothing
// else, and no temporary file is left in it or in the spool folder.
func (h *harness) checkTiers(t *testing.T, objects map[string][]byte) {
	t.Helper()
	h.l.WaitFills()
	h.l.Close()
	var mem, disk cache.Tier
	if h.mem != nil {
		mem = h.mem
	}
	if h.disk != nil {
		disk = h.disk
	}
	tiertest.CheckKept(t, objects, mem, disk, h.diskDir, h.cfg.SpoolDir)
}

// faultObjects stores objects of the given sizes in the bucket and returns them by key.
func faultObjects(t *testing.T, h *harness, sizes ...int) map[string][]byte {
	t.Helper()
	objs := map[string][]byte{}
	for i, size := range sizes {
		key := fmt.Sprintf("media_attachments/files/000/000/%03d/original/fault%011d.mp4", i, i)
		objs[key] = tiertest.Blob(uint64(700+i), size)
		h.bucket.Put(t, key, objs[key])
	}
	return objs
}

// getAll reads every object through the cache from several goroutines at once, whole and in
// ranges, and reports any error or wrong byte.
func getAll(t *testing.T, h *harness, objs map[string][]byte, clients int) {
	t.Helper()
	var wg sync.WaitGroup
	for c := range clients {
		for key, want := range objs {
			wg.Go(func() {
				var r *origin.Range
				if c%2 == 1 && len(want) > 10 {
					r = &origin.Range{Start: int64(c), End: int64(len(want) / 2)}
				}
				body, _, err := h.l.Get(context.Background(), key, r)
				if err != nil {
					t.Errorf("client %d, %s: %v", c, key, err)
					return
				}
				got, err := io.ReadAll(body)
				body.Close()
				if r != nil {
					want = want[r.Start : r.End+1]
				}
				if err != nil || !bytes.Equal(got, want) {
					t.Errorf("client %d, %s (range %v): %d bytes, %v; want the %d stored", c, key, r, len(got), err, len(want))
				}
			})
		}
	}
	wg.Wait()
}

// TestFaultDiskFull: with a disk tier smaller than most objects, every request is answered
// with the right bytes, whole or in ranges, the disk tier stays within its size and keeps
// nothing half-written.
func TestFaultDiskFull(t *testing.T) {
	origintest.CheckLeaks(t)
	for _, opts := range []harnessOpts{{diskMax: 64 << 10}, {diskMax: 64 << 10, noMemory: true}} {
		h := newHarness(t, opts)
		t.Cleanup(h.l.Close)
		objs := faultObjects(t, h, 10_000, 50_000, 100_000, 1<<20, 3<<20+1)
		for range 3 {
			getAll(t, h, objs, 6)
		}
		if st := h.disk.Stats(); st.Bytes > 64<<10 {
			t.Errorf("memory %v: the disk tier holds %d bytes, beyond its 64 KiB", !opts.noMemory, st.Bytes)
		}
		h.checkTiers(t, objs)
	}
}

// TestFaultDiskReadOnly: a disk folder the process may not write turns the disk tier's writes
// off; no request fails because of it and the bytes are right.
func TestFaultDiskReadOnly(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("running as root: chmod 0555 does not stop root from writing, and a read-only " +
			"mount needs privileges; TestFaultDiskUnwritable covers a folder no write succeeds in")
	}
	origintest.CheckLeaks(t)
	h := newHarness(t, harnessOpts{})
	t.Cleanup(h.l.Close)
	objs := faultObjects(t, h, 10_000, 200_000, 2<<20)
	for _, dir := range []string{filepath.Join(h.diskDir, "tmp"), h.diskDir} {
		if err := os.Chmod(dir, 0o555); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = os.Chmod(dir, 0o755) })
	}
	for range 2 {
		getAll(t, h, objs, 4)
	}
	if st := h.l.Stats(); !st.Disk.Disabled || st.Disk.Entries != 0 {
		t.Errorf("read-only disk folder: disabled %v, %d entries; want writes off and nothing kept", st.Disk.Disabled, st.Disk.Entries)
	}
	h.checkTiers(t, objs)
}

// TestFaultDiskUnwritable: when the disk tier cannot create its temporary files (its tmp
// folder replaced by a file: no write succeeds there, even as root), or cannot rename one into
// place (a file where the entry's folder should be), no request fails and the bytes are right.
func TestFaultDiskUnwritable(t *testing.T) {
	origintest.CheckLeaks(t)
	for _, tc := range []struct {
		name  string
		block func(t *testing.T, h *harness, objs map[string][]byte)
	}{
		{"no temporary file", func(t *testing.T, h *harness, _ map[string][]byte) {
			tmp := filepath.Join(h.diskDir, "tmp")
			if err := os.RemoveAll(tmp); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(tmp, []byte("in the way"), 0o644); err != nil {
				t.Fatal(err)
			}
		}},
		{"no rename into place", func(t *testing.T, h *harness, objs map[string][]byte) {
			for key := range objs {
				sum := sha256.Sum256([]byte(key))
				top := filepath.Join(h.diskDir, hex.EncodeToString(sum[:1]))
				if err := os.WriteFile(top, []byte("in the way"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, opts := range []harnessOpts{{}, {noMemory: true}} {
				h := newHarness(t, opts)
				t.Cleanup(h.l.Close)
				objs := faultObjects(t, h, 10_000, 200_000, 2<<20)
				tc.block(t, h, objs)
				for range 2 {
					getAll(t, h, objs, 4)
				}
				if st := h.l.Stats(); st.Disk.Entries != 0 || st.Disk.WriteErrors == 0 {
					t.Errorf("memory %v: %d disk entries, %d write errors; want none kept and the failures counted",
						!opts.noMemory, st.Disk.Entries, st.Disk.WriteErrors)
				}
				h.checkTiers(t, objs)
			}
		})
	}
}

// entryFile returns the path of the one entry file in the disk folder.
func entryFile(t *testing.T, dir string) string {
	t.Helper()
	var files []string
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() && filepath.Base(filepath.Dir(p)) != "tmp" {
			files = append(files, p)
		}
		return nil
	})
	if len(files) != 1 {
		t.Fatalf("%d files in the disk tier, want 1", len(files))
	}
	return files[0]
}

// overwrite writes b at offset off of the file at p.
func overwrite(t *testing.T, p string, off int64, b []byte) {
	t.Helper()
	f, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

// TestFaultCorruptDiskEntries: a disk entry's file truncated, extended, overwritten or
// replaced is dropped, never served: the object is fetched again with the right bytes and
// stored whole. Both while the cache runs and across a restart (the index rebuilt from files).
func TestFaultCorruptDiskEntries(t *testing.T) {
	origintest.CheckLeaks(t)
	const size = 300_000
	damages := []struct {
		name   string
		damage func(t *testing.T, p string)
	}{
		{"truncated to half", func(t *testing.T, p string) { truncateTo(t, p, -size/2) }},
		{"truncated by one byte", func(t *testing.T, p string) { truncateTo(t, p, -1) }},
		{"emptied", func(t *testing.T, p string) { truncateTo(t, p, 0) }},
		{"extended", func(t *testing.T, p string) {
			f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if _, err := f.Write([]byte("trailing bytes")); err != nil {
				t.Fatal(err)
			}
		}},
		{"garbage of the same length", func(t *testing.T, p string) {
			info, err := os.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			overwrite(t, p, 0, tiertest.Blob(1234, int(info.Size())))
		}},
		{"magic overwritten", func(t *testing.T, p string) { overwrite(t, p, 0, []byte("GIF8")) }},
		{"header length huge", func(t *testing.T, p string) { overwrite(t, p, 16, []byte{0x7f, 0xff, 0xff, 0xff}) }},
		{"header length zero", func(t *testing.T, p string) { overwrite(t, p, 16, []byte{0, 0, 0, 0}) }},
		{"header not JSON", func(t *testing.T, p string) { overwrite(t, p, 20, []byte("\x00\x01\x02")) }},
		{"header names another key", func(t *testing.T, p string) {
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			// Same length, so only the key tells.
			b = bytes.Replace(b, []byte("fault00000000000"), []byte("fault99999999999"), 1)
			if err := os.WriteFile(p, b, 0o600); err != nil {
				t.Fatal(err)
			}
		}},
		{"a folder in its place", func(t *testing.T, p string) {
			if err := os.Remove(p); err != nil {
				t.Fatal(err)
			}
			if err := os.Mkdir(p, 0o750); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, restart := range []bool{false, true} {
		for _, dm := range damages {
			name := dm.name
			if restart {
				name += ", after a restart"
			}
			t.Run(name, func(t *testing.T) {
				h := newHarness(t, harnessOpts{noMemory: true})
				objs := faultObjects(t, h, size)
				var key string
				for k := range objs {
					key = k
				}
				if _, _, err := h.get(t, key); err != nil {
					t.Fatal(err)
				}
				h.l.Close() // the fill has stored it
				dm.damage(t, entryFile(t, h.diskDir))
				if restart {
					h.disk.Close()
					h.openDisk(t, 256<<20)
				}
				h.build()
				t.Cleanup(h.l.Close)
				for i := range 3 {
					got, from, err := h.get(t, key)
					if err != nil || !bytes.Equal(got, objs[key]) {
						t.Fatalf("request %d after the damage: %v, %d bytes (source %q); want the %d stored", i+1, err, len(got), from.Source, len(objs[key]))
					}
					if i == 0 && from.Source != origin.SourceBucket {
						t.Errorf("after the damage: served from %q, want a new fetch", from.Source)
					}
				}
				if n := h.bucket.Gets(key); n < 2 {
					t.Errorf("%d bucket GETs: the damaged entry was served", n)
				}
				h.checkTiers(t, objs)
			})
		}
	}
}

// truncateTo cuts the file at p to n bytes, or by -n bytes when n < 0.
func truncateTo(t *testing.T, p string, n int64) {
	t.Helper()
	if n < 0 {
		info, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		n += info.Size()
	}
	if err := os.Truncate(p, n); err != nil {
		t.Fatal(err)
	}
}

// TestFaultDiskEntryBodyRot: bytes of a disk entry's body changed in place, with its length
// and header intact (a failing disk, a stray write), are not served: the entry's ETag is the
// MD5 of its body, so the damage can be told.
func TestFaultDiskEntryBodyRot(t *testing.T) {
	origintest.CheckLeaks(t)
	for _, opts := range []harnessOpts{{noMemory: true}, {}} {
		h := newHarness(t, opts)
		t.Cleanup(h.l.Close)
		objs := faultObjects(t, h, 30_000)
		var key string
		for k := range objs {
			key = k
		}
		if _, _, err := h.get(t, key); err != nil {
			t.Fatal(err)
		}
		h.l.Close()
		p := entryFile(t, h.diskDir)
		info, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		overwrite(t, p, info.Size()-1000, bytes.Repeat([]byte{0xAA}, 500))
		h.build() // a new cache: the memory tier's copy, if any, is not the one served
		if h.mem != nil {
			h.mem.Delete(key)
		}
		t.Cleanup(h.l.Close)
		got, from, err := h.get(t, key)
		if err == nil && !bytes.Equal(got, objs[key]) {
			t.Errorf("memory %v: a body damaged in place was served from %q: %d bytes differ from the stored ones",
				!opts.noMemory, from.Source, countDiff(got, objs[key]))
		}
	}
}

// countDiff returns how many bytes of a and b differ (the extra length counting as different).
func countDiff(a, b []byte) int {
	n := max(len(a), len(b)) - min(len(a), len(b))
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			n++
		}
	}
	return n
}
