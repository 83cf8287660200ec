package cache

// An object's second fetch, for a range far ahead of its first: to the object's end when the
// range goes there, the first fetch then going on from its bytes instead of asking the origin
// for them again. The rest of the range logic is in ranges.go.
//
// Lock order: Layered.mu, then fetch.aheadMu, then stream.mu (of the fetch's stream or the
// ahead's). The stream hooks run without stream.mu; the ahead's fileFailed hook takes aheadMu.

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/fedicache/fedicache/origin"
)

// ahead is the second, and last, fetch of an object whose fetch is under way: a ranged request
// begun for a range far ahead of what the fetch has (a player's seek into the middle or the end
// of a video), for the range's bytes. Its readers are that range and the later ones it covers.
//
// A range that runs to the object's end (a player's "bytes=N-") makes an open ahead, to the
// end: the fetch reads it too once it gets to start, where it stops reading its own answer and
// goes on with the ahead's bytes, checked as its own (see fetch.takeAhead), so the origin sends
// every byte once however the seeks fall, but for what was under way on the fetch's connection
// when it stopped. A bounded range makes a bounded ahead, of its bytes only, which the fetch
// reads past: the origin sends those bytes twice, and nothing else (a connection left part way
// may have had more than that under way). Either way its body is spooled in a temporary file
// of its own until its last reader leaves.
//
// A range of the object's last bytes that comes before the fetch's headers (a player reading
// the index at a video's end first) makes an open ahead asked as that suffix: where it starts
// is learned from its answer, and the fetch stops there if it has not got that far.
type ahead struct {
	start, end int64 // the object's bytes [start, end); end is -1 for an open ahead
	open       bool  // to the object's end: the fetch goes on from it
	// suffix, when above 0, is how many of the object's last bytes the ahead was asked for;
	// start is then set when its answer comes, before s starts.
	suffix int64
	s      *stream
	ctx    context.Context
	cancel context.CancelFunc

	// Set before s starts, read-only afterwards.
	meta      origin.Meta // the object's: Size is the whole object's
	from      origin.From
	startedAt time.Time
}

// covers reports whether a, once started, holds bytes [first, end) of the object; a suffix
// ahead covers nothing before its answer has come.
func (a *ahead) covers(first, end int64) bool {
	if a.suffix > 0 && !a.s.begun() {
		return false
	}
	return first >= a.start && (a.open || end <= a.end)
}

// coversSuffix reports whether a holds the object's last n bytes, wherever the object ends.
func (a *ahead) coversSuffix(n int64) bool {
	return a.suffix >= n
}

// paceMinElapsed and paceMinBytes are how long a fetch must have run, and how much it must have
// written, for its pace to be read from its progress; before that the origin's recent pace
// stands in for it.
const (
	paceMinElapsed = 50 * time.Millisecond
	paceMinBytes   = 1 << 20
)

// attachAhead starts the ahead of f for bytes [start, end) (end -1: to the object's end, an
// open ahead; start below 0: the object's last -start bytes, as origin.Suffix), for a caller it
// counts as one of its readers, unless f has one already, has ended, or has written up to start
// itself.
func (l *Layered) attachAhead(f *fetch, start, end int64) *ahead {
	a := &ahead{start: start, end: end, open: end < 0}
	if start < 0 {
		a.suffix, a.start, a.end, a.open = -start, 0, -1, true
	}
	a.ctx, a.cancel = context.WithCancel(l.base)
	a.s = newStream(streamHooks{
		idle: func() {
			if a.s.cut(errAbandoned, true) {
				a.cancel()
			}
		},
		// Its spool failed (a full disk): its bytes go on through its ring, which cannot wait
		// for f, far behind, to get to them, so f reads its own answer to the end instead.
		fileFailed:  func(error, bool) { f.declineAhead() },
		sharedBytes: &l.stats.sharedBytes,
	})
	f.aheadMu.Lock()
	if f.next != nil || f.ended || f.purged.Load() || a.suffix == 0 && f.s.progress() >= start {
		f.aheadMu.Unlock()
		a.cancel()
		return nil
	}
	f.next = a
	if a.open {
		a.s.join() // f's own, given back by takeAhead or releaseAhead
		if a.suffix == 0 {
			f.stopAt.Store(start)
		}
	} else {
		f.claimed = true // f reads its own answer past a bounded ahead
	}
	f.aheadMu.Unlock()
	a.s.join() // the caller's
	l.stats.aheadFills.Add(1)
	l.runs.Add(1)
	l.workers.run(func() {
		defer l.runs.Done()
		l.runAhead(f, a)
	})
	return a
}

// stopFor makes f stop at a's start, learned from a's answer (a suffix ahead), unless f has
// got there already or no longer waits for an ahead: it then reads its own answer on, and gives
// its count of a's readers back when it ends. A fetch that passes start between the look and
// the stop declines a at its next read (takeAhead: the start is not where it is).
func (f *fetch) stopFor(a *ahead) {
	f.aheadMu.Lock()
	defer f.aheadMu.Unlock()
	if f.next == a && !f.claimed && !f.ended && f.s.progress() < a.start {
		f.stopAt.Store(a.start)
	}
}

// aheadOf returns f's ahead, or nil.
func (f *fetch) aheadOf() *ahead {
	f.aheadMu.Lock()
	defer f.aheadMu.Unlock()
	return f.next
}

// releaseAhead ends f's part in its ahead, when f ends: the ahead no longer gets a reader from
// f once it has ended, and what f has not taken it gives back.
func (f *fetch) releaseAhead() {
	f.aheadMu.Lock()
	f.ended = true
	f.aheadMu.Unlock()
	f.declineAhead()
}

// claimAhead returns f's ahead when f still holds its count of the ahead's readers, which the
// caller then uses or gives back; f stops nowhere from now on.
func (f *fetch) claimAhead() *ahead {
	f.stopAt.Store(-1)
	f.aheadMu.Lock()
	defer f.aheadMu.Unlock()
	if f.next == nil || f.claimed {
		return nil
	}
	f.claimed = true
	return f.next
}

// declineAhead is f's writer reaching its ahead's start and reading its own answer on: it gives
// its count of the ahead's readers back.
func (f *fetch) declineAhead() {
	if a := f.claimAhead(); a != nil {
		a.s.leave()
	}
}

// takeAhead is f's writer reaching its ahead's start, having written written bytes: it returns
// a reader of the ahead's bytes when they are the rest of the same object (the same ETag, size
// and store), for f to go on with; else nil, and f reads its own answer to the end.
func (f *fetch) takeAhead(written int64) *streamReader {
	a := f.claimAhead()
	if a == nil {
		return nil
	}
	if a.start != written {
		a.s.leave()
		return nil
	}
	rd, err := a.s.open(f.ctx, false, nil) // takes f's count; waits for the ahead's headers
	if err != nil {
		return nil
	}
	if a.meta.ETag == "" || a.meta.ETag != f.meta.ETag || a.meta.Size != f.meta.Size || a.from.Source != f.from.Source {
		rd.Close()
		return nil
	}
	return rd
}

// continueFromAhead is copyBody at its ahead's start, having written total bytes: it returns a
// reader of the ahead's bytes to go on with, and when the store checks body itself
// (storeChecks) that check spliced to go on over them (origin.SplicedCheck). It reports false
// when the ahead is not the rest of this object, or the store's check cannot go on: copyBody
// then reads body to its end. The length and the ETag's MD5 go on over the ahead's bytes as
// they are.
func continueFromAhead(f *fetch, body io.Reader, total int64, storeChecks bool) (rd *streamReader, rest io.Writer, verify func() error, ok bool) {
	sp, canSplice := body.(origin.SplicedCheck)
	if storeChecks && !canSplice {
		f.declineAhead()
		return nil, nil, nil, false
	}
	if rd = f.takeAhead(total); rd == nil {
		return nil, nil, nil, false
	}
	if storeChecks {
		if rest, verify = sp.Splice(); rest == nil {
			rd.Close()
			return nil, nil, nil, false
		}
	}
	return rd, rest, verify, true
}

// runAhead fetches a's bytes of f's object into a's stream.
func (l *Layered) runAhead(f *fetch, a *ahead) {
	defer a.cancel()
	key := f.key
	l.stats.originGets.Add(1)
	asked := l.cfg.Clock()
	r := origin.Range{Start: a.start, End: -1}
	if a.suffix > 0 {
		r = origin.Suffix(a.suffix)
	} else if !a.open {
		r.End = a.end - 1
	}
	body, m, from, err := l.origin.GetFrom(a.ctx, key, &r)
	if err != nil {
		if errors.Is(err, origin.ErrNotFound) {
			l.neg.add(key)
		}
		a.s.finish(err)
		return
	}
	l.answered(asked)
	defer body.Close()
	if from.Source == origin.SourcePeer {
		// Another replica owns the object and fetches it for the cluster: its seeks are asked of
		// it one by one, not spooled here.
		a.s.finish(errNoSpool)
		return
	}
	file, err := newTempFile(l.cfg.SpoolDir)
	if err != nil {
		l.log.Warn("cache: no spool for the rest of an object; its seeks go to the origin one by one", "key", key, "err", err)
		a.s.finish(errNoSpool)
		return
	}
	end := m.Size
	if !a.open {
		end = min(a.end, m.Size)
	}
	if a.suffix > 0 {
		a.start = max(m.Size-a.suffix, 0)
		f.stopFor(a)
	}
	a.meta, a.from, a.startedAt = m, from, l.cfg.Clock()
	size := end - a.start
	a.s.start(size, nil, file)
	err = copyStream(a.ctx, a.s, body, size)
	if err = a.s.finish(err); err == nil {
		l.paced(size, l.cfg.Clock().Sub(a.startedAt))
	} else if !errors.Is(err, errAbandoned) && !errors.Is(err, errDropped) {
		l.stats.fillErrors.Add(1)
		l.log.Warn("cache: fetching the rest of an object failed", "key", key, "from", a.start, "err", err)
	}
}

// copyStream copies body, size bytes long, into s. It fails when body has more or fewer bytes.
func copyStream(ctx context.Context, s *stream, body io.Reader, size int64) error {
	bufp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bufp)
	buf := *bufp
	var total int64
	for {
		n, rerr := body.Read(buf)
		if n > 0 {
			if total+int64(n) > size {
				return errShortBody
			}
			if err := s.write(ctx, buf[:n]); err != nil {
				return err
			}
			total += int64(n)
		}
		if errors.Is(rerr, io.EOF) {
			break
		}
		if rerr != nil {
			return rerr
		}
	}
	if total != size {
		return errShortBody
	}
	return nil
}

// paced records the pace of a fetch that took took for n bytes, for reachCapped: a moving
// average (1/4 of each new sample) of fetches of at least a MiB.
func (l *Layered) paced(n int64, took time.Duration) {
	if n < 1<<20 || took <= 0 {
		return
	}
	movingAverage(&l.pace, int64(float64(n)/took.Seconds()), 4)
}

// reachCapped is reach for an object that has its two fetches: how far past what a fetch begun
// at startedAt has written it gets within Config.SeekWait, at its pace so far, or, before it can
// be measured (a MiB, 50ms), at the origin's recent pace; when neither is known, anywhere. At most one ahead
// runs per fetch, so a range beyond is asked of the origin on its own, not kept: a player's seek
// waits at most SeekWait for bytes the origin is sending anyway.
func (l *Layered) reachCapped(startedAt time.Time) func(written int64) int64 {
	elapsed := l.cfg.Clock().Sub(startedAt)
	prior := float64(l.pace.Load())
	return func(written int64) int64 {
		rate := prior
		if elapsed >= paceMinElapsed && written >= paceMinBytes {
			rate = float64(written) / elapsed.Seconds()
		}
		if rate <= 0 {
			return 1 << 60
		}
		return max(rangeReachMin, int64(rate*l.cfg.SeekWait.Seconds()))
	}
}
