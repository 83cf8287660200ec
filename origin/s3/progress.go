package s3

import (
	"context"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go/middleware"
)

// progressWatch is the watchdog of one request that lists or writes. It watches each attempt on
// its own: within an attempt the bucket may stay silent (not accept a connection, not take the
// next bytes of the body, not answer) for at most the timeout, and the request is canceled when
// it stays silent longer. It does not count the waits between attempts, so that a long backoff
// (Config.MaxBackoff) never looks like a stalled bucket, nor the time spent inside a body's
// Read (reading a file, waiting on the caller's bandwidth cap). It never bounds the whole
// request: the upload of a large part takes as long as it takes while bytes move.
//
// A stall cancels the request, which is then not retried (the SDK never retries a canceled
// request); the caller may try again.
type progressWatch struct {
	w *watchdog

	mu         sync.Mutex
	attempt    bool // an attempt is under way
	inBodyRead bool // the body's Read is running
}

// newProgressWatch derives the request's context from parent. The watchdog runs until the first
// attempt starts, bounding what comes before it.
func newProgressWatch(parent context.Context, timeout time.Duration) *progressWatch {
	return &progressWatch{w: newWatchdog(parent, timeout)}
}

// ctx is the context to send the request under.
func (p *progressWatch) ctx() context.Context { return p.w.ctx }

// release ends the request's context; call it once the request is done.
func (p *progressWatch) release() { p.w.release() }

func (p *progressWatch) attemptStarted() {
	p.mu.Lock()
	p.attempt = true
	if !p.inBodyRead {
		p.w.arm()
	}
	p.mu.Unlock()
}

func (p *progressWatch) attemptEnded() {
	p.mu.Lock()
	p.attempt = false
	p.w.disarm()
	p.mu.Unlock()
}

func (p *progressWatch) readStarted() {
	p.mu.Lock()
	p.inBodyRead = true
	p.w.disarm()
	p.mu.Unlock()
}

func (p *progressWatch) readEnded() {
	p.mu.Lock()
	p.inBodyRead = false
	if p.attempt {
		p.w.arm()
	}
	p.mu.Unlock()
}

// body returns r as a request body under the watch: each Read the transport makes starts the
// timeout over once it returns.
func (p *progressWatch) body(r io.ReadSeeker) io.ReadSeeker { return &progressBody{r: r, p: p} }

// send sends one request that lists or writes under a progressWatch: do makes the request
// under the context and with the options it is given, and may put its body under the watch.
// send tells Config.Observe about it as op and translates its error; conditional says that a
// failed If-None-Match means origin.ErrExists.
func send[T any](ctx context.Context, b *Bucket, op string, conditional bool,
	do func(ctx context.Context, p *progressWatch) (T, error),
) (T, error) {
	start := time.Now()
	p := newProgressWatch(ctx, b.timeout)
	defer p.release()
	out, err := do(p.ctx(), p)
	if err != nil {
		err = translateWrite(ctx, p.w, err, conditional)
	}
	b.observed(op, start, err)
	return out, err
}

// options returns the options of a request under the watch: opts (left untouched, as several
// goroutines may share them) and then the retryer of lists and writes and the middleware that
// tells the watch when each attempt starts and ends.
func (p *progressWatch) options(retryer aws.Retryer, opts ...func(*s3.Options)) []func(*s3.Options) {
	return append(slices.Clip(opts), func(o *s3.Options) {
		o.Retryer = retryer
		o.APIOptions = append(o.APIOptions, func(s *middleware.Stack) error {
			// Inside the retry loop, so that it sees every attempt and none of the waits.
			return s.Finalize.Insert(attemptWatch{p}, "Retry", middleware.After)
		})
	})
}

// attemptWatch is the middleware that tells a progressWatch when each attempt starts and ends.
type attemptWatch struct{ p *progressWatch }

func (attemptWatch) ID() string { return "fedicache.AttemptWatch" }

func (m attemptWatch) HandleFinalize(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (
	middleware.FinalizeOutput, middleware.Metadata, error,
) {
	m.p.attemptStarted()
	defer m.p.attemptEnded()
	return next.HandleFinalize(ctx, in)
}

// progressBody is a request body under a progressWatch. It stays an io.Seeker, so the SDK can
// measure it and rewind it for a retry.
type progressBody struct {
	r io.ReadSeeker
	p *progressWatch
}

// Read implements io.Reader.
func (b *progressBody) Read(buf []byte) (int, error) {
	b.p.readStarted()
	n, err := b.r.Read(buf)
	b.p.readEnded()
	return n, err
}

// Seek implements io.Seeker.
func (b *progressBody) Seek(offset int64, whence int) (int64, error) { return b.r.Seek(offset, whence) }
