//go:build unix

package volume_test

import (
	"context"
	"io/fs"
	"os"
	"syscall"
	"testing"
	"time"
)

// BenchmarkWalkDir walks the volume in the directory FEDICACHE_WALK_DIR names, skipped when it is
// unset: one op is the whole walk. It reports the files walked and the CPU time the process
// spent per walk, in user and system mode (from getrusage), beside the wall time. A tree of a
// million files compares with find(1) run beside it:
//
//	FEDICACHE_WALK_DIR=/path/to/volume go test ./origin/volume -run '^$' -bench WalkDir -benchtime 3x
//	time find /path/to/volume -type f -printf '%s %T@\n' | wc -l
func BenchmarkWalkDir(b *testing.B) {
	dir := os.Getenv("FEDICACHE_WALK_DIR")
	if dir == "" {
		b.Skip("FEDICACHE_WALK_DIR names no directory to walk")
	}
	v := openVolume(b, dir)
	var files int
	var user, sys time.Duration
	for b.Loop() {
		before := rusage(b)
		files = 0
		if err := v.Walk(context.Background(), func(string, fs.FileInfo) error { files++; return nil }); err != nil {
			b.Fatalf("walked %d keys: %v", files, err)
		}
		after := rusage(b)
		user += time.Duration(after.Utime.Nano() - before.Utime.Nano())
		sys += time.Duration(after.Stime.Nano() - before.Stime.Nano())
	}
	b.ReportMetric(float64(files), "files")
	b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/walk")
	b.ReportMetric(user.Seconds()/float64(b.N), "user-s/walk")
	b.ReportMetric(sys.Seconds()/float64(b.N), "sys-s/walk")
	b.ReportMetric((user+sys).Seconds()/float64(b.N), "cpu-s/walk")
}

// rusage returns the process's resource usage so far.
func rusage(tb testing.TB) syscall.Rusage {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return ru
}
