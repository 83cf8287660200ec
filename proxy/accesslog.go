package proxy

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// accessLog writes one line per answered request: every request when the logger is at debug,
// one in every n at info otherwise, so a busy front logs a steady sample, not a flood. The
// line names the method, path, status, cache result, tier, length and time to the headers;
// never a client's address, its headers or the query string.
type accessLog struct {
	log   *slog.Logger
	level slog.Level // debug: every request; info: one in every
	every uint64     // 0 means none at info
	seen  atomic.Uint64
}

// newAccessLog returns the access log of l, or nil when it would write nothing.
func newAccessLog(l *slog.Logger, every int) *accessLog {
	a := &accessLog{log: l, level: slog.LevelInfo, every: uint64(max(every, 0))}
	if l.Enabled(context.Background(), slog.LevelDebug) {
		a.level, a.every = slog.LevelDebug, 1
	}
	if a.every == 0 || !l.Enabled(context.Background(), a.level) {
		return nil
	}
	return a
}

// sampled reports whether the request about to be answered falls in the sample, and reads its
// time: the server records a request's time only when asked (fasthttp's LazyRequestTime), so
// the line's "ms" counts from here. Each call counts one request.
func (a *accessLog) sampled(ctx *fasthttp.RequestCtx) bool {
	if a.every > 1 && a.seen.Add(1)%a.every != 0 {
		return false
	}
	ctx.Time()
	return true
}

// record logs ctx's request, one that sampled took in.
func (a *accessLog) record(ctx *fasthttp.RequestCtx) {
	h := &ctx.Response.Header
	attrs := [...]slog.Attr{
		slog.String("method", string(ctx.Method())),
		slog.String("path", string(ctx.Path())),
		slog.Int("status", ctx.Response.StatusCode()),
		slog.String("cache", string(h.Peek("X-Cache"))),
		slog.String("tier", string(h.Peek("X-Cache-Tier"))),
		slog.Int("bytes", h.ContentLength()),
		slog.Float64("ms", float64(time.Since(ctx.Time()).Microseconds())/1000),
	}
	if a.every > 1 {
		a.log.LogAttrs(context.Background(), a.level, "request", append(attrs[:], slog.Uint64("sample", a.every))...)
		return
	}
	a.log.LogAttrs(context.Background(), a.level, "request", attrs[:]...)
}
