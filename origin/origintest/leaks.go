package origintest

import (
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// FDMargin is how many more file descriptors than at its start a test may leave open: the
// network poller opens its own once, on first use, in whichever test that is.
const FDMargin = 4

// notLeaks are functions whose goroutines are no test's leak, whatever the test: those the
// standard library starts once and keeps (the signal watcher), whichever test started them.
// A caller names the goroutines of its libraries with Ignore.
var notLeaks = []string{
	"os/signal.loop",
	"os/signal.watchSignalLoop",
	"runtime.ensureSigM",
}

// Option changes what a check of leaks takes for one: CheckLeaks and CountResources take them.
type Option func(*Resources)

// Ignore is an Option: goroutines that run one of funcs (a function's full name as a stack
// dump writes it, e.g. "example.com/lib.(*pool).clean", or a part of it) are no leak. It is for
// the background goroutines of a library: those it starts once and keeps, whichever test
// started them, and those that end on their own, later than a test should wait, after their
// owner stopped.
func Ignore(funcs ...string) Option {
	return func(r *Resources) { r.ignore = append(r.ignore, funcs...) }
}

// settleTime bounds how long the checks wait for goroutines and descriptors to go.
const settleTime = 15 * time.Second

// Resources is what a test holds of the process at one moment: its goroutines and its open
// file descriptors.
type Resources struct {
	// Goroutines is the number of goroutines.
	Goroutines int
	// FDs is the number of open file descriptors, -1 where it cannot be counted (only Linux
	// lists them, in /proc/self/fd).
	FDs int

	ids    map[uint64]bool // the goroutines, by ID
	ignore []string        // functions whose goroutines are no leak, beyond notLeaks
}

// CountResources records the goroutines and open file descriptors now; opts say which
// goroutines its checks (Settled) take for no leak.
func CountResources(opts ...Option) Resources {
	gs := goroutines()
	r := Resources{Goroutines: len(gs), FDs: countFDs(), ids: make(map[uint64]bool, len(gs))}
	for _, g := range gs {
		r.ids[g.id] = true
	}
	for _, o := range opts {
		o(&r)
	}
	return r
}

// CheckLeaks records the goroutines and file descriptors at the start of a test and, once the
// test and every cleanup registered after this call have run, fails it if a goroutine started
// since still runs or more than FDMargin more descriptors are open, after waiting a bounded
// time for them to end; opts say which goroutines are no leak (see Ignore). Call it first in a
// test, before anything it must see closed.
func CheckLeaks(t testing.TB, opts ...Option) {
	t.Helper()
	base := CountResources(opts...)
	t.Cleanup(func() { base.Settled(t, "at the end of the test") })
}

// Settled waits until every goroutine started since r was recorded has ended (but for those
// that are no leak: see Ignore) and the open descriptors are back to within FDMargin of r, and
// fails t, listing what still runs or is open, when they are not within a bounded time. when
// says at which point of the test the check runs, for the message.
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

func (r Resources) settled(t testing.TB, when string, checkGoroutines bool) {
	t.Helper()
	deadline := time.Now().Add(settleTime)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		var extra []goroutine
		if checkGoroutines {
			extra = r.newGoroutines()
		}
		fds := countFDs()
		fdOK := r.FDs < 0 || fds <= r.FDs+FDMargin
		if len(extra) == 0 && fdOK {
			return
		}
		if time.Now().After(deadline) {
			if len(extra) > 0 {
				t.Errorf("goroutine leak %s: %d goroutines started since the start still run:\n%s",
					when, len(extra), summarizeGoroutines(extra))
			}
			if !fdOK {
				t.Errorf("file descriptor leak %s: %d open, %d at the start (margin %d); open now:\n%s",
					when, fds, r.FDs, FDMargin, fdSummary())
			}
			return
		}
		runtime.GC() // lets finalizers close what only they still hold
		<-tick.C
	}
}

// newGoroutines returns the goroutines that run now but did not when r was recorded, but for
// those that are no leak.
func (r Resources) newGoroutines() []goroutine {
	ignore := slices.Concat(notLeaks, r.ignore)
	var extra []goroutine
	for _, g := range goroutines() {
		if r.ids[g.id] || slices.ContainsFunc(ignore, func(f string) bool { return strings.Contains(g.stack, f) }) {
			continue
		}
		extra = append(extra, g)
	}
	return extra
}

// goroutine is one goroutine of a stack dump.
type goroutine struct {
	id    uint64
	stack string // the dump's lines after the first
}

// goroutines returns the goroutines running now, from a dump of all their stacks.
func goroutines() []goroutine {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var gs []goroutine
	for block := range strings.SplitSeq(string(buf), "\n\n") {
		head, stack, _ := strings.Cut(strings.TrimSpace(block), "\n")
		// head: "goroutine 42 [chan receive]:"
		fields := strings.Fields(head)
		if len(fields) < 2 || fields[0] != "goroutine" {
			continue
		}
		id, err := strconv.ParseUint(fields[1], 10, 64)
		if err != nil {
			continue
		}
		gs = append(gs, goroutine{id: id, stack: stack})
	}
	return gs
}

// summarizeGoroutines groups goroutines by where they are and what created them.
func summarizeGoroutines(gs []goroutine) string {
	counts := map[string]int{}
	for _, g := range gs {
		lines := strings.Split(g.stack, "\n")
		where := lines[0] // the innermost function
		for _, l := range lines {
			if strings.HasPrefix(l, "created by ") {
				where += " <- " + strings.TrimPrefix(l, "created by ")
				break
			}
		}
		counts[where]++
	}
	return summarize(counts)
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

// summarize lists counts, largest first, at most 40 lines.
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
