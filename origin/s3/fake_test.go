package s3

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/fedicache/fedicache/origin"
	"github.com/fedicache/fedicache/origin/origintest"
)

// testBucket is the bucket the fake serves.
const testBucket = "media"

// fake is an in-process S3 (gofakes3 over memory) on a real TCP listener that records every
// request reaching it and counts the body bytes it answers with.
type fake struct {
	backend *s3mem.Backend
	handler http.Handler
	srv     *httptest.Server

	// ignoreRanges makes the fake answer range requests with the whole object, as HTTP allows.
	ignoreRanges atomic.Bool

	mu   sync.Mutex
	seen []seen
}

// seen is one request the fake answered.
type seen struct {
	Method string
	Path   string
	Header http.Header
	Status int
	Sent   int64 // body bytes answered
}

// newFake starts a fake holding objects, each stored under prefix+key.
func newFake(t *testing.T, prefix string, objects map[string][]byte) *fake {
	t.Helper()
	f := &fake{backend: s3mem.New()}
	if err := f.backend.CreateBucket(testBucket); err != nil {
		t.Fatal(err)
	}
	for key, data := range objects {
		f.put(t, prefix+key, data, origin.ContentType(key))
	}
	s3 := gofakes3.New(f.backend).Server()
	f.handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		header := r.Header.Clone()
		cw := &countingWriter{ResponseWriter: w, status: http.StatusOK}
		if r.Header.Get("Authorization") != "" {
			// Keys other than testConfig's (a test's own) are taken on trust.
			if err := origintest.VerifySigV4(r, map[string]string{testAccessKeyID: testSecretAccessKey}); err != nil && !errors.Is(err, origintest.ErrUnknownAccessKey) {
				t.Errorf("%s %s: %v", r.Method, r.URL, err)
				cw.WriteHeader(http.StatusForbidden)
				_, _ = cw.Write([]byte("<Error><Code>SignatureDoesNotMatch</Code></Error>"))
			}
		}
		if cw.status == http.StatusOK {
			f.adjustRange(r)
			s3.ServeHTTP(cw, r)
		}
		f.mu.Lock()
		f.seen = append(f.seen, seen{Method: r.Method, Path: r.URL.Path, Header: header, Status: cw.status, Sent: cw.n})
		f.mu.Unlock()
	})
	f.srv = httptest.NewServer(f.handler)
	t.Cleanup(f.srv.Close)
	return f
}

// put stores data under the bucket key key, with contentType when it is not empty.
func (f *fake) put(t *testing.T, key string, data []byte, contentType string) {
	t.Helper()
	meta := map[string]string{"Last-Modified": time.Now().UTC().Format(http.TimeFormat)}
	if contentType != "" {
		meta["Content-Type"] = contentType
	}
	if _, err := f.backend.PutObject(testBucket, key, meta, bytes.NewReader(data), int64(len(data)), nil); err != nil {
		t.Fatal(err)
	}
}

// adjustRange makes the fake answer ranges as S3 does where gofakes3 does not: it answers a
// suffix longer than the object ("bytes=-n", n > size) with 416 where S3 (and RFC 9110) serve
// the whole object. It also drops the range when the fake plays a service that ignores ranges.
func (f *fake) adjustRange(r *http.Request) {
	rng := r.Header.Get("Range")
	if rng == "" {
		return
	}
	if f.ignoreRanges.Load() {
		r.Header.Del("Range")
		return
	}
	suffix, ok := strings.CutPrefix(rng, "bytes=-")
	if !ok {
		return
	}
	n, err := strconv.ParseInt(suffix, 10, 64)
	if err != nil {
		return
	}
	bucket, key, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	if obj, err := f.backend.HeadObject(bucket, key); err == nil && obj.Size > 0 && n > obj.Size {
		r.Header.Set("Range", "bytes=0-")
	}
}

// requests returns the requests answered so far.
func (f *fake) requests() []seen {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]seen(nil), f.seen...)
}

// countingWriter counts the body bytes and remembers the status written through it. It drops
// the second status gofakes3 writes when a client hangs up mid-body (net/http would only log it).
type countingWriter struct {
	http.ResponseWriter
	status int
	wrote  bool
	n      int64
}

func (c *countingWriter) WriteHeader(status int) {
	if c.wrote {
		return
	}
	c.wrote = true
	c.status = status
	c.ResponseWriter.WriteHeader(status)
}

func (c *countingWriter) Write(p []byte) (int, error) {
	c.wrote = true
	n, err := c.ResponseWriter.Write(p)
	c.n += int64(n)
	return n, err
}

// hermetic keeps the host's AWS settings (profiles, instance metadata) out of a test.
func hermetic(t *testing.T) {
	t.Helper()
	dir := t.TempDir()
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "credentials"))
	t.Setenv("AWS_PROFILE", "")
}

// The static credentials of testConfig, whose signatures the fake checks.
const (
	testAccessKeyID     = "AKIDFEDICACHETEST"
	testSecretAccessKey = "not-a-secret"
)

// testConfig returns the configuration of a bucket on the service at endpoint, with static
// credentials.
func testConfig(endpoint string) Config {
	return Config{
		Endpoint:        endpoint,
		Bucket:          testBucket,
		ForcePathStyle:  true,
		AccessKeyID:     testAccessKeyID,
		SecretAccessKey: testSecretAccessKey,
		Timeout:         5 * time.Second,
	}
}

// newTestBucket builds a Bucket from cfg in a hermetic AWS environment.
func newTestBucket(t *testing.T, cfg Config) *Bucket {
	t.Helper()
	hermetic(t)
	b, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return b
}
