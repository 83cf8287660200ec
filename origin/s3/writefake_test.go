package s3

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/fedicache/fedicache/origin/origintest"
)

// writeFake is the fake for lists and writes: gofakes3 over memory, like newFake's, with a
// clock the test sets, a log of every request with its query, faults that answer chosen
// requests in the service's stead, and If-None-Match on CompleteMultipartUpload, which gofakes3
// ignores.
type writeFake struct {
	*fake // backend, handler and srv; its own log stays empty
	clock *origintest.Clock

	mu     sync.Mutex
	calls  []call
	faults []*fault
}

// call is one request the fake answered.
type call struct {
	Method string
	Path   string
	Query  url.Values
	Header http.Header
	Status int
}

// fault answers the requests match accepts with status and an S3 error of code, the first
// times of them (all of them when times is negative).
type fault struct {
	match  func(r *http.Request) bool
	status int
	code   string
	times  int
}

// newWriteFake starts an empty writeFake on a real listener, its clock reading the time now.
func newWriteFake(t *testing.T) *writeFake {
	t.Helper()
	f := &writeFake{fake: &fake{backend: s3mem.New()}, clock: origintest.NewClock(time.Now())}
	if err := f.backend.CreateBucket(testBucket); err != nil {
		t.Fatal(err)
	}
	// The skew check would refuse the requests made while the clock is turned back.
	s3 := gofakes3.New(f.backend, gofakes3.WithTimeSource(f.clock), gofakes3.WithTimeSkewLimit(0)).Server()
	f.handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := call{Method: r.Method, Path: r.URL.Path, Query: r.URL.Query(), Header: r.Header.Clone()}
		c.Status = f.serve(s3, w, r)
		f.mu.Lock()
		f.calls = append(f.calls, c)
		f.mu.Unlock()
	})
	f.srv = httptest.NewServer(f.handler)
	t.Cleanup(f.srv.Close)
	return f
}

// serve answers r and returns the status it answered with.
func (f *writeFake) serve(s3 http.Handler, w http.ResponseWriter, r *http.Request) int {
	if ft := f.faultFor(r); ft != nil {
		// Take the body first, so that the client reads the answer rather than a broken pipe.
		io.Copy(io.Discard, r.Body)
		writeError(w, ft.status, ft.code)
		return ft.status
	}
	if f.completeConflicts(r) {
		writeError(w, http.StatusPreconditionFailed, "PreconditionFailed")
		return http.StatusPreconditionFailed
	}
	cw := &countingWriter{ResponseWriter: w, status: http.StatusOK}
	s3.ServeHTTP(cw, r)
	return cw.status
}

// faultFor returns the fault that answers r, if any, counting the answer.
func (f *writeFake) faultFor(r *http.Request) *fault {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, ft := range f.faults {
		if ft.times != 0 && ft.match(r) {
			if ft.times > 0 {
				ft.times--
			}
			return ft
		}
	}
	return nil
}

// fail adds a fault.
func (f *writeFake) fail(times, status int, code string, match func(r *http.Request) bool) {
	f.mu.Lock()
	f.faults = append(f.faults, &fault{match: match, status: status, code: code, times: times})
	f.mu.Unlock()
}

// completeConflicts reports whether r completes a multipart upload with If-None-Match: * onto a
// key that holds an object, as S3 answers with 412.
func (f *writeFake) completeConflicts(r *http.Request) bool {
	if r.Method != http.MethodPost || !r.URL.Query().Has("uploadId") || r.Header.Get("If-None-Match") != "*" {
		return false
	}
	bucket, key, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	_, err := f.backend.HeadObject(bucket, key)
	return err == nil
}

// writeError answers with an S3 error document.
func writeError(w http.ResponseWriter, status int, code string) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>injected by the test</Message></Error>`, code)
}

// requests returns the requests answered so far that match accepts.
func (f *writeFake) requests(match func(c call) bool) []call {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []call
	for _, c := range f.calls {
		if match == nil || match(c) {
			out = append(out, c)
		}
	}
	return out
}

// forget drops the requests recorded so far.
func (f *writeFake) forget() {
	f.mu.Lock()
	f.calls = nil
	f.mu.Unlock()
}

// Matchers of requests, by the operation they make.
func isPutObject(c call) bool {
	return c.Method == http.MethodPut && !c.Query.Has("uploadId") && c.Header.Get("X-Amz-Copy-Source") == ""
}
func isUploadPart(c call) bool   { return c.Method == http.MethodPut && c.Query.Has("uploadId") }
func isCreateUpload(c call) bool { return c.Method == http.MethodPost && c.Query.Has("uploads") }
func isComplete(c call) bool     { return c.Method == http.MethodPost && c.Query.Has("uploadId") }
func isAbort(c call) bool        { return c.Method == http.MethodDelete && c.Query.Has("uploadId") }
func isListObjects(c call) bool  { return c.Method == http.MethodGet && c.Query.Get("list-type") == "2" }

// callOf turns a request into a call, for fault matchers.
func callOf(r *http.Request) call {
	return call{Method: r.Method, Path: r.URL.Path, Query: r.URL.Query(), Header: r.Header}
}

// pendingUploads returns the keys of the multipart uploads the bucket holds, whatever the prefix.
func pendingUploads(t *testing.T, b *Bucket) []string {
	t.Helper()
	out, err := b.client.ListMultipartUploads(context.Background(), &s3.ListMultipartUploadsInput{Bucket: aws.String(b.bucket)})
	if err != nil {
		if errorCode(err) == "NoSuchUpload" { // gofakes3, for a bucket that never had an upload
			return nil
		}
		t.Fatalf("ListMultipartUploads: %v", err)
	}
	var keys []string
	for _, u := range out.Uploads {
		keys = append(keys, aws.ToString(u.Key))
	}
	return keys
}

// startUpload starts a multipart upload of the bucket key key and returns its id.
func startUpload(t *testing.T, b *Bucket, key string) string {
	t.Helper()
	out, err := b.client.CreateMultipartUpload(context.Background(), &s3.CreateMultipartUploadInput{
		Bucket: aws.String(b.bucket),
		Key:    aws.String(key),
	})
	if err != nil {
		t.Fatalf("CreateMultipartUpload: %v", err)
	}
	return aws.ToString(out.UploadId)
}

// objectBytes returns the bytes the fake holds under the bucket key key, or an error.
func (f *writeFake) objectBytes(key string) ([]byte, error) {
	obj, err := f.backend.GetObject(testBucket, key, nil)
	if err != nil {
		return nil, err
	}
	defer obj.Contents.Close()
	return io.ReadAll(obj.Contents)
}

// hasChecksum reports whether a request carries an SDK request checksum or its algorithm, or
// sends its body aws-chunked (with a checksum trailer).
func hasChecksum(h http.Header) (string, bool) {
	for name := range h {
		lower := strings.ToLower(name)
		if strings.HasPrefix(lower, "x-amz-checksum-") || lower == "x-amz-sdk-checksum-algorithm" || lower == "x-amz-trailer" {
			return name, true
		}
	}
	if strings.Contains(h.Get("Content-Encoding"), "aws-chunked") {
		return "Content-Encoding: aws-chunked", true
	}
	if strings.HasPrefix(h.Get("X-Amz-Content-Sha256"), "STREAMING-") {
		return "X-Amz-Content-Sha256: " + h.Get("X-Amz-Content-Sha256"), true
	}
	return "", false
}

// errStop is what a test's fn returns to stop a listing.
var errStop = errors.New("stop")
