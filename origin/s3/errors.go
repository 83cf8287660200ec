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

// stallError says the bucket sent nothing for longer than Config.Timeout. It is a
// context.DeadlineExceeded, so callers answer 504 as for any other timeout.
type stallError struct {
	timeout time.Duration
}

func (e *stallError) Error() string {
	return fmt.Sprintf("bucket sent nothing for %s: %v", e.timeout, context.DeadlineExceeded)
}

// Unwrap makes errors.Is(err, context.DeadlineExceeded) true.
func (e *stallError) Unwrap() error { return context.DeadlineExceeded }

// Timeout marks the error as a timeout for net.Error-minded callers.
func (e *stallError) Timeout() bool { return true }

// translate turns an SDK error for a call under ctx into the error the origin returns: the
// sentinels of package origin for a missing object or a range beyond its end, the stall error
// when w fired, context.DeadlineExceeded for network timeouts, and else err itself.
func translate(ctx context.Context, w *watchdog, err error) error {
	if stall := w.stalled(); stall != nil {
		return stall
	}
	if cerr := ctx.Err(); cerr != nil {
		// The caller gave up; say so in a way errors.Is finds whatever cause the SDK kept.
		if errors.Is(err, cerr) {
			return err
		}
		return fmt.Errorf("%w: %v", cerr, err)
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
	var netErr net.Error
	if errors.As(err, &netErr) && netErr.Timeout() && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w: %v", context.DeadlineExceeded, err)
	}
	return err
}
