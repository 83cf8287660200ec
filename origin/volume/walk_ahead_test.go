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
	"strings"
	"testing"

	"github.com/fedicache/fedicache/origin/volume"
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

// TestWalkDeeperThanHeld walks a tree nested three times deeper than the directories a walk
// holds open, with a file and a side directory at every level: every key in order, a bounded
// number of descriptors open while walking and none after. The deepest directory holds more
// files than the walk reads ahead, so when fn sees its first key, which is in that directory,
// the walk is still there and cannot leave before fn reads on.
func TestWalkDeeperThanHeld(t *testing.T) {
	dir := t.TempDir()
	depth := 3*volume.WalkHeld + 5
	files := map[string][]byte{}
	var keys []string
	for i := range depth {
		p := strings.Repeat("d/", i)
		keys = append(keys, p+"f.jpg", p+"side/x.jpg")
	}
	bottom := strings.Repeat("d/", depth)
	for i := range 5000 {
		keys = append(keys, fmt.Sprintf("%sn%04d.jpg", bottom, i))
	}
	for _, k := range keys {
		files[k] = nil
	}
	writeTree(t, dir, files)
	sort.Strings(keys)
	v := openVolume(t, dir)
	before := openFDs(t)
	if before < 0 {
		t.Skip("cannot count descriptors")
	}
	deep := -1
	var got []string
	if err := v.Walk(context.Background(), func(key string, _ fs.FileInfo) error {
		if got = append(got, key); len(got) == 1 {
			deep = openFDs(t)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, keys) {
		t.Errorf("Walk visited %d keys, want %d in sort.Strings order (first: %q)", len(got), len(keys), got[:min(5, len(got))])
	}
	// The path held open, a directory per helper, and the one listing /proc/self/fd.
	if limit := before + volume.WalkHeld + 16 + 1; deep > limit {
		t.Errorf("%d descriptors open %d levels deep, %d before: want at most %d", deep, depth, before, limit)
	}
	if after := openFDs(t); after != before {
		t.Errorf("%d descriptors open after the walk, %d before", after, before)
	}
}
