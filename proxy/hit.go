package proxy

import (
	"context"
	"io"
	"unsafe"

	"github.com/fedicache/fedicache/cache"
	"github.com/fedicache/fedicache/origin"
	"github.com/valyala/fasthttp"
)

// Cache is what the front asks of the cache, handed to New: a fresh memory hit without
// allocating, else the object's metadata or bytes with where they came from. The front asks it
// at most once per request in the ordinary cases (see Server.fetch).
type Cache interface {
	// Peek returns a fresh memory hit the guard allows; false sends the request on.
	Peek(key string) (cache.Hit, bool)
	// StatFrom and GetFrom answer as origin.Sourced does. A range GetFrom refuses with
	// origin.ErrRangeNotSatisfiable comes with the object's Meta when the store says it, so
	// that the 416 names the size without another call (an empty Meta costs a StatFrom).
	StatFrom(ctx context.Context, key string) (origin.Meta, origin.From, error)
	GetFrom(ctx context.Context, key string, r *origin.Range) (io.ReadCloser, origin.Meta, origin.From, error)
}

var _ Cache = (*cache.Layered)(nil)

// serveMemoryHit answers r from a fresh memory hit and reports true, or reports false and
// leaves it to the general path. It allocates nothing for a 200, 206 or 304: the key and the
// headers were read in place, and the cached body goes to fasthttp as it is.
func (s *Server) serveMemoryHit(ctx *fasthttp.RequestCtx, r *request) bool {
	hit, ok := s.cache.Peek(b2s(r.key))
	if !ok {
		return false
	}
	m := &hit.Entry.Meta
	a := decide(r, *m)
	h := &ctx.Response.Header
	switch a.status {
	case fasthttp.StatusNotModified:
		s.setHitHeaders(h, m, hit.LastModified)
		ctx.SetStatusCode(fasthttp.StatusNotModified)
		s.metrics.hit304.Inc()
		return true
	case fasthttp.StatusRequestedRangeNotSatisfiable:
		s.rangeNotSatisfiable(ctx, a)
		return true
	case fasthttp.StatusPartialContent:
		var crb [64]byte
		h.SetBytesV("Content-Range", a.appendContentRange(crb[:0]))
	}
	body := hit.Body[a.first : a.last+1]
	s.setHitHeaders(h, m, hit.LastModified)
	h.SetContentType(m.ContentType)
	ctx.SetStatusCode(a.status)
	ctx.Response.SetBodyRaw(body)
	if r.head {
		// fasthttp drops the body of a HEAD answer, and with an empty one its length: say it.
		h.SetContentLength(len(body))
	}
	if a.status == fasthttp.StatusOK {
		s.metrics.hit200.Inc()
	} else {
		s.metrics.hit206.Inc()
	}
	if a.body {
		s.metrics.addHitBytes(cache.SourceMemory, int64(len(body)))
	}
	return true
}

var fromMemory = origin.From{Source: cache.SourceMemory}

// setHitHeaders sets the object headers of a memory hit.
func (s *Server) setHitHeaders(h *fasthttp.ResponseHeader, m *origin.Meta, lastModified string) {
	s.setObjectHeaders(h, m, fromMemory, lastModified)
}

// b2s views b as a string without copying; the string must not outlive b's contents.
func b2s(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }
