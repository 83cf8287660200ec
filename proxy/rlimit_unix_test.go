//go:build unix

package proxy_test

import (
	"syscall"
	"testing"
)

// raiseFDLimit makes room for n connections held from both ends (two descriptors each, plus
// some to spare), raising the process's limit on open files when it is lower, for the test's
// duration. When the limit cannot be raised enough it returns a smaller n that fits, and says so.
func raiseFDLimit(t *testing.T, n int) int {
	t.Helper()
	need := uint64(2*n + 1024)
	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &old); err != nil {
		t.Logf("cannot read the open-file limit (%v): keeping %d connections", err, n)
		return n
	}
	if old.Cur >= need {
		return n
	}
	lim := syscall.Rlimit{Cur: need, Max: max(old.Max, need)}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		lim = syscall.Rlimit{Cur: old.Max, Max: old.Max}
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			lim = old
		}
	}
	t.Cleanup(func() { _ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &old) })
	if lim.Cur < need {
		fit := int(lim.Cur/2) - 512
		t.Logf("the open-file limit is %d and cannot be raised to %d: %d connections instead of %d", lim.Cur, need, fit, n)
		return fit
	}
	return n
}
