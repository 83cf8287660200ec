package volume_test

import (
	"context"
	"io"
	"testing"

	"github.com/fedicache/fedicache/origin/volume"
)

// benchKey is a Mastodon-shaped key: nine directories deep.
const benchKey = "media_attachments/files/109/852/623/730/091/815/original/0123456789abcdef.jpg"

// BenchmarkGet gets a deep key's whole file, reads it and closes it.
func BenchmarkGet(b *testing.B) {
	eachPath(b, func(b *testing.B, v *volume.Volume) {
		ctx := context.Background()
		buf := make([]byte, 1024)
		for b.Loop() {
			body, _, err := v.Get(ctx, benchKey, nil)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := io.ReadFull(body, buf); err != nil {
				b.Fatal(err)
			}
			body.Close()
		}
	})
}

// BenchmarkStat stats a deep key.
func BenchmarkStat(b *testing.B) {
	eachPath(b, func(b *testing.B, v *volume.Volume) {
		ctx := context.Background()
		for b.Loop() {
			if _, err := v.Stat(ctx, benchKey); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// eachPath runs fn on a volume holding benchKey's file (1 KiB) twice: as "openat2" with one
// openat2 call per key, skipped where the system refuses the call, and as "root" with os.Root
// alone.
func eachPath(b *testing.B, fn func(*testing.B, *volume.Volume)) {
	dir := b.TempDir()
	writeTree(b, dir, map[string][]byte{benchKey: make([]byte, 1024)})
	for _, rootOnly := range []bool{false, true} {
		name := "openat2"
		if rootOnly {
			name = "root"
		}
		b.Run(name, func(b *testing.B) {
			prev := volume.SetRootOnly(rootOnly)
			v := openVolume(b, dir)
			volume.SetRootOnly(prev)
			if !rootOnly && !volume.UsesOpenat2(v) {
				b.Skip("the system refuses openat2")
			}
			b.ReportAllocs()
			fn(b, v)
		})
	}
}
