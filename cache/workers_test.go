package cache

import (
	"runtime"
	"sync"
	"testing"
	"time"
)

// TestWorkers: fetches run on workers that wait for the next one, so that a run of fetches
// reuses a few goroutines; closing the pool ends every worker, busy or idle.
func TestWorkers(t *testing.T) {
	before := runtime.NumGoroutine()
	var w workers
	var wg sync.WaitGroup
	var mu sync.Mutex
	ran := 0
	for range 3 { // three waves of 50 at once: the second and third reuse the first's workers
		for range 50 {
			wg.Add(1)
			w.run(func() {
				defer wg.Done()
				time.Sleep(time.Millisecond)
				mu.Lock()
				ran++
				mu.Unlock()
			})
		}
		wg.Wait()
		waitFor(t, func() bool { return w.size() == 50 }, "50 idle workers")
	}
	if ran != 150 {
		t.Fatalf("%d fetches ran, want 150", ran)
	}
	if n := runtime.NumGoroutine() - before; n > 55 {
		t.Errorf("%d goroutines for 50 workers", n)
	}
	busy := make(chan struct{})
	w.run(func() { <-busy })
	w.close()
	close(busy)
	waitFor(t, func() bool { return runtime.NumGoroutine() <= before }, "every worker to end after close")
	done := make(chan struct{})
	w.run(func() { close(done) }) // after close: still runs, on a goroutine of its own
	<-done
}

func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("waited 5 s for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}
