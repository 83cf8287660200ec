package s3

import (
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/fedicache/fedicache/origin"
)

// newMeta builds the Meta of key from the headers the bucket sent: size is the whole object's.
func newMeta(key string, size int64, contentType, etag *string, lastModified *time.Time) origin.Meta {
	m := origin.Meta{
		Size:        size,
		ContentType: deref(contentType),
		ETag:        quoteETag(deref(etag)),
	}
	if generic(m.ContentType) {
		m.ContentType = origin.ContentType(key)
	}
	if lastModified != nil {
		m.LastModified = *lastModified
	}
	return m
}

// generic reports whether a content type says nothing about the object: none at all or the
// defaults that S3 and upload tools store when the uploader gave none.
func generic(contentType string) bool {
	switch strings.ToLower(contentType) {
	case "", "binary/octet-stream", "application/octet-stream":
		return true
	}
	return false
}

// quoteETag returns etag as an HTTP entity tag, adding the quotes a few services leave out.
func quoteETag(etag string) string {
	if etag == "" || strings.HasPrefix(etag, `"`) || strings.HasPrefix(etag, `W/"`) {
		return etag
	}
	return `"` + etag + `"`
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

var errContentRange = errors.New("malformed Content-Range")

// parseContentRange parses a Content-Range header of a partial answer, "bytes first-last/total",
// and requires a known total (S3 always sends it).
func parseContentRange(s string) (first, last, total int64, err error) {
	rest, ok := strings.CutPrefix(s, "bytes ")
	if !ok {
		return 0, 0, 0, errContentRange
	}
	span, size, ok := strings.Cut(strings.TrimSpace(rest), "/")
	if !ok {
		return 0, 0, 0, errContentRange
	}
	a, b, ok := strings.Cut(span, "-")
	if !ok {
		return 0, 0, 0, errContentRange
	}
	first, err1 := strconv.ParseInt(a, 10, 64)
	last, err2 := strconv.ParseInt(b, 10, 64)
	total, err3 := strconv.ParseInt(size, 10, 64)
	if err1 != nil || err2 != nil || err3 != nil || first < 0 || last < first || total <= last {
		return 0, 0, 0, errContentRange
	}
	return first, last, total, nil
}
