package state

import (
	"context"
	"crypto/rand"
	"fmt"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/fedicache/fedicache/origin"
)

// BenchmarkLoadMillionTombstones: a replica starting against a record of a million deleted keys
// (one snapshot) and a thousand busts since: the time of Load (from the in-process S3 server, so
// without a network's latency) and the heap the state keeps (heap-MiB).
//
//	go test -run '^$' -bench LoadMillion -benchtime 5x ./cache/state/
func BenchmarkLoadMillionTombstones(b *testing.B) {
	const tombstones, busts = 1_000_000, 1_000
	_, store := newStore(b)
	ctx := context.Background()
	hs := make([]hash, tombstones)
	for i := range hs {
		_, _ = rand.Read(hs[i][:])
	}
	slices.SortFunc(hs, compareHash)
	hs = slices.CompactFunc(hs, func(x, y hash) bool { return x == y })
	covers := time.Now().Add(-time.Hour)
	body := encodeSnapshot(hs)
	if err := store.Put(ctx, "_fedicache/snapshot/"+timeName(covers)+".bin", body, body.Size(), origin.PutOptions{}); err != nil {
		b.Fatal(err)
	}
	hs = nil
	w := New(Config{Store: store})
	w.loaded.Store(true)
	for i := range busts {
		if _, _, err := w.Record(ctx, Deleted, fmt.Sprintf("media_attachments/files/000/%03d/%03d/original/x.png", i/1000, i%1000)); err != nil {
			b.Fatal(err)
		}
	}
	var keep *State
	var heap float64
	for b.Loop() {
		keep = nil
		runtime.GC()
		var before runtime.MemStats
		runtime.ReadMemStats(&before)
		s := New(Config{Store: store, Cache: &recordingCache{}, ReplayAll: true})
		if err := s.Load(ctx); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		runtime.GC()
		var after runtime.MemStats
		runtime.ReadMemStats(&after)
		heap = float64(after.HeapAlloc-before.HeapAlloc) / (1 << 20)
		keep = s
		b.StartTimer()
	}
	if keep.set.Len() != tombstones+busts {
		b.Fatalf("loaded %d tombstones, want %d", keep.set.Len(), tombstones+busts)
	}
	b.ReportMetric(heap, "heap-MiB")
}

// BenchmarkCheck: the Guard's cost on a memory hit, with a million tombstones and a few recent
// additions.
func BenchmarkCheck(b *testing.B) {
	s := New(Config{})
	s.loaded.Store(true)
	hs := make([]hash, 1_000_000)
	for i := range hs {
		_, _ = rand.Read(hs[i][:])
	}
	slices.SortFunc(hs, compareHash)
	s.set.merge(hs)
	s.set.add(hashOf("recent"))
	key := "media_attachments/files/109/852/623/730/091/815/small/0123456789abcdef.png"
	b.ReportAllocs()
	for b.Loop() {
		if s.Check(key) != nil {
			b.Fatal("refused")
		}
	}
}
