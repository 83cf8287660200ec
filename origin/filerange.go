package origin

import (
	"io"
	"os"
)

// fileRange reads a range of an open file from the file's offset and closes the file.
type fileRange struct {
	lr io.LimitedReader
	f  *os.File
}

// FileRange returns a body that reads the next n bytes of f from its current offset and closes
// f on Close. Copied to a network connection, it goes by sendfile.
func FileRange(f *os.File, n int64) io.ReadCloser {
	return &fileRange{lr: io.LimitedReader{R: f, N: n}, f: f}
}

// Read reads from the range.
func (b *fileRange) Read(p []byte) (int, error) { return b.lr.Read(p) }

// WriteTo copies the rest of the range to w. It hands w an *io.LimitedReader over the *os.File,
// the shape that net's TCPConn.ReadFrom (and fasthttp's body writer) turn into sendfile.
func (b *fileRange) WriteTo(w io.Writer) (int64, error) { return io.Copy(w, &b.lr) }

// Close closes the file.
func (b *fileRange) Close() error { return b.f.Close() }
