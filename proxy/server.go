// Package proxy is the HTTP front of fedicache: it maps media URLs to object keys, answers GET
// and HEAD from one origin.Origin with the headers, ranges and conditionals that Mastodon's web
// and mobile clients expect, and runs the admin listener (health, readiness, metrics, status).
package proxy

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/fedicache/fedicache/origin"
	"github.com/valyala/fasthttp"
)

// DefaultCacheControl is the Cache-Control of media answers when Config.CacheControl is empty.
const DefaultCacheControl = "public, max-age=31536000, immutable"

// Config tunes the public listener. The zero value works.
type Config struct {
	// StripPrefixes are URL path prefixes removed before a path becomes a key (the first that
	// matches whole segments wins), e.g. "/my-bucket" or "/system". Zero means none.
	StripPrefixes []string
	// DenyPrefixes are key prefixes never served, e.g. "backups/". Zero means none.
	DenyPrefixes []string
	// CacheControl is sent with every media answer. Zero means DefaultCacheControl.
	CacheControl string
	// ReadTimeout bounds reading a request's headers. Zero means 30s.
	ReadTimeout time.Duration
	// WriteTimeout bounds any stall while writing an answer: it is pushed forward as the body
	// streams, so a long download is never cut while it moves. Zero means 60s.
	WriteTimeout time.Duration
	// IdleTimeout closes keep-alive connections idle that long. Zero means 120s.
	IdleTimeout time.Duration
	// MaxHeaderBytes caps the size of a request's headers; larger requests get 431.
	// Zero means 16 KiB.
	MaxHeaderBytes int
	// MaxConns caps the connections served at once. Zero means 10,000.
	MaxConns int
	// Logger receives errors with their cause and key. Zero means slog.Default().
	Logger *slog.Logger
	// RequestSample logs one request in RequestSample at info; at debug every request is
	// logged. Zero means none at info.
	RequestSample int
	// OnFallback, when set, is called with the key of each object answered from the old
	// volume (the backfill copies those first). It must not block.
	OnFallback func(key string)
	// CacheBuster recognises Mastodon's cache-buster requests; Buster carries them out. Zero
	// (or a nil Buster) means none.
	CacheBuster BusterConfig
	Buster      Buster
}

func (c Config) withDefaults() Config {
	if c.CacheControl == "" {
		c.CacheControl = DefaultCacheControl
	}
	if c.ReadTimeout <= 0 {
		c.ReadTimeout = 30 * time.Second
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = 60 * time.Second
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = 120 * time.Second
	}
	if c.MaxHeaderBytes <= 0 {
		c.MaxHeaderBytes = 16 << 10
	}
	if c.MaxConns <= 0 {
		c.MaxConns = 10_000
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Server answers media requests from one Origin.
type Server struct {
	cfg     Config
	cache   Cache
	keys    keyMapper
	metrics *Metrics
	log     *slog.Logger
	srv     *fasthttp.Server
	access  *accessLog // nil when no request is logged

	bustHeader             string // "" when the cache buster is off
	bustMethod, bustSecret []byte

	// base is the parent of every origin request; abort cancels it when a shutdown runs out
	// of time, so bucket requests still running are dropped.
	base     context.Context
	abort    context.CancelFunc
	draining atomic.Bool
}

// New returns a Server answering from c. A nil m gets fresh Metrics.
func New(c Cache, cfg Config, m *Metrics) *Server {
	cfg = cfg.withDefaults()
	if m == nil {
		m = NewMetrics()
	}
	s := &Server{
		cfg:     cfg,
		cache:   c,
		keys:    newKeyMapper(cfg.StripPrefixes, cfg.DenyPrefixes),
		metrics: m,
		log:     cfg.Logger,
	}
	s.access = newAccessLog(cfg.Logger, cfg.RequestSample)
	if cb := cfg.CacheBuster; cb.Header != "" && cb.Secret != "" && cfg.Buster != nil {
		s.bustHeader, s.bustSecret = cb.Header, []byte(cb.Secret)
		s.bustMethod = []byte(strings.ToUpper(cmp.Or(cb.Method, "GET")))
	}
	if cs, ok := c.(cacheStatser); ok {
		m.registerCache(cs)
	}
	s.base, s.abort = context.WithCancel(context.Background())
	s.srv = &fasthttp.Server{
		Handler:                       s.handle,
		Name:                          serverName,
		ReadTimeout:                   cfg.ReadTimeout,
		WriteTimeout:                  cfg.WriteTimeout,
		IdleTimeout:                   cfg.IdleTimeout,
		ReadBufferSize:                cfg.MaxHeaderBytes,
		Concurrency:                   cfg.MaxConns,
		MaxRequestBodySize:            64 << 10,
		NoDefaultContentType:          true,
		DisablePreParseMultipartForm:  true,
		CloseOnShutdown:               true,
		DisableHeaderNamesNormalizing: false,
		Logger:                        fasthttpLogger{cfg.Logger},
		// fasthttp's messages about a request it could not parse quote its bytes, headers
		// and all (a cache-buster secret among them): redact them.
		SecureErrorLogMessage: true,
	}
	return s
}

// Serve answers requests arriving on ln until Shutdown.
func (s *Server) Serve(ln net.Listener) error { return s.srv.Serve(ln) }

// Shutdown stops accepting connections and waits until the answers under way are complete or
// ctx ends; then it aborts the origin requests still running and returns ctx's error.
// Draining reports true from its first moment.
func (s *Server) Shutdown(ctx context.Context) error {
	s.draining.Store(true)
	err := s.srv.ShutdownWithContext(ctx)
	if err != nil {
		s.abort()
	}
	return err
}

// Draining reports whether a shutdown has begun.
func (s *Server) Draining() bool { return s.draining.Load() }

// Metrics returns the server's collectors.
func (s *Server) Metrics() *Metrics { return s.metrics }

func (s *Server) handle(ctx *fasthttp.RequestCtx) {
	s.route(ctx)
	if s.access != nil {
		s.access.record(ctx)
	}
}

// route answers one request.
func (s *Server) route(ctx *fasthttp.RequestCtx) {
	if s.bustHeader != "" && s.isBust(ctx) {
		s.bust(ctx)
		return
	}
	if !ctx.IsGet() && !ctx.IsHead() {
		ctx.Response.Header.Set("Allow", "GET, HEAD")
		s.fail(ctx, fasthttp.StatusMethodNotAllowed)
		return
	}
	if s.serveMemoryHit(ctx) {
		return
	}
	key, err := s.keys.key(ctx.Request.Header.RequestURI())
	if err != nil {
		s.fail(ctx, statusFor(err))
		return
	}
	s.serveObject(ctx, key)
}

// serveObject answers GET or HEAD for key.
func (s *Server) serveObject(ctx *fasthttp.RequestCtx, key string) {
	req := &ctx.Request.Header
	var rng *origin.Range
	if r, ok := parseRange(string(req.Peek("Range"))); ok {
		rng = &r
	}
	ifNoneMatch := string(req.Peek("If-None-Match"))
	ifModifiedSince := string(req.Peek("If-Modified-Since"))
	ifRange := string(req.Peek("If-Range"))

	c, cancel := context.WithCancel(s.base)
	var stat *origin.Meta
	if ctx.IsHead() || ifNoneMatch != "" || ifModifiedSince != "" {
		m, from, err := s.cache.StatFrom(c, key)
		if err != nil {
			cancel()
			s.failObject(ctx, key, err)
			return
		}
		if notModified(ifNoneMatch, ifModifiedSince, m) {
			cancel()
			s.setObjectHeaders(&ctx.Response.Header, &m, from, "")
			ctx.SetStatusCode(fasthttp.StatusNotModified)
			s.metrics.observeRequest(fasthttp.StatusNotModified, from.Source)
			return
		}
		if rng != nil && !ifRangeMatches(ifRange, m) {
			rng = nil
		}
		if ctx.IsHead() {
			cancel()
			s.answerHead(ctx, m, from, rng)
			return
		}
		stat = &m
	}

	body, m, from, err := s.cache.GetFrom(c, key, rng)
	if err == nil && rng != nil && stat == nil && !ifRangeMatches(ifRange, m) {
		// The client's copy is outdated: it gets the whole current object instead.
		body.Close()
		rng = nil
		body, m, from, err = s.cache.GetFrom(c, key, nil)
	}
	if errors.Is(err, origin.ErrRangeNotSatisfiable) && rng != nil {
		body, m, from, err = s.retryRange(c, key, *rng)
	}
	if err != nil {
		cancel()
		s.failObject(ctx, key, err)
		return
	}
	length := m.Size
	status := fasthttp.StatusOK
	if rng != nil {
		first, last, ok := rng.Resolve(m.Size)
		if !ok { // the store served a range that does not fit the size it reported
			body.Close()
			cancel()
			s.failObject(ctx, key, origin.ErrRangeNotSatisfiable)
			return
		}
		length = last - first + 1
		status = fasthttp.StatusPartialContent
		ctx.Response.Header.Set("Content-Range", contentRange(first, last, m.Size))
	}
	s.setObjectHeaders(&ctx.Response.Header, &m, from, "")
	ctx.Response.Header.SetContentType(m.ContentType)
	ctx.SetStatusCode(status)
	s.metrics.observeRequest(status, from.Source)
	s.setBody(ctx, body, length, from.Source, key, cancel)
	if from.Source == origin.SourceVolume && s.cfg.OnFallback != nil {
		s.cfg.OnFallback(key)
	}
}

// retryRange asks again for a range that the store refused, now as explicit first and last
// bytes: some S3-compatible servers refuse a suffix longer than the object, which RFC 9110 says
// selects the whole object. A range that is really beyond the end stays refused.
func (s *Server) retryRange(c context.Context, key string, r origin.Range) (io.ReadCloser, origin.Meta, origin.From, error) {
	m, err := s.cache.Stat(c, key)
	if err != nil {
		return nil, origin.Meta{}, origin.From{}, err
	}
	first, last, ok := r.Resolve(m.Size)
	if !ok {
		return nil, origin.Meta{}, origin.From{}, origin.ErrRangeNotSatisfiable
	}
	return s.cache.GetFrom(c, key, &origin.Range{Start: first, End: last})
}

// answerHead answers a HEAD as the GET of the same request would, without the body.
func (s *Server) answerHead(ctx *fasthttp.RequestCtx, m origin.Meta, from origin.From, rng *origin.Range) {
	status, length := fasthttp.StatusOK, m.Size
	if rng != nil {
		first, last, ok := rng.Resolve(m.Size)
		if !ok {
			s.rangeNotSatisfiable(ctx, m.Size)
			return
		}
		status, length = fasthttp.StatusPartialContent, last-first+1
		ctx.Response.Header.Set("Content-Range", contentRange(first, last, m.Size))
	}
	s.setObjectHeaders(&ctx.Response.Header, &m, from, "")
	ctx.Response.Header.SetContentType(m.ContentType)
	ctx.Response.Header.SetContentLength(int(length))
	ctx.SetStatusCode(status)
	s.metrics.observeRequest(status, from.Source)
}

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

// failObject answers an origin error, logging the cause of failures (never sent to the client).
func (s *Server) failObject(ctx *fasthttp.RequestCtx, key string, err error) {
	status := statusFor(err)
	switch status {
	case fasthttp.StatusRequestedRangeNotSatisfiable:
		c, cancel := context.WithTimeout(s.base, 30*time.Second)
		m, serr := s.cache.Stat(c, key)
		cancel()
		if serr != nil {
			s.failObject(ctx, key, serr)
			return
		}
		s.rangeNotSatisfiable(ctx, m.Size)
		return
	case fasthttp.StatusNotFound:
	case fasthttp.StatusServiceUnavailable:
		ctx.Response.Header.Set("Retry-After", "5")
	default:
		s.log.Warn("origin request failed", "key", key, "status", status, "err", err)
	}
	s.fail(ctx, status)
}

func (s *Server) rangeNotSatisfiable(ctx *fasthttp.RequestCtx, size int64) {
	ctx.Response.Header.Set("Content-Range", unsatisfiedRange(size))
	ctx.Response.Header.Set("Accept-Ranges", "bytes")
	s.fail(ctx, fasthttp.StatusRequestedRangeNotSatisfiable)
}

// fail answers status with a short text body that reveals nothing.
func (s *Server) fail(ctx *fasthttp.RequestCtx, status int) {
	h := &ctx.Response.Header
	setCommonHeaders(h)
	h.Set("Cache-Control", errCacheControl)
	h.SetContentType("text/plain; charset=utf-8")
	ctx.SetStatusCode(status)
	ctx.SetBodyString(errorBody(status))
	s.metrics.observeRequest(status, "")
}

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
		b.s.log.Warn("origin body failed mid-stream", "key", b.key, "source", string(b.src),
			"sent", b.n, "of", b.want, "err", err)
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

// fasthttpLogger routes fasthttp's own messages (bad requests, broken connections) to slog.
type fasthttpLogger struct{ l *slog.Logger }

func (f fasthttpLogger) Printf(format string, args ...any) {
	f.l.Debug("http server", "msg", fmt.Sprintf(format, args...))
}
