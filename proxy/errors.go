package proxy

import (
	"context"
	"errors"
	"net"

	"github.com/fedicache/fedicache/origin"
	"github.com/valyala/fasthttp"
)

// statusClientClosed is how a request canceled before its answer is counted and logged
// (nginx's and caddy's 499): the client went away, or a shutdown aborted the request. It is no
// failure of the stores. A client still there is answered 503 (failObject).
const statusClientClosed = 499

// statusFor is the one place that maps an error to the status of the answer: not found 404, a
// range beyond the end 416, not ready to serve 503, a timeout 504, canceled 499, any other
// failure of the stores 502.
func statusFor(err error) int {
	var ne net.Error
	switch {
	case errors.Is(err, errBadKey):
		return fasthttp.StatusBadRequest
	case errors.Is(err, origin.ErrNotFound), errors.Is(err, errNoKey), errors.Is(err, errDenied):
		return fasthttp.StatusNotFound
	case errors.Is(err, origin.ErrRangeNotSatisfiable):
		return fasthttp.StatusRequestedRangeNotSatisfiable
	case errors.Is(err, origin.ErrNotReady):
		return fasthttp.StatusServiceUnavailable
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return fasthttp.StatusGatewayTimeout
	case errors.Is(err, context.Canceled):
		return statusClientClosed
	default:
		return fasthttp.StatusBadGateway
	}
}

// errorBody is the short text sent with each error status: it never names a key, a store or a
// cause, and never lists anything.
func errorBody(status int) string {
	switch status {
	case fasthttp.StatusBadRequest:
		return "400 bad request\n"
	case fasthttp.StatusNotFound:
		return "404 not found\n"
	case fasthttp.StatusMethodNotAllowed:
		return "405 method not allowed\n"
	case fasthttp.StatusRequestedRangeNotSatisfiable:
		return "416 range not satisfiable\n"
	case fasthttp.StatusGatewayTimeout:
		return "504 gateway timeout\n"
	case fasthttp.StatusServiceUnavailable:
		return "503 service unavailable\n"
	case statusClientClosed:
		return "499 client closed request\n"
	default:
		return "502 bad gateway\n"
	}
}
