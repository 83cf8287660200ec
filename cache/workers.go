package cache

import (
	"slices"
	"sync"
	"time"
)

// workerIdle is how long a fetch worker waits for another fetch before it ends.
const workerIdle = 10 * time.Second

// workers run fetches on goroutines that outlive one fetch, as fasthttp runs requests: a fetch
// goes through the S3 client's deep middleware stack, and a goroutine started for each one
// would grow its stack again, copying it several times, on every miss.
type workers struct {
	mu     sync.Mutex
	idle   []chan func() // each an idle worker's: a send hands it the next fetch
	closed bool
}

// run runs fn on an idle worker, or on a new one.
func (w *workers) run(fn func()) {
	w.mu.Lock()
	if n := len(w.idle); n > 0 {
		ch := w.idle[n-1]
		w.idle = w.idle[:n-1]
		w.mu.Unlock()
		ch <- fn // buffered: the worker takes it when it is ready
		return
	}
	w.mu.Unlock()
	ch := make(chan func(), 1)
	ch <- fn
	go w.work(ch)
}

// work runs what arrives on ch until the pool closes or nothing came for workerIdle.
func (w *workers) work(ch chan func()) {
	t := time.NewTimer(workerIdle)
	defer t.Stop()
	fn := <-ch
	for {
		fn()
		if !w.park(ch) {
			return
		}
		t.Reset(workerIdle)
		var ok bool
		select {
		case fn, ok = <-ch:
		case <-t.C:
			if w.unpark(ch) {
				return
			}
			fn, ok = <-ch // run took ch from the idle list just before: its fetch is on its way
		}
		if !ok { // closed
			return
		}
	}
}

// park puts ch in the idle list; false when the pool is closed.
func (w *workers) park(ch chan func()) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return false
	}
	w.idle = append(w.idle, ch)
	return true
}

// unpark takes ch out of the idle list and reports whether it was there.
func (w *workers) unpark(ch chan func()) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	i := slices.Index(w.idle, ch)
	if i < 0 {
		return false
	}
	w.idle = slices.Delete(w.idle, i, i+1)
	return true
}

// close ends the idle workers, and every busy one once its fetch is done.
func (w *workers) close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.closed = true
	for _, ch := range w.idle {
		close(ch)
	}
	w.idle = nil
}

// size returns the number of idle workers.
func (w *workers) size() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.idle)
}
