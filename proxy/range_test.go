package proxy

import (
	"testing"

	"github.com/fedicache/fedicache/origin"
)

func TestParseRange(t *testing.T) {
	r := func(s, e int64) *origin.Range { return &origin.Range{Start: s, End: e} }
	suffix := func(n int64) *origin.Range { x := origin.Suffix(n); return &x }
	tests := []struct {
		in   string
		want *origin.Range
	}{
		{"", nil},
		{"bytes=0-99", r(0, 99)},
		{"bytes=100-", r(100, -1)},
		{"bytes=-500", suffix(500)},
		{" bytes= 5 - 9 ", r(5, 9)},
		{"bytes=0-0", r(0, 0)},
		{"bytes=-0", r(maxInt64, -1)},
		{"bytes=0-99,200-299", nil}, // several ranges: whole object
		{"bytes=9-5", nil},          // invalid: ignored
		{"bytes=a-b", nil},
		{"bytes=-", nil},
		{"bytes=5", nil},
		{"bytes=+5-9", nil},
		{"bytes=99999999999999999999-", nil},
		{"items=0-9", nil},
		{"Bytes=0-9", nil},
	}
	for _, tt := range tests {
		got, ok := parseRange(tt.in)
		if ok != (tt.want != nil) || ok && got != *tt.want {
			t.Errorf("parseRange(%q) = %v, %v; want %v", tt.in, got, ok, tt.want)
		}
	}
}

func TestRangeResolve(t *testing.T) {
	tests := []struct {
		r           origin.Range
		size        int64
		first, last int64
		ok          bool
	}{
		{origin.Range{Start: 0, End: 99}, 1000, 0, 99, true},
		{origin.Range{Start: 900, End: -1}, 1000, 900, 999, true},
		{origin.Range{Start: 900, End: 5000}, 1000, 900, 999, true},
		{origin.Suffix(100), 1000, 900, 999, true},
		{origin.Suffix(5000), 1000, 0, 999, true},
		{origin.Range{Start: 1000, End: -1}, 1000, 0, 0, false},
		{origin.Range{Start: maxInt64, End: -1}, 1000, 0, 0, false},
		{origin.Suffix(1), 0, 0, 0, false},
		{origin.Range{Start: 0, End: 0}, 0, 0, 0, false},
	}
	for _, tt := range tests {
		first, last, ok := tt.r.Resolve(tt.size)
		if first != tt.first || last != tt.last || ok != tt.ok {
			t.Errorf("%v.Resolve(%d) = %d, %d, %v; want %d, %d, %v", tt.r, tt.size, first, last, ok, tt.first, tt.last, tt.ok)
		}
	}
}
