package memory

import (
	"errors"
	"io"
)

// errClosed is what a body read after Close returns.
var errClosed = errors.New("memory: read of a closed body")

// reader reads a stored body (or a range of it) without copying it first. It never modifies
// the bytes, which other readers share.
type reader struct {
	b      []byte
	closed bool
}

// Read implements io.Reader.
func (r *reader) Read(p []byte) (int, error) {
	if r.closed {
		return 0, errClosed
	}
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.b)
	r.b = r.b[n:]
	return n, nil
}

// WriteTo implements io.WriterTo, so io.Copy writes the bytes in one call without a buffer.
func (r *reader) WriteTo(w io.Writer) (int64, error) {
	if r.closed {
		return 0, errClosed
	}
	b := r.b
	n, err := w.Write(b)
	n = max(0, min(n, len(b))) // a misbehaving writer's count must not move us out of b
	r.b = b[n:]
	if err == nil && n < len(b) {
		err = io.ErrShortWrite
	}
	return int64(n), err
}

// Close implements io.Closer; it releases the reader's hold on the bytes.
func (r *reader) Close() error {
	r.b, r.closed = nil, true
	return nil
}
