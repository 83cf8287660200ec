package memory_test

import (
	"fmt"
	"io"
	"testing"

	"github.com/fedicache/fedicache/cache/memory"
	"github.com/fedicache/fedicache/cache/tiertest"
	"github.com/fedicache/fedicache/origin"
)

// benchKeys stores n objects of size bytes and returns their keys.
func benchKeys(b *testing.B, m *memory.Memory, n, size int) []string {
	b.Helper()
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("media_attachments/files/000/000/%03d/small/%016x.png", i, i)
		body := tiertest.Blob(uint64(i), size)
		store(b, m, tiertest.NewEntry(keys[i], body), body)
	}
	return keys
}

func BenchmarkPeek(b *testing.B) {
	m := newMemory(b, 64<<20)
	keys := benchKeys(b, m, 256, 16<<10)
	b.ReportAllocs()
	var n int
	i := 0
	for b.Loop() {
		h, ok := m.Peek(keys[i%len(keys)])
		if !ok {
			b.Fatal("miss")
		}
		n += len(h.Body)
		i++
	}
	_ = n
}

func BenchmarkPeekMiss(b *testing.B) {
	m := newMemory(b, 64<<20)
	benchKeys(b, m, 256, 16<<10)
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := m.Peek("nothing/here.png"); ok {
			b.Fatal("hit")
		}
	}
}

func BenchmarkPeekParallel(b *testing.B) {
	m := newMemory(b, 64<<20)
	keys := benchKeys(b, m, 256, 16<<10)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, ok := m.Peek(keys[i%len(keys)]); !ok {
				b.Error("miss")
				return
			}
			i++
		}
	})
}

// BenchmarkPeekParallelHot has every goroutine ask for one key, as a viral post's image.
func BenchmarkPeekParallelHot(b *testing.B) {
	m := newMemory(b, 64<<20)
	key := benchKeys(b, m, 1, 16<<10)[0]
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, ok := m.Peek(key); !ok {
				b.Error("miss")
				return
			}
		}
	})
}

func BenchmarkOpenWhole(b *testing.B) {
	m := newMemory(b, 64<<20)
	keys := benchKeys(b, m, 256, 16<<10)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		body, _, err := m.Open(keys[i%len(keys)], nil)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := body.(io.WriterTo).WriteTo(io.Discard); err != nil {
			b.Fatal(err)
		}
		body.Close()
		i++
	}
}

func BenchmarkOpenRange(b *testing.B) {
	m := newMemory(b, 64<<20)
	keys := benchKeys(b, m, 256, 16<<10)
	r := origin.Range{Start: 1000, End: 1999}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		body, _, err := m.Open(keys[i%len(keys)], &r)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := body.(io.WriterTo).WriteTo(io.Discard); err != nil {
			b.Fatal(err)
		}
		body.Close()
		i++
	}
}

func BenchmarkPut(b *testing.B) {
	m := newMemory(b, 64<<20)
	body := tiertest.Blob(1, 16<<10)
	keys := make([]string, 4096)
	for i := range keys {
		keys[i] = fmt.Sprintf("media_attachments/files/%016x.png", i)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		m.Put(tiertest.NewEntry(keys[i%len(keys)], body), body)
		i++
	}
	m.Wait()
}
