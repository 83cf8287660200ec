package proxy

import (
	"net/http"
	"strconv"

	"github.com/fedicache/fedicache/origin"
)

// answer is what the front sends for a request about an object: its status, the bytes of the
// object that go out, and what Content-Range says.
type answer struct {
	// status is 200, 206, 304 or 416.
	status int
	// first and last (inclusive) are the bytes of the object the answer carries: all of them
	// for 200 (last is -1 for an empty object), the range for 206, none (last < first) for 304
	// and 416.
	first, last int64
	// size is the whole object's length, which Content-Range names for 206 and 416.
	size int64
	// body is false when no bytes follow the headers: a HEAD, a 304, a 416.
	body bool
}

// decide answers r about the object m describes, as RFC 9110 says: If-None-Match (or, without
// it, If-Modified-Since) that holds the current version answers 304; a Range applies when
// If-Range is absent or still names the current version, and selects bytes (206) or none
// (416); anything else is the whole object (200). A HEAD is answered as its GET, without the
// body. decide does no I/O: the memory-hit path and the general path both ask it.
func decide(r *request, m origin.Meta) answer {
	if notModified(r, m) {
		return answer{status: http.StatusNotModified, last: -1, size: m.Size}
	}
	if r.hasRange && ifRangeMatches(r, m) {
		first, last, ok := r.rng.Resolve(m.Size)
		if !ok {
			return answer{status: http.StatusRequestedRangeNotSatisfiable, last: -1, size: m.Size}
		}
		return answer{status: http.StatusPartialContent, first: first, last: last, size: m.Size, body: !r.head}
	}
	return whole(m, r.head)
}

// whole is the 200 answer carrying all of m's object (its headers only for a HEAD).
func whole(m origin.Meta, head bool) answer {
	return answer{status: http.StatusOK, last: m.Size - 1, size: m.Size, body: !head}
}

// held is the answer for a body a store returned for asked (nil: the whole object) with meta m:
// the bytes asked.Resolve names, which the Origin contract says it holds. A range that does
// not fit the size the store reported answers 416.
func held(asked *origin.Range, m origin.Meta) answer {
	if asked == nil {
		return whole(m, false)
	}
	first, last, ok := asked.Resolve(m.Size)
	if !ok {
		return answer{status: http.StatusRequestedRangeNotSatisfiable, last: -1, size: m.Size}
	}
	return answer{status: http.StatusPartialContent, first: first, last: last, size: m.Size, body: true}
}

// length is the number of bytes the answer carries (Content-Length of a 200 or 206).
func (a answer) length() int64 { return max(a.last-a.first+1, 0) }

// appendContentRange appends a's Content-Range value to dst: "bytes first-last/size" for a
// 206, "bytes */size" for a 416, nothing for other statuses.
func (a answer) appendContentRange(dst []byte) []byte {
	switch a.status {
	case http.StatusPartialContent:
		return appendContentRange(dst, a.first, a.last, a.size)
	case http.StatusRequestedRangeNotSatisfiable:
		dst = append(dst, "bytes */"...)
		return strconv.AppendInt(dst, a.size, 10)
	}
	return dst
}
