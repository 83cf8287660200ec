package proxytest

import (
	"testing"

	"github.com/fedicache/fedicache/origin/origintest"
)

// FasthttpGoroutines are the functions of fasthttp's background goroutines, which are no
// test's leak: the clock of the Date header, which the first server of a process starts and
// which runs on, whichever test started it, and each server's worker-pool cleaner, which
// sleeps 10s between looks and so ends up to 10s after its server stopped, later than a test
// should wait (a server left running is still caught by its accept loop).
var FasthttpGoroutines = []string{
	"github.com/valyala/fasthttp.updateServerDate",
	"github.com/valyala/fasthttp.(*workerPool).Start.func2",
}

// IgnoreFasthttp is the option of origintest's checks of leaks that takes fasthttp's
// background goroutines (FasthttpGoroutines) for no leak.
var IgnoreFasthttp = origintest.Ignore(FasthttpGoroutines...)

// CheckLeaks is origintest.CheckLeaks for a test that runs fasthttp servers: fasthttp's
// background goroutines are no leak, nor those opts name. Call it first in the test.
func CheckLeaks(t testing.TB, opts ...origintest.Option) {
	t.Helper()
	origintest.CheckLeaks(t, append([]origintest.Option{IgnoreFasthttp}, opts...)...)
}

// CountResources is origintest.CountResources for a test that runs fasthttp servers: the
// checks of what it records take fasthttp's background goroutines for no leak, nor those opts
// name.
func CountResources(opts ...origintest.Option) origintest.Resources {
	return origintest.CountResources(append([]origintest.Option{IgnoreFasthttp}, opts...)...)
}
