package cache

// One lock: stream.mu, as in stream.go.

import (
	"context"
	"fmt"
)

// ringSize is the window of a stream whose file failed: the memory such a stream may take.
const ringSize = 4 << 20

// The ring: after a write into file failed (a full or failing disk) for a body with no buf,
// the stream goes on through ring, a window of ringSize bytes of the body (byte i at
// ring[i%ringSize]) that the writer fills no further than ringSize past the slowest reader.
// Bytes [0, fileEnd) are still read from file, which stays readable until closed. Every reader
// still gets every byte, and the last one is still held back.

// fileFailed turns the stream away from a file whose write of the bytes at off failed: a body
// with buf goes on in buf alone, one without through the ring. The owner hears of it first, so
// that it lets no reader come that would need bytes the ring has let go.
func (s *stream) fileFailed(off int64, err error) {
	s.fileBad = true
	ring := s.buf == nil
	s.hooks.fileFailed(err, ring)
	if !ring {
		return
	}
	s.mu.Lock()
	s.fileEnd = off
	s.ring = make([]byte, ringSize)
	s.mu.Unlock()
}

// startRing is start for a body that goes through the ring from its first byte, in no file and
// no buf: its readers must all be counted before bytes leave the ring (its owner lets no new
// one join).
func (s *stream) startRing(size int64) {
	s.mu.Lock()
	s.fileBad, s.fileEnd, s.ring = true, 0, make([]byte, ringSize)
	s.mu.Unlock()
	s.start(size, nil, nil)
}

// toRing puts the body bytes p, at offset off, into the ring, once the slowest reader is near
// enough that they overwrite nothing it still has to read.
func (s *stream) toRing(ctx context.Context, off int64, p []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for off+int64(len(p))-s.slowestLocked() > ringSize {
		if s.cutErr != nil {
			return s.cutErr
		}
		if ctx.Err() != nil {
			return fmt.Errorf("cache: fetch stopped while waiting for its readers: %w", context.Cause(ctx))
		}
		// Woken under the lock, so the wake-up cannot fall between the check above and Wait.
		stop := context.AfterFunc(ctx, func() {
			s.mu.Lock()
			s.cond.Broadcast()
			s.mu.Unlock()
		})
		s.cond.Wait()
		stop()
	}
	for len(p) > 0 {
		i := off % ringSize
		c := copy(s.ring[i:], p)
		p, off = p[c:], off+int64(c)
	}
	return nil
}

// slowestLocked returns the first body byte that some reader has still to read from the ring:
// the place of the slowest reader that needs the ring; fileEnd while a counted reader is not
// made yet (it starts at 0). s.mu is held.
func (s *stream) slowestLocked() int64 {
	slowest := s.written
	if s.readers > len(s.active) {
		slowest = s.fileEnd
	}
	for r := range s.active {
		if r.end > s.fileEnd && r.off < r.end {
			slowest = min(slowest, max(r.off, s.fileEnd))
		}
	}
	return slowest
}
