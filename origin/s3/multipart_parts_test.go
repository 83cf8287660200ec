package s3

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/xml"
	"hash/crc32"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/fedicache/fedicache/origin"
)

// TestPutMultipartJustOverThreshold checks that an object one byte larger than the threshold
// and the part size goes up in a full part and a part of one byte.
func TestPutMultipartJustOverThreshold(t *testing.T) {
	f := newWriteFake(t)
	b := newTestBucket(t, multipartConfig(f.srv.URL))
	data := bigBody()[:5<<20+1]
	if err := b.Put(context.Background(), bigKey, bytes.NewReader(data), int64(len(data)), origin.PutOptions{}); err != nil {
		t.Fatalf("Put: %v", err)
	}
	if got, err := f.objectBytes(bigKey); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("stored %d bytes (%v), not the %d put", len(got), err, len(data))
	}
	var sizes []string
	for _, p := range f.requests(isUploadPart) {
		sizes = append(sizes, p.Query.Get("partNumber")+":"+p.Header.Get("Content-Length"))
	}
	slices.Sort(sizes)
	if want := []string{"1:5242880", "2:1"}; !slices.Equal(sizes, want) {
		t.Errorf("parts %v, want %v", sizes, want)
	}
	if n := len(f.requests(isCreateUpload)) + len(f.requests(isComplete)); n != 2 || len(f.requests(isAbort)) != 0 {
		t.Errorf("%d creates and completes, %d aborts; want 2 and 0", n, len(f.requests(isAbort)))
	}
}

// TestPutMultipartPartGrowth checks the parts of an object that 10,000 parts of the part size
// cannot hold: 10,000 parts at most, all of one size of at least the part size but the last,
// each read from its own offset of the body, and completed in order. Ten thousand requests
// over HTTP would take too long, so the uploader sends them to a client in memory that reads
// a few bytes at each end of each part; the body is made up as it is read, not 50 GB held.
func TestPutMultipartPartGrowth(t *testing.T) {
	const partSize = 5 << 20
	size := int64(partSize)*maxParts + 1
	rec := &recordedUpload{}
	in := &s3.PutObjectInput{
		Bucket: aws.String(testBucket),
		Key:    aws.String(bigKey),
		Body:   io.NewSectionReader(patternBody{}, 0, size),
	}
	w := writeConfig{partSize: partSize, checksum: aws.RequestChecksumCalculationWhenRequired}
	if _, err := newUploader(rec, w).Upload(context.Background(), in); err != nil {
		t.Fatalf("Upload: %v", err)
	}
	if len(rec.parts) != maxParts {
		t.Fatalf("%d parts, want %d", len(rec.parts), maxParts)
	}
	grown := rec.parts[1].length
	if grown < partSize {
		t.Errorf("parts of %d bytes, below the part size %d", grown, partSize)
	}
	var total int64
	for n := int32(1); n <= maxParts; n++ {
		p, ok := rec.parts[n]
		switch {
		case !ok:
			t.Fatalf("part %d was never sent", n)
		case p.err != "":
			t.Fatalf("part %d: %s", n, p.err)
		case n < maxParts && p.length != grown:
			t.Fatalf("part %d has %d bytes, not the %d of the others", n, p.length, grown)
		case p.offset != total:
			t.Fatalf("part %d starts at %d, want %d", n, p.offset, total)
		}
		total += p.length
	}
	if total != size {
		t.Errorf("the parts hold %d bytes, want %d", total, size)
	}
	if len(rec.completed) != maxParts {
		t.Fatalf("the completion lists %d parts, want %d", len(rec.completed), maxParts)
	}
	for i, p := range rec.completed {
		if aws.ToInt32(p.PartNumber) != int32(i+1) || aws.ToString(p.ETag) != `"`+strconv.Itoa(i+1)+`"` {
			t.Fatalf("completed part %d is number %d with ETag %s", i, aws.ToInt32(p.PartNumber), aws.ToString(p.ETag))
		}
	}
}

// patternBody is a body of any size whose byte at offset o is byte(o % 251), made up as it is
// read.
type patternBody struct{}

func (patternBody) ReadAt(p []byte, off int64) (int, error) {
	for i := range p {
		p[i] = byte((off + int64(i)) % 251)
	}
	return len(p), nil
}

// recordedUpload is an uploader's client in memory that notes each part's length and where in
// the body it starts (found from the pattern of its first bytes), and the completion's parts.
type recordedUpload struct {
	mu        sync.Mutex
	parts     map[int32]recordedPart
	completed []types.CompletedPart
}

type recordedPart struct {
	offset, length int64
	err            string
}

func (r *recordedUpload) CreateMultipartUpload(context.Context, *s3.CreateMultipartUploadInput, ...func(*s3.Options)) (*s3.CreateMultipartUploadOutput, error) {
	return &s3.CreateMultipartUploadOutput{UploadId: aws.String("recorded")}, nil
}

func (r *recordedUpload) UploadPart(_ context.Context, in *s3.UploadPartInput, _ ...func(*s3.Options)) (*s3.UploadPartOutput, error) {
	sec := in.Body.(*io.SectionReader)
	_, off, length := sec.Outer()
	p := recordedPart{offset: off, length: length}
	// The body's bytes at the part's two ends must be those of the offsets the part claims.
	head, tail := make([]byte, 1), make([]byte, 1)
	if _, err := sec.ReadAt(head, 0); err != nil || head[0] != byte(off%251) {
		p.err = "its first byte is not the body's at its offset"
	}
	if _, err := sec.ReadAt(tail, length-1); err != nil || tail[0] != byte((off+length-1)%251) {
		p.err = "its last byte is not the body's at its end"
	}
	if aws.ToInt64(in.ContentLength) != length {
		p.err = "its ContentLength is not its length"
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.parts == nil {
		r.parts = map[int32]recordedPart{}
	}
	r.parts[*in.PartNumber] = p
	return &s3.UploadPartOutput{ETag: aws.String(`"` + strconv.Itoa(int(*in.PartNumber)) + `"`)}, nil
}

func (r *recordedUpload) CompleteMultipartUpload(_ context.Context, in *s3.CompleteMultipartUploadInput, _ ...func(*s3.Options)) (*s3.CompleteMultipartUploadOutput, error) {
	r.completed = in.MultipartUpload.Parts
	return &s3.CompleteMultipartUploadOutput{}, nil
}

func (r *recordedUpload) AbortMultipartUpload(context.Context, *s3.AbortMultipartUploadInput, ...func(*s3.Options)) (*s3.AbortMultipartUploadOutput, error) {
	return &s3.AbortMultipartUploadOutput{}, nil
}

// TestPutMultipartPartChecksums checks what RequestChecksum puts on a multipart upload: by
// default no request carries a checksum and the completion lists none; with when_supported
// the upload is created for CRC32, each part carries the CRC32 of its bytes, and the
// completion lists each part's checksum as the bucket returned it (gofakes3 returns none, so
// the test's front echoes the part's header, as S3 does).
func TestPutMultipartPartChecksums(t *testing.T) {
	for _, setting := range []string{"", ChecksumWhenSupported} {
		t.Run("request_checksum="+setting, func(t *testing.T) {
			want := setting == ChecksumWhenSupported
			f := newWriteFake(t)
			var (
				mu        sync.Mutex
				completes [][]byte
			)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				switch c := callOf(r); {
				case isUploadPart(c):
					if sum := r.Header.Get("X-Amz-Checksum-Crc32"); sum != "" {
						w.Header().Set("X-Amz-Checksum-Crc32", sum)
					}
				case isComplete(c):
					body, _ := io.ReadAll(r.Body)
					r.Body = io.NopCloser(bytes.NewReader(body))
					mu.Lock()
					completes = append(completes, body)
					mu.Unlock()
				}
				f.handler.ServeHTTP(w, r)
			}))
			t.Cleanup(srv.Close)
			cfg := multipartConfig(srv.URL)
			cfg.RequestChecksum = setting
			b := newTestBucket(t, cfg)
			data := bigBody()
			if err := b.Put(context.Background(), bigKey, bytes.NewReader(data), int64(len(data)), origin.PutOptions{}); err != nil {
				t.Fatalf("Put: %v", err)
			}
			if got, err := f.objectBytes(bigKey); err != nil || !bytes.Equal(got, data) {
				t.Fatalf("stored %d bytes (%v), not the %d put", len(got), err, len(data))
			}

			for _, c := range f.requests(isCreateUpload) {
				if got := c.Header.Get("X-Amz-Checksum-Algorithm"); (got == "CRC32") != want || (got != "") != want {
					t.Errorf("CreateMultipartUpload carries x-amz-checksum-algorithm %q; want CRC32: %v", got, want)
				}
			}
			sums := map[string]string{} // part number -> the CRC32 it carried
			for _, c := range f.requests(isUploadPart) {
				n := c.Query.Get("partNumber")
				what, got := hasChecksum(c.Header)
				if got != want {
					t.Errorf("part %s carries a checksum %v (%s), want %v", n, got, what, want)
				}
				if !want {
					continue
				}
				i, _ := strconv.Atoi(n)
				part := data[(i-1)*(5<<20) : min(i*(5<<20), len(data))]
				crc := binary.BigEndian.AppendUint32(nil, crc32.ChecksumIEEE(part))
				if got, exp := c.Header.Get("X-Amz-Checksum-Crc32"), base64.StdEncoding.EncodeToString(crc); got != exp {
					t.Errorf("part %s carries CRC32 %q, want %q", n, got, exp)
				}
				sums[n] = c.Header.Get("X-Amz-Checksum-Crc32")
			}
			for _, c := range f.requests(isComplete) {
				if what, got := hasChecksum(c.Header); got {
					t.Errorf("CompleteMultipartUpload carries a checksum header (%s)", what)
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if len(completes) != 1 {
				t.Fatalf("%d completions, want 1", len(completes))
			}
			var doc struct {
				Parts []struct {
					PartNumber    string
					ETag          string
					ChecksumCRC32 string
				} `xml:"Part"`
			}
			if err := xml.Unmarshal(completes[0], &doc); err != nil {
				t.Fatalf("the completion's body: %v", err)
			}
			var numbers []string
			for _, p := range doc.Parts {
				numbers = append(numbers, p.PartNumber)
				if p.ETag == "" {
					t.Errorf("completed part %s has no ETag", p.PartNumber)
				}
				if p.ChecksumCRC32 != sums[p.PartNumber] {
					t.Errorf("completed part %s lists CRC32 %q, want %q", p.PartNumber, p.ChecksumCRC32, sums[p.PartNumber])
				}
			}
			if !slices.Equal(numbers, []string{"1", "2", "3"}) {
				t.Errorf("the completion lists parts %v, want 1, 2, 3 in order", numbers)
			}
		})
	}
}
