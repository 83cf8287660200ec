package origin_test

import (
	"testing"

	"github.com/fedicache/fedicache/origin"
)

func TestETagMD5(t *testing.T) {
	for _, tc := range []struct {
		etag, want string
		ok         bool
	}{
		{`"5d41402abc4b2a76b9719d911017c592"`, "5d41402abc4b2a76b9719d911017c592", true},
		{`"5D41402ABC4B2A76B9719D911017C592"`, "5d41402abc4b2a76b9719d911017c592", true},
		{`W/"5d41402abc4b2a76b9719d911017c592"`, "", false},
		{`"5d41402abc4b2a76b9719d911017c592-3"`, "", false}, // multipart
		{`"6b05edca-2421"`, "", false},                      // a volume's
		{`"zz41402abc4b2a76b9719d911017c592"`, "", false},
		{``, "", false},
	} {
		got, ok := origin.ETagMD5(tc.etag)
		if got != tc.want || ok != tc.ok {
			t.Errorf("ETagMD5(%s) = %q, %v; want %q, %v", tc.etag, got, ok, tc.want, tc.ok)
		}
	}
}
