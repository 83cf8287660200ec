package origintest

import (
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

// Leak margins: what a test may leave above its baseline without failing. Process-wide
// goroutines and descriptors started once on first use (the signal watcher, the network
// poller's descriptors, a library's clock) would otherwise fail whichever test came first.
const (
	GoroutineMargin = 4
	FDMargin        = 4
)

// settleTime bounds how long Resources.Settled waits for goroutines and descriptors to go.
const settleTime = 15 * time.Second

// Resources is a count of the process's goroutines and open file descriptors.
type Resources struct {
	Goroutines int
	// FDs is the number of open file descriptors, -1 where it cannot be counted (only Linux
	// exposes them in /proc/self/fd).
	FDs int
}

// CountResources counts the goroutines and open file descriptors now.
func CountResources() Resources {
	return Resources{Goroutines: runtime.NumGoroutine(), FDs: countFDs()}
}

// CheckLeaks records the goroutines and file descriptors at the start of a test and, once the
// test and every cleanup registered after this call have run, fails it unless they came back
// to within GoroutineMargin and FDMargin of that start, waiting a bounded time for them to
// end. Call it first in a test, before anything it must see closed.
func CheckLeaks(t testing.TB) {
	t.Helper()
	base := CountResources()
	t.Cleanup(func() { base.Settled(t, "at the end of the test") })
}

// Settled waits until the process's goroutines and descriptors are back to within the margins
// of r, and fails t, listing what still runs or is open, when they are not within a bounded
// time. when says at which point of the test the check runs, for the message.
func (r Resources) Settled(t testing.TB, when string) {
	t.Helper()
	r.settled(t, when, true)
}

// FDsSettled is Settled for the file descriptors alone, for a check while a server runs that
// keeps idle worker goroutines pooled for a while after their connections end.
func (r Resources) FDsSettled(t testing.TB, when string) {
	t.Helper()
	r.settled(t, when, false)
}

func (r Resources) settled(t testing.TB, when string, goroutines bool) {
	t.Helper()
	deadline := time.Now().Add(settleTime)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		now := CountResources()
		goOK := !goroutines || now.Goroutines <= r.Goroutines+GoroutineMargin
		fdOK := r.FDs < 0 || now.FDs <= r.FDs+FDMargin
		if goOK && fdOK {
			return
		}
		if time.Now().After(deadline) {
			if !goOK {
				t.Errorf("goroutine leak %s: %d goroutines, %d at the start (margin %d); still running:\n%s",
					when, now.Goroutines, r.Goroutines, GoroutineMargin, goroutineSummary())
			}
			if !fdOK {
				t.Errorf("file descriptor leak %s: %d open, %d at the start (margin %d); open now:\n%s",
					when, now.FDs, r.FDs, FDMargin, fdSummary())
			}
			return
		}
		runtime.GC() // lets finalizers close what only they still hold
		<-tick.C
	}
}

// countFDs returns the number of open file descriptors, -1 when they cannot be listed.
func countFDs() int {
	if runtime.GOOS != "linux" {
		return -1
	}
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return -1
	}
	return len(ents)
}

// goroutineSummary groups the running goroutines by the function that created them.
func goroutineSummary() string {
	buf := make([]byte, 4<<20)
	buf = buf[:runtime.Stack(buf, true)]
	counts := map[string]int{}
	for g := range strings.SplitSeq(string(buf), "\n\n") {
		lines := strings.Split(strings.TrimSpace(g), "\n")
		if len(lines) < 2 {
			continue
		}
		where := lines[1] // the innermost function
		for i, l := range lines {
			if strings.HasPrefix(l, "created by ") && i+1 < len(lines) {
				where = strings.TrimSpace(lines[1]) + " <- " + strings.TrimPrefix(l, "created by ")
				break
			}
		}
		counts[where]++
	}
	return summarize(counts)
}

// fdSummary groups the open descriptors by what they point at.
func fdSummary() string {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return err.Error()
	}
	counts := map[string]int{}
	for _, e := range ents {
		target, err := os.Readlink("/proc/self/fd/" + e.Name())
		if err != nil {
			continue
		}
		if i := strings.IndexByte(target, '['); i > 0 { // socket:[1234] -> socket
			target = target[:i-1]
		}
		counts[target]++
	}
	return summarize(counts)
}

func summarize(counts map[string]int) string {
	lines := make([]string, 0, len(counts))
	for k, n := range counts {
		lines = append(lines, fmt.Sprintf("%6d  %s", n, k))
	}
	slices.Sort(lines)
	slices.Reverse(lines)
	if len(lines) > 40 {
		lines = append(lines[:40], "   ...")
	}
	return strings.Join(lines, "\n")
}
