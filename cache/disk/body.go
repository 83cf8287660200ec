package disk

import (
	"io"
	"os"
)

// rangeBody reads a range of an open entry file from the file's offset and closes the file.
type rangeBody struct {
	lr io.LimitedReader
	f  *os.File
}

// newRangeBody returns a body that reads the next n bytes of f, which it closes on Close.
func newRangeBody(f *os.File, n int64) *rangeBody {
	return &rangeBody{lr: io.LimitedReader{R: f, N: n}, f: f}
}

// Read reads from the range.
func (b *rangeBody) Read(p []byte) (int, error) { return b.lr.Read(p) }

// WriteTo copies the rest of the range to w. It hands w an *io.LimitedReader over the *os.File,
// the shape that net's TCPConn.ReadFrom (and fasthttp's body writer) turn into sendfile.
func (b *rangeBody) WriteTo(w io.Writer) (int64, error) { return io.Copy(w, &b.lr) }

// Close closes the file.
func (b *rangeBody) Close() error { return b.f.Close() }
