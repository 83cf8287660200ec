package origin

import "strconv"

// Range asks for part of an object, as one HTTP byte range does.
//
//   - Start >= 0: bytes Start through End inclusive; End -1 means to the end of the object.
//   - Start < 0: a suffix, the last -Start bytes of the object (HTTP's "bytes=-n"); End is ignored.
type Range struct{ Start, End int64 }

// Suffix returns the range of the last n bytes.
func Suffix(n int64) Range { return Range{Start: -n, End: -1} }

// String returns the range in the form of an HTTP Range header value, e.g. "bytes=0-99".
func (r Range) String() string {
	switch {
	case r.Start < 0:
		return "bytes=-" + strconv.FormatInt(-r.Start, 10)
	case r.End < 0:
		return "bytes=" + strconv.FormatInt(r.Start, 10) + "-"
	default:
		return "bytes=" + strconv.FormatInt(r.Start, 10) + "-" + strconv.FormatInt(r.End, 10)
	}
}

// Resolve returns the first and last byte (inclusive) that r selects in an object of size bytes,
// and false when r selects nothing (the range is not satisfiable).
func (r Range) Resolve(size int64) (first, last int64, ok bool) {
	if r.Start < 0 {
		n := -r.Start
		if size == 0 {
			return 0, 0, false
		}
		if n > size {
			n = size
		}
		return size - n, size - 1, true
	}
	if r.Start >= size {
		return 0, 0, false
	}
	last = r.End
	if last < 0 || last >= size {
		last = size - 1
	}
	if last < r.Start {
		return 0, 0, false
	}
	return r.Start, last, true
}
