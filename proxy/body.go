package proxy

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
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

// bodyStream feeds an origin body to fasthttp: it counts bytes, pushes the write deadline
// forward while data moves, and on Close releases the origin request. A read error after the
// headers went out makes fasthttp drop the connection, so the client never takes a short body
// for a whole one.
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
}

func (b *bodyStream) Read(p []byte) (int, error) {
	n, err := b.body.Read(p)
	b.n += int64(n)
	if now := time.Now(); now.Sub(b.extended) > time.Second {
		b.extended = now
		_ = b.ctx.SetWriteDeadline(now.Add(b.s.cfg.WriteTimeout))
	}
	if err != nil && !errors.Is(err, io.EOF) {
		level := slog.LevelWarn
		if statusFor(err) == statusClientClosed { // a shutdown aborted it: no failure
			level = slog.LevelDebug
		}
		b.s.log.Log(context.Background(), level, "origin body failed mid-stream", "key", b.key,
			"source", string(b.src), "sent", b.n, "of", b.want, "err", err)
	}
	return n, err
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
