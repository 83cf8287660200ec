// Package proxy is the public front of fedicache, and only that: it maps media URLs to object
// keys and answers GET and HEAD from one Cache with the headers, ranges, conditionals and
// statuses that Mastodon's web and mobile clients expect, over TLS when asked, and carries out
// Mastodon's cache-buster requests through a Buster. The admin listener is proxy/admin; the
// other replicas and the CDN are proxy/cluster.
package proxy

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
	"time"

	"github.com/fedicache/fedicache/origin"
	"github.com/valyala/fasthttp"
)

// Defaults of Config.
const (
	// DefaultCacheControl is the Cache-Control of media answers.
	DefaultCacheControl = "public, max-age=31536000, immutable"
	DefaultReadTimeout  = 30 * time.Second
	DefaultWriteTimeout = 60 * time.Second
	DefaultIdleTimeout  = 120 * time.Second
	// DefaultMaxHeaderBytes is 16 KiB.
	DefaultMaxHeaderBytes = 16 << 10
	DefaultMaxConns       = 10_000
)

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
	// OnFallback, when set, is called with the key of each object answered from an old store
	// and that store's name (the backfill copies those first). It must not block.
	OnFallback func(key, store string)
	// CacheBuster recognises Mastodon's cache-buster requests; Buster carries them out. Zero
	// (or a nil Buster) means none.
	CacheBuster BusterConfig
	Buster      Buster
	// MediaProxy redirects requests for removed remote media to Mastodon's media proxy (see
	// mediaproxy.go). Zero means none.
	MediaProxy MediaProxyConfig
	// Rewritten answers the keys of objects their server rewrites in place from a cache of
	// their own (see rewritten.go). Zero means none.
	Rewritten RewrittenConfig
}

func (c Config) withDefaults() Config {
	if c.CacheControl == "" {
		c.CacheControl = DefaultCacheControl
	}
	if c.ReadTimeout <= 0 {
		c.ReadTimeout = DefaultReadTimeout
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = DefaultWriteTimeout
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	if c.MaxHeaderBytes <= 0 {
		c.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if c.MaxConns <= 0 {
		c.MaxConns = DefaultMaxConns
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

	// rewritten answers the keys cfg.Rewritten names; nil when none.
	rewritten *Server

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
		m = NewMetrics(nil)
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
	s.base, s.abort = context.WithCancel(context.Background())
	s.rewritten = s.newRewritten()
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
		// A request's time is read only for the access log's sample (see accessLog.sampled):
		// the other requests are spared a clock read.
		LazyRequestTime: true,
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
	if s.access != nil && s.access.sampled(ctx) {
		s.route(ctx)
		s.access.record(ctx)
		return
	}
	s.route(ctx)
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
	var r request
	s.readRequest(ctx, &r)
	defer r.release()
	switch {
	case r.keyErr != nil:
		s.fail(ctx, statusFor(r.keyErr))
	case s.rewritten != nil && s.cfg.Rewritten.Match(r.key):
		s.rewritten.serveObject(ctx, &r)
	case s.serveMemoryHit(ctx, &r):
	default:
		s.serveObject(ctx, &r)
	}
}

// serveObject answers r, a GET or HEAD that no memory hit answered, from the cache (see fetch
// for the calls it makes). Until the body is handed to fasthttp, the request's context is
// canceled here, whichever way the answer ends; afterwards the body stream cancels it.
func (s *Server) serveObject(ctx *fasthttp.RequestCtx, r *request) {
	key := string(r.key)
	c, cancel := context.WithCancel(s.base)
	defer func() {
		if cancel != nil {
			cancel()
		}
	}()
	body, m, from, a, err := s.fetch(c, key, r)
	switch {
	case err != nil:
		if !s.redirectRemoved(c, ctx, key, err) {
			s.failObject(ctx, key, err)
		}
		return
	case a.status == fasthttp.StatusRequestedRangeNotSatisfiable:
		s.rangeNotSatisfiable(ctx, a)
		return
	}
	h := &ctx.Response.Header
	if a.status == fasthttp.StatusPartialContent {
		var crb [64]byte
		h.SetBytesV("Content-Range", a.appendContentRange(crb[:0]))
	}
	s.setObjectHeaders(h, &m, from, "")
	if a.status != fasthttp.StatusNotModified {
		h.SetContentType(m.ContentType)
	}
	ctx.SetStatusCode(a.status)
	s.metrics.observeRequest(a.status, from.Source)
	if body == nil { // a HEAD or a 304
		if a.status != fasthttp.StatusNotModified {
			h.SetContentLength(int(a.length()))
		}
		return
	}
	s.setBody(ctx, body, a.length(), from.Source, key, cancel)
	cancel = nil // the body stream cancels it when fasthttp closes it
	if from.Source.Old() && s.cfg.OnFallback != nil {
		s.cfg.OnFallback(key, from.Store)
	}
	if from.Source.Old() || from.Source == origin.SourcePeer && from.Peer.Old() {
		s.metrics.observeFallback(from.Store)
	}
}

// fetch asks the cache what r needs and decides the answer; the body is nil when none goes out
// (a HEAD, a 304, a 416). The calls it makes:
//   - a HEAD: one StatFrom;
//   - a GET, with a Range or without: one GetFrom;
//   - a GET with If-None-Match or If-Modified-Since: one StatFrom, which answers a 304 (or a
//     416) without fetching a byte; when the validators do not match, one GetFrom follows.
//
// A second GetFrom is asked only when the first shows that RFC 9110 wants other bytes than it
// asked for: an If-Range that names another version (the whole object instead of the range),
// or a range the store refused that does select bytes (see retryRange).
func (s *Server) fetch(c context.Context, key string, r *request) (io.ReadCloser, origin.Meta, origin.From, answer, error) {
	wantRange := r.hasRange
	if r.head || r.conditional() {
		m, from, err := s.cache.StatFrom(c, key)
		if err != nil {
			return nil, m, from, answer{}, err
		}
		a := decide(r, m)
		if !a.body {
			return nil, m, from, a, nil
		}
		// A GET whose validators do not match: its bytes are needed after all.
		wantRange = a.status == fasthttp.StatusPartialContent
	}
	var asked *origin.Range
	if wantRange {
		rng := r.rng
		asked = &rng
	}
	body, m, from, err := s.cache.GetFrom(c, key, asked)
	if errors.Is(err, origin.ErrRangeNotSatisfiable) && asked != nil {
		return s.refused(c, key, r, m, from)
	}
	if err != nil {
		return nil, m, from, answer{}, err
	}
	a := decide(r, m)
	switch {
	case a.status == fasthttp.StatusNotModified: // changed since the StatFrom, into the client's version
		body.Close()
		return nil, m, from, a, nil
	case asked == nil: // the whole object: the answer is 200 whatever the Range says
		return body, m, from, whole(m, false), nil
	case a.status == fasthttp.StatusOK:
		// If-Range names another version: the client gets the whole current object instead.
		body.Close()
		return s.refetch(c, key, nil, m, from)
	}
	a = held(asked, m)
	if !a.body { // the store served a range that does not fit the size it reported
		body.Close()
		return nil, m, from, a, nil
	}
	return body, m, from, a, nil
}

// refused answers r after the store refused its range (origin.ErrRangeNotSatisfiable). The
// refusal carries the object's Meta, so its size costs no call; only an empty Meta (a store that
// does not say) is completed with a StatFrom. RFC 9110 then decides: a range beyond the end
// answers 416; an If-Range that names another version gets the whole object; a range that does
// select bytes is asked again as those bytes (retryRange).
func (s *Server) refused(c context.Context, key string, r *request, m origin.Meta, from origin.From) (io.ReadCloser, origin.Meta, origin.From, answer, error) {
	if !metaKnown(m) {
		var err error
		if m, from, err = s.cache.StatFrom(c, key); err != nil {
			return nil, m, from, answer{}, err
		}
	}
	switch a := decide(r, m); a.status {
	case fasthttp.StatusOK:
		return s.refetch(c, key, nil, m, from)
	case fasthttp.StatusPartialContent:
		return s.retryRange(c, key, a, m, from)
	default:
		return nil, m, from, a, nil
	}
}

// metaKnown reports whether m describes an object, rather than being the empty Meta of a store
// that did not say.
func metaKnown(m origin.Meta) bool {
	return m.Size != 0 || m.ETag != "" || m.ContentType != "" || !m.LastModified.IsZero()
}

// retryRange asks again for a range that the store refused though it selects bytes of the
// object, now as explicit first and last bytes: some S3-compatible servers refuse a suffix
// longer than the object, which RFC 9110 says selects the whole object.
func (s *Server) retryRange(c context.Context, key string, a answer, m origin.Meta, from origin.From) (io.ReadCloser, origin.Meta, origin.From, answer, error) {
	return s.refetch(c, key, &origin.Range{Start: a.first, End: a.last}, m, from)
}

// refetch is the second GetFrom of a request, for asked (nil: the whole object), answered with
// the bytes it holds. A range refused again answers 416 with the size m, the Meta known before.
func (s *Server) refetch(c context.Context, key string, asked *origin.Range, m origin.Meta, from origin.From) (io.ReadCloser, origin.Meta, origin.From, answer, error) {
	body, m2, from2, err := s.cache.GetFrom(c, key, asked)
	switch {
	case errors.Is(err, origin.ErrRangeNotSatisfiable) && asked != nil:
		if metaKnown(m2) {
			m, from = m2, from2
		}
		return nil, m, from, answer{status: fasthttp.StatusRequestedRangeNotSatisfiable, last: -1, size: m.Size}, nil
	case err != nil:
		return nil, m2, from2, answer{}, err
	}
	a := held(asked, m2)
	if !a.body {
		body.Close()
		return nil, m2, from2, a, nil
	}
	return body, m2, from2, a, nil
}

// failObject answers an error of the cache, logging the cause of failures (never sent to the
// client). A request canceled (the client went away, or a shutdown aborted it) is no failure
// of the stores: it is counted as 499 and logged at debug.
func (s *Server) failObject(ctx *fasthttp.RequestCtx, key string, err error) {
	status := statusFor(err)
	switch status {
	case fasthttp.StatusNotFound, fasthttp.StatusRequestedRangeNotSatisfiable:
	case fasthttp.StatusServiceUnavailable:
		ctx.Response.Header.Set("Retry-After", "5")
	case statusClientClosed:
		s.log.Debug("request canceled before its answer", "key", key, "err", err)
		// A shutdown aborted it: a client may still be there, and is told to ask again (another
		// replica answers), on a new connection. It is counted as canceled, not as a failure.
		ctx.Response.Header.Set("Retry-After", "1")
		ctx.SetConnectionClose()
		s.failCounted(ctx, fasthttp.StatusServiceUnavailable, statusClientClosed)
		return
	default:
		s.log.Warn("origin request failed", "key", key, "status", status, "err", err)
	}
	s.fail(ctx, status)
}

// rangeNotSatisfiable answers a 416, whose Content-Range names the object's size.
func (s *Server) rangeNotSatisfiable(ctx *fasthttp.RequestCtx, a answer) {
	var crb [32]byte
	ctx.Response.Header.SetBytesV("Content-Range", a.appendContentRange(crb[:0]))
	ctx.Response.Header.Set("Accept-Ranges", "bytes")
	s.fail(ctx, fasthttp.StatusRequestedRangeNotSatisfiable)
}

// fail answers status with a short text body that reveals nothing.
func (s *Server) fail(ctx *fasthttp.RequestCtx, status int) { s.failCounted(ctx, status, status) }

// failCounted is fail, counted in the metrics as counted.
func (s *Server) failCounted(ctx *fasthttp.RequestCtx, status, counted int) {
	h := &ctx.Response.Header
	setCommonHeaders(h)
	h.Set("Cache-Control", errCacheControl)
	h.SetContentType("text/plain; charset=utf-8")
	ctx.SetStatusCode(status)
	ctx.SetBodyString(errorBody(status))
	s.metrics.observeRequest(counted, "")
}

// fasthttpLogger routes fasthttp's own messages (bad requests, broken connections) to slog.
type fasthttpLogger struct{ l *slog.Logger }

func (f fasthttpLogger) Printf(format string, args ...any) {
	f.l.Debug("http server", "msg", fmt.Sprintf(format, args...))
}
