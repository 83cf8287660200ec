package proxy

import (
	"strings"
	"time"

	"github.com/fedicache/fedicache/origin"
)

// notModified reports whether the request's validators say the client's copy is current
// (RFC 9110 section 13.2.2): If-None-Match, with weak comparison, decides when present;
// If-Modified-Since only when it is absent.
func notModified(r *request, m origin.Meta) bool {
	if r.ifNoneMatch != "" {
		return etagListMatches(r.ifNoneMatch, m.ETag, false)
	}
	if !r.ifModifiedSince.IsZero() && !m.LastModified.IsZero() {
		return !m.LastModified.Truncate(time.Second).After(r.ifModifiedSince)
	}
	return false
}

// ifRangeMatches reports whether the request's If-Range still names the object's current
// version, so that its Range applies: an entity tag must match strongly, a date must equal
// Last-Modified. A request without If-Range matches.
func ifRangeMatches(r *request, m origin.Meta) bool {
	switch {
	case !r.ifRange:
		return true
	case r.ifRangeETag != "":
		return etagListMatches(r.ifRangeETag, m.ETag, true) && !strings.HasPrefix(r.ifRangeETag, "W/")
	}
	return !r.ifRangeDate.IsZero() && !m.LastModified.IsZero() && m.LastModified.Truncate(time.Second).Equal(r.ifRangeDate)
}

// etagListMatches reports whether a comma-separated list of entity tags (or "*") holds etag.
// Weak comparison ignores the W/ prefix on both sides; strong comparison never matches a weak tag.
func etagListMatches(list, etag string, strong bool) bool {
	if etag == "" {
		return false
	}
	if strings.TrimSpace(list) == "*" {
		return true
	}
	if strong && strings.HasPrefix(etag, "W/") {
		return false
	}
	want := strings.TrimPrefix(etag, "W/")
	for tag := range strings.SplitSeq(list, ",") {
		tag = strings.TrimSpace(tag)
		if strong && strings.HasPrefix(tag, "W/") {
			continue
		}
		if strings.TrimPrefix(tag, "W/") == want {
			return true
		}
	}
	return false
}
