package cache_test

import (
	"context"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/fedicache/fedicache/origin"
	"github.com/fedicache/fedicache/origin/origintest"
)

// TestSeekAndPlay: a cold 12 MB video behind a bucket across a network (a first byte in 20 ms,
// 100 MB/s), four viewers seeking (the first MiB, a MiB in the middle, the last MiB, the first
// 8 MiB), then two players through it. The bucket sends the video once and the middle MiB twice,
// in two GETs: the fetch from the start, and the middle seek's own (the video's ahead); the
// middle seek is answered without waiting for the bytes before it, the last MiB by the fetch,
// which gets there well within half a second. When the last MiB comes first (a player reading a
// video's index at its end, before any fetch), it makes the ahead, asked as the last MiB, and
// the fetch stops where it starts: the middle seek then waits for the fetch, and the bucket sends
// every byte once but what was under way when the fetch stopped. Every answer has the object's bytes, and the disk tier has the whole video.
func TestSeekAndPlay(t *testing.T) {
	if testing.Short() {
		t.Skip("streams a 12 MB video at a paced bucket")
	}
	for _, order := range []string{"viewers together", "viewers one by one", "the last MiB first"} {
		t.Run(order, func(t *testing.T) {
			seekAndPlay(t, order)
		})
	}
}

func seekAndPlay(t *testing.T, order string) {
	h := newHarness(t, harnessOpts{noMemory: true, realClock: true})
	// The last MiB waits for the fetch at whatever pace this machine gives it (a loaded one,
	// under the race detector, may be slow): the count of GETs must not depend on it.
	h.cfg.SeekWait = time.Minute
	h.l.Close()
	h.build()
	t.Cleanup(h.l.Close)
	const size, mib = 12_000_000, 1 << 20
	key := "media_attachments/files/000/000/060/original/video.mp4"
	h.bucket.PutGenerated(key, size)
	h.bucket.Pace(100e6, 20*time.Millisecond)
	ctx := context.Background()

	// read GETs r of the video, checks its bytes and returns how many the bucket had sent when
	// the first of them arrived.
	read := func(r origin.Range) (sentAtFirstByte int64, err error) {
		body, _, err := h.l.Get(ctx, key, &r)
		if err != nil {
			return 0, err
		}
		defer body.Close()
		first, last, _ := r.Resolve(size)
		buf := make([]byte, 256<<10)
		off := first
		for {
			n, err := body.Read(buf)
			if off == first && n > 0 {
				sentAtFirstByte = h.bucket.Sent()
			}
			for i := range n {
				if buf[i] != origintest.PatternByte(off+int64(i)) {
					return 0, fmt.Errorf("range %s: byte %d differs", r, off+int64(i))
				}
			}
			off += int64(n)
			if err == io.EOF {
				break
			}
			if err != nil {
				return 0, fmt.Errorf("range %s: %w", r, err)
			}
		}
		if off != last+1 {
			return 0, fmt.Errorf("range %s: %d bytes, want %d", r, off-first, last+1-first)
		}
		return sentAtFirstByte, nil
	}
	run := func(parallel bool, ranges ...origin.Range) []int64 {
		sent := make([]int64, len(ranges))
		errs := make([]error, len(ranges))
		var wg sync.WaitGroup
		for i, r := range ranges {
			wg.Add(1)
			do := func() { defer wg.Done(); sent[i], errs[i] = read(r) }
			if parallel {
				go do()
			} else {
				do()
			}
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		return sent
	}

	middle, last := origin.Range{Start: size / 2, End: size/2 + mib - 1}, origin.Suffix(mib)
	var seeks []int64 // when the middle and the last MiB's first bytes came
	switch order {
	case "the last MiB first":
		lastAt := run(false, last)[0]
		seeks = []int64{run(false, origin.Range{Start: 0, End: mib - 1}, middle, origin.Range{Start: 0, End: 8*mib - 1})[1], lastAt}
	default:
		all := run(order == "viewers together", origin.Range{Start: 0, End: mib - 1}, middle, last, origin.Range{Start: 0, End: 8*mib - 1})
		seeks = all[1:3]
	}
	run(true, origin.Range{Start: 0, End: -1}, origin.Range{Start: 0, End: -1})
	h.l.Settle()

	gets, sent := h.bucket.Gets(key), h.bucket.Sent()
	t.Logf("%d bucket GETs, %.3fx the object's bytes; the far seeks' first bytes came when the bucket had sent %.1f and %.1f MB",
		gets, float64(sent)/size, float64(seeks[0])/1e6, float64(seeks[1])/1e6)
	if gets > 2 {
		t.Errorf("%d bucket GETs, want at most 2: the fetch and the rest from the middle seek on", gets)
	}
	// The middle seek's MiB is sent twice (its ahead is bounded, the fetch reads past it); a
	// fetch that stops where an ahead starts may leave a little under way.
	if sent > size+mib+mib/8 {
		t.Errorf("the bucket sent %.3fx the object's bytes, want at most the object and one MiB", float64(sent)/size)
	}
	// The far seek that made the ahead did not wait for the fetch: the middle one one by one,
	// the last MiB when it came first, either when the viewers came together.
	ahead := map[string]int64{"viewers one by one": seeks[0], "the last MiB first": seeks[1], "viewers together": min(seeks[0], seeks[1])}
	if at := ahead[order]; at >= size/2 {
		t.Errorf("the far seek that made the ahead: its first byte came once the bucket had sent %d bytes: it waited for the fetch to get there", at)
	}

	if st := h.l.Stats(); st.AheadFills != 1 {
		t.Errorf("%d ahead fills, want 1", st.AheadFills)
	}
	if st := h.l.Stats(); st.Disk == nil || st.Disk.Entries != 1 {
		t.Errorf("the video is not in the disk tier: %+v", st.Disk)
	}
}
