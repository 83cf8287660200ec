package proxy

import (
	"bytes"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/fedicache/fedicache/origin"
	"github.com/valyala/fasthttp"
)

// request is a GET or HEAD as the front reads it, once, in readRequest: the memory-hit path and
// the general path both answer from it. Its strings and key view the request's own bytes and a
// pooled buffer: they are valid until the handler returns and release is called, never after.
type request struct {
	head bool

	// key is the object key, mapped once: a view of the request target, or decoded into buf
	// when the target has percent escapes; keyErr says why there is none (answered with
	// statusFor). The general path makes a string of it only when it needs one.
	key    []byte
	keyErr error
	buf    *[]byte

	// rng is the Range asked for, when hasRange: absent, malformed and multi-range values
	// leave hasRange false (the whole object is served).
	rng      origin.Range
	hasRange bool

	// ifNoneMatch is the If-None-Match list as sent ("" when absent).
	ifNoneMatch string
	// ifModifiedSince is If-Modified-Since; zero when absent, malformed, or overruled by
	// If-None-Match (RFC 9110 section 13.1.3).
	ifModifiedSince time.Time

	// ifRange says whether If-Range was sent with a Range; ifRangeETag is its entity tag when
	// the value is one, ifRangeDate its date when it is one. Set with neither, it matches no
	// version.
	ifRange     bool
	ifRangeETag string
	ifRangeDate time.Time
}

// keyBufs holds the buffers keys with percent escapes are decoded into.
var keyBufs = sync.Pool{New: func() any { b := make([]byte, 0, 2*MaxKeyBytes); return &b }}

// The request headers readRequest reads, in canonical form: the server normalises the names
// of the headers it parses (DisableHeaderNamesNormalizing is false), so they are found without
// normalising a name on every request.
var (
	hdrRange           = []byte("Range")
	hdrIfNoneMatch     = []byte("If-None-Match")
	hdrIfModifiedSince = []byte("If-Modified-Since")
	hdrIfRange         = []byte("If-Range")
)

// readRequest reads ctx's request into r: the method, the key and the headers that decide the
// answer. It allocates nothing for a well-formed request (only a date in an obsolete format, or
// a malformed one, costs its parser an allocation). A key with nothing to decode, the usual
// case, is a view of the request's own target; one with percent escapes is decoded into a
// pooled buffer. The caller calls r.release once the answer is set.
func (s *Server) readRequest(ctx *fasthttp.RequestCtx, r *request) {
	h := &ctx.Request.Header
	r.head = ctx.IsHead()
	path, err := s.keys.path(h.RequestURI())
	switch {
	case err != nil:
		r.keyErr = err
	case bytes.IndexByte(path, '%') < 0:
		if r.keyErr = s.keys.check(path); r.keyErr == nil {
			r.key = path
		}
	default:
		r.buf = keyBufs.Get().(*[]byte)
		r.key, r.keyErr = s.keys.decode((*r.buf)[:0], path)
	}
	rng, inm := h.PeekCanonical(hdrRange), h.PeekCanonical(hdrIfNoneMatch)
	var ims, ifRange []byte
	if len(inm) == 0 { // else If-None-Match decides
		ims = h.PeekCanonical(hdrIfModifiedSince)
	}
	if len(rng) > 0 { // If-Range matters only to a Range
		ifRange = h.PeekCanonical(hdrIfRange)
	}
	r.readHeaders(b2s(rng), b2s(inm), b2s(ims), b2s(ifRange))
}

// readHeaders parses the header values that decide the answer, each "" when absent.
func (r *request) readHeaders(rng, ifNoneMatch, ifModifiedSince, ifRange string) {
	r.rng, r.hasRange = parseRange(rng)
	r.ifNoneMatch = ifNoneMatch
	if ifNoneMatch == "" && ifModifiedSince != "" {
		if t, err := http.ParseTime(ifModifiedSince); err == nil {
			r.ifModifiedSince = t
		}
	}
	if ifRange = strings.TrimSpace(ifRange); r.hasRange && ifRange != "" {
		r.ifRange = true
		if strings.HasPrefix(ifRange, `"`) || strings.HasPrefix(ifRange, "W/") {
			r.ifRangeETag = ifRange
		} else if t, err := http.ParseTime(ifRange); err == nil {
			r.ifRangeDate = t
		}
	}
}

// conditional reports whether the request carries a validator that may answer 304.
func (r *request) conditional() bool {
	return r.ifNoneMatch != "" || !r.ifModifiedSince.IsZero()
}

// release returns the key's buffer, if it took one, to its pool; r.key is invalid afterwards.
func (r *request) release() {
	if r.buf != nil {
		keyBufs.Put(r.buf)
		r.buf = nil
	}
	r.key = nil
}
