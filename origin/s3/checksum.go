package s3

// Checking bodies against the object's checksum. A whole-object Get asks for it
// (x-amz-checksum-mode: ENABLED); with that header set the SDK's output middleware (in
// service/internal/checksum) checks the body itself, whatever Config.ResponseChecksum says: it
// hashes the body as it is read by the algorithm of the x-amz-checksum-* header the answer
// carries (CRC32, CRC32C, CRC64NVME, SHA-1, SHA-256, SHA-512), skips a value with a "-N" suffix
// (a checksum of the parts' checksums, which the body alone cannot be checked against), and
// fails the Read that reaches the end with an error of its own, unexported type on a mismatch.
// This file asks, makes that error one callers can recognise (ErrChecksumMismatch), and stops
// asking a service that refuses the header.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
)

// ErrChecksumMismatch is the error, wrapped, of the final Read of a body that does not match
// the full-object checksum the bucket answered with: the bytes were altered on the way. The
// Read returns it instead of io.EOF, so that no reader takes the body for whole; compare with
// errors.Is. The Get itself succeeded, so Config.Observe is not told.
var ErrChecksumMismatch = errors.New("body does not match the object's checksum")

// checksumMode is whether whole-object Gets ask for the object's checksum.
type checksumMode struct {
	off     bool        // Config.DisableChecksumMode
	refused atomic.Bool // the service refused the header: it is not sent again
}

// asking reports whether the next whole-object Get asks for the object's checksum.
func (c *checksumMode) asking() bool { return c != nil && !c.off && !c.refused.Load() }

// ChecksumsAsked reports whether whole-object Gets ask the bucket for the object's checksum and
// so check bodies against it: false when Config.DisableChecksumMode is set, or once the service
// refused the x-amz-checksum-mode header (the Get it refused was sent again without it, and no
// Get asks since). The caller may log it, or report it on a status page.
func (b *Bucket) ChecksumsAsked() bool { return b.sums.asking() }

// checksumModeRefused reports whether err is a service's refusal of x-amz-checksum-mode on a
// GetObject: 501 NotImplemented ("Header 'x-amz-checksum-mode' with value 'ENABLED' not
// implemented", the form of Cloudflare R2's refusals), or a 400 InvalidArgument or
// InvalidRequest that names a checksum header (Backblaze B2 answers "Unsupported header
// 'x-amz-checksum-mode' received for this API call."). Nothing else a whole-object GetObject
// sends could be not implemented.
func checksumModeRefused(err error) bool {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		switch apiErr.ErrorCode() {
		case "NotImplemented":
			return true
		case "InvalidArgument", "InvalidRequest", "UnsupportedHeader":
			if strings.Contains(strings.ToLower(apiErr.ErrorMessage()), "checksum") {
				return true
			}
		}
	}
	var withStatus interface{ HTTPStatusCode() int }
	return errors.As(err, &withStatus) && withStatus.HTTPStatusCode() == http.StatusNotImplemented
}

// checkedBody returns out's body, made to report a checksum mismatch as ErrChecksumMismatch
// when the SDK checks it.
func checkedBody(key string, out *s3.GetObjectOutput) io.ReadCloser {
	v, ok := s3.GetChecksumValidationMetadata(out.ResultMetadata)
	if !ok || len(v.AlgorithmsUsed) == 0 || out.ContentLength == nil {
		return out.Body
	}
	return &verifiedBody{
		body:      out.Body,
		key:       key,
		size:      *out.ContentLength,
		composite: out.ChecksumType == types.ChecksumTypeComposite,
	}
}

// verifiedBody is a body the SDK checks against a checksum as it is read. The SDK's reader
// returns its mismatch error, instead of io.EOF, from the Read that finds the end, after all the
// announced bytes: an error after all of them, other than the request's end, is taken for it,
// since a body cut short fails before. The check is made once, by the SDK.
type verifiedBody struct {
	body io.ReadCloser
	key  string
	size int64 // the answer's Content-Length
	read int64
	// composite is set when the answer says its checksum is COMPOSITE: one of the parts'
	// checksums, not of the body, even without the "-N" suffix the SDK looks for. A mismatch
	// then says nothing of the body, which ends as any other.
	composite bool
}

// Read implements io.Reader.
func (v *verifiedBody) Read(p []byte) (int, error) {
	n, err := v.body.Read(p)
	v.read += int64(n)
	if err == nil || err == io.EOF || v.read != v.size ||
		errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return n, err
	}
	if v.composite {
		return n, io.EOF
	}
	// The SDK's error names the algorithm, the expected and the actual checksum.
	return n, fmt.Errorf("s3: get %q: %w (%v)", v.key, ErrChecksumMismatch, err)
}

// Close implements io.Closer.
func (v *verifiedBody) Close() error { return v.body.Close() }

var _ io.ReadCloser = (*verifiedBody)(nil)
