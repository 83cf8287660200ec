package disk

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/fedicache/fedicache/cache/tiertest"
	"github.com/fedicache/fedicache/origin"
)

// benchDisk returns a rebuilt Disk holding 1000 entries of 40 kB and their keys.
func benchDisk(b *testing.B) (*Disk, []string) {
	d := testDisk(b, Config{Dir: b.TempDir()}, nil)
	waitReady(b, d)
	body := tiertest.Blob(1, 40_000)
	keys := make([]string, 1000)
	for i := range keys {
		keys[i] = fmt.Sprintf("media_attachments/files/%03d/%03d/%03d/original/%016x.jpg", i/1000000, i/1000%1000, i%1000, i)
		store(b, d, keys[i], body)
	}
	return d, keys
}

// BenchmarkDiskHitWhole measures Open and Close of a whole entry: what the tier costs before
// the server sends the file.
func BenchmarkDiskHitWhole(b *testing.B) {
	d, keys := benchDisk(b)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		body, _, err := d.Open(keys[i%len(keys)], nil)
		if err != nil {
			b.Fatal(err)
		}
		body.Close()
	}
}

// BenchmarkDiskHitRange measures Open and Close of a 64 KiB range.
func BenchmarkDiskHitRange(b *testing.B) {
	d, keys := benchDisk(b)
	r := origin.Range{Start: 1000, End: 1000 + 64<<10 - 1}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		body, _, err := d.Open(keys[i%len(keys)], &r)
		if err != nil {
			b.Fatal(err)
		}
		body.Close()
	}
}

// BenchmarkDiskMiss measures a miss once the index is rebuilt: no system call.
func BenchmarkDiskMiss(b *testing.B) {
	d, _ := benchDisk(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := d.Open("media_attachments/files/999/999/999/original/absent.jpg", nil); err == nil {
			b.Fatal("hit")
		}
	}
}

// BenchmarkIndexMemory reports the heap an index of a million Mastodon-shaped keys takes, per
// entry.
func BenchmarkIndexMemory(b *testing.B) {
	const n = 1_000_000
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		var x index
		x.init()
		for i := range n {
			k := fmt.Sprintf("media_attachments/files/%03d/%03d/%03d/original/%016x.jpg", i/1000000, i/1000%1000, i%1000, i)
			x.pushBack(k, 40_000, uint32(i))
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "bytes/entry")
		runtime.KeepAlive(&x)
	}
}

// BenchmarkRebuild measures the rebuild of an index of 5000 files (from the page cache).
func BenchmarkRebuild(b *testing.B) {
	dir := b.TempDir()
	for i := range 5000 {
		writeFile(b, dir, fmt.Sprintf("media_attachments/files/%09d/original/x.png", i), []byte("0123456789"), time.Time{})
	}
	// Closed cleanly: no verification after the rebuild.
	if err := os.WriteFile(filepath.Join(dir, markerName), nil, 0o600); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		d := testDisk(b, Config{Dir: dir}, nil)
		waitReady(b, d)
		d.Close()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/5000, "ns/file")
}

// BenchmarkDiskStore measures what storing an object costs a fill: Create, the body written
// in 32 KiB pieces (as the spool writes it), Commit and Close, on the file system of the test's
// temporary directory. Keys are new each time and the cache is bounded, so that old entries
// are evicted as in a cache that churns. flush=each flushes every entry to the disk at Commit
// (what the tier did before entries had checksums, and still does without syncfs); flush=none
// is the tier's way on Linux. Compare the two within one run (-count 5, medians): the machine
// is shared.
func BenchmarkDiskStore(b *testing.B) {
	for _, size := range []int{64 << 10, 1 << 20} {
		for _, flush := range []bool{true, false} {
			name := fmt.Sprintf("%dKiB/flush=none", size>>10)
			if flush {
				name = fmt.Sprintf("%dKiB/flush=each", size>>10)
			}
			b.Run(name, func(b *testing.B) {
				d := testDisk(b, Config{Dir: b.TempDir(), MaxBytes: 512 << 20}, func(d *Disk) { d.flushEach = flush })
				waitReady(b, d)
				body := tiertest.Blob(3, size)
				b.SetBytes(int64(size))
				b.ReportAllocs()
				for i := 0; b.Loop(); i++ {
					w, err := d.Create(tiertest.NewEntry(fmt.Sprintf("media_attachments/files/%016x/original/x.jpg", i), body))
					if err != nil {
						b.Fatal(err)
					}
					for off := 0; off < len(body); off += 32 << 10 {
						if _, err := w.Write(body[off:min(off+32<<10, len(body))]); err != nil {
							b.Fatal(err)
						}
					}
					if err := w.Commit(); err != nil {
						b.Fatal(err)
					}
					w.Close()
				}
			})
		}
	}
}

// BenchmarkDiskStoreSmall measures what a cold miss of a small object costs the tier: Create,
// the 30 kB body in one Write, Commit and Close, with no eviction. fresh stores into a new cache
// directory, replaced every 8192 entries (outside the timing), as in a cache that has just
// started: the first commit into each of its 256 hash directories makes it (with the two-level
// layout, most commits made one); warm stores into a cache whose hash directories were all
// made before it was opened. Run it under strace -f -c to count the system calls per stored
// object.
func BenchmarkDiskStoreSmall(b *testing.B) {
	const size, perDir = 30_000, 8192
	body := tiertest.Blob(4, size)
	for _, warm := range []bool{false, true} {
		name := "30kB/fresh"
		if warm {
			name = "30kB/warm"
		}
		b.Run(name, func(b *testing.B) {
			open := func() *Disk {
				dir := b.TempDir()
				if warm {
					for i := range 256 {
						if err := os.Mkdir(filepath.Join(dir, fmt.Sprintf("%02x", i)), 0o750); err != nil {
							b.Fatal(err)
						}
					}
				}
				d := testDisk(b, Config{Dir: dir, MaxBytes: 1 << 40}, nil)
				waitReady(b, d)
				return d
			}
			d := open()
			b.SetBytes(size)
			b.ReportAllocs()
			var cpu int64 // CPU time used while timed
			start := cpuTime(b)
			for i := 0; b.Loop(); i++ {
				if !warm && i > 0 && i%perDir == 0 {
					b.StopTimer()
					cpu += cpuTime(b) - start
					d.Close()
					d = open()
					start = cpuTime(b)
					b.StartTimer()
				}
				w, err := d.Create(tiertest.NewEntry(fmt.Sprintf("media_attachments/files/%016x/original/x.jpg", i), body))
				if err != nil {
					b.Fatal(err)
				}
				if _, err := w.Write(body); err != nil {
					b.Fatal(err)
				}
				if err := w.Commit(); err != nil {
					b.Fatal(err)
				}
				w.Close()
			}
			cpu += cpuTime(b) - start
			b.ReportMetric(float64(cpu)/float64(b.N), "cpu-ns/op")
		})
	}
}

// cpuTime returns the CPU time the process has used, user and system, in nanoseconds: with
// the disk's writeback left to the kernel's threads, what a store costs the process, which
// the time of day of a benchmark on a shared machine says poorly.
func cpuTime(b *testing.B) int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
