package s3

import "testing"

func TestParseContentRange(t *testing.T) {
	for _, tc := range []struct {
		in                 string
		first, last, total int64
		ok                 bool
	}{
		{"bytes 0-99/40000", 0, 99, 40000, true},
		{"bytes 39999-39999/40000", 39999, 39999, 40000, true},
		{"bytes 0-0/1", 0, 0, 1, true},
		{"bytes 0-99/*", 0, 0, 0, false},
		{"bytes */40000", 0, 0, 0, false},
		{"bytes 10-5/40000", 0, 0, 0, false},
		{"bytes 0-99/99", 0, 0, 0, false},
		{"bytes -1-99/100", 0, 0, 0, false},
		{"items 0-99/100", 0, 0, 0, false},
		{"bytes 0-99", 0, 0, 0, false},
		{"", 0, 0, 0, false},
	} {
		first, last, total, err := parseContentRange(tc.in)
		if ok := err == nil; ok != tc.ok || first != tc.first || last != tc.last || total != tc.total {
			t.Errorf("parseContentRange(%q) = %d, %d, %d, %v; want %d, %d, %d, ok %v",
				tc.in, first, last, total, err, tc.first, tc.last, tc.total, tc.ok)
		}
	}
}

func TestQuoteETag(t *testing.T) {
	for in, want := range map[string]string{
		`"abc"`:   `"abc"`,
		`W/"abc"`: `W/"abc"`,
		`abc`:     `"abc"`,
		``:        ``,
	} {
		if got := quoteETag(in); got != want {
			t.Errorf("quoteETag(%q) = %q, want %q", in, got, want)
		}
	}
}
