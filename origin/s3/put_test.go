package s3

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fedicache/fedicache/origin"
	"github.com/fedicache/fedicache/origin/origintest"
)

const putKey = "media_attachments/files/000/000/001/original/a.png"

func TestPut(t *testing.T) {
	f := newWriteFake(t)
	cfg := testConfig(f.srv.URL)
	cfg.Prefix = "pre/fix"
	var (
		mu  sync.Mutex
		ops []string
	)
	cfg.Observe = func(op string, d time.Duration, err error) {
		mu.Lock()
		ops = append(ops, op)
		mu.Unlock()
	}
	b := newTestBucket(t, cfg)
	ctx := context.Background()
	data := bytes.Repeat([]byte("png!"), 10_000)
	sum := md5.Sum(data)
	opts := origin.PutOptions{
		ContentType:  "image/png",
		CacheControl: "public, max-age=31536000, immutable",
		ACL:          "public-read",
		ContentMD5:   sum[:],
	}
	body := bytes.NewReader(data)
	body.Seek(100, 0) // Put sends the body from its start, wherever it stands
	if err := b.Put(ctx, putKey, body, int64(len(data)), opts); err != nil {
		t.Fatalf("Put: %v", err)
	}

	m, err := b.Stat(ctx, putKey)
	if err != nil {
		t.Fatalf("Stat: %v", err)
	}
	if m.Size != int64(len(data)) || m.ContentType != "image/png" || m.ETag != `"`+hexMD5(data)+`"` {
		t.Errorf("Stat: %+v, want size %d, image/png and the MD5 as ETag", m, len(data))
	}
	rc, _, err := b.Get(ctx, putKey, nil)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if got := origintest.ReadAll(t, rc); !bytes.Equal(got, data) {
		t.Errorf("Get returned %d bytes, not the %d put", len(got), len(data))
	}

	// gofakes3 keeps neither Cache-Control nor the ACL: check that they were sent.
	puts := f.requests(isPutObject)
	if len(puts) != 1 {
		t.Fatalf("%d PutObject requests, want 1", len(puts))
	}
	h := puts[0].Header
	for name, want := range map[string]string{
		"Content-Type":   "image/png",
		"Cache-Control":  opts.CacheControl,
		"X-Amz-Acl":      "public-read",
		"Content-Md5":    base64.StdEncoding.EncodeToString(sum[:]),
		"Content-Length": "40000",
		"If-None-Match":  "",
	} {
		if got := h.Get(name); got != want {
			t.Errorf("PutObject header %s: %q, want %q", name, got, want)
		}
	}
	if puts[0].Path != "/media/pre/fix/"+putKey {
		t.Errorf("PutObject path %s, want the key under the prefix", puts[0].Path)
	}
	if name, ok := hasChecksum(h); ok {
		t.Errorf("PutObject carries %s with the default request_checksum (when_required)", name)
	}
	mu.Lock()
	if len(ops) == 0 || ops[0] != "PutObject" {
		t.Errorf("observed %v, want PutObject first", ops)
	}
	mu.Unlock()
}

func TestPutEmptyAndBare(t *testing.T) {
	f := newWriteFake(t)
	b := newTestBucket(t, testConfig(f.srv.URL))
	if err := b.Put(context.Background(), "empty.png", bytes.NewReader(nil), 0, origin.PutOptions{}); err != nil {
		t.Fatalf("Put of an empty object: %v", err)
	}
	got, err := f.objectBytes("empty.png")
	if err != nil || len(got) != 0 {
		t.Errorf("stored %q, %v; want an empty object", got, err)
	}
	h := f.requests(isPutObject)[0].Header
	for _, name := range []string{"X-Amz-Acl", "Content-Md5", "Cache-Control", "If-None-Match"} {
		if v, ok := h[name]; ok {
			t.Errorf("PutObject without options carries %s: %q", name, v)
		}
	}
	if err := b.Put(context.Background(), "neg.png", bytes.NewReader(nil), -1, origin.PutOptions{}); err == nil {
		t.Error("Put of a negative size succeeded")
	}
}

func TestPutWrongMD5(t *testing.T) {
	f := newWriteFake(t) // gofakes3 checks Content-MD5 (WithIntegrityCheck is on by default)
	b := newTestBucket(t, testConfig(f.srv.URL))
	data := []byte("the bytes on disk")
	wrong := md5.Sum([]byte("the bytes that were hashed"))
	err := b.Put(context.Background(), putKey, bytes.NewReader(data), int64(len(data)), origin.PutOptions{ContentMD5: wrong[:]})
	if err == nil || errors.Is(err, origin.ErrExists) {
		t.Fatalf("Put with a wrong Content-MD5: err %v, want a failure", err)
	}
	if !strings.Contains(err.Error(), `s3: put "`+putKey+`"`) || errorCode(err) != "BadDigest" {
		t.Errorf("error %q: want it to name the operation and key and carry BadDigest", err)
	}
	if _, err := f.objectBytes(putKey); err == nil {
		t.Error("a Put with a wrong Content-MD5 left an object")
	}
	if n := len(f.requests(isPutObject)); n != 1 {
		t.Errorf("%d PutObject attempts, want 1: a bad digest is not retried", n)
	}
}

func TestPutIfNoneMatch(t *testing.T) {
	f := newWriteFake(t)
	f.put(t, putKey, []byte("first"), "image/png")
	b := newTestBucket(t, testConfig(f.srv.URL))
	ctx := context.Background()
	opts := origin.PutOptions{ContentType: "image/png", IfNoneMatch: true}

	second := []byte("second")
	err := b.Put(ctx, putKey, bytes.NewReader(second), int64(len(second)), opts)
	if !errors.Is(err, origin.ErrExists) {
		t.Fatalf("conditional Put onto an existing key: err %v, want origin.ErrExists", err)
	}
	if !strings.Contains(err.Error(), putKey) {
		t.Errorf("error %q does not name the key", err)
	}
	if got, _ := f.objectBytes(putKey); string(got) != "first" {
		t.Errorf("the object holds %q after a refused conditional Put, want %q", got, "first")
	}
	if err := b.Put(ctx, "new.png", bytes.NewReader(second), int64(len(second)), opts); err != nil {
		t.Fatalf("conditional Put onto a new key: %v", err)
	}
	if got, _ := f.objectBytes("new.png"); string(got) != "second" {
		t.Errorf("new.png holds %q, want %q", got, "second")
	}
	for _, c := range f.requests(isPutObject) {
		if c.Header.Get("If-None-Match") != "*" {
			t.Errorf("conditional PutObject carries If-None-Match %q, want *", c.Header.Get("If-None-Match"))
		}
	}
}

// TestPutChecksums checks what the request checksum setting puts on a PutObject and on the
// parts of a multipart upload, over HTTP and over TLS (where the SDK would send aws-chunked
// bodies with a CRC32 trailer).
func TestPutChecksums(t *testing.T) {
	small := []byte("png")
	large := bytes.Repeat([]byte("0123456789abcdef"), (5<<20+64<<10)/16) // two parts: 5 MiB and 64 KiB
	for _, tc := range []struct {
		setting string
		tls     bool
		want    bool
	}{
		{"", false, false},
		{"", true, false},
		{ChecksumWhenRequired, true, false},
		{ChecksumWhenSupported, false, true},
		{ChecksumWhenSupported, true, true},
	} {
		name := "request_checksum=" + tc.setting
		if tc.tls {
			name += " over TLS"
		}
		t.Run(name, func(t *testing.T) {
			f := newWriteFake(t)
			endpoint := f.srv.URL
			if tc.tls {
				endpoint = tlsEndpoint(t, f.handler)
			}
			cfg := testConfig(endpoint)
			cfg.RequestChecksum = tc.setting
			cfg.MultipartThreshold, cfg.PartSize = 5<<20, 5<<20
			b := newTestBucket(t, cfg)
			ctx := context.Background()
			err := b.Put(ctx, "small.png", bytes.NewReader(small), int64(len(small)), origin.PutOptions{})
			if err != nil && !tc.want {
				t.Fatalf("Put: %v", err)
			}
			err = b.Put(ctx, "large.mp4", bytes.NewReader(large), int64(len(large)), origin.PutOptions{})
			if err != nil && !tc.want {
				t.Fatalf("Put in parts: %v", err)
			}
			if !tc.want {
				for key, data := range map[string][]byte{"small.png": small, "large.mp4": large} {
					if got, err := f.objectBytes(key); err != nil || !bytes.Equal(got, data) {
						t.Errorf("%s: stored %d bytes (%v), want the %d put", key, len(got), err, len(data))
					}
				}
			}
			for _, op := range []struct {
				name  string
				match func(call) bool
			}{{"PutObject", isPutObject}, {"UploadPart", isUploadPart}} {
				calls := f.requests(op.match)
				if len(calls) == 0 {
					t.Fatalf("no %s request", op.name)
				}
				for _, c := range calls {
					what, got := hasChecksum(c.Header)
					if got != tc.want {
						t.Errorf("%s: carries a checksum %v (%s), want %v", op.name, got, what, tc.want)
					}
					if tc.tls && tc.want && !strings.Contains(c.Header.Get("Content-Encoding"), "aws-chunked") {
						t.Errorf("%s over TLS with when_supported is not aws-chunked: the test would not see it", op.name)
					}
				}
			}
			for _, c := range f.requests(isCreateUpload) {
				if got := c.Header.Get("X-Amz-Checksum-Algorithm"); (got != "") != tc.want {
					t.Errorf("CreateMultipartUpload carries x-amz-checksum-algorithm %q, want one: %v", got, tc.want)
				}
			}
		})
	}
}

// tlsEndpoint serves handler over TLS and makes the SDK trust it, and returns its URL.
func tlsEndpoint(t *testing.T, handler http.Handler) string {
	t.Helper()
	srv := httptest.NewTLSServer(handler)
	t.Cleanup(srv.Close)
	bundle := filepath.Join(t.TempDir(), "ca.pem")
	pemCert := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(bundle, pemCert, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AWS_CA_BUNDLE", bundle)
	return srv.URL
}

func hexMD5(data []byte) string {
	sum := md5.Sum(data)
	return hex.EncodeToString(sum[:])
}
