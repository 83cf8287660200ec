package proxy

import (
	"net/http"
	"strings"
	"time"

	"github.com/fedicache/fedicache/origin"
)

// notModified reports whether the request's validators say the client's copy is current
// (RFC 9110 section 13.2.2): If-None-Match, with weak comparison, decides when present;
// If-Modified-Since only when it is absent.
func notModified(ifNoneMatch, ifModifiedSince string, m origin.Meta) bool {
	if ifNoneMatch != "" {
		return etagListMatches(ifNoneMatch, m.ETag, false)
	}
	if ifModifiedSince != "" && !m.LastModified.IsZero() {
		t, err := http.ParseTime(ifModifiedSince)
		return err == nil && !m.LastModified.Truncate(time.Second).After(t)
	}
	return false
}

// ifRangeMatches reports whether an If-Range value still names the object's current version,
// so that the Range applies: an entity tag must match strongly, a date must equal Last-Modified.
// An empty value matches.
func ifRangeMatches(ifRange string, m origin.Meta) bool {
	ifRange = strings.TrimSpace(ifRange)
	if ifRange == "" {
		return true
	}
	if strings.HasPrefix(ifRange, `"`) || strings.HasPrefix(ifRange, "W/") {
		return etagListMatches(ifRange, m.ETag, true) && !strings.HasPrefix(ifRange, "W/")
	}
	t, err := http.ParseTime(ifRange)
	return err == nil && !m.LastModified.IsZero() && m.LastModified.Truncate(time.Second).Equal(t)
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
