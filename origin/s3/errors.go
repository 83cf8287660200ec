package s3

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/aws/smithy-go"

	"github.com/fedicache/fedicache/origin"
)

// stallError says the bucket stayed silent (sent nothing, or took no bytes of an upload) for
// longer than Config.Timeout. It is a context.DeadlineExceeded, so callers answer 504 as for
// any other timeout.
type stallError struct {
	timeout time.Duration
}

func (e *stallError) Error() string {
	return fmt.Sprintf("bucket silent for %s: %v", e.timeout, context.DeadlineExceeded)
}

// Unwrap makes errors.Is(err, context.DeadlineExceeded) true.
func (e *stallError) Unwrap() error { return context.DeadlineExceeded }

// Timeout marks the error as a timeout for net.Error-minded callers.
func (e *stallError) Timeout() bool { return true }

// translate turns an SDK error for a call under ctx into the error the origin returns: the
// sentinels of package origin for a missing object or a range beyond its end, the stall error
// when w fired, context.DeadlineExceeded for network timeouts, and else err itself.
func translate(ctx context.Context, w *watchdog, err error) error {
	if err, done := interrupted(ctx, w, err); done {
		return err
	}
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		switch apiErr.ErrorCode() {
		case "NoSuchKey", "NotFound":
			return origin.ErrNotFound
		case "InvalidRange":
			return origin.ErrRangeNotSatisfiable
		case "NoSuchBucket":
			// A missing bucket is a configuration error, not a missing object.
			return err
		}
	}
	var withStatus interface{ HTTPStatusCode() int }
	if errors.As(err, &withStatus) {
		switch withStatus.HTTPStatusCode() {
		case http.StatusNotFound: // HEAD answers carry no error code
			return origin.ErrNotFound
		case http.StatusRequestedRangeNotSatisfiable:
			return origin.ErrRangeNotSatisfiable
		}
	}
	return netTimeout(err)
}

// translateWrite is translate for a request that lists or writes: the same stall, cancellation
// and timeout errors, origin.ErrExists for a failed If-None-Match when conditional is set, and
// else err itself. A 404 stays err: it names a missing bucket or upload, not a missing object.
func translateWrite(ctx context.Context, w *watchdog, err error, conditional bool) error {
	if err, done := interrupted(ctx, w, err); done {
		return err
	}
	if conditional && conditionFailed(err) {
		return origin.ErrExists
	}
	return netTimeout(err)
}

// conditionFailed reports whether err is the answer to a conditional write that found the key
// taken: 412 PreconditionFailed, or 409 ConditionalRequestConflict when another write to the
// key was under way.
func conditionFailed(err error) bool {
	switch errorCode(err) {
	case "PreconditionFailed", "ConditionalRequestConflict":
		return true
	}
	var withStatus interface{ HTTPStatusCode() int }
	return errors.As(err, &withStatus) && withStatus.HTTPStatusCode() == http.StatusPreconditionFailed
}

// errorCode returns the service's error code in err, or "".
func errorCode(err error) string {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		return apiErr.ErrorCode()
	}
	return ""
}

// interrupted returns the error for a request that ended because the watchdog fired or the
// caller gave up, and done true; else done false.
func interrupted(ctx context.Context, w *watchdog, err error) (_ error, done bool) {
	if stall := w.stalled(); stall != nil {
		return stall, true
	}
	if cerr := ctx.Err(); cerr != nil {
		// The caller gave up; say so in a way errors.Is finds whatever cause the SDK kept.
		if errors.Is(err, cerr) {
			return err, true
		}
		return fmt.Errorf("%w: %v", cerr, err), true
	}
	return nil, false
}

// netTimeout makes a network timeout a context.DeadlineExceeded, and returns other errors as
// they are.
func netTimeout(err error) error {
	var netErr net.Error
	if errors.As(err, &netErr) && netErr.Timeout() && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w: %v", context.DeadlineExceeded, err)
	}
	return err
}
