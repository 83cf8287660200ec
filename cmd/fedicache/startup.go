package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"syscall"
	"time"

	"github.com/fedicache/fedicache/cmd/fedicache/config"
	"github.com/fedicache/fedicache/origin"
	"github.com/fedicache/fedicache/origin/s3"
)

// startupCheckTimeout bounds each request of the start check, so that an endpoint that does not
// answer holds the start up no longer than this.
const startupCheckTimeout = 5 * time.Second

// logWarnings logs each warning of the configuration once.
func logWarnings(cfg config.Config, log *slog.Logger) {
	for _, w := range cfg.Warnings {
		log.Warn(w)
	}
}

// startupCheck logs, once at start and before any other line about the bucket, what an operator
// reads first: each warning of the configuration, then whether the bucket answers fedicache.
// When it does not, one error line says that the replica is not ready, why, and what to fix
// (readiness answers 503 meanwhile); when it does, one info line says so. It sends one request,
// the bucket's Ping (HeadBucket, or the anonymous probe); when the answer carries no error code,
// one GET more to learn it; and for s3.anonymous, a signed HeadBucket too, as fedicache's own
// state is read with the credentials.
func startupCheck(ctx context.Context, bucket *s3.Bucket, cfg config.Config, log *slog.Logger) {
	logWarnings(cfg, log)
	msg, err := checkBucket(ctx, bucket, cfg)
	switch {
	case ctx.Err() != nil:
		// Stopped while starting: the bucket is not to blame.
	case err != nil:
		log.Error(msg, "bucket", cfg.S3.Bucket, "endpoint", endpointName(cfg), "err", err)
	default:
		log.Info("bucket answers", "bucket", cfg.S3.Bucket, "endpoint", endpointName(cfg))
	}
}

// checkBucket pings the bucket, and for s3.anonymous its signed view, and returns the first
// failure with the line that explains it.
func checkBucket(ctx context.Context, bucket *s3.Bucket, cfg config.Config) (string, error) {
	if err := ping(ctx, bucket); err != nil {
		return diagnose(ctx, bucket, cfg, err)
	}
	if !cfg.S3.Anonymous {
		return "", nil
	}
	view, err := bucket.StateView()
	if err != nil {
		return "", nil // no credentials: loading the state says what to set
	}
	if err := ping(ctx, view); err != nil {
		return diagnose(ctx, view, cfg, err)
	}
	return "", nil
}

func ping(ctx context.Context, b *s3.Bucket) error {
	ctx, cancel := context.WithTimeout(ctx, startupCheckTimeout)
	defer cancel()
	return b.Ping(ctx)
}

// diagnose returns the line that says why b's Ping failed with err, and what to fix, with the
// error that named the cause. When the answer named none (a HEAD's 403 or 404 has no body), it
// reads s3.PingKey (which no one stores), ranged, to learn it from a GET's error body.
func diagnose(ctx context.Context, b *s3.Bucket, cfg config.Config, err error) (string, error) {
	code, status := answerOf(err)
	if status == 0 && code == "" && unreachable(err) {
		return endpointProblem(cfg, err), err
	}
	if !namesCause(code, status) && status < 500 {
		gctx, cancel := context.WithTimeout(ctx, startupCheckTimeout)
		body, _, gerr := b.Get(gctx, s3.PingKey, &origin.Range{Start: 0, End: 0})
		cancel()
		if gerr == nil {
			body.Close()
		}
		gcode, gstatus := answerOf(gerr)
		switch {
		case namesCause(gcode, gstatus):
			code, status, err = gcode, gstatus, gerr
		case status == http.StatusForbidden && (gerr == nil || errors.Is(gerr, origin.ErrNotFound)):
			// The credentials read objects; only the bucket itself is closed to them.
			return fmt.Sprintf("bucket refused HeadBucket (403 Forbidden) though it lets fedicache read objects: "+
				"the replica is not ready until it allows it; grant the credentials s3:ListBucket on bucket %q", cfg.S3.Bucket), err
		}
	}
	return refusal(code, status, cfg), err
}

// answerOf returns the error code and the HTTP status of the bucket's answer in err, or "" and 0.
func answerOf(err error) (code string, status int) {
	var withCode interface{ ErrorCode() string }
	if errors.As(err, &withCode) {
		code = withCode.ErrorCode()
	}
	var withStatus interface{ HTTPStatusCode() int }
	if errors.As(err, &withStatus) {
		status = withStatus.HTTPStatusCode()
	}
	return code, status
}

// namesCause reports whether code is the service's own error code, rather than one the SDK
// made up from status for an answer without a body (Forbidden for 403, NotFound for 404, ...).
func namesCause(code string, status int) bool {
	return code != "" && code != "UnknownError" && code != strings.ReplaceAll(http.StatusText(status), " ", "")
}

// refusal returns the line for an answer of the bucket with code and status.
func refusal(code string, status int, cfg config.Config) string {
	cause := code
	if !namesCause(code, status) {
		cause = fmt.Sprintf("%d %s", status, http.StatusText(status))
		if status == 0 {
			cause = "no answer it could read"
		}
	}
	switch {
	case code == "SignatureDoesNotMatch":
		return fmt.Sprintf("bucket refused fedicache's credentials (%s): the replica is not ready until it accepts them; "+
			"check s3.secret_access_key (or AWS_SECRET_ACCESS_KEY): it is not the secret of the access key", cause)
	case code == "InvalidAccessKeyId":
		return fmt.Sprintf("bucket refused fedicache's credentials (%s): the replica is not ready until it accepts them; "+
			"check s3.access_key_id (or AWS_ACCESS_KEY_ID): the service at %s does not know it", cause, endpointName(cfg))
	case code == "ExpiredToken" || code == "InvalidToken" || code == "TokenRefreshRequired":
		return fmt.Sprintf("bucket refused fedicache's credentials (%s): the replica is not ready until it accepts them; "+
			"renew the session credentials (AWS_SESSION_TOKEN, the AWS profile or web identity), "+
			"or set s3.access_key_id and s3.secret_access_key", cause)
	case code == "RequestTimeTooSkewed":
		return fmt.Sprintf("bucket refused fedicache's requests (%s): the replica is not ready until it accepts them; "+
			"this host's clock is more than 15 minutes off: synchronise it (NTP)", cause)
	case code == "AccessDenied" || code == "AllAccessDisabled" || status == http.StatusForbidden:
		return fmt.Sprintf("bucket refused fedicache's requests (%s): the replica is not ready until it allows them; "+
			"grant the credentials s3:ListBucket on bucket %q and s3:GetObject on its objects "+
			"(s3:PutObject and s3:DeleteObject under state_prefix), or check s3.access_key_id and "+
			"s3.secret_access_key (or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)", cause, cfg.S3.Bucket)
	case code == "NoSuchBucket" || status == http.StatusNotFound:
		return fmt.Sprintf("bucket %q does not exist at %s (%s): the replica is not ready until it does; "+
			"check s3.bucket, s3.endpoint and s3.region", cfg.S3.Bucket, endpointName(cfg), cause)
	case code == "PermanentRedirect" || code == "AuthorizationHeaderMalformed" ||
		code == "IllegalLocationConstraintException" || status == http.StatusMovedPermanently:
		return fmt.Sprintf("bucket is not in s3.region %q (%s): the replica is not ready until it answers; "+
			"set s3.region to the bucket's region (or check s3.endpoint and s3.force_path_style)", cfg.S3.Region, cause)
	case code == "InvalidBucketName":
		return fmt.Sprintf("the service refuses bucket name %q (%s): the replica is not ready until it accepts it; "+
			"check s3.bucket (and s3.force_path_style)", cfg.S3.Bucket, cause)
	case status >= 500 || code == "SlowDown" || code == "ServiceUnavailable" || code == "InternalError":
		return fmt.Sprintf("bucket fails (%s): the replica is not ready until it answers; "+
			"the service is failing or throttling, not refusing fedicache: fedicache keeps asking", cause)
	}
	return fmt.Sprintf("bucket did not answer fedicache (%s): the replica is not ready until it does; "+
		"check s3.endpoint, s3.bucket, s3.region and the credentials", cause)
}

// unreachable reports whether err is a failure to reach the endpoint at all: no connection, no
// name, no trusted certificate, or no answer in time.
func unreachable(err error) bool {
	var netErr net.Error
	return errors.As(err, &netErr) || errors.Is(err, context.DeadlineExceeded)
}

// endpointProblem returns the line for an endpoint that did not answer.
func endpointProblem(cfg config.Config, err error) string {
	cause, fix := "network error", "check s3.endpoint and the network on the way (DNS, firewall, proxy)"
	var dnsErr *net.DNSError
	var certErr *tls.CertificateVerificationError
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		cause = "connection refused"
	case errors.As(err, &dnsErr):
		cause = "DNS: " + dnsErr.Err
	case errors.As(err, &certErr):
		cause = "TLS certificate not trusted"
		fix = "check s3.endpoint, or give the certificate's CA in AWS_CA_BUNDLE"
	case errors.Is(err, context.DeadlineExceeded):
		cause = "no answer in time"
	}
	return fmt.Sprintf("bucket endpoint %s does not answer (%s): the replica is not ready until it does; %s",
		endpointName(cfg), cause, fix)
}

// endpointName names the bucket's service for the log.
func endpointName(cfg config.Config) string {
	if cfg.S3.Endpoint != "" {
		return cfg.S3.Endpoint
	}
	return "AWS S3 (" + cfg.S3.Region + ")"
}
