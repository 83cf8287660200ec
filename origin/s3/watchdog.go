package s3

import (
	"context"
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// watchdog cancels one bucket request when the bucket stays silent for longer than its timeout:
// first while the request waits for the response headers, then during each body Read. It runs
// only while someone waits on the bucket, so a caller that reads slowly (a slow client
// downstream) never looks like a stalled bucket, and the whole download is not bounded.
type watchdog struct {
	ctx     context.Context // the request's context, canceled when the watchdog fires
	cancel  context.CancelCauseFunc
	timer   *time.Timer
	timeout time.Duration
}

// newWatchdog derives the request's context from parent and starts the wait for the headers.
func newWatchdog(parent context.Context, timeout time.Duration) *watchdog {
	ctx, cancel := context.WithCancelCause(parent)
	w := &watchdog{ctx: ctx, cancel: cancel, timeout: timeout}
	w.timer = time.AfterFunc(timeout, func() { cancel(&stallError{timeout: timeout}) })
	return w
}

// arm starts the timeout over; disarm stops it.
func (w *watchdog) arm()    { w.timer.Reset(w.timeout) }
func (w *watchdog) disarm() { w.timer.Stop() }

// release stops the timer and cancels the request, freeing what the context holds.
func (w *watchdog) release() {
	w.timer.Stop()
	w.cancel(context.Canceled)
}

// stalled returns the stall error when the watchdog fired, else nil.
func (w *watchdog) stalled() error {
	var stall *stallError
	if errors.As(context.Cause(w.ctx), &stall) {
		return stall
	}
	return nil
}

// watchedBody is a response body under a watchdog: each Read is bounded by the timeout, and
// Close ends the request.
type watchedBody struct {
	body    io.ReadCloser
	w       *watchdog
	checked bool // body is checked against a checksum of the whole object (checkedBody)
	once    sync.Once
	close   error
	// received, when set, counts the bytes read.
	received *atomic.Uint64
}

// BodyChecked implements origin.CheckedBody.
func (b *watchedBody) BodyChecked() bool { return b.checked }

// Splice implements origin.SplicedCheck.
func (b *watchedBody) Splice() (io.Writer, func() error) {
	if v, ok := b.body.(*verifiedBody); ok && b.checked {
		return v.splice()
	}
	return nil, nil
}

// Read implements io.Reader. A read that stalls longer than the timeout fails with an error
// that is a context.DeadlineExceeded.
func (b *watchedBody) Read(p []byte) (int, error) {
	b.w.arm()
	n, err := b.body.Read(p)
	b.w.disarm()
	if b.received != nil {
		b.received.Add(uint64(n))
	}
	if err != nil && err != io.EOF {
		if stall := b.w.stalled(); stall != nil {
			err = stall
		}
	}
	return n, err
}

// Close implements io.Closer: it closes the body and cancels the request, so a body abandoned
// part way stops the transfer from the bucket. Closing twice is harmless.
func (b *watchedBody) Close() error {
	b.once.Do(func() {
		b.close = b.body.Close()
		b.w.release()
	})
	return b.close
}
