package s3

// Checking bodies against the object's checksum. A whole-object Get asks for it
// (x-amz-checksum-mode: ENABLED) and checks the body against the x-amz-checksum-* value the
// answer carries as it is read (checkedBody), failing the Read that reaches the end with
// ErrChecksumMismatch on a mismatch. The SDK would check it too, slowly: its check is taken out
// of the client (removeSDKChecksumCheck). This file also stops asking a service that refuses
// the header.

import (
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"net/http"
	"strings"
	"sync/atomic"

	"github.com/aws/smithy-go/middleware"
	"github.com/minio/crc64nvme"

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

// checkedBody returns out's body checked against the full-object checksum out carries, and
// whether it is: the Read that reaches the end returns ErrChecksumMismatch instead of io.EOF
// when the bytes differ. Of several checksums it checks the cheapest (CRC-32C and CRC-32 in the
// processor's instructions, CRC64NVME with carry-less multiplication, then SHA-1, SHA-256). A
// composite checksum (a "-N" suffix, or ChecksumType COMPOSITE) is one of the parts' checksums,
// which the body alone cannot be checked against: such a body is not checked.
func checkedBody(key string, out *s3.GetObjectOutput) (io.ReadCloser, bool) {
	if out.ChecksumType == types.ChecksumTypeComposite || out.ContentLength == nil {
		return out.Body, false
	}
	for _, c := range []struct {
		name  string
		value *string
		hash  func() hash.Hash
	}{
		{"CRC32C", out.ChecksumCRC32C, func() hash.Hash { return crc32.New(castagnoli) }},
		{"CRC32", out.ChecksumCRC32, func() hash.Hash { return crc32.NewIEEE() }},
		{"CRC64NVME", out.ChecksumCRC64NVME, func() hash.Hash { return crc64nvme.New() }},
		{"SHA1", out.ChecksumSHA1, sha1.New},
		{"SHA256", out.ChecksumSHA256, sha256.New},
	} {
		if c.value == nil || strings.Contains(*c.value, "-") {
			continue
		}
		want, err := base64.StdEncoding.DecodeString(*c.value)
		if err != nil {
			continue
		}
		h := c.hash()
		if len(want) != h.Size() {
			continue
		}
		return &verifiedBody{body: out.Body, key: key, size: *out.ContentLength, algorithm: c.name, want: want, hash: h}, true
	}
	return out.Body, false
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// removeSDKChecksumCheck takes the SDK's own check of response checksums out of a client's
// middleware: checkedBody makes it, once and faster (the SDK checks CRC64NVME with a table it
// builds per object, and hash/crc64 rebuilds another per Write).
func removeSDKChecksumCheck(stack *middleware.Stack) error {
	_, _ = stack.Deserialize.Remove(sdkChecksumCheck) // an error: not in this operation's stack
	return nil
}

// sdkChecksumCheck is the ID of the SDK's middleware that checks response checksums.
const sdkChecksumCheck = "AWSChecksum:ValidateOutputPayloadChecksum"

// verifiedBody is a body checked against a checksum of the whole object as it is read.
type verifiedBody struct {
	body      io.ReadCloser
	key       string
	size      int64 // the answer's Content-Length
	read      int64
	algorithm string
	want      []byte
	hash      hash.Hash
}

// Read implements io.Reader. The Read that reaches the end returns io.EOF only when all the
// announced bytes came and match the checksum.
func (v *verifiedBody) Read(p []byte) (int, error) {
	n, err := v.body.Read(p)
	v.read += int64(n)
	v.hash.Write(p[:n])
	if err != io.EOF {
		return n, err
	}
	if err := v.verify(); err != nil {
		return n, err
	}
	return n, io.EOF
}

// verify reports whether the bytes counted are the whole body and match the checksum.
func (v *verifiedBody) verify() error {
	if v.read != v.size {
		return fmt.Errorf("s3: get %q: %d of %d bytes: %w", v.key, v.read, v.size, io.ErrUnexpectedEOF)
	}
	if got := v.hash.Sum(nil); !bytes.Equal(got, v.want) {
		return fmt.Errorf("s3: get %q: %w (%s: got %s, want %s)", v.key, ErrChecksumMismatch,
			v.algorithm, base64.StdEncoding.EncodeToString(got), base64.StdEncoding.EncodeToString(v.want))
	}
	return nil
}

// splice goes on with the check over bytes written to rest instead of read (see
// origin.SplicedCheck).
func (v *verifiedBody) splice() (rest io.Writer, verify func() error) {
	return splicedRest{v}, v.verify
}

// splicedRest counts and hashes the bytes that stand in for the rest of a verifiedBody.
type splicedRest struct{ v *verifiedBody }

func (r splicedRest) Write(p []byte) (int, error) {
	r.v.read += int64(len(p))
	return r.v.hash.Write(p)
}

// Close implements io.Closer.
func (v *verifiedBody) Close() error { return v.body.Close() }

var _ io.ReadCloser = (*verifiedBody)(nil)
