package proxy

import (
	"context"
	"io"
	"strconv"
	"sync"
	"unsafe"

	"github.com/fedicache/fedicache/cache"
	"github.com/fedicache/fedicache/origin"
	"github.com/valyala/fasthttp"
)

// Cache is what the front asks of the cache, handed to New: a fresh memory hit without
// allocating, else the object's metadata or bytes with where they came from.
type Cache interface {
	// Peek returns a fresh memory hit the guard allows; false sends the request on.
	Peek(key string) (cache.Hit, bool)
	// Stat, StatFrom and GetFrom answer as origin.Sourced does.
	Stat(ctx context.Context, key string) (origin.Meta, error)
	StatFrom(ctx context.Context, key string) (origin.Meta, origin.From, error)
	GetFrom(ctx context.Context, key string, r *origin.Range) (io.ReadCloser, origin.Meta, origin.From, error)
}

var _ Cache = (*cache.Layered)(nil)

// keyBufs holds the buffers keys are decoded into on the hot path.
var keyBufs = sync.Pool{New: func() any { b := make([]byte, 0, 2*MaxKeyBytes); return &b }}

// serveMemoryHit answers the request from a fresh memory hit and reports true, or reports
// false and leaves the request to the general path (which maps the key again and answers any
// error). It allocates nothing of its own: it reads the request's bytes in place and hands the
// cached body to fasthttp as it is.
func (s *Server) serveMemoryHit(ctx *fasthttp.RequestCtx) bool {
	bp := keyBufs.Get().(*[]byte)
	defer keyBufs.Put(bp)
	k, err := s.keys.appendKey((*bp)[:0], ctx.Request.Header.RequestURI())
	if err != nil {
		return false
	}
	hit, ok := s.cache.Peek(b2s(k))
	if !ok {
		return false
	}
	m := &hit.Entry.Meta
	req := &ctx.Request.Header
	h := &ctx.Response.Header
	if inm, ims := req.Peek("If-None-Match"), req.Peek("If-Modified-Since"); len(inm) > 0 || len(ims) > 0 {
		if len(inm) == 0 && b2s(ims) == hit.LastModified || notModified(b2s(inm), b2s(ims), *m) {
			s.setHitHeaders(h, m, hit.LastModified)
			ctx.SetStatusCode(fasthttp.StatusNotModified)
			s.metrics.hit304.Inc()
			return true
		}
	}
	body, status := hit.Body, fasthttp.StatusOK
	if r, ok := parseRange(b2s(req.Peek("Range"))); ok && ifRangeMatches(b2s(req.Peek("If-Range")), *m) {
		first, last, ok := r.Resolve(m.Size)
		if !ok {
			return false // the general path answers 416
		}
		var crb [64]byte
		h.SetBytesV("Content-Range", appendContentRange(crb[:0], first, last, m.Size))
		body, status = body[first:last+1], fasthttp.StatusPartialContent
	}
	s.setHitHeaders(h, m, hit.LastModified)
	h.SetContentType(m.ContentType)
	ctx.SetStatusCode(status)
	ctx.Response.SetBodyRaw(body)
	if ctx.IsHead() {
		// fasthttp drops the body of a HEAD answer, and with an empty one its length: say it.
		h.SetContentLength(len(body))
	}
	if status == fasthttp.StatusOK {
		s.metrics.hit200.Inc()
	} else {
		s.metrics.hit206.Inc()
	}
	if !ctx.IsHead() {
		s.metrics.addHitBytes(cache.SourceMemory, int64(len(body)))
	}
	return true
}

var fromMemory = origin.From{Source: cache.SourceMemory}

// setHitHeaders sets the object headers of a memory hit.
func (s *Server) setHitHeaders(h *fasthttp.ResponseHeader, m *origin.Meta, lastModified string) {
	s.setObjectHeaders(h, m, fromMemory, lastModified)
}

// appendContentRange appends a Content-Range value for bytes first-last of size.
func appendContentRange(dst []byte, first, last, size int64) []byte {
	dst = append(dst, "bytes "...)
	dst = strconv.AppendInt(dst, first, 10)
	dst = append(dst, '-')
	dst = strconv.AppendInt(dst, last, 10)
	dst = append(dst, '/')
	return strconv.AppendInt(dst, size, 10)
}

// b2s views b as a string without copying; the string must not outlive b's contents.
func b2s(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }
