package cache_test

import (
	"bytes"
	"context"
	"io"
	"testing"
	"time"

	"github.com/fedicache/fedicache/cache/tiertest"
	"github.com/fedicache/fedicache/origin"
)

// TestRangeWaitsForTheFetchThatReachesIt: a range a little ahead of the fetch under way (within
// what the fetch writes in a few hundred milliseconds at its pace) waits for the fetch, so the
// bucket sends those bytes once; a range far ahead (a player seeking to the end of a video) is
// asked of the bucket at once rather than waiting for the whole file before it.
func TestRangeWaitsForTheFetchThatReachesIt(t *testing.T) {
	h := newHarness(t, harnessOpts{noMemory: true})
	t.Cleanup(h.l.Close)
	const size, held = 16 << 20, 1 << 20
	key := "media_attachments/files/000/000/042/original/video.mp4"
	data := tiertest.Blob(42, size)
	h.bucket.Put(t, key, data)
	gate := h.bucket.GateBody(key, held)
	ctx := context.Background()

	// A player reads the video from its start: the fetch has sent the first MiB in a second
	// (the test's clock), then the bucket holds the rest.
	whole, _, err := h.l.Get(ctx, key, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer whole.Close()
	if _, err := io.ReadFull(whole, make([]byte, held)); err != nil {
		t.Fatal(err)
	}
	h.clock.Advance(time.Second)

	read := func(r origin.Range) []byte {
		t.Helper()
		body, _, err := h.l.Get(ctx, key, &r)
		if err != nil {
			t.Fatalf("range %s: %v", r, err)
		}
		defer body.Close()
		b, err := io.ReadAll(body)
		if err != nil {
			t.Fatalf("range %s: %v", r, err)
		}
		return b
	}
	// Far ahead: answered while the fetch is still held, with a ranged GET of its own.
	far := origin.Range{Start: size - 1000, End: size - 1}
	if got := read(far); !bytes.Equal(got, data[size-1000:]) {
		t.Fatalf("far range: %d bytes, want the last 1000", len(got))
	}
	if n := h.bucket.Gets(key); n != 2 {
		t.Fatalf("after the far range: %d bucket GETs, want 2 (the fetch and the range)", n)
	}
	// Near: 100 KiB past what the fetch has written, which it writes in 0.1 s at its pace.
	near := origin.Range{Start: held + 100<<10, End: held + 200<<10 - 1}
	body, _, err := h.l.Get(ctx, key, &near) // before the bucket sends on
	if err != nil {
		t.Fatalf("near range: %v", err)
	}
	gate.Open()
	got, err := io.ReadAll(body)
	body.Close()
	if err != nil || !bytes.Equal(got, data[near.Start:near.End+1]) {
		t.Fatalf("near range: %d bytes, %v; want %d of the object's", len(got), err, near.End-near.Start+1)
	}
	if _, err := io.Copy(io.Discard, whole); err != nil {
		t.Fatal(err)
	}
	h.l.Settle()
	if n := h.bucket.Gets(key); n != 2 {
		t.Errorf("%d bucket GETs, want 2: the near range waited for the fetch", n)
	}
}
