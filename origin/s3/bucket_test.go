package s3

import (
	"bytes"
	"context"
	"encoding/pem"
	"errors"
	"io"
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

func TestSuite(t *testing.T) {
	origintest.Run(t, func(t *testing.T, objects map[string][]byte) origin.Origin {
		f := newFake(t, "", objects)
		return newTestBucket(t, testConfig(f.srv.URL))
	})
}

func TestSuiteWithPrefix(t *testing.T) {
	origintest.Run(t, func(t *testing.T, objects map[string][]byte) origin.Origin {
		f := newFake(t, "pre/fix/", objects)
		cfg := testConfig(f.srv.URL)
		cfg.Prefix = "pre/fix/"
		return newTestBucket(t, cfg)
	})
}

// TestSuiteRangesIgnored runs the suite against a service that answers every range request
// with the whole object: the bucket cuts the body to the range.
func TestSuiteRangesIgnored(t *testing.T) {
	origintest.Run(t, func(t *testing.T, objects map[string][]byte) origin.Origin {
		f := newFake(t, "", objects)
		f.ignoreRanges.Store(true)
		return newTestBucket(t, testConfig(f.srv.URL))
	})
}

func TestPrefixMapsKeys(t *testing.T) {
	data := []byte("prefixed bytes")
	f := newFake(t, "", nil)
	f.put(t, "pre/fix/accounts/avatars/a.png", data, "image/png")
	f.put(t, "accounts/avatars/a.png", []byte("unprefixed"), "image/png")
	cfg := testConfig(f.srv.URL)
	cfg.Prefix = "pre/fix/"
	b := newTestBucket(t, cfg)

	body, m, err := b.Get(context.Background(), "accounts/avatars/a.png", nil)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if got := origintest.ReadAll(t, body); !bytes.Equal(got, data) {
		t.Errorf("Get returned %q, want the prefixed object's %q", got, data)
	}
	if m.Size != int64(len(data)) || m.ContentType != "image/png" {
		t.Errorf("Meta %+v, want size %d and image/png", m, len(data))
	}
	reqs := f.requests()
	if len(reqs) != 1 || reqs[0].Path != "/media/pre/fix/accounts/avatars/a.png" {
		t.Errorf("requests %+v, want one GET of /media/pre/fix/accounts/avatars/a.png", reqs)
	}
}

func TestKey(t *testing.T) {
	for _, tc := range []struct{ prefix, key, want string }{
		{"", "a/b.png", "a/b.png"},
		{"pre", "a/b.png", "pre/a/b.png"},
		{"pre/", "a/b.png", "pre/a/b.png"},
		{"pre/fix//", "a/b.png", "pre/fix/a/b.png"},
		{"/", "a/b.png", "a/b.png"},
	} {
		cfg := testConfig("http://127.0.0.1:1")
		cfg.Prefix = tc.prefix
		b := newTestBucket(t, cfg)
		if got := b.Key(tc.key); got != tc.want {
			t.Errorf("Prefix %q: Key(%q) = %q, want %q", tc.prefix, tc.key, got, tc.want)
		}
	}
}

func TestRangeReachesTheBucket(t *testing.T) {
	const key = "media_attachments/files/000/000/001/original/big.mp4"
	data := bytes.Repeat([]byte("0123456789"), 30_000)
	f := newFake(t, "", map[string][]byte{key: data})
	b := newTestBucket(t, testConfig(f.srv.URL))

	body, m, err := b.Get(context.Background(), key, &origin.Range{Start: 1000, End: 1999})
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if got := origintest.ReadAll(t, body); !bytes.Equal(got, data[1000:2000]) {
		t.Errorf("Get returned %d bytes, want bytes 1000-1999", len(got))
	}
	if m.Size != int64(len(data)) {
		t.Errorf("Meta.Size %d, want the whole object's %d", m.Size, len(data))
	}
	reqs := f.requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests reached the bucket, want 1", len(reqs))
	}
	if got := reqs[0].Header.Get("Range"); got != "bytes=1000-1999" {
		t.Errorf("Range header %q, want bytes=1000-1999", got)
	}
	if reqs[0].Status != http.StatusPartialContent || reqs[0].Sent != 1000 {
		t.Errorf("the bucket answered %d with %d bytes, want 206 with 1000", reqs[0].Status, reqs[0].Sent)
	}
}

// TestChecksumMode checks which requests ask for checksums (x-amz-checksum-mode): whole-object
// Gets unless DisableChecksumMode is set, ranged Gets only when the SDK asks by itself
// (response_checksum when_supported), Stat never.
func TestChecksumMode(t *testing.T) {
	const key = "a.png"
	for _, tc := range []struct {
		setting     string
		disable     bool
		whole, part string // x-amz-checksum-mode on the whole-object and the ranged GetObject
	}{
		{"", false, "ENABLED", ""},
		{ChecksumWhenRequired, false, "ENABLED", ""},
		{ChecksumWhenSupported, false, "ENABLED", "ENABLED"},
		{"", true, "", ""},
		{ChecksumWhenSupported, true, "ENABLED", "ENABLED"},
	} {
		name := "response_checksum=" + tc.setting
		if tc.disable {
			name += ",disable_checksum_mode"
		}
		t.Run(name, func(t *testing.T) {
			f := newFake(t, "", map[string][]byte{key: []byte("png")})
			cfg := testConfig(f.srv.URL)
			cfg.ResponseChecksum = tc.setting
			cfg.RequestChecksum = tc.setting
			cfg.DisableChecksumMode = tc.disable
			b := newTestBucket(t, cfg)
			ctx := context.Background()
			if _, err := b.Stat(ctx, key); err != nil {
				t.Fatalf("Stat: %v", err)
			}
			body, _, err := b.Get(ctx, key, nil)
			if err != nil {
				t.Fatalf("Get: %v", err)
			}
			origintest.ReadAll(t, body)
			body, _, err = b.Get(ctx, key, &origin.Range{Start: 1, End: 1})
			if err != nil {
				t.Fatalf("ranged Get: %v", err)
			}
			origintest.ReadAll(t, body)
			for _, r := range f.requests() {
				got := r.Header.Get("X-Amz-Checksum-Mode")
				want := ""
				switch {
				case r.Method == http.MethodGet && r.Header.Get("Range") == "":
					want = tc.whole
				case r.Method == http.MethodGet:
					want = tc.part
				}
				if got != want {
					t.Errorf("%s %s (Range %q) carries x-amz-checksum-mode %q, want %q",
						r.Method, r.Path, r.Header.Get("Range"), got, want)
				}
			}
		})
	}
}

func TestCABundle(t *testing.T) {
	const key = "a.png"
	objects := map[string][]byte{key: []byte("png")}

	t.Run("system bundle", func(t *testing.T) {
		const system = "/etc/ssl/certs/ca-certificates.crt"
		if _, err := os.Stat(system); err != nil {
			t.Skipf("no system CA bundle: %v", err)
		}
		f := newFake(t, "", objects)
		t.Setenv("AWS_CA_BUNDLE", system)
		b := newTestBucket(t, testConfig(f.srv.URL))
		if _, err := b.Stat(context.Background(), key); err != nil {
			t.Fatalf("Stat with AWS_CA_BUNDLE set: %v", err)
		}
	})

	t.Run("bundle trusts the bucket's certificate", func(t *testing.T) {
		f := newFake(t, "", objects)
		srv := httptest.NewTLSServer(f.handler)
		t.Cleanup(srv.Close)
		bundle := filepath.Join(t.TempDir(), "ca.pem")
		pemCert := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
		if err := os.WriteFile(bundle, pemCert, 0o600); err != nil {
			t.Fatal(err)
		}
		t.Setenv("AWS_CA_BUNDLE", bundle)
		b := newTestBucket(t, testConfig(srv.URL))
		if _, err := b.Stat(context.Background(), key); err != nil {
			t.Fatalf("Stat over TLS with the server's certificate in AWS_CA_BUNDLE: %v", err)
		}
	})
}

func TestServerErrorIsNotNotFound(t *testing.T) {
	var mu sync.Mutex
	calls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls++
		mu.Unlock()
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(http.StatusInternalServerError)
		io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?>`+
			`<Error><Code>InternalError</Code><Message>We encountered an internal error.</Message></Error>`)
	}))
	t.Cleanup(srv.Close)
	b := newTestBucket(t, testConfig(srv.URL))
	ctx := context.Background()

	_, _, err := b.Get(ctx, "a.png", nil)
	if err == nil || errors.Is(err, origin.ErrNotFound) || errors.Is(err, origin.ErrRangeNotSatisfiable) {
		t.Fatalf("Get from a failing bucket: err %v, want a failure that is not a sentinel", err)
	}
	if !strings.Contains(err.Error(), `s3: get "a.png"`) {
		t.Errorf("Get error %q does not name the operation and key", err)
	}
	mu.Lock()
	if calls != maxAttempts {
		t.Errorf("the bucket saw %d attempts, want %d", calls, maxAttempts)
	}
	mu.Unlock()
	if _, err := b.Stat(ctx, "a.png"); err == nil || errors.Is(err, origin.ErrNotFound) {
		t.Errorf("Stat from a failing bucket: err %v, want a failure that is not ErrNotFound", err)
	}
	if err := b.Ping(ctx); err == nil {
		t.Errorf("Ping of a failing bucket succeeded")
	}
}

func TestPingMissingBucket(t *testing.T) {
	f := newFake(t, "", nil)
	cfg := testConfig(f.srv.URL)
	if err := newTestBucket(t, cfg).Ping(context.Background()); err != nil {
		t.Errorf("Ping: %v", err)
	}
	cfg.Bucket = "no-such-bucket"
	err := newTestBucket(t, cfg).Ping(context.Background())
	if err == nil || !strings.Contains(err.Error(), "no such bucket") {
		t.Errorf("Ping of a missing bucket: err %v, want one saying there is no such bucket", err)
	}
}

func TestObserve(t *testing.T) {
	type call struct {
		op       string
		notFound bool
	}
	var (
		mu    sync.Mutex
		calls []call
	)
	f := newFake(t, "", map[string][]byte{"a.png": []byte("png")})
	cfg := testConfig(f.srv.URL)
	cfg.Observe = func(op string, d time.Duration, err error) {
		mu.Lock()
		defer mu.Unlock()
		if d <= 0 {
			t.Errorf("Observe(%s) with duration %s", op, d)
		}
		calls = append(calls, call{op, errors.Is(err, origin.ErrNotFound)})
	}
	b := newTestBucket(t, cfg)
	ctx := context.Background()

	if _, err := b.Stat(ctx, "a.png"); err != nil {
		t.Fatal(err)
	}
	body, _, err := b.Get(ctx, "a.png", nil)
	if err != nil {
		t.Fatal(err)
	}
	origintest.ReadAll(t, body)
	if _, _, err := b.Get(ctx, "missing.png", nil); !errors.Is(err, origin.ErrNotFound) {
		t.Fatalf("Get of a missing key: %v", err)
	}
	if err := b.Ping(ctx); err != nil {
		t.Fatal(err)
	}

	want := []call{{"HeadObject", false}, {"GetObject", false}, {"GetObject", true}, {"HeadBucket", false}}
	mu.Lock()
	defer mu.Unlock()
	if len(calls) != len(want) {
		t.Fatalf("Observe calls %v, want %v", calls, want)
	}
	for i := range want {
		if calls[i] != want[i] {
			t.Errorf("Observe call %d: %v, want %v", i, calls[i], want[i])
		}
	}
}

func TestContentTypeFallback(t *testing.T) {
	f := newFake(t, "", nil)
	f.put(t, "untyped.png", []byte("png"), "")
	f.put(t, "generic.webp", []byte("webp"), "binary/octet-stream")
	f.put(t, "typed.png", []byte("png"), "image/x-custom")
	b := newTestBucket(t, testConfig(f.srv.URL))
	for key, want := range map[string]string{
		"untyped.png":  "image/png",
		"generic.webp": "image/webp",
		"typed.png":    "image/x-custom",
	} {
		m, err := b.Stat(context.Background(), key)
		if err != nil {
			t.Fatalf("Stat(%q): %v", key, err)
		}
		if m.ContentType != want {
			t.Errorf("Stat(%q).ContentType = %q, want %q", key, m.ContentType, want)
		}
	}
}

// TestWrongRangeAnswer checks that a partial answer for other bytes than asked is an error,
// not a body with the wrong bytes.
func TestWrongRangeAnswer(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Range", "bytes 0-9/100")
		w.Header().Set("Content-Length", "10")
		w.Header().Set("ETag", `"x"`)
		w.WriteHeader(http.StatusPartialContent)
		io.WriteString(w, "0123456789")
	}))
	t.Cleanup(srv.Close)
	b := newTestBucket(t, testConfig(srv.URL))
	body, _, err := b.Get(context.Background(), "a.png", &origin.Range{Start: 50, End: 59})
	if err == nil {
		body.Close()
		t.Fatal("Get accepted bytes 0-9 for a request of bytes 50-59")
	}
}
