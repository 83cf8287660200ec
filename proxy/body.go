package proxy

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"

	"github.com/fedicache/fedicache/origin"
	"github.com/valyala/fasthttp"
)

// setBody hands the body to fasthttp to stream. An *os.File goes as it is so that fasthttp can
// use sendfile; its write deadline then allows the whole file at a slow client's pace.
func (s *Server) setBody(ctx *fasthttp.RequestCtx, body io.ReadCloser, length int64,
	src origin.Source, key string, cancel context.CancelFunc) {
	if f, ok := body.(*os.File); ok {
		cancel() // a local file needs no request context
		s.metrics.addBytes(src, length)
		_ = ctx.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout + time.Duration(length/minClientRate)*time.Second))
		ctx.SetBodyStream(f, int(length))
		return
	}
	s.metrics.inFlight.Inc()
	ctx.SetBodyStream(&bodyStream{
		body: body, ctx: ctx, s: s, src: src, key: key, cancel: cancel, want: length,
	}, int(length))
}

// minClientRate (bytes per second) is the slowest pace at which a client may read a file sent
// with sendfile before its write deadline ends the connection.
const minClientRate = 16 << 10

// bodyChunk is the most a body stream writes to the client in one call, which must complete
// within WriteTimeout of the deadline's last push, and the size of the buffers it copies
// through: 32 KiB, as io.Copy's buffer, which the net package allocated for each answer when
// fasthttp read the stream.
const bodyChunk = 32 << 10

// chunks holds the copy buffers of the streams under way: one for each stream while it
// writes, not one allocated per answer.
var chunks = sync.Pool{New: func() any { return new([bodyChunk]byte) }}

// bodyStream feeds an origin body to fasthttp: it counts bytes, pushes the write deadline
// forward while data moves, and on Close releases the origin request. A read error after the
// headers went out makes fasthttp drop the connection, so the client never takes a short body
// for a whole one.
//
// fasthttp calls WriteTo, which does what Read does without the copy through a buffer the net
// package allocated for each answer: it writes from a pooled buffer, from the body's own bytes
// when the body is an io.WriterTo (the memory tier's, a promoted disk hit's), or by sendfile
// for a file range (a ranged disk hit, the old volume) on a plain TCP connection.
type bodyStream struct {
	body     io.ReadCloser
	ctx      *fasthttp.RequestCtx
	s        *Server
	src      origin.Source
	key      string
	cancel   context.CancelFunc
	want, n  int64
	extended time.Time
	closed   bool
	out      bodyWriter
}

var _ fasthttp.BodyWriterTo = (*bodyStream)(nil)

func (b *bodyStream) Read(p []byte) (int, error) {
	n, err := b.body.Read(p)
	b.n += int64(n)
	b.extend()
	if err != nil && !errors.Is(err, io.EOF) {
		b.failed(err)
	}
	return n, err
}

// SupportsBodyWriteTo tells fasthttp that WriteTo may stand in for Read.
func (b *bodyStream) SupportsBodyWriteTo() bool { return true }

// WriteTo writes the body to w, counting the bytes w takes and pushing the write deadline as
// Read does. It returns the body's read error, logged as Read logs it, or w's write error;
// either way fasthttp drops the connection, and a body that ends early leaves fasthttp short
// of the Content-Length, which it treats as an error too.
func (b *bodyStream) WriteTo(w io.Writer) (int64, error) {
	b.out = bodyWriter{b: b, w: w}
	var err error
	if wt, ok := b.body.(io.WriterTo); ok {
		_, err = wt.WriteTo(&b.out)
	} else {
		_, err = b.out.copyFrom(b.body)
	}
	n, werr := b.out.n, b.out.werr
	b.out = bodyWriter{}
	if err != nil && werr == nil && !errors.Is(err, io.EOF) {
		b.failed(err)
	}
	return n, err
}

// extend pushes the write deadline forward, at most once a second.
func (b *bodyStream) extend() {
	if now := time.Now(); now.Sub(b.extended) > time.Second {
		b.extended = now
		_ = b.ctx.SetWriteDeadline(now.Add(b.s.cfg.WriteTimeout))
	}
}

// failed logs the origin body's failure mid-stream.
func (b *bodyStream) failed(err error) {
	level := slog.LevelWarn
	if statusFor(err) == statusClientClosed { // a shutdown aborted it: no failure
		level = slog.LevelDebug
	}
	b.s.log.Log(context.Background(), level, "origin body failed mid-stream", "key", b.key,
		"source", string(b.src), "sent", b.n, "of", b.want, "err", err)
}

func (b *bodyStream) Close() error {
	if b.closed {
		return nil
	}
	b.closed = true
	err := b.body.Close()
	b.cancel()
	b.s.metrics.addBytes(b.src, b.n)
	b.s.metrics.inFlight.Dec()
	return err
}

// bodyWriter is what a body stream's WriteTo writes through to fasthttp's writer w: it writes
// at most bodyChunk bytes at a time, pushing the deadline before each, and counts what w
// takes. werr is w's error, which tells a failed write from a failed read.
type bodyWriter struct {
	b    *bodyStream
	w    io.Writer
	n    int64
	werr error
	part io.LimitedReader
}

func (bw *bodyWriter) Write(p []byte) (int, error) {
	var done int
	for len(p) > 0 {
		chunk := p[:min(len(p), bodyChunk)]
		bw.b.extend()
		n, err := bw.w.Write(chunk)
		n = max(0, min(n, len(chunk)))
		bw.count(int64(n))
		done += n
		if err == nil && n < len(chunk) {
			err = io.ErrShortWrite
		}
		if err != nil {
			bw.werr = err
			return done, err
		}
		p = p[n:]
	}
	return done, nil
}

func (bw *bodyWriter) count(n int64) {
	bw.n += n
	bw.b.n += n
}

// ReadFrom copies r to the client: a range of a file by sendfile when it can (a body's WriteTo
// that calls io.Copy hands it that), anything else through a pooled buffer.
func (bw *bodyWriter) ReadFrom(r io.Reader) (int64, error) {
	if lr, ok := r.(*io.LimitedReader); ok {
		if _, ok := lr.R.(*os.File); ok {
			if rf, ok := bw.w.(io.ReaderFrom); ok && bw.canSendfile() {
				return bw.sendfile(rf, lr)
			}
		}
	}
	return bw.copyFrom(r)
}

// canSendfile reports whether the connection is one the kernel can sendfile to: a plain TCP
// connection, not TLS, where a file would go through fasthttp's small buffer instead.
func (bw *bodyWriter) canSendfile() bool {
	_, ok := bw.b.ctx.Conn().(*net.TCPConn)
	return ok
}

// copyFrom copies r to the client through a pooled buffer until r ends.
func (bw *bodyWriter) copyFrom(r io.Reader) (int64, error) {
	buf := chunks.Get().(*[bodyChunk]byte)
	defer chunks.Put(buf)
	var written int64
	for {
		n, rerr := r.Read(buf[:])
		if n > 0 {
			m, werr := bw.Write(buf[:n])
			written += int64(m)
			if werr != nil {
				return written, werr
			}
		}
		if rerr == io.EOF {
			return written, nil
		}
		if rerr != nil {
			return written, rerr
		}
	}
}

// sendfile sends lr, a range of a file, bodyChunk bytes at a time through rf, fasthttp's
// writer, which hands them to the connection's ReadFrom, that is sendfile. An error is taken
// for the connection's: sendfile does not tell a file's read error from a write error.
func (bw *bodyWriter) sendfile(rf io.ReaderFrom, lr *io.LimitedReader) (int64, error) {
	var written int64
	for lr.N > 0 {
		want := min(lr.N, bodyChunk)
		bw.b.extend()
		bw.part = io.LimitedReader{R: lr.R, N: want}
		n, err := rf.ReadFrom(&bw.part)
		lr.N -= n
		written += n
		bw.count(n)
		if err != nil {
			bw.werr = err
			return written, err
		}
		if n < want { // the file ended early: fasthttp finds the body short of its length
			break
		}
	}
	return written, nil
}
