package s3

import (
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	smithyauth "github.com/aws/smithy-go/auth"
	"github.com/aws/smithy-go/encoding/httpbinding"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// A media GetObject is the request fedicache sends most, one per miss, and the SDK's generic
// operation stack (some forty middlewares, endpoint rules evaluated per request, a context value
// per step) cost more CPU than the exchange itself. leanGet sends that one request directly:
// the same URL the SDK's endpoint rules give (resolved once, when the client is built), the same
// SigV4 signature (the SDK's signer, with S3's settings), the same HTTP client (so AWS_CA_BUNDLE
// and the connection pool hold), the same retryer, and errors of the SDK's own types, so that
// translate, forbidden and checksumModeRefused read them as before. An endpoint whose rules ask
// for anything but plain SigV4 (S3 Express directory buckets, multi-region access points) keeps
// the SDK's GetObject: newLeanGet returns nil for it.
type leanGet struct {
	client  aws.HTTPClient
	retryer aws.Retryer
	creds   aws.CredentialsProvider // nil: the request goes unsigned
	signer  *v4.Signer
	// checksumMode asks every GET for the object's checksum, ranges included: the SDK's
	// response_checksum when_supported does so.
	checksumMode bool
	name         string // the signing name, "s3"
	region       string // the signing region
	// base is the bucket's URL (https://bucket.host or http://host/bucket), its path without a
	// trailing slash; the key's escaped path is appended to it.
	base url.URL
}

// emptySHA256 is the SHA-256 of an empty payload, a GET's, as S3 wants it in
// X-Amz-Content-Sha256 (part of the signature).
const emptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

// errorBodyLimit bounds how much of an error answer is read for its code and message.
const errorBodyLimit = 64 << 10

// newLeanGet returns the lean GetObject of client for bucket, or nil when the bucket's endpoint
// needs more than the lean path does (the SDK's GetObject then stays in use). unsigned says the
// client sends anonymous requests.
func newLeanGet(ctx context.Context, client *s3.Client, bucket string, unsigned bool) *leanGet {
	o := client.Options()
	if o.HTTPClient == nil || o.Retryer == nil || o.EndpointResolverV2 == nil || o.Region == "" {
		return nil
	}
	ep, err := o.EndpointResolverV2.ResolveEndpoint(ctx, s3.EndpointParameters{
		Bucket:                         aws.String(bucket),
		Region:                         aws.String(o.Region),
		UseFIPS:                        aws.Bool(o.EndpointOptions.UseFIPSEndpoint == aws.FIPSEndpointStateEnabled),
		UseDualStack:                   aws.Bool(o.EndpointOptions.UseDualStackEndpoint == aws.DualStackEndpointStateEnabled),
		Endpoint:                       o.BaseEndpoint,
		ForcePathStyle:                 aws.Bool(o.UsePathStyle),
		Accelerate:                     aws.Bool(o.UseAccelerate),
		DisableMultiRegionAccessPoints: aws.Bool(o.DisableMultiRegionAccessPoints),
		UseArnRegion:                   aws.Bool(o.UseARNRegion),
		DisableS3ExpressSessionAuth:    o.DisableS3ExpressSessionAuth,
	})
	if err != nil || ep.URI.Host == "" || ep.URI.RawQuery != "" {
		return nil
	}
	schemes, ok := smithyauth.GetAuthOptions(&ep.Properties)
	if !ok || len(schemes) == 0 || schemes[0].SchemeID != "sigv4" {
		return nil
	}
	props := &schemes[0].SignerProperties
	l := &leanGet{
		client:       o.HTTPClient,
		retryer:      o.Retryer,
		name:         "s3",
		region:       o.Region,
		base:         ep.URI,
		checksumMode: o.ResponseChecksumValidation == aws.ResponseChecksumValidationWhenSupported,
	}
	if name, ok := smithyhttp.GetSigV4SigningName(props); ok && name != "" {
		l.name = name
	}
	if region, ok := smithyhttp.GetSigV4SigningRegion(props); ok && region != "" {
		l.region = region
	}
	if !unsigned {
		if o.Credentials == nil {
			return nil
		}
		l.creds = o.Credentials
		// S3 signs the path as sent, escaped once (the endpoint rules' disableDoubleEncoding).
		l.signer = v4.NewSigner(func(so *v4.SignerOptions) { so.DisableURIPathEscaping = true })
	}
	l.base.Path = strings.TrimSuffix(l.base.Path, "/")
	l.base.RawPath = ""
	return l
}

// getObject sends in (Bucket, Key, Range and ChecksumMode are read) and returns the answer in
// the SDK's type, retried as the SDK's retryer says.
func (l *leanGet) getObject(ctx context.Context, in *s3.GetObjectInput) (*s3.GetObjectOutput, error) {
	var out *s3.GetObjectOutput
	err := retryAttempts(ctx, l.retryer, func(attempt, attempts int) error {
		var err error
		out, err = l.send(ctx, in, attempt, attempts)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// send sends in once, as attempt of attempts.
func (l *leanGet) send(ctx context.Context, in *s3.GetObjectInput, attempt, attempts int) (*s3.GetObjectOutput, error) {
	req, err := l.request(ctx, in)
	if err != nil {
		return nil, err
	}
	// As the SDK's retryer says which attempt a request is, for the service's logs.
	req.Header["Amz-Sdk-Request"] = []string{"attempt=" + strconv.Itoa(attempt) + "; max=" + strconv.Itoa(attempts)}
	resp, err := l.client.Do(req)
	if err != nil {
		// The SDK's type for a request that never got an answer, which its retryer retries.
		return nil, &smithyhttp.RequestSendError{Err: err}
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, responseError(resp)
	}
	return getObjectOutput(resp), nil
}

// request builds and signs the GET of in.
func (l *leanGet) request(ctx context.Context, in *s3.GetObjectInput) (*http.Request, error) {
	key := aws.ToString(in.Key)
	u := l.base
	u.Path = l.base.Path + "/" + key
	u.RawPath = l.base.EscapedPath() + "/" + httpbinding.EscapePath(key, false)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("build the request for %q: %w", key, err)
	}
	// NewRequest parses the URL again; keep the escaped path exactly as built, which is what is
	// signed and sent.
	req.URL.Path, req.URL.RawPath = u.Path, u.RawPath
	h := req.Header
	// No transparent gzip: the body's bytes and Content-Length must be the object's.
	h["Accept-Encoding"] = []string{"identity"}
	h["User-Agent"] = []string{"fedicache"}
	if in.Range != nil {
		h["Range"] = []string{*in.Range}
	}
	if in.ChecksumMode == types.ChecksumModeEnabled || l.checksumMode {
		h["X-Amz-Checksum-Mode"] = []string{string(types.ChecksumModeEnabled)}
	}
	if err := l.sign(ctx, req); err != nil {
		return nil, fmt.Errorf("sign the request for %q: %w", key, err)
	}
	return req, nil
}

// getObjectOutput reads a 2xx answer's headers into the SDK's output type; the body stays open,
// for the caller to read.
func getObjectOutput(resp *http.Response) *s3.GetObjectOutput {
	h := resp.Header
	out := &s3.GetObjectOutput{
		Body:              resp.Body,
		ContentType:       header(h, "Content-Type"),
		ContentRange:      header(h, "Content-Range"),
		ETag:              header(h, "Etag"),
		ChecksumCRC32:     header(h, "X-Amz-Checksum-Crc32"),
		ChecksumCRC32C:    header(h, "X-Amz-Checksum-Crc32c"),
		ChecksumCRC64NVME: header(h, "X-Amz-Checksum-Crc64nvme"),
		ChecksumSHA1:      header(h, "X-Amz-Checksum-Sha1"),
		ChecksumSHA256:    header(h, "X-Amz-Checksum-Sha256"),
		ChecksumType:      types.ChecksumType(h.Get("X-Amz-Checksum-Type")),
	}
	if resp.ContentLength >= 0 {
		out.ContentLength = aws.Int64(resp.ContentLength)
	}
	if v := h.Get("Last-Modified"); v != "" {
		if t, err := http.ParseTime(v); err == nil {
			out.LastModified = &t
		}
	}
	return out
}

// header returns h's value of name, or nil when h has none.
func header(h http.Header, name string) *string {
	v, ok := h[name]
	if !ok || len(v) == 0 {
		return nil
	}
	return &v[0]
}

// responseError reads a non-2xx answer (and closes its body) into the error the SDK gives for
// it: the service's code and message (from its XML error, else from the status, as the SDK
// derives them) in a smithy.APIError, inside an awshttp.ResponseError carrying the status.
func responseError(resp *http.Response) error {
	defer resp.Body.Close()
	var doc struct {
		Code      string `xml:"Code"`
		Message   string `xml:"Message"`
		RequestID string `xml:"RequestId"`
	}
	// A body that is not S3's XML (a proxy's HTML page) leaves the code to the status.
	_ = xml.NewDecoder(io.LimitReader(resp.Body, errorBodyLimit)).Decode(&doc)
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, errorBodyLimit)) // reuse the connection
	if doc.Code == "" && doc.Message == "" {
		text := http.StatusText(resp.StatusCode)
		doc.Code, doc.Message = strings.ReplaceAll(text, " ", ""), text
	}
	fault := smithy.FaultClient
	if resp.StatusCode >= 500 {
		fault = smithy.FaultServer
	}
	requestID := resp.Header.Get("X-Amz-Request-Id")
	if requestID == "" {
		requestID = doc.RequestID
	}
	return &awshttp.ResponseError{
		ResponseError: &smithyhttp.ResponseError{
			Response: &smithyhttp.Response{Response: resp},
			Err:      &smithy.GenericAPIError{Code: doc.Code, Message: doc.Message, Fault: fault},
		},
		RequestID: requestID,
	}
}
