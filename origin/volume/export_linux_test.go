//go:build linux

package volume

import (
	"testing"

	"golang.org/x/sys/unix"
)

// SetOpenat2 makes f stand in for the openat2 system call until the test ends.
func SetOpenat2(tb testing.TB, f func(dirfd int, path string, how *unix.OpenHow) (int, error)) {
	prev := openat2
	openat2 = f
	tb.Cleanup(func() { openat2 = prev })
}
