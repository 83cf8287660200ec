//go:build race

package proxy

// raceDetector is true under the race detector, where sync.Pool drops items on purpose (so
// allocation counts mean nothing).
const raceDetector = true
