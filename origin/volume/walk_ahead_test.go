package volume_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"runtime"
	"slices"
	"sort"
	"testing"
)

// mastodonShape returns n keys of Mastodon's layout, one attachment per id partition and two
// styles each: a tree that is mostly directories, as the walk reads ahead.
func mastodonShape(n int) []string {
	keys := make([]string, 0, n)
	for i := range n {
		id := i / 2
		keys = append(keys, fmt.Sprintf("media_attachments/files/%03d/%03d/%03d/%s/%016x.png",
			id/1_000_000, id/1000%1000, id%1000, [2]string{"original", "small"}[i%2], id))
	}
	return keys
}

// openFDs counts the process's open file descriptors, -1 where /proc does not say.
func openFDs(t *testing.T) int {
	t.Helper()
	des, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return -1
	}
	return len(des)
}

func TestWalkAheadKeepsKeyOrder(t *testing.T) {
	dir := t.TempDir()
	keys := mastodonShape(3000)
	// Files beside directories at every level, whose names sort between theirs.
	keys = append(keys, "media_attachments/files/000/001-", "media_attachments/files/000/0010", "media_attachments/z", "a")
	files := map[string][]byte{}
	for _, k := range keys {
		files[k] = []byte(k)
	}
	writeTree(t, dir, files)
	sort.Strings(keys)
	v := openVolume(t, dir)
	for range 3 {
		var got []string
		if err := v.Walk(context.Background(), func(key string, _ fs.FileInfo) error {
			got = append(got, key)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, keys) {
			t.Fatalf("Walk visited %d keys, not in sort.Strings order (first: %q)", len(got), got[:min(5, len(got))])
		}
	}
}

func TestWalkAheadClosesWhatItReadWhenStopped(t *testing.T) {
	dir := t.TempDir()
	files := map[string][]byte{}
	for _, k := range mastodonShape(2000) {
		files[k] = nil
	}
	writeTree(t, dir, files)
	v := openVolume(t, dir)
	before := openFDs(t)
	stop := errors.New("stop")
	for _, after := range []int{1, 2, 37, 500, 1999} {
		n := 0
		err := v.Walk(context.Background(), func(string, fs.FileInfo) error {
			if n++; n == after {
				return stop
			}
			return nil
		})
		if !errors.Is(err, stop) || n != after {
			t.Fatalf("stopped at %d: %v after %d keys", after, err, n)
		}
		ctx, cancel := context.WithCancel(context.Background())
		n = 0
		err = v.Walk(ctx, func(string, fs.FileInfo) error {
			if n++; n == after {
				cancel()
			}
			return nil
		})
		cancel()
		if !errors.Is(err, context.Canceled) || n != after {
			t.Fatalf("canceled at %d: %v after %d keys", after, err, n)
		}
	}
	if after := openFDs(t); before >= 0 && after != before {
		t.Errorf("%d file descriptors open after the stopped walks, %d before: read-ahead directories leaked", after, before)
	}
}

// BenchmarkWalk walks a volume of 20,000 files in Mastodon's layout (10,000 attachments, a
// directory each and one per style): one op is the whole walk.
//
//	go test ./origin/volume -run '^$' -bench Walk -benchmem
func BenchmarkWalk(b *testing.B) {
	dir := b.TempDir()
	files := map[string][]byte{}
	for _, k := range mastodonShape(20_000) {
		files[k] = nil
	}
	writeTree(b, dir, files)
	v := openVolume(b, dir)
	b.ReportAllocs()
	for b.Loop() {
		n := 0
		if err := v.Walk(context.Background(), func(string, fs.FileInfo) error { n++; return nil }); err != nil || n != 20_000 {
			b.Fatalf("walked %d keys: %v", n, err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/20_000, "ns/file")
	b.ReportMetric(float64(runtime.GOMAXPROCS(0)), "procs")
}
