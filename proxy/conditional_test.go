package proxy

import (
	"testing"
	"time"

	"github.com/fedicache/fedicache/origin"
)

func TestNotModified(t *testing.T) {
	mod := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	m := origin.Meta{ETag: `"abc"`, LastModified: mod.Add(300 * time.Millisecond)}
	tests := []struct {
		inm, ims string
		want     bool
	}{
		{"", "", false},
		{`"abc"`, "", true},
		{`W/"abc"`, "", true}, // weak comparison
		{`"x", "abc"`, "", true},
		{`"x",W/"abc"`, "", true},
		{`*`, "", true},
		{`"x"`, "", false},
		{`"abcd"`, "", false},
		{`"x"`, "Wed, 01 May 2024 12:00:00 GMT", false}, // If-None-Match decides when present
		{"", "Wed, 01 May 2024 12:00:00 GMT", true},
		{"", "Wed, 01 May 2024 13:00:00 GMT", true},
		{"", "Wed, 01 May 2024 11:59:59 GMT", false},
		{"", "not a date", false},
	}
	for _, tt := range tests {
		r := testRequest("GET", "If-None-Match", tt.inm, "If-Modified-Since", tt.ims)
		if got := notModified(&r, m); got != tt.want {
			t.Errorf("notModified(%q, %q) = %v, want %v", tt.inm, tt.ims, got, tt.want)
		}
	}
	if r := testRequest("GET", "If-None-Match", `"abc"`); notModified(&r, origin.Meta{}) {
		t.Error("an object without ETag matched If-None-Match")
	}
}

func TestIfRange(t *testing.T) {
	mod := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	m := origin.Meta{ETag: `"abc"`, LastModified: mod}
	tests := []struct {
		ifRange string
		want    bool
	}{
		{"", true},
		{`"abc"`, true},
		{`W/"abc"`, false}, // strong comparison: a weak tag never matches
		{`"x"`, false},
		{"Wed, 01 May 2024 12:00:00 GMT", true},
		{"Wed, 01 May 2024 12:00:01 GMT", false},
		{"garbage", false},
	}
	for _, tt := range tests {
		r := testRequest("GET", "Range", "bytes=0-9", "If-Range", tt.ifRange)
		if got := ifRangeMatches(&r, m); got != tt.want {
			t.Errorf("ifRangeMatches(%q) = %v, want %v", tt.ifRange, got, tt.want)
		}
	}
	if r := testRequest("GET", "Range", "bytes=0-9", "If-Range", `"abc"`); ifRangeMatches(&r, origin.Meta{ETag: `W/"abc"`, LastModified: mod}) {
		t.Error("If-Range matched a weak current ETag")
	}
}
