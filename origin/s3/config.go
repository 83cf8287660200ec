package s3

import (
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/fedicache/fedicache/origin/fielderr"
)

// Config says which bucket to read and how to reach it. The zero value of every field but Bucket
// is usable; Validate reports what is wrong with the rest.
type Config struct {
	// Endpoint is the base URL of an S3-compatible service, e.g. "https://<account>.r2.cloudflarestorage.com"
	// or "http://minio:9000". Empty means AWS S3 itself, found from Region.
	Endpoint string
	// Region is the bucket's region ("auto" for Cloudflare R2). Zero means "us-east-1".
	Region string
	// Bucket is the bucket's name. It is required.
	Bucket string
	// Prefix is prepended to every key, as Mastodon's S3_KEY_PREFIX is: the bucket key is
	// Prefix + "/" + key. Trailing slashes are tolerated. Empty means none.
	Prefix string
	// ForcePathStyle addresses the bucket as endpoint/bucket/key rather than bucket.endpoint/key,
	// as MinIO and some other services need. False means virtual-hosted style.
	ForcePathStyle bool
	// AccessKeyID and SecretAccessKey are static credentials, used when both are set. Empty
	// means the standard AWS credential chain: the AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY
	// environment variables, the shared config and credentials files, web identity (IRSA), ...
	// With Anonymous they sign only fedicache's own requests (see Anonymous).
	AccessKeyID, SecretAccessKey string
	// RequirePublicRead hides (answers as absent) every object whose ACL grants the public no
	// read, as Mastodon's S3_PERMISSION "public-read" expects of a bucket read anonymously: a
	// suspended account's media has the private ACL. It costs one GetObjectAcl per Get, Stat
	// and Validate. It is off with Anonymous (the bucket decides then) and turns itself off on
	// a service without ACLs. False means no check.
	RequirePublicRead bool
	// Anonymous sends the media reads (Get, Stat, Validate, Ping) unsigned, for a bucket that
	// allows public reads, so that the bucket decides exactly as for the public: an object it
	// answers 403 for is hidden (origin.ErrHidden), or missing (origin.ErrNotFound) when a
	// signed look finds no such key. fedicache's own requests (List, Put, AbortStaleUploads,
	// Delete and everything through StateView) are still signed: with AccessKeyID and
	// SecretAccessKey when set, else with the AWS credential chain when New finds credentials
	// there. Without credentials they go unsigned, StateView fails, and every 403 is taken for
	// a hidden object. False means every request is signed.
	Anonymous bool
	// Timeout bounds the wait for a response's headers and every stall while its body streams
	// in; it does not bound the whole download. For lists and writes it bounds every silence of
	// the bucket within one attempt (connecting, taking the next bytes of an upload, answering),
	// not the whole upload, nor the waits between attempts. Zero means 30s.
	Timeout time.Duration
	// RequestChecksum is when request checksums are computed: "when_required" or
	// "when_supported". Empty means "when_required", as several S3-compatible services reject
	// the AWS SDK's default (CRC32 trailers on aws-chunked uploads).
	RequestChecksum string
	// ResponseChecksum is when the SDK asks for response checksums (x-amz-checksum-mode) by
	// itself: "when_required" or "when_supported" (on every GetObject, ranged ones included).
	// Empty means "when_required", for the same reason as RequestChecksum. Whole-object Gets
	// ask whatever it says, unless DisableChecksumMode is set.
	ResponseChecksum string
	// DisableChecksumMode stops whole-object Gets from asking for the object's checksum
	// (x-amz-checksum-mode: ENABLED), and so from checking the body against the full-object
	// checksum (CRC32, CRC32C, CRC64NVME, SHA-1, SHA-256) the bucket answers with; a body that
	// does not match fails its final Read with ErrChecksumMismatch. A service that refuses the
	// header is asked once, the Get sent again without it, and never asked again (see
	// ChecksumsAsked), so it is needed only for a service that returns checksums its bodies do
	// not match. It does not override ResponseChecksum "when_supported". False means ask.
	DisableChecksumMode bool
	// MultipartThreshold is the size above which Put sends an object in parts (a multipart
	// upload) rather than in one PutObject request, and CopyFrom copies it in parts
	// (UploadPartCopy) rather than with one CopyObject. Zero means 64 MiB; at most 5 GiB, the
	// largest object one PutObject or CopyObject may carry.
	MultipartThreshold int64
	// PartSize is the size of each part of a multipart upload (the last one may be smaller).
	// Zero means 16 MiB; at least 5 MiB, the smallest part S3 accepts, and at most 5 GiB.
	PartSize int64
	// MaxAttempts is how many times a request that lists or writes (List, Put,
	// AbortStaleUploads, Delete) is tried before its error is returned: throttling (503 SlowDown, 429),
	// 5xx answers and broken connections are retried, after an exponential backoff with jitter.
	// Zero means 3. Reads (Stat, Get, Validate, Ping) keep 3 attempts whatever it says: a media
	// request is better answered late than retried for long.
	MaxAttempts int
	// MaxBackoff is the longest wait between two attempts of a request that lists or writes.
	// Zero means 20s. Reads wait at most 1s between attempts whatever it says.
	MaxBackoff time.Duration
	// Observe, when set, is called once per bucket request with the operation's name
	// ("GetObject", "HeadObject", "HeadBucket", "GetObjectAcl", "ListObjectsV2", "PutObject",
	// "CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload", "AbortMultipartUpload",
	// "ListMultipartUploads", "DeleteObject", "CopyObject", "UploadPartCopy"; an anonymous Ping
	// is a "GetObject"), its
	// duration (for a read, the time until its answer's headers) and its error as returned to
	// the caller; a GetObject the service refused for its x-amz-checksum-mode header and sent
	// again without it is one request. Errors found later in a body (a checksum mismatch, a
	// stall) are not told. Nil means no one is told.
	Observe func(op string, d time.Duration, err error)
}

// DefaultTimeout is the Timeout a zero Config uses.
const DefaultTimeout = 30 * time.Second

// DefaultRegion is the Region a zero Config uses.
const DefaultRegion = "us-east-1"

// ACLPublicRead is the canned ACL of visible media, Mastodon's default S3_PERMISSION: the ACL
// that RequirePublicRead expects an object's grants to amount to.
const ACLPublicRead = "public-read"

// The defaults of the settings of lists and writes.
const (
	DefaultMultipartThreshold = 64 << 20
	DefaultPartSize           = 16 << 20
	DefaultMaxAttempts        = 3
	DefaultMaxBackoff         = 20 * time.Second
)

// The bounds S3 sets on the size of one PutObject and of one part of a multipart upload.
const (
	maxPutSize  = 5 << 30
	minPartSize = 5 << 20
	maxPartSize = 5 << 30
)

// The values of Config.RequestChecksum and Config.ResponseChecksum.
const (
	ChecksumWhenRequired  = "when_required"
	ChecksumWhenSupported = "when_supported"
)

// Validate reports the first thing wrong with c: a *fielderr.Error naming the field, what is
// wrong and an example of a right value.
func (c Config) Validate() error {
	switch {
	case c.Bucket == "":
		return &fielderr.Error{Pkg: "s3", Field: "Config.Bucket", Problem: "is empty",
			Fix: "set the bucket's name", Example: "mastodon-media"}
	case strings.ContainsAny(c.Bucket, "/ "):
		return &fielderr.Error{Pkg: "s3", Field: "Config.Bucket", Value: fmt.Sprintf("%q", c.Bucket),
			Problem: "is not a bucket name", Fix: "set only the name, and a path in {Config.Prefix}", Example: "mastodon-media"}
	case !validRegion(c.Region):
		return &fielderr.Error{Pkg: "s3", Field: "Config.Region", Value: fmt.Sprintf("%q", c.Region),
			Problem: "is not a region name", Fix: "set the bucket's region (auto for Cloudflare R2)", Example: "eu-central-1"}
	case c.Timeout < 0:
		return &fielderr.Error{Pkg: "s3", Field: "Config.Timeout", Value: c.Timeout.String(),
			Problem: "is negative", Fix: "set a positive duration", Example: DefaultTimeout.String()}
	case c.AccessKeyID != "" && c.SecretAccessKey == "":
		return &fielderr.Error{Pkg: "s3", Field: "Config.SecretAccessKey", Problem: "is empty while {Config.AccessKeyID} is set",
			Fix: "set both, or neither to use the AWS credential chain"}
	case c.AccessKeyID == "" && c.SecretAccessKey != "":
		return &fielderr.Error{Pkg: "s3", Field: "Config.AccessKeyID", Problem: "is empty while {Config.SecretAccessKey} is set",
			Fix: "set both, or neither to use the AWS credential chain"}
	}
	if err := c.validateWrites(); err != nil {
		return err
	}
	if err := validateEndpoint(c.Endpoint); err != nil {
		return err
	}
	if _, err := requestChecksum(c.RequestChecksum); err != nil {
		return err
	}
	if _, err := responseChecksum(c.ResponseChecksum); err != nil {
		return err
	}
	return nil
}

// validateWrites checks the settings of lists and writes.
func (c Config) validateWrites() error {
	switch {
	case c.MultipartThreshold < 0 || c.MultipartThreshold > maxPutSize:
		return &fielderr.Error{Pkg: "s3", Field: "Config.MultipartThreshold", Value: fmt.Sprint(c.MultipartThreshold),
			Problem: "is not between 0 and 5 GiB", Fix: "set a size in bytes, or 0 for the default", Example: "67108864 (64 MiB)"}
	case c.PartSize != 0 && (c.PartSize < minPartSize || c.PartSize > maxPartSize):
		return &fielderr.Error{Pkg: "s3", Field: "Config.PartSize", Value: fmt.Sprint(c.PartSize),
			Problem: "is not between 5 MiB and 5 GiB, the part sizes S3 accepts",
			Fix:     "set a size in bytes, or 0 for the default", Example: "16777216 (16 MiB)"}
	case c.MaxAttempts < 0:
		return &fielderr.Error{Pkg: "s3", Field: "Config.MaxAttempts", Value: fmt.Sprint(c.MaxAttempts),
			Problem: "is negative", Fix: fmt.Sprintf("set a count, or 0 for the default of %d", DefaultMaxAttempts), Example: "10"}
	case c.MaxBackoff < 0:
		return &fielderr.Error{Pkg: "s3", Field: "Config.MaxBackoff", Value: c.MaxBackoff.String(),
			Problem: "is negative", Fix: "set a positive duration, or 0 for the default", Example: DefaultMaxBackoff.String()}
	}
	return nil
}

// validRegion reports whether region is empty or looks like a region name: letters, digits,
// '-', '_' and '.', as AWS and the S3-compatible services use.
func validRegion(region string) bool {
	for _, r := range region {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' ||
			r == '-' || r == '_' || r == '.'
		if !ok {
			return false
		}
	}
	return true
}

// validateEndpoint accepts an empty endpoint or an absolute http(s) URL with a host.
func validateEndpoint(endpoint string) error {
	if endpoint == "" {
		return nil
	}
	u, err := url.Parse(endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return &fielderr.Error{Pkg: "s3", Field: "Config.Endpoint", Value: fmt.Sprintf("%q", endpoint),
			Problem: "is not an absolute http(s) URL", Fix: "set the service's base URL, or leave it empty for AWS",
			Example: "https://s3.eu-central-003.backblazeb2.com"}
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return &fielderr.Error{Pkg: "s3", Field: "Config.Endpoint", Value: fmt.Sprintf("%q", endpoint),
			Problem: "has a query or fragment", Fix: "set only the base URL", Example: "http://minio:9000"}
	}
	return nil
}

// requestChecksum maps a RequestChecksum value to the SDK's setting.
func requestChecksum(v string) (aws.RequestChecksumCalculation, error) {
	switch v {
	case "", ChecksumWhenRequired:
		return aws.RequestChecksumCalculationWhenRequired, nil
	case ChecksumWhenSupported:
		return aws.RequestChecksumCalculationWhenSupported, nil
	}
	return 0, checksumError("Config.RequestChecksum", v)
}

// responseChecksum maps a ResponseChecksum value to the SDK's setting.
func responseChecksum(v string) (aws.ResponseChecksumValidation, error) {
	switch v {
	case "", ChecksumWhenRequired:
		return aws.ResponseChecksumValidationWhenRequired, nil
	case ChecksumWhenSupported:
		return aws.ResponseChecksumValidationWhenSupported, nil
	}
	return 0, checksumError("Config.ResponseChecksum", v)
}

// checksumError is the error of a RequestChecksum or ResponseChecksum that is not known.
func checksumError(field, v string) error {
	return &fielderr.Error{Pkg: "s3", Field: field, Value: fmt.Sprintf("%q", v), Problem: "is not known",
		Fix: "set " + ChecksumWhenRequired + " or " + ChecksumWhenSupported, Example: ChecksumWhenRequired}
}

// withDefaults returns c with its zero fields filled in: the one place defaults live.
func (c Config) withDefaults() Config {
	if c.Region == "" {
		c.Region = DefaultRegion
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.RequestChecksum == "" {
		c.RequestChecksum = ChecksumWhenRequired
	}
	if c.ResponseChecksum == "" {
		c.ResponseChecksum = ChecksumWhenRequired
	}
	if c.MultipartThreshold == 0 {
		c.MultipartThreshold = DefaultMultipartThreshold
	}
	if c.PartSize == 0 {
		c.PartSize = DefaultPartSize
	}
	if c.MaxAttempts == 0 {
		c.MaxAttempts = DefaultMaxAttempts
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = DefaultMaxBackoff
	}
	c.Prefix = strings.TrimRight(c.Prefix, "/")
	return c
}
