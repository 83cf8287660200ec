package backfill

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/fedicache/fedicache/origin"
)

// maxStreams bounds the GETs a rangeReader keeps open between reads: the two parts a multipart
// upload reads at once, and a retry's.
const maxStreams = 4

// rangeReader reads an object of a bucket from any offset, as a Put's retries and parts need,
// without holding it: a read that goes on where an earlier one ended goes on reading that GET's
// body, and any other read opens a ranged GET from its offset to the end. It holds no bytes of
// its own, only up to maxStreams open GETs (the HTTP client's buffers).
//
// It keeps the context of the copy it serves, because origin.Body's ReadAt has none.
type rangeReader struct {
	ctx  context.Context
	src  origin.Origin
	key  string
	size int64
	etag string // the listed version: a GET of another one is ErrChanged

	off int64 // of Read and Seek

	mu     sync.Mutex
	idle   []*stream // open GETs not being read, each at its offset
	closed bool
}

// stream is one open GET and the offset its body has reached.
type stream struct {
	body io.ReadCloser
	off  int64
}

func newRangeReader(ctx context.Context, src origin.Origin, key string, size int64, etag string) *rangeReader {
	return &rangeReader{ctx: ctx, src: src, key: key, size: size, etag: etag}
}

// ReadAt implements io.ReaderAt; it may be called concurrently.
func (r *rangeReader) ReadAt(p []byte, off int64) (int, error) {
	if off >= r.size {
		return 0, io.EOF
	}
	want := len(p)
	if rest := r.size - off; int64(len(p)) > rest {
		p = p[:rest]
	}
	s, err := r.take(off)
	if err != nil {
		return 0, err
	}
	n, err := io.ReadFull(s.body, p)
	s.off += int64(n)
	if err != nil {
		s.body.Close()
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			err = fmt.Errorf("get %q: the body ended at %d of %d bytes: %w", r.key, s.off, r.size, errChanged)
		}
		return n, err
	}
	r.give(s)
	if n < want {
		return n, io.EOF
	}
	return n, nil
}

// take returns an idle GET at off, or opens one.
func (r *rangeReader) take(off int64) (*stream, error) {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil, errors.New("read after close")
	}
	for i, s := range r.idle {
		if s.off == off {
			r.idle = append(r.idle[:i], r.idle[i+1:]...)
			r.mu.Unlock()
			return s, nil
		}
	}
	r.mu.Unlock()
	// From the start, the whole object: a bucket checks a whole body against its checksum.
	var rng *origin.Range
	if off > 0 {
		rng = &origin.Range{Start: off, End: -1}
	}
	body, m, err := r.src.Get(r.ctx, r.key, rng)
	if err != nil {
		if errors.Is(err, origin.ErrNotFound) {
			return nil, errChanged
		}
		return nil, fmt.Errorf("get %q from %d: %w", r.key, off, err)
	}
	if m.Size != r.size || r.etag != "" && m.ETag != "" && m.ETag != r.etag {
		body.Close()
		return nil, errChanged
	}
	return &stream{body: body, off: off}, nil
}

// give keeps s for a later read, unless it is at the end or enough are kept.
func (r *rangeReader) give(s *stream) {
	r.mu.Lock()
	if r.closed || s.off >= r.size || len(r.idle) >= maxStreams {
		r.mu.Unlock()
		s.body.Close()
		return
	}
	r.idle = append(r.idle, s)
	r.mu.Unlock()
}

func (r *rangeReader) Read(p []byte) (int, error) {
	n, err := r.ReadAt(p, r.off)
	r.off += int64(n)
	return n, err
}

func (r *rangeReader) Seek(offset int64, whence int) (int64, error) {
	off, err := seekTo(r.off, r.size, offset, whence)
	if err == nil {
		r.off = off
	}
	return off, err
}

// Close closes the GETs still open.
func (r *rangeReader) Close() error {
	r.mu.Lock()
	idle := r.idle
	r.idle, r.closed = nil, true
	r.mu.Unlock()
	for _, s := range idle {
		s.body.Close()
	}
	return nil
}

var _ origin.Body = (*rangeReader)(nil)
