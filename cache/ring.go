package cache

import (
	"context"
	"fmt"
)

// ringSize is the window of a fetch whose spool failed: the memory such a fetch may take.
const ringSize = 4 << 20

// spoolFailed turns the fetch away from a spool whose write of the bytes at total failed (a full
// or failing disk), so that no reader fails because of it: a small object goes on in buf (and
// the memory tier still gets it), a large one through the ring, uncached.
func (f *flight) spoolFailed(total int64, err error) {
	f.spool.Abort() // the file goes; what was written stays readable until the spool is closed
	if f.buf != nil {
		f.l.log.Warn("cache: writing to the disk tier failed; keeping the object in memory only", "key", f.key, "err", err)
		f.mu.Lock()
		f.spoolBad = true
		f.mu.Unlock()
		return
	}
	f.l.log.Warn("cache: writing the spool failed; the object streams on to its readers uncached", "key", f.key, "err", err)
	// Requests from now on start a fetch of their own: this one can no longer serve a byte that
	// has left the ring. (Layered.mu before flight.mu: out of the map first.)
	f.l.forgetFlight(f)
	f.mu.Lock()
	f.spoolBad = true
	f.spoolEnd = total
	f.ring = make([]byte, ringSize)
	f.cacheable = false
	f.mu.Unlock()
	context.AfterFunc(f.ctx, f.cond.Broadcast) // a canceled fetch stops waiting for readers
}

// toRing puts the body bytes p, at offset total, into the ring, once the slowest reader is near
// enough that they overwrite nothing it still has to read.
func (f *flight) toRing(total int64, p []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for total+int64(len(p))-f.slowestLocked() > ringSize {
		if f.dropped || f.ctx.Err() != nil {
			return fmt.Errorf("cache: fetch stopped while waiting for its readers: %w", context.Cause(f.ctx))
		}
		if f.readers == 0 {
			return nil // abandoned: copy sees it next
		}
		f.cond.Wait()
	}
	for len(p) > 0 {
		i := total % ringSize
		c := copy(f.ring[i:], p)
		p, total = p[c:], total+int64(c)
	}
	return nil
}

// slowestLocked returns the first byte from the ring that some reader has still to read: the
// place of the slowest reader that needs the ring, spoolEnd for a reader still on the spool or
// one not made yet (a waiter counted in readers). f.mu is held.
func (f *flight) slowestLocked() int64 {
	slowest := f.written
	if f.readers > len(f.active) {
		slowest = f.spoolEnd
	}
	for r := range f.active {
		if r.end > f.spoolEnd && r.off < r.end {
			slowest = min(slowest, max(r.off, f.spoolEnd))
		}
	}
	return slowest
}
