package origin_test

import (
	"testing"

	"github.com/fedicache/fedicache/origin"
)

func TestRangeResolve(t *testing.T) {
	for _, tc := range []struct {
		r           origin.Range
		size        int64
		first, last int64
		ok          bool
	}{
		{origin.Range{Start: 0, End: 0}, 10, 0, 0, true},
		{origin.Range{Start: 0, End: 9}, 10, 0, 9, true},
		{origin.Range{Start: 0, End: -1}, 10, 0, 9, true},
		{origin.Range{Start: 3, End: 5}, 10, 3, 5, true},
		{origin.Range{Start: 3, End: -1}, 10, 3, 9, true},
		{origin.Range{Start: 9, End: -1}, 10, 9, 9, true},
		{origin.Range{Start: 9, End: 9}, 10, 9, 9, true},
		{origin.Range{Start: 5, End: 1000}, 10, 5, 9, true}, // End past the end: clamped
		{origin.Range{Start: 10, End: -1}, 10, 0, 0, false}, // Start at the end
		{origin.Range{Start: 11, End: 20}, 10, 0, 0, false}, // Start past the end
		{origin.Range{Start: 5, End: 3}, 10, 0, 0, false},   // End before Start
		{origin.Range{Start: 0, End: -1}, 0, 0, 0, false},   // an empty object has no bytes
		{origin.Range{Start: 0, End: 0}, 0, 0, 0, false},
		{origin.Suffix(3), 10, 7, 9, true},
		{origin.Suffix(1), 10, 9, 9, true},
		{origin.Suffix(10), 10, 0, 9, true},
		{origin.Suffix(500), 10, 0, 9, true}, // longer than the object: all of it
		{origin.Suffix(3), 0, 0, 0, false},
		{origin.Range{Start: -3, End: 1}, 10, 7, 9, true}, // a suffix ignores End
		{origin.Range{Start: 1 << 40, End: -1}, 1<<40 + 1, 1 << 40, 1 << 40, true},
	} {
		first, last, ok := tc.r.Resolve(tc.size)
		if first != tc.first || last != tc.last || ok != tc.ok {
			t.Errorf("%+v.Resolve(%d) = %d, %d, %v; want %d, %d, %v",
				tc.r, tc.size, first, last, ok, tc.first, tc.last, tc.ok)
		}
	}
}

func TestRangeString(t *testing.T) {
	for _, tc := range []struct {
		r    origin.Range
		want string
	}{
		{origin.Range{Start: 0, End: 0}, "bytes=0-0"},
		{origin.Range{Start: 0, End: 99}, "bytes=0-99"},
		{origin.Range{Start: 100, End: -1}, "bytes=100-"},
		{origin.Range{Start: 0, End: -1}, "bytes=0-"},
		{origin.Suffix(500), "bytes=-500"},
		{origin.Range{Start: -3, End: 7}, "bytes=-3"},
		{origin.Range{Start: 1 << 40, End: 1<<40 + 9}, "bytes=1099511627776-1099511627785"},
	} {
		if got := tc.r.String(); got != tc.want {
			t.Errorf("%+v.String() = %q, want %q", tc.r, got, tc.want)
		}
	}
}

func TestSuffix(t *testing.T) {
	if got, want := origin.Suffix(42), (origin.Range{Start: -42, End: -1}); got != want {
		t.Errorf("Suffix(42) = %+v, want %+v", got, want)
	}
}
