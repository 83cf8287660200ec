package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/fedicache/fedicache/origin"
)

// timeoutError is a net.Error that timed out.
type timeoutError struct{}

func (timeoutError) Error() string   { return "i/o timeout" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }

func TestStatusFor(t *testing.T) {
	tests := []struct {
		err  error
		want int
	}{
		{errBadKey, 400},
		{origin.ErrNotFound, 404},
		{fmt.Errorf("s3: get %q: %w", "k", origin.ErrNotFound), 404},
		{origin.ErrHidden, 404},
		{errNoKey, 404},
		{errDenied, 404},
		{fmt.Errorf("memory: open %q: %w", "k", origin.ErrRangeNotSatisfiable), 416},
		{origin.ErrNotReady, 503},
		{context.DeadlineExceeded, 504},
		{fmt.Errorf("s3: get %q: %w", "k", context.DeadlineExceeded), 504},
		{fmt.Errorf("dial: %w", timeoutError{}), 504},
		{context.Canceled, 499}, // the client went away, or a shutdown aborted the request
		{fmt.Errorf("cache: wait for %q: %w", "k", context.Canceled), 499},
		{errors.New("boom"), 502},
		{io.ErrUnexpectedEOF, 502},
	}
	for _, tt := range tests {
		if got := statusFor(tt.err); got != tt.want {
			t.Errorf("statusFor(%v) = %d, want %d", tt.err, got, tt.want)
		}
	}
	if body := errorBody(499); body != "499 client closed request\n" {
		t.Errorf("errorBody(499) = %q", body)
	}
}
