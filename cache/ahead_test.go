package cache_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/fedicache/fedicache/origin"
)

// aheadVideo is the size of the videos of these tests: large enough that a range in the middle
// is far ahead of a fetch from the start at the bucket's pace.
const aheadVideo = 8 << 20

// seekMiddle starts a fetch of key from its start (a player's first request, read slowly by
// its caller) and a player's seek to the middle ("bytes=N-"), which the fetch does not reach
// soon, so it gets the object's open ahead; it returns the two bodies, unread but for the first
// byte of the fetch's, the seek's limited to its first MiB (a player reads what it needs and
// goes).
// between runs once the fetch's GET is under way, before the seek's: a fault set there is met
// by the ahead's answer only.
func seekMiddle(t *testing.T, h *harness, key string, between func()) (whole, middle io.ReadCloser) {
	t.Helper()
	ctx := context.Background()
	whole, _, err := h.l.Get(ctx, key, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := whole.Read(make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	between()
	body, _, err := h.l.Get(ctx, key, &origin.Range{Start: aheadVideo / 2, End: -1})
	if err != nil {
		t.Fatal(err)
	}
	return whole, struct {
		io.Reader
		io.Closer
	}{io.LimitReader(body, 1<<20), body}
}

// TestAheadChecksTheWholeObject: the fetch of a video goes on from its ahead's bytes, and the
// checks of the whole object still cover every byte: the bucket's full-object checksum (the
// ETag of a multipart upload checks nothing) or the ETag's MD5. A byte altered in the ahead's
// answer fails the fetch: no reader of the whole object gets a complete body, nothing is
// stored, and the next request gets the object's bytes. Untouched, the object is stored whole
// after two GETs.
func TestAheadChecksTheWholeObject(t *testing.T) {
	for _, c := range []struct {
		name      string
		checksum  bool
		corrupted bool
	}{
		{"full-object checksum", true, false},
		{"full-object checksum, ahead altered", true, true},
		{"MD5 ETag", false, false},
		{"MD5 ETag, ahead altered", false, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t, harnessOpts{noMemory: true, realClock: true})
			t.Cleanup(h.l.Close)
			key := "media_attachments/files/000/000/070/original/video.mp4"
			data := make([]byte, aheadVideo)
			for i := range data {
				data[i] = byte(rand.Uint32())
			}
			if c.checksum {
				h.bucket.PutWithChecksum(t, key, data, "CRC64NVME", true)
			} else {
				h.bucket.Put(t, key, data)
			}
			h.bucket.Pace(40e6, 0)
			// The ahead's answer sends a byte altered: the object's byte 1000 past the middle,
			// which the fetch from the start does not read (it stops at the middle).
			whole, middle := seekMiddle(t, h, key, func() {
				if c.corrupted {
					h.bucket.CorruptBody(key, 1000)
				}
			})
			got, err := io.ReadAll(middle)
			middle.Close()
			if err != nil || !bytes.Equal(got, data[aheadVideo/2:aheadVideo/2+1<<20]) && !c.corrupted {
				t.Fatalf("middle seek: %d bytes, %v", len(got), err)
			}
			rest, err := io.ReadAll(whole)
			whole.Close()
			h.l.Settle()
			if c.corrupted {
				if err == nil {
					t.Fatalf("the whole object's reader got %d bytes and io.EOF from an altered body", len(rest)+1)
				}
				if st := h.l.Stats(); st.Disk.Entries != 0 {
					t.Fatalf("an altered object was stored: %+v", st.Disk)
				}
				h.bucket.CorruptBody(key, -1)
				wantWholeNext(t, h, key, data)
				return
			}
			if err != nil || !bytes.Equal(append([]byte{data[0]}, rest...), data) {
				t.Fatalf("the whole object: %d bytes, %v", len(rest)+1, err)
			}
			if gets := h.bucket.Gets(key); gets != 2 {
				t.Errorf("%d bucket GETs, want 2: the fetch and its ahead", gets)
			}
			// The fetch stopped reading its own answer at the middle and went on from the ahead's
			// bytes: beyond the object, the bucket sent only what the connections held then
			// (reading its own answer to the end would have made it 1.5x).
			if st := h.l.Stats(); st.AheadFills != 1 || st.AheadTaken != 1 || st.Disk.Entries != 1 {
				t.Errorf("ahead fills %d, taken %d, disk %+v: want the fetch to go on from its ahead and the object stored", st.AheadFills, st.AheadTaken, st.Disk)
			}
			t.Logf("the bucket sent %.3fx the object's bytes", float64(h.bucket.Sent())/aheadVideo)
			h.bucket.Pace(0, 0)
			body, _, from, err := h.l.GetFrom(context.Background(), key, nil)
			if err != nil {
				t.Fatal(err)
			}
			stored, err := io.ReadAll(body)
			body.Close()
			if err != nil || !bytes.Equal(stored, data) || from.Source != "disk" || h.bucket.Gets(key) != 2 {
				t.Fatalf("the stored object: %d bytes from %s, %v, %d GETs", len(stored), from.Source, err, h.bucket.Gets(key))
			}
		})
	}
}

// TestAheadOfAnotherVersion: the object is replaced between the fetch's GET and its ahead's.
// The fetch does not go on from bytes of another version: it reads its own answer to the end
// and stores the version it began with, whole; the seek gets the new version's bytes, as its
// own GET answered.
func TestAheadOfAnotherVersion(t *testing.T) {
	h := newHarness(t, harnessOpts{noMemory: true, realClock: true})
	t.Cleanup(h.l.Close)
	key := "media_attachments/files/000/000/071/original/video.mp4"
	old := bytes.Repeat([]byte("old version "), aheadVideo/12+1)[:aheadVideo]
	newer := bytes.Repeat([]byte("NEW VERSION "), aheadVideo/12+1)[:aheadVideo]
	h.bucket.Put(t, key, old)
	gate := h.bucket.GateBody(key, 64<<10)
	ctx := context.Background()
	whole, _, err := h.l.Get(ctx, key, nil)
	if err != nil {
		t.Fatal(err)
	}
	<-gate.Passed
	h.bucket.GateBody(key, -1)
	h.bucket.Put(t, key, newer)
	middle, _, err := h.l.Get(ctx, key, &origin.Range{Start: aheadVideo / 2, End: -1})
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(io.LimitReader(middle, 100))
	middle.Close()
	if err != nil || !bytes.Equal(got, newer[aheadVideo/2:aheadVideo/2+100]) {
		t.Fatalf("the seek: %q, %v", got, err)
	}
	gate.Open()
	all, err := io.ReadAll(whole)
	whole.Close()
	if err != nil || !bytes.Equal(all, old) {
		t.Fatalf("the whole object: %d bytes, %v, the version it began with: %v", len(all), err, bytes.Equal(all, old))
	}
	h.l.Settle()
	if st := h.l.Stats(); st.Disk.Entries != 1 {
		t.Fatalf("disk %+v, want the old version stored", st.Disk)
	}
}

// TestAheadCutFailsTheFetch: the ahead's answer is cut half way. The fetch going on from it
// fails rather than end short: its reader gets an error, never io.EOF, nothing is stored, and
// the next request is served whole.
func TestAheadCutFailsTheFetch(t *testing.T) {
	h := newHarness(t, harnessOpts{noMemory: true, realClock: true})
	t.Cleanup(h.l.Close)
	key := "media_attachments/files/000/000/072/original/video.mp4"
	data := bytes.Repeat([]byte("0123456789abcdef"), aheadVideo/16)
	h.bucket.Put(t, key, data)
	h.bucket.Pace(40e6, 0)
	// The ahead's answer is cut a quarter of the object in, past the seek's MiB.
	whole, middle := seekMiddle(t, h, key, func() { h.bucket.CutBody(key, aheadVideo/4) })
	if _, err := io.ReadAll(middle); err != nil {
		t.Fatalf("the seek's MiB, before the cut: %v", err)
	}
	middle.Close()
	rest, err := io.ReadAll(whole)
	whole.Close()
	if err == nil {
		t.Fatalf("the whole object's reader got %d bytes and io.EOF from a cut answer", len(rest)+1)
	}
	h.l.Settle()
	if st := h.l.Stats(); st.Disk.Entries != 0 {
		t.Fatalf("a cut object was stored: %+v", st.Disk)
	}
	h.bucket.CutBody(key, -1)
	wantWholeNext(t, h, key, data)
}

// wantWholeNext checks that, after a failed fetch of key, the next request gets its bytes.
func wantWholeNext(t *testing.T, h *harness, key string, data []byte) {
	t.Helper()
	h.bucket.Pace(0, 0)
	body, _, err := h.l.Get(context.Background(), key, nil)
	if err != nil {
		t.Fatal(err)
	}
	again, err := io.ReadAll(body)
	body.Close()
	if err != nil || !bytes.Equal(again, data) {
		t.Fatalf("after the failed fetch: %d bytes, %v", len(again), err)
	}
}

// TestAheadDroppedWithTheObject: Mastodon deletes the video while a seek reads the ahead: the
// seek's reader is cut, as the fetch's are.
func TestAheadDroppedWithTheObject(t *testing.T) {
	h := newHarness(t, harnessOpts{noMemory: true, realClock: true})
	t.Cleanup(h.l.Close)
	key := "media_attachments/files/000/000/073/original/video.mp4"
	h.bucket.PutGenerated(key, aheadVideo)
	h.bucket.Pace(4e6, 0)
	ctx := context.Background()
	whole, _, err := h.l.Get(ctx, key, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer whole.Close()
	middle, _, err := h.l.Get(ctx, key, &origin.Range{Start: aheadVideo / 2, End: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer middle.Close()
	if _, err := middle.Read(make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	h.l.Drop(key)
	for _, body := range []io.Reader{middle, whole} {
		if _, err := io.Copy(io.Discard, body); !errors.Is(err, origin.ErrHidden) {
			t.Errorf("a reader of the dropped object got %v, want the drop's error", err)
		}
	}
}

// TestAheadCapAsksTheOriginForTheRest: with its two fetches under way on a slow bucket, a seek
// that neither gets to within half a second (the video's last MiB, far past the ahead of a player's
// seek into its first quarter) is asked of the bucket on its own, not waited for; a seek the
// ahead reaches soon waits for it.
func TestAheadCapAsksTheOriginForTheRest(t *testing.T) {
	h := newHarness(t, harnessOpts{noMemory: true, realClock: true})
	t.Cleanup(h.l.Close)
	const size = 64 << 20
	key := "media_attachments/files/000/000/074/original/video.mp4"
	h.bucket.PutGenerated(key, size)
	h.bucket.Pace(2e6, 0)
	ctx := context.Background()
	whole, _, err := h.l.Get(ctx, key, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer whole.Close()
	var wg sync.WaitGroup
	read := func(r origin.Range) {
		defer wg.Done()
		body, _, err := h.l.Get(ctx, key, &r)
		if err != nil {
			t.Error(err)
			return
		}
		defer body.Close()
		if _, err := io.Copy(io.Discard, io.LimitReader(body, 1<<20)); err != nil {
			t.Error(err)
		}
	}
	wg.Add(1)
	read(origin.Range{Start: size / 4, End: -1}) // a player's seek: its first MiB, and it goes
	time.Sleep(2 * paceSample)                   // both fetches have a pace to go by
	wg.Add(2)
	go read(origin.Range{Start: size / 4, End: size/4 + 64<<10 - 1})
	go read(origin.Suffix(1 << 20))
	wg.Wait()
	if gets := h.bucket.Gets(key); gets != 3 {
		t.Errorf("%d bucket GETs, want 3: the fetch, its ahead, and the last MiB's own", gets)
	}
	if st := h.l.Stats(); st.AheadFills != 1 {
		t.Errorf("%d ahead fills, want 1", st.AheadFills)
	}
}

// paceSample is more than the time a fetch must run for its pace to be measured.
const paceSample = 100 * time.Millisecond
