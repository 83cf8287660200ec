package cache

// One lock: stream.mu. A stream calls its hooks without holding it, so that an owner may take
// its own lock in a hook and call back into the stream: an owner's lock comes before stream.mu
// (Layered.mu, then stream.mu), never after.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
)

// stream is one body written once and read by many as it lands: one writer (start, write,
// finish) and readers counted by join, each reading bytes [off, end) of the body. The last byte
// is held back until the writer finishes without an error, having checked the whole body, and
// never released when it failed: no reader receives a complete-looking body that failed its
// checks. cut fails every reader at once.
//
// The body goes to buf (small enough for memory), to file (a tier's Spool, a temporary file) or
// to both, readers then reading buf. When a write into file fails (a full disk) with no buf, it
// goes on through a ring (ring.go). A stream knows nothing of the cache: its owner hands in
// where the body goes and streamHooks, and decides everything else.
type stream struct {
	hooks streamHooks
	ready chan struct{} // closed by start, or by finish when the writer failed before it

	// Set by the writer before ready is closed, read-only afterwards.
	started bool
	size    int64
	buf     []byte     // len = size
	file    streamFile // nil when the body goes to buf only
	fileBad bool       // the writer's own: a write into file failed; file gets no more

	mu      sync.Mutex
	cond    sync.Cond                  // broadcast on bytes, the end, a cut, a reader moving or going
	readers int                        // joined, not gone: made readers, callers about to make one
	active  map[*streamReader]struct{} // the readers made and not closed
	written int64                      // body bytes in buf, file or ring
	done    bool                       // the writer has finished; err says how
	err     error                      // nil: the whole body is written and passed its checks
	cutErr  error                      // every read fails with it, once set
	closed  bool                       // file is closed (done, and no reader left)
	ring    []byte                     // see ring.go
	fileEnd int64                      // with ring: bytes [0, fileEnd) are in file, later ones in ring
}

// streamFile is where a stream writes a body and reads it back while it is written. The stream
// closes it once it has ended and no reader is left.
type streamFile interface {
	io.Writer
	io.ReaderAt
	io.Closer
}

// fileReopener is a streamFile that can give a reader a file of its own over the same bytes
// (the body from bodyOff on), so that the reader sends them by sendfile from an offset of its
// own rather than copying them through a buffer (the disk tier's Writer).
type fileReopener interface {
	Reopen() (f *os.File, bodyOff int64, err error)
}

// sendfileMinBytes is the least a reader must have left to read to reopen the file for
// sendfile: an open and a close cost more than copying a small body.
const sendfileMinBytes = 1 << 20

// streamHooks are what a stream tells its owner, each called without the stream's lock.
type streamHooks struct {
	// idle: a started stream still being written has no reader (its last one left, or it
	// started with none). It may be called twice for one such moment.
	idle func()
	// fileFailed: a write into file failed; the stream goes on in buf, or (ring true) through
	// the ring once fileFailed has returned.
	fileFailed func(err error, ring bool)
	// sharedBytes, when set, counts the bytes given to readers opened as shared.
	sharedBytes *atomic.Uint64
}

func newStream(h streamHooks) *stream {
	s := &stream{hooks: h, ready: make(chan struct{}), active: map[*streamReader]struct{}{}}
	s.cond.L = &s.mu
	return s
}

// begun reports whether the writer has started the stream.
func (s *stream) begun() bool {
	select {
	case <-s.ready:
		return s.started
	default:
		return false
	}
}

// join counts a reader: a caller about to open one, or an owner keeping file open as a reader
// would.
func (s *stream) join() {
	s.mu.Lock()
	s.readers++
	s.mu.Unlock()
}

// joinLive is join for a stream that may have ended: it counts a reader and reports true only
// while the stream can still serve one (not cut, not failed, its file not closed).
func (s *stream) joinLive() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cutErr != nil || s.closed || s.done && s.err != nil {
		return false
	}
	s.readers++
	return true
}

// joined returns how many readers are counted by join and not gone.
func (s *stream) joined() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.readers
}

// leave ends a reader counted by join. The last one closes file once the stream has ended, or
// calls the idle hook while it is still written.
func (s *stream) leave() {
	s.mu.Lock()
	s.readers--
	closeFile := s.readers == 0 && s.done && !s.closed
	s.closed = s.closed || closeFile
	idle := s.readers == 0 && !s.done
	s.mu.Unlock()
	s.cond.Broadcast() // a writer waiting for the slowest reader may go on
	if closeFile && s.file != nil {
		_ = s.file.Close() // only read since the writer ended: nothing is lost
	}
	if idle && s.begun() {
		s.hooks.idle()
	}
}

// errNotInBody is open's answer for a span that selects nothing of the body.
var errNotInBody = errors.New("cache: the range selects nothing of the body")

// open waits until the writer has started and returns a reader of the whole body, or of bytes
// [off, end) when span, given the body's size, selects them, for a caller counted by join; or
// the writer's error when it failed before starting, errNotInBody when span selects nothing,
// or ctx's.
func (s *stream) open(ctx context.Context, shared bool, span func(size int64) (off, end int64, ok bool)) (*streamReader, error) {
	select {
	case <-s.ready:
	case <-ctx.Done():
		s.leave()
		return nil, ctx.Err()
	}
	if !s.started {
		s.leave()
		return nil, s.err // set before ready was closed, and never again
	}
	off, end := int64(0), s.size
	if span != nil {
		var ok bool
		if off, end, ok = span(s.size); !ok {
			s.leave()
			return nil, errNotInBody
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.newReaderLocked(off, end, shared), nil
}

// openAhead counts and returns a reader of bytes [off, end) when the stream still serves them
// (not from the ring, which may have let them go) and they are written already or start at most
// ahead(written) bytes past what is written: the reader then waits for its bytes as they land.
func (s *stream) openAhead(off, end int64, ahead func(written int64) int64) (*streamReader, bool) {
	if !s.begun() {
		return nil, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil || s.cutErr != nil || s.closed || s.ring != nil || end > s.size ||
		end > s.written && off > s.written+ahead(s.written) {
		return nil, false
	}
	s.readers++
	return s.newReaderLocked(off, end, true), true
}

func (s *stream) newReaderLocked(off, end int64, shared bool) *streamReader {
	r := &streamReader{s: s, off: off, end: end, shared: shared}
	s.active[r] = struct{}{}
	return r
}

// progress returns how many bytes of the body the writer has written.
func (s *stream) progress() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.written
}

// complete reports whether the writer has finished and the body passed its checks.
func (s *stream) complete() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.done && s.err == nil
}

// cut fails every read from now on, and the writer's next write, with err; with idleOnly, only
// while the stream has no reader and is still written. It reports whether it cut.
func (s *stream) cut(err error, idleOnly bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cutErr != nil || idleOnly && (s.readers > 0 || s.done) {
		return false
	}
	s.cutErr = err
	s.cond.Broadcast()
	return true
}

// start is the writer's first call: the body has size bytes, going to buf, file or both.
func (s *stream) start(size int64, buf []byte, file streamFile) {
	s.size, s.buf, s.file, s.started = size, buf, file, true
	close(s.ready)
	s.mu.Lock()
	idle := s.readers == 0
	s.mu.Unlock()
	if idle {
		s.hooks.idle()
	}
}

// write appends p to the body (never past size) and wakes the readers. It returns the cut's
// error once the stream was cut, or ctx's when ctx ends while it waits for a slow reader.
func (s *stream) write(ctx context.Context, p []byte) error {
	off := s.written // only the writer moves written
	if s.file != nil && !s.fileBad {
		if _, err := s.file.Write(p); err != nil {
			s.fileFailed(off, err)
		}
	}
	switch {
	case s.buf != nil:
		copy(s.buf[off:], p) // readers read buf below written only
	case s.ring != nil:
		if err := s.toRing(ctx, off, p); err != nil {
			return err
		}
	}
	s.mu.Lock()
	s.written = off + int64(len(p))
	err := s.cutErr
	s.mu.Unlock()
	s.cond.Broadcast()
	return err
}

// finish is the writer's last call: err is nil when the whole body was written and passed its
// checks. It returns the error the readers get: the cut's, when the stream was cut.
func (s *stream) finish(err error) error {
	s.mu.Lock()
	if err != nil && s.cutErr != nil {
		err = s.cutErr
	}
	s.done, s.err = true, err
	closeFile := s.readers == 0 && !s.closed
	s.closed = s.closed || closeFile
	s.mu.Unlock()
	if !s.started {
		close(s.ready)
	}
	s.cond.Broadcast()
	if closeFile && s.file != nil {
		_ = s.file.Close()
	}
	return err
}

// streamReader reads bytes [off, end) of a stream as the writer writes them.
type streamReader struct {
	s        *stream
	off, end int64
	shared   bool
	closed   bool
}

// Read implements io.Reader. What holds under s.mu, and what a reader relies on:
//   - written only grows, by the writer, up to size; bytes [0, written) are in buf when buf is
//     set, else in file, except that once ring is set bytes from fileEnd on are in ring.
//   - done and err are set once, together, by the writer; written moves no more after them.
//     err == nil means the whole body is written and passed the writer's checks.
//   - the held-back byte: byte size-1 is available only when done && err == nil. A reader
//     waits for it until the writer ends, and when the writer failed gets err instead, never
//     the byte, whether it was waiting already or comes after the end.
//   - cutErr, once set, fails every read at once, whatever is written.
//   - the ring's window: the writer puts byte i into ring only once every reader that still
//     needs ring bytes (an active one with end > fileEnd, or a counted one not made yet) is
//     past i-ringSize. So the bytes [off, avail) a reader copies, without the lock, stay put
//     until it moves off past them, under the lock, after copying.
//
// So a reader copies [off, avail), avail = min(end, written, size-1 unless done && err == nil);
// with nothing to copy it returns io.EOF (off == end, and nothing of its range held back: a
// range ending before the last byte ends so even when the writer fails after it), err (the
// writer failed), or waits.
func (r *streamReader) Read(p []byte) (int, error) {
	s := r.s
	avail, ring, fileEnd, err := r.wait()
	if err != nil {
		return 0, err
	}
	n := int(min(int64(len(p)), avail-r.off))
	switch {
	case s.buf != nil:
		n = copy(p[:n], s.buf[r.off:avail])
	case ring != nil && r.off >= fileEnd:
		n = copy(p[:n], ring[r.off%ringSize:]) // up to the ring's end; the rest next time
	case ring != nil:
		n, err = s.file.ReadAt(p[:min(int64(n), fileEnd-r.off)], r.off)
	default:
		n, err = s.file.ReadAt(p[:n], r.off)
	}
	r.advance(int64(n))
	if err != nil && !errors.Is(err, io.EOF) {
		return n, err
	}
	return n, nil
}

// wait returns, once the reader has bytes to copy, where they end (avail > r.off) and the
// stream's ring and fileEnd of that moment; else the error that ends the reader's reading:
// io.EOF at the end of its range, the writer's or the cut's error. See Read.
func (r *streamReader) wait() (avail int64, ring []byte, fileEnd int64, err error) {
	s := r.s
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		if err := s.cutErr; err != nil {
			return 0, nil, 0, err
		}
		avail = s.written
		if avail == s.size && (!s.done || s.err != nil) {
			avail-- // the held-back byte
		}
		avail = min(avail, r.end)
		if r.off < avail {
			return avail, s.ring, s.fileEnd, nil
		}
		// A range that ends before the last byte is whole once its bytes are written, whatever
		// the writer meets later: the same answer however the two are timed.
		if r.off >= r.end && (s.done || r.end < s.size) {
			return 0, nil, 0, io.EOF
		}
		if err := s.err; s.done && err != nil {
			return 0, nil, 0, err
		}
		s.cond.Wait()
	}
}

// advance moves the reader n bytes on, once it has copied them.
func (r *streamReader) advance(n int64) {
	s := r.s
	s.mu.Lock()
	r.off += n
	inRing := s.ring != nil
	s.mu.Unlock()
	if inRing {
		s.cond.Broadcast() // the writer may be waiting for this reader
	}
	if r.shared && s.hooks.sharedBytes != nil {
		s.hooks.sharedBytes.Add(uint64(n))
	}
}

// WriteTo implements io.WriterTo. It reads as Read does, the same bytes under the same rules,
// but when the body goes to a file that the reader can reopen (fileReopener), w is an
// io.ReaderFrom and at least sendfileMinBytes remain, it hands w each stretch of bytes
// available as a range of its own file (an *io.LimitedReader over an *os.File at the right
// offset), which w sends by sendfile on a plain TCP connection: no copy through a buffer, no
// pread. Otherwise, and once the body moves to the ring (a full disk), it copies through Read.
func (r *streamReader) WriteTo(w io.Writer) (int64, error) {
	rf, ok := w.(io.ReaderFrom)
	var f *os.File
	var bodyOff int64
	if ro, isRe := r.s.file.(fileReopener); ok && isRe && r.s.buf == nil && r.end-r.off >= sendfileMinBytes {
		f, bodyOff, _ = ro.Reopen()
	}
	if f == nil {
		return io.Copy(w, readOnly{r})
	}
	defer f.Close()
	var total int64
	for {
		avail, ring, _, err := r.wait()
		switch {
		case errors.Is(err, io.EOF):
			return total, nil
		case err != nil:
			return total, err
		case ring != nil:
			n, err := io.Copy(w, readOnly{r})
			return total + n, err
		}
		want := avail - r.off
		if _, err := f.Seek(bodyOff+r.off, io.SeekStart); err != nil {
			return total, err
		}
		lr := io.LimitedReader{R: f, N: want}
		n, err := rf.ReadFrom(&lr)
		total += n
		r.advance(n)
		if err != nil {
			return total, err
		}
		if n < want {
			return total, fmt.Errorf("cache: the spool ended %d bytes short of what was written", want-n)
		}
	}
}

// readOnly hides a reader's WriteTo from io.Copy, which would call it.
type readOnly struct{ io.Reader }

// Close implements io.Closer: the reader leaves the stream.
func (r *streamReader) Close() error {
	if !r.closed {
		r.closed = true
		r.s.mu.Lock()
		delete(r.s.active, r)
		r.s.mu.Unlock()
		r.s.leave()
	}
	return nil
}

var _ io.ReadCloser = (*streamReader)(nil)
