//go:build race

package proxy_test

// raceEnabled reports whether the tests run under the race detector, which allows at most 8128
// goroutines at once.
const raceEnabled = true
