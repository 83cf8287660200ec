package volume

import (
	"strings"
	"testing"
)

// TestCompareEntries: entries sort as the keys beneath them do, a directory d's as "d/".
func TestCompareEntries(t *testing.T) {
	names := []string{"a", "a-b", "a.b", "a0", "a~", "ab", "b", "Z", "~", "é", "e", "original", "small", "000", "001", "0010", "001-"}
	for _, an := range names {
		for _, bn := range names {
			for _, ad := range []bool{false, true} {
				for _, bd := range []bool{false, true} {
					if an == bn {
						continue
					}
					a := walkEntry{key: "dir/" + an, base: 4, dir: ad}
					b := walkEntry{key: "dir/" + bn, base: 4, dir: bd}
					want := strings.Compare(order(an, ad), order(bn, bd))
					if got := compareEntries(a, b); got != want {
						t.Errorf("compareEntries(%q dir %t, %q dir %t) = %d, want %d", an, ad, bn, bd, got, want)
					}
				}
			}
		}
	}
}

// order is what an entry sorts by: its name, with a slash after a directory's.
func order(name string, dir bool) string {
	if dir {
		return name + "/"
	}
	return name
}
