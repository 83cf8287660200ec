package s3

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// Retry policy of reads: the SDK's standard retryer (5xx, throttling, broken connections) with
// few attempts and short waits, since the watchdog bounds the whole exchange by Config.Timeout
// anyway and a media request is better answered late than retried for long. Lists and writes
// have their own (see newWriteRetryer).
const (
	maxAttempts = 3
	maxBackoff  = time.Second
)

// maxIdleConns is how many idle connections to the bucket are kept for reuse; the Go default
// of 2 per host (the SDK's 10) makes a busy front reconnect all the time.
const maxIdleConns = 256

// credentialsTimeout bounds New's look for credentials in the AWS credential chain, for the signed
// client of an anonymous bucket: a host without any (no instance metadata service to answer)
// must not hold the start up for long.
const credentialsTimeout = 3 * time.Second

// newClient builds the SDK client for cfg, which has its defaults filled in: unsigned when
// unsigned is set, else signed with cfg's static keys when given, else with the AWS credential
// chain.
func newClient(ctx context.Context, cfg Config, unsigned bool) (*s3.Client, error) {
	reqSum, err := requestChecksum(cfg.RequestChecksum)
	if err != nil {
		return nil, err
	}
	respSum, err := responseChecksum(cfg.ResponseChecksum)
	if err != nil {
		return nil, err
	}
	opts := []func(*config.LoadOptions) error{
		config.WithRegion(cfg.Region),
		config.WithHTTPClient(newHTTPClient(cfg.Timeout)),
		config.WithRetryer(func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.MaxAttempts = maxAttempts
				o.MaxBackoff = maxBackoff
			})
		}),
	}
	switch {
	case unsigned:
		opts = append(opts, config.WithCredentialsProvider(aws.AnonymousCredentials{}))
	case cfg.AccessKeyID != "" && cfg.SecretAccessKey != "":
		opts = append(opts, config.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(cfg.AccessKeyID, cfg.SecretAccessKey, "")))
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("s3: load the AWS configuration: %w", err)
	}
	return s3.NewFromConfig(awsCfg, func(o *s3.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
		o.UsePathStyle = cfg.ForcePathStyle
		o.RequestChecksumCalculation = reqSum
		o.ResponseChecksumValidation = respSum
		// Most S3-compatible services send no checksums; saying so on every GET is noise.
		o.DisableLogOutputChecksumValidationSkipped = true
		// Bodies are checked once, by checkedBody.
		o.APIOptions = append(o.APIOptions, removeSDKChecksumCheck)
	}), nil
}

// newSignedClient returns the signed client of an anonymous bucket, for fedicache's own requests:
// with cfg's static keys when given, else with the AWS credential chain when it yields
// credentials within credentialsTimeout. It returns nil when it finds none: the bucket still
// serves media, unsigned.
func newSignedClient(ctx context.Context, cfg Config) (*s3.Client, error) {
	client, err := newClient(ctx, cfg, false)
	if err != nil {
		return nil, err
	}
	if cfg.AccessKeyID != "" {
		return client, nil
	}
	creds := client.Options().Credentials
	if creds == nil {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(ctx, credentialsTimeout)
	defer cancel()
	// The chain caches what it found, so the first signed request does not look again.
	if c, err := creds.Retrieve(ctx); err != nil || !c.HasKeys() {
		return nil, nil
	}
	return client, nil
}

// newHTTPClient returns the transport for the bucket. It stays an *awshttp.BuildableClient so
// the SDK can still apply AWS_CA_BUNDLE (a corporate CA) to it, which it refuses to do for any
// other client. The response-header and body-stall limits are the watchdog's, not the
// transport's, so that a timeout surfaces as context.DeadlineExceeded; the client has no overall
// timeout, as a large download may take minutes.
func newHTTPClient(timeout time.Duration) *awshttp.BuildableClient {
	return awshttp.NewBuildableClient().
		WithDialerOptions(func(d *net.Dialer) {
			d.Timeout = timeout
		}).
		WithTransportOptions(func(t *http.Transport) {
			t.MaxIdleConns = maxIdleConns
			t.MaxIdleConnsPerHost = maxIdleConns
		}).
		// The SDK's per-connection read deadline would also close idle pooled connections.
		WithReadTimeout(0)
}

// writeConfig is how the requests that list and write are sent: their retries and how Put
// splits an object into parts.
type writeConfig struct {
	retryer   aws.Retryer
	threshold int64 // Put sends objects larger than this in parts
	partSize  int64
	// checksum is Config.RequestChecksum again, for the multipart uploader, which has a
	// setting of its own (defaulting to CRC32 on every part) besides the client's.
	checksum aws.RequestChecksumCalculation
}

// newWriteConfig returns the writeConfig of cfg, which has its defaults filled in and is valid.
func newWriteConfig(cfg Config) writeConfig {
	checksum, _ := requestChecksum(cfg.RequestChecksum) // checked by Validate
	return writeConfig{
		retryer:   newWriteRetryer(cfg.MaxAttempts, cfg.MaxBackoff),
		threshold: cfg.MultipartThreshold,
		partSize:  cfg.PartSize,
		checksum:  checksum,
	}
}

// newWriteRetryer returns the retryer of lists and writes: the SDK's standard one, which retries
// 5xx answers, throttling (503 SlowDown, 429 and the throttling error codes) and broken or
// refused connections, after waiting a random time between zero and min(base * 2^retry,
// maxBackoff), with base 1s after throttling and 50ms after other errors (full jitter). It has
// no retry quota: the SDK's default token bucket (500 tokens, 5 spent per retry after
// throttling, 14 per other retry, given back by successes) fails requests at once, without
// waiting, when it runs dry, which would turn a spell of throttling into a burst of failed
// copies; the backfill bounds its own concurrency instead.
func newWriteRetryer(attempts int, backoff time.Duration) aws.Retryer {
	return retry.NewStandard(func(o *retry.StandardOptions) {
		o.MaxAttempts = attempts
		o.MaxBackoff = backoff
		o.RateLimiter = ratelimit.None
	})
}
