package s3

import (
	"bytes"
	"context"
	"crypto/md5"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/fedicache/fedicache/origin"
)

const bigKey = "media_attachments/files/000/000/002/original/big.mp4"

// multipartConfig is testConfig with parts of 5 MiB above 5 MiB.
func multipartConfig(endpoint string) Config {
	cfg := testConfig(endpoint)
	cfg.MultipartThreshold, cfg.PartSize = 5<<20, 5<<20
	return cfg
}

// bigBody returns 12 MiB of random bytes, three parts of 5, 5 and 2 MiB, the same each time.
func bigBody() []byte { return slices.Clone(bigBytes()) }

var bigBytes = sync.OnceValue(func() []byte {
	data := make([]byte, 12<<20)
	rand.NewChaCha8([32]byte{1, 2}).Read(data)
	return data
})

func TestPutMultipart(t *testing.T) {
	f := newWriteFake(t)
	cfg := multipartConfig(f.srv.URL)
	cfg.Prefix = "pre"
	var (
		mu  sync.Mutex
		ops = map[string]int{}
	)
	cfg.Observe = func(op string, d time.Duration, err error) {
		mu.Lock()
		ops[op]++
		mu.Unlock()
	}
	b := newTestBucket(t, cfg)
	data := bigBody()
	sum := md5.Sum(data)
	opts := origin.PutOptions{
		ContentType:  "video/mp4",
		CacheControl: "public, max-age=31536000, immutable",
		ACL:          "public-read",
		ContentMD5:   sum[:], // not sent: S3 has no Content-MD5 of a whole multipart object
		IfNoneMatch:  true,
	}
	if err := b.Put(context.Background(), bigKey, bytes.NewReader(data), int64(len(data)), opts); err != nil {
		t.Fatalf("Put: %v", err)
	}
	got, err := f.objectBytes("pre/" + bigKey)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("stored %d bytes (%v), not the %d put", len(got), err, len(data))
	}
	m, err := b.Stat(context.Background(), bigKey)
	if err != nil || m.ContentType != "video/mp4" || m.Size != int64(len(data)) {
		t.Errorf("Stat: %+v, %v; want video/mp4 of %d bytes", m, err, len(data))
	}

	creates, parts, completes := f.requests(isCreateUpload), f.requests(isUploadPart), f.requests(isComplete)
	if len(creates) != 1 || len(parts) != 3 || len(completes) != 1 || len(f.requests(isPutObject)) != 0 {
		t.Fatalf("%d creates, %d parts, %d completes, %d PutObjects; want 1, 3, 1, 0",
			len(creates), len(parts), len(completes), len(f.requests(isPutObject)))
	}
	for name, want := range map[string]string{
		"Content-Type":  "video/mp4",
		"Cache-Control": opts.CacheControl,
		"X-Amz-Acl":     "public-read",
	} {
		if got := creates[0].Header.Get(name); got != want {
			t.Errorf("CreateMultipartUpload header %s: %q, want %q", name, got, want)
		}
	}
	if got := completes[0].Header.Get("If-None-Match"); got != "*" {
		t.Errorf("CompleteMultipartUpload carries If-None-Match %q, want *", got)
	}
	var sizes []string
	for _, p := range parts {
		sizes = append(sizes, p.Query.Get("partNumber")+":"+p.Header.Get("Content-Length"))
		if p.Header.Get("Content-Md5") != "" {
			t.Errorf("part %s carries a Content-MD5", p.Query.Get("partNumber"))
		}
	}
	slices.Sort(sizes)
	if want := []string{"1:5242880", "2:5242880", "3:2097152"}; !slices.Equal(sizes, want) {
		t.Errorf("parts %v, want %v", sizes, want)
	}
	mu.Lock()
	want := map[string]int{"CreateMultipartUpload": 1, "UploadPart": 3, "CompleteMultipartUpload": 1, "HeadObject": 1}
	if fmt.Sprint(ops) != fmt.Sprint(want) {
		t.Errorf("observed %v, want %v", ops, want)
	}
	mu.Unlock()
	if keys := pendingUploads(t, b); len(keys) != 0 {
		t.Errorf("uploads left pending: %v", keys)
	}
}

// TestPutOnePartIsPutObject checks that an object above the threshold that fits in one part
// goes up whole.
func TestPutOnePartIsPutObject(t *testing.T) {
	f := newWriteFake(t)
	cfg := multipartConfig(f.srv.URL)
	cfg.PartSize = 8 << 20
	b := newTestBucket(t, cfg)
	data := bigBody()[:6<<20]
	if err := b.Put(context.Background(), bigKey, bytes.NewReader(data), int64(len(data)), origin.PutOptions{}); err != nil {
		t.Fatalf("Put: %v", err)
	}
	if len(f.requests(isPutObject)) != 1 || len(f.requests(isCreateUpload)) != 0 {
		t.Errorf("requests %d PutObject, %d CreateMultipartUpload; want 1 and 0",
			len(f.requests(isPutObject)), len(f.requests(isCreateUpload)))
	}
}

// TestMultipartReadsPartsInPlace checks, against the pinned upload manager, that putMultipart's
// manager reads each part through a section of the body (its io.ReaderAt path) and copies no
// part into memory of its own.
func TestMultipartReadsPartsInPlace(t *testing.T) {
	data := bigBody()
	spy := &spyUploads{}
	w := writeConfig{partSize: 5 << 20, checksum: aws.RequestChecksumCalculationWhenRequired}
	in := &s3.PutObjectInput{
		Bucket: aws.String(testBucket),
		Key:    aws.String(bigKey),
		Body:   io.NewSectionReader(bytes.NewReader(data), 0, int64(len(data))),
	}
	if _, err := newUploader(spy, w).Upload(context.Background(), in); err != nil {
		t.Fatalf("Upload: %v", err)
	}
	slices.Sort(spy.bodies)
	want := []string{"1 *io.SectionReader 5242880", "2 *io.SectionReader 5242880", "3 *io.SectionReader 2097152"}
	if !slices.Equal(spy.bodies, want) {
		t.Errorf("parts read through %v, want %v", spy.bodies, want)
	}
	if !bytes.Equal(spy.joined(), data) {
		t.Error("the parts do not add up to the body")
	}
}

// spyUploads is an upload manager's client that keeps the parts in memory and notes what
// each part's body is.
type spyUploads struct {
	mu     sync.Mutex
	bodies []string
	parts  map[int32][]byte
}

func (s *spyUploads) PutObject(context.Context, *s3.PutObjectInput, ...func(*s3.Options)) (*s3.PutObjectOutput, error) {
	return nil, errors.New("unexpected PutObject")
}

func (s *spyUploads) CreateMultipartUpload(context.Context, *s3.CreateMultipartUploadInput, ...func(*s3.Options)) (*s3.CreateMultipartUploadOutput, error) {
	return &s3.CreateMultipartUploadOutput{UploadId: aws.String("spy")}, nil
}

func (s *spyUploads) UploadPart(_ context.Context, in *s3.UploadPartInput, _ ...func(*s3.Options)) (*s3.UploadPartOutput, error) {
	b, err := io.ReadAll(in.Body)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.bodies = append(s.bodies, fmt.Sprintf("%d %T %d", *in.PartNumber, in.Body, len(b)))
	if s.parts == nil {
		s.parts = map[int32][]byte{}
	}
	s.parts[*in.PartNumber] = b
	return &s3.UploadPartOutput{ETag: aws.String(fmt.Sprintf(`"%d"`, *in.PartNumber))}, nil
}

func (s *spyUploads) CompleteMultipartUpload(context.Context, *s3.CompleteMultipartUploadInput, ...func(*s3.Options)) (*s3.CompleteMultipartUploadOutput, error) {
	return &s3.CompleteMultipartUploadOutput{}, nil
}

func (s *spyUploads) AbortMultipartUpload(context.Context, *s3.AbortMultipartUploadInput, ...func(*s3.Options)) (*s3.AbortMultipartUploadOutput, error) {
	return nil, errors.New("unexpected AbortMultipartUpload")
}

func (s *spyUploads) joined() []byte {
	var out []byte
	for n := int32(1); s.parts[n] != nil; n++ {
		out = append(out, s.parts[n]...)
	}
	return out
}

// TestPutMultipartPartFails checks that a part failing every attempt fails the Put and aborts
// the upload: no object, no pending upload.
func TestPutMultipartPartFails(t *testing.T) {
	f := newWriteFake(t)
	f.fail(-1, http.StatusInternalServerError, "InternalError", func(r *http.Request) bool {
		return isUploadPart(callOf(r)) && r.URL.Query().Get("partNumber") == "2"
	})
	cfg := multipartConfig(f.srv.URL)
	cfg.MaxBackoff = 10 * time.Millisecond
	b := newTestBucket(t, cfg)
	data := bigBody()
	err := b.Put(context.Background(), bigKey, bytes.NewReader(data), int64(len(data)), origin.PutOptions{})
	if err == nil || errors.Is(err, origin.ErrExists) || errorCode(err) != "InternalError" {
		t.Fatalf("Put with a failing part: err %v, want the part's InternalError", err)
	}
	if _, err := f.objectBytes(bigKey); err == nil {
		t.Error("a failed multipart Put left an object")
	}
	if keys := pendingUploads(t, b); len(keys) != 0 {
		t.Errorf("a failed multipart Put left uploads pending: %v", keys)
	}
	attempts := 0
	for _, p := range f.requests(isUploadPart) {
		if p.Query.Get("partNumber") == "2" {
			attempts++
		}
	}
	if attempts != DefaultMaxAttempts {
		t.Errorf("part 2 was tried %d times, want %d", attempts, DefaultMaxAttempts)
	}
	aborts := f.requests(isAbort)
	if len(aborts) != 1 || aborts[0].Status != http.StatusNoContent {
		t.Errorf("aborts %+v, want one answered 204", aborts)
	}
	if len(f.requests(isComplete)) != 0 {
		t.Error("a failed upload was completed")
	}
}

// TestPutMultipartCanceled checks that an upload whose caller gives up is aborted all the same.
func TestPutMultipartCanceled(t *testing.T) {
	f := newWriteFake(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f.fail(-1, http.StatusInternalServerError, "InternalError", func(r *http.Request) bool {
		if isUploadPart(callOf(r)) && r.URL.Query().Get("partNumber") == "2" {
			cancel()
			return true
		}
		return false
	})
	b := newTestBucket(t, multipartConfig(f.srv.URL))
	data := bigBody()
	err := b.Put(ctx, bigKey, bytes.NewReader(data), int64(len(data)), origin.PutOptions{})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Put canceled part way: err %v, want context.Canceled", err)
	}
	if aborts := f.requests(isAbort); len(aborts) != 1 || aborts[0].Status != http.StatusNoContent {
		t.Errorf("aborts %+v, want one answered 204", aborts)
	}
	if keys := pendingUploads(t, b); len(keys) != 0 {
		t.Errorf("a canceled multipart Put left uploads pending: %v", keys)
	}
	if _, err := f.objectBytes(bigKey); err == nil {
		t.Error("a canceled multipart Put left an object")
	}
}

func TestPutMultipartIfNoneMatch(t *testing.T) {
	f := newWriteFake(t)
	f.put(t, bigKey, []byte("first"), "video/mp4")
	b := newTestBucket(t, multipartConfig(f.srv.URL))
	data := bigBody()
	err := b.Put(context.Background(), bigKey, bytes.NewReader(data), int64(len(data)), origin.PutOptions{IfNoneMatch: true})
	if !errors.Is(err, origin.ErrExists) {
		t.Fatalf("conditional multipart Put onto an existing key: err %v, want origin.ErrExists", err)
	}
	if got, _ := f.objectBytes(bigKey); string(got) != "first" {
		t.Errorf("the object holds %d bytes after a refused conditional Put, want the first 5", len(got))
	}
	if keys := pendingUploads(t, b); len(keys) != 0 {
		t.Errorf("a refused multipart Put left uploads pending: %v", keys)
	}
}
