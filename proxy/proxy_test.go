package proxy_test

import (
	"bytes"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fedicache/fedicache/cache/tiertest"
	"github.com/fedicache/fedicache/origin"
	"github.com/fedicache/fedicache/origin/origintest"
	"github.com/fedicache/fedicache/proxy"
)

const (
	bucketKey = "media_attachments/files/109/852/623/730/091/815/original/0123456789abcdef.jpg"
	volumeKey = "media_attachments/files/000/000/042/original/fedcba9876543210.mp4"
)

// seeded returns an env with objects in the bucket and others on the old volume.
func seeded(t *testing.T, opts ...envOption) (*env, map[string][]byte, map[string][]byte) {
	e := newEnv(t, opts...)
	inBucket := map[string][]byte{
		bucketKey: tiertest.Blob(1, 200_000),
		"accounts/avatars/000/000/001/original/aaaaaaaaaaaaaaaa.png":     tiertest.Blob(2, 5_000),
		"cache/custom_emojis/images/000/000/007/static/émoji 1.webp":     tiertest.Blob(3, 777),
		"media_attachments/files/000/000/002/original/empty00000000.gif": {},
	}
	onVolume := map[string][]byte{
		volumeKey: tiertest.Blob(4, 300_000),
		"accounts/headers/000/000/001/original/bbbbbbbbbbbbbbbb.jpeg":     tiertest.Blob(5, 40_000),
		"media_attachments/files/000/000/043/small/cccccccccccccccc.avif": tiertest.Blob(6, 9_000),
	}
	for k, v := range inBucket {
		e.bucket.Put(t, k, v)
	}
	for k, v := range onVolume {
		e.putVolume(t, k, v)
	}
	return e, inBucket, onVolume
}

func escapePath(key string) string {
	segs := strings.Split(key, "/")
	for i, s := range segs {
		segs[i] = strings.ReplaceAll(url.PathEscape(s), "+", "%2B")
	}
	return "/" + strings.Join(segs, "/")
}

func TestServesEveryObjectWithItsBytes(t *testing.T) {
	e, inBucket, onVolume := seeded(t)
	check := func(objects map[string][]byte, xcache string) {
		for key, want := range objects {
			resp, body := e.do(t, "GET", escapePath(key))
			if resp.StatusCode != 200 {
				t.Fatalf("GET %s: status %d", key, resp.StatusCode)
			}
			if !bytes.Equal(body, want) {
				t.Errorf("GET %s: %d bytes differ from the %d stored", key, len(body), len(want))
			}
			if got := resp.Header.Get("X-Cache"); got != xcache {
				t.Errorf("GET %s: X-Cache %q, want %q", key, got, xcache)
			}
			if got := resp.Header.Get("Content-Length"); got != strconv.Itoa(len(want)) {
				t.Errorf("GET %s: Content-Length %q, want %d", key, got, len(want))
			}
			if got, want := resp.Header.Get("Content-Type"), origin.ContentType(key); got != want {
				t.Errorf("GET %s: Content-Type %q, want %q", key, got, want)
			}
		}
	}
	check(inBucket, "MISS")
	check(onVolume, "FALLBACK")

	// The strip prefix maps /media/<key> to <key>.
	resp, body := e.do(t, "GET", "/"+testBucket+"/"+bucketKey+"?1612345678")
	if resp.StatusCode != 200 || !bytes.Equal(body, inBucket[bucketKey]) {
		t.Errorf("GET with strip prefix and query: status %d, %d bytes", resp.StatusCode, len(body))
	}
}

func TestRequiredHeaders(t *testing.T) {
	e, _, _ := seeded(t)
	for _, key := range []string{bucketKey, volumeKey} {
		resp, _ := e.do(t, "GET", "/"+key)
		h := lower(resp.Header)
		want := map[string]string{
			"access-control-allow-origin": "*",
			"x-content-type-options":      "nosniff",
			"content-security-policy":     "default-src 'none'; form-action 'none'",
			"cache-control":               proxy.DefaultCacheControl,
			"accept-ranges":               "bytes",
		}
		for k, v := range want {
			if h[k] != v {
				t.Errorf("GET %s: %s = %q, want %q", key, k, h[k], v)
			}
		}
		for _, k := range []string{"etag", "last-modified", "content-length", "content-type"} {
			if h[k] == "" {
				t.Errorf("GET %s: no %s header", key, k)
			}
		}
		for k := range h {
			if strings.HasPrefix(k, "x-amz-") || k == "set-cookie" {
				t.Errorf("GET %s: header %s must not reach clients", key, k)
			}
		}
		if s := h["server"]; s != "fedicache" {
			t.Errorf("GET %s: Server %q, want fedicache without a version", key, s)
		}
		if _, err := http.ParseTime(h["last-modified"]); err != nil {
			t.Errorf("GET %s: Last-Modified %q: %v", key, h["last-modified"], err)
		}
	}
}

func TestHead(t *testing.T) {
	e, inBucket, onVolume := seeded(t)
	for key, data := range map[string][]byte{bucketKey: inBucket[bucketKey], volumeKey: onVolume[volumeKey]} {
		before := e.bucket.Gets(key)
		resp, body := e.do(t, "HEAD", "/"+key)
		if resp.StatusCode != 200 || len(body) != 0 {
			t.Fatalf("HEAD %s: status %d, %d body bytes", key, resp.StatusCode, len(body))
		}
		if resp.ContentLength != int64(len(data)) {
			t.Errorf("HEAD %s: Content-Length %d, want %d", key, resp.ContentLength, len(data))
		}
		get, _ := e.do(t, "GET", "/"+key)
		for _, h := range []string{"ETag", "Last-Modified", "Content-Type", "X-Cache"} {
			if resp.Header.Get(h) != get.Header.Get(h) {
				t.Errorf("HEAD %s: %s %q, GET says %q", key, h, resp.Header.Get(h), get.Header.Get(h))
			}
		}
		if n := e.bucket.Gets(key) - before; n != 1 {
			t.Errorf("HEAD then GET of %s made %d bucket GETs, want 1 (HEAD must not GET)", key, n)
		}
		resp, _ = e.do(t, "HEAD", "/"+key, "Range", "bytes=10-19")
		if resp.StatusCode != 206 || resp.ContentLength != 10 || resp.Header.Get("Content-Range") != fmt.Sprintf("bytes 10-19/%d", len(data)) {
			t.Errorf("HEAD %s with Range: %d, length %d, Content-Range %q", key, resp.StatusCode, resp.ContentLength, resp.Header.Get("Content-Range"))
		}
	}
	resp, _ := e.do(t, "HEAD", "/accounts/avatars/none.png")
	if resp.StatusCode != 404 {
		t.Errorf("HEAD of a missing key: %d", resp.StatusCode)
	}
}

func TestRanges(t *testing.T) {
	e, inBucket, onVolume := seeded(t)
	for key, data := range map[string][]byte{bucketKey: inBucket[bucketKey], volumeKey: onVolume[volumeKey]} {
		size := len(data)
		for _, tc := range []struct {
			rng         string
			first, last int
		}{
			{"bytes=0-99", 0, 99},
			{"bytes=1000-", 1000, size - 1},
			{"bytes=-500", size - 500, size - 1},
			{"bytes=100-999999999", 100, size - 1},
			{"bytes=-999999999", 0, size - 1},
			{"bytes=0-0", 0, 0},
		} {
			resp, body := e.do(t, "GET", "/"+key, "Range", tc.rng)
			if resp.StatusCode != 206 {
				t.Fatalf("GET %s %s: status %d", key, tc.rng, resp.StatusCode)
			}
			if !bytes.Equal(body, data[tc.first:tc.last+1]) {
				t.Errorf("GET %s %s: %d bytes, want bytes %d-%d", key, tc.rng, len(body), tc.first, tc.last)
			}
			if want := fmt.Sprintf("bytes %d-%d/%d", tc.first, tc.last, size); resp.Header.Get("Content-Range") != want {
				t.Errorf("GET %s %s: Content-Range %q, want %q", key, tc.rng, resp.Header.Get("Content-Range"), want)
			}
		}
		// Several ranges, or a malformed one: the whole object with 200.
		for _, rng := range []string{"bytes=0-9,20-29", "bytes=9-1", "bytes=x-y", "lines=1-2"} {
			resp, body := e.do(t, "GET", "/"+key, "Range", rng)
			if resp.StatusCode != 200 || !bytes.Equal(body, data) {
				t.Errorf("GET %s %s: status %d, %d bytes; want the whole object with 200", key, rng, resp.StatusCode, len(body))
			}
		}
		// Beyond the end: 416 with the size.
		for _, rng := range []string{fmt.Sprintf("bytes=%d-", size), "bytes=99999999-99999999", "bytes=-0"} {
			resp, body := e.do(t, "GET", "/"+key, "Range", rng)
			if resp.StatusCode != 416 {
				t.Errorf("GET %s %s: status %d, want 416", key, rng, resp.StatusCode)
			}
			if want := fmt.Sprintf("bytes */%d", size); resp.Header.Get("Content-Range") != want {
				t.Errorf("GET %s %s: Content-Range %q, want %q", key, rng, resp.Header.Get("Content-Range"), want)
			}
			if bytes.Contains(body, data[:16]) {
				t.Errorf("GET %s %s: 416 carried object bytes", key, rng)
			}
		}
	}
}

func TestRangeReachesBucketAsRangedGet(t *testing.T) {
	e := newEnv(t)
	const key = "media_attachments/files/000/000/009/original/9999999999999999.mp4"
	e.bucket.PutGenerated(key, 1<<30) // 1 GiB: fetching it whole would take seconds
	resp, body := e.do(t, "GET", "/"+key, "Range", "bytes=-1000")
	if resp.StatusCode != 206 || len(body) != 1000 {
		t.Fatalf("status %d, %d bytes", resp.StatusCode, len(body))
	}
	for i, b := range body {
		if b != origintest.PatternByte(1<<30-1000+int64(i)) {
			t.Fatalf("byte %d of the tail differs", i)
		}
	}
	if n := e.bucket.Sent(); n > 64<<10 {
		t.Errorf("the bucket sent %d bytes to serve a 1000-byte range", n)
	}
}

func TestConditionals(t *testing.T) {
	e, _, _ := seeded(t)
	for _, key := range []string{bucketKey, volumeKey} {
		first, _ := e.do(t, "GET", "/"+key)
		etag, lastMod := first.Header.Get("ETag"), first.Header.Get("Last-Modified")
		if etag == "" || lastMod == "" {
			t.Fatalf("GET %s: no validators", key)
		}
		for _, hdr := range [][]string{
			{"If-None-Match", etag},
			{"If-None-Match", `"nope", ` + etag},
			{"If-None-Match", "W/" + etag},
			{"If-None-Match", "*"},
			{"If-Modified-Since", lastMod},
			{"If-Modified-Since", time.Now().UTC().Format(http.TimeFormat)},
		} {
			before := e.bucket.Gets(key)
			resp, body := e.do(t, "GET", "/"+key, hdr...)
			if resp.StatusCode != 304 || len(body) != 0 {
				t.Errorf("GET %s %s: %s: status %d, %d bytes; want 304 without body", key, hdr[0], hdr[1], resp.StatusCode, len(body))
			}
			if resp.Header.Get("ETag") != etag {
				t.Errorf("304 for %s: ETag %q, want %q", key, resp.Header.Get("ETag"), etag)
			}
			if n := e.bucket.Gets(key) - before; n != 0 {
				t.Errorf("304 for %s fetched the body from the bucket %d times", key, n)
			}
		}
		for _, hdr := range [][]string{
			{"If-None-Match", `"other"`},
			{"If-Modified-Since", "Mon, 01 Jan 2001 00:00:00 GMT"},
			{"If-None-Match", `"other"`, "If-Modified-Since", lastMod}, // If-None-Match decides
		} {
			resp, _ := e.do(t, "GET", "/"+key, hdr...)
			if resp.StatusCode != 200 {
				t.Errorf("GET %s %v: status %d, want 200", key, hdr, resp.StatusCode)
			}
		}
		// If-Range: the range applies only while the validator is current.
		resp, body := e.do(t, "GET", "/"+key, "Range", "bytes=0-9", "If-Range", etag)
		if resp.StatusCode != 206 || len(body) != 10 {
			t.Errorf("GET %s with a current If-Range: status %d, %d bytes", key, resp.StatusCode, len(body))
		}
		resp, body = e.do(t, "GET", "/"+key, "Range", "bytes=0-9", "If-Range", `"stale"`)
		if resp.StatusCode != 200 || int64(len(body)) != first.ContentLength {
			t.Errorf("GET %s with a stale If-Range: status %d, %d bytes; want the whole object", key, resp.StatusCode, len(body))
		}
		resp, _ = e.do(t, "GET", "/"+key, "Range", "bytes=0-9", "If-Range", lastMod)
		if resp.StatusCode != 206 {
			t.Errorf("GET %s with If-Range = Last-Modified: status %d, want 206", key, resp.StatusCode)
		}
	}
}

func TestNotFoundAndMethods(t *testing.T) {
	e, _, _ := seeded(t)
	resp, body := e.do(t, "GET", "/media_attachments/files/000/000/001/original/0000000000000000.png")
	if resp.StatusCode != 404 || len(body) == 0 || len(body) > 64 {
		t.Errorf("missing key: status %d, body %q", resp.StatusCode, body)
	}
	for _, m := range []string{"POST", "PUT", "DELETE", "PATCH", "OPTIONS"} {
		resp, _ := e.do(t, m, "/"+bucketKey)
		if resp.StatusCode != 405 || resp.Header.Get("Allow") != "GET, HEAD" {
			t.Errorf("%s: status %d, Allow %q; want 405 with Allow: GET, HEAD", m, resp.StatusCode, resp.Header.Get("Allow"))
		}
	}
}

func TestNoListing(t *testing.T) {
	e, _, _ := seeded(t)
	for _, p := range []string{"/", "/?max-keys=1", "/?max-keys=1&x-random=42", "/?list-type=2", "/media_attachments/", "/media_attachments/files/?delimiter=/", "/" + testBucket + "/", "/" + testBucket + "?max-keys=1"} {
		resp, body := e.do(t, "GET", p)
		if resp.StatusCode != 404 {
			t.Errorf("GET %s: status %d, want 404", p, resp.StatusCode)
		}
		for _, leak := range []string{"ListBucketResult", "Contents", "media_attachments", "<Key>"} {
			if bytes.Contains(body, []byte(leak)) {
				t.Errorf("GET %s: body %q lists something (%s)", p, body, leak)
			}
		}
	}
	if n := e.bucket.TotalGets(); n != 0 {
		t.Errorf("listing attempts reached the bucket %d times", n)
	}
}

func TestDenyPrefixes(t *testing.T) {
	e := newEnv(t)
	for _, key := range []string{"backups/dumps/000/000/001/original/export.zip", "imports/000/000/001/follows.csv"} {
		e.bucket.Put(t, key, []byte("private export"))
		e.putVolume(t, key, []byte("private export"))
		for _, m := range []string{"GET", "HEAD"} {
			resp, body := e.do(t, m, "/"+key)
			if resp.StatusCode != 404 || bytes.Contains(body, []byte("private")) {
				t.Errorf("%s %s: status %d, body %q; want 404", m, key, resp.StatusCode, body)
			}
		}
	}
	if n := e.bucket.TotalGets(); n != 0 {
		t.Errorf("denied keys reached the bucket %d times", n)
	}
}

func TestTraversalNeverEscapesTheVolume(t *testing.T) {
	e, _, _ := seeded(t)
	parent := filepath.Dir(e.volDir)
	// Symlinks inside the volume that point out of it.
	if err := os.Symlink(filepath.Join(parent, "canary"), filepath.Join(e.volDir, "abs-link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../canary", filepath.Join(e.volDir, "rel-link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(parent, filepath.Join(e.volDir, "dir-link")); err != nil {
		t.Fatal(err)
	}
	for _, target := range []string{
		"/../canary", "/%2e%2e/canary", "/%2e%2e%2fcanary", "/..%2fcanary", "/%2E%2E/canary",
		"/a/../../canary", "/media_attachments/%2e%2e/%2e%2e/canary",
		"/..%5ccanary", "/%5c..%5ccanary", "/a%5c..%5c..%5ccanary",
		"/canary%00.png", "/%00../canary",
		"/%c0%ae%c0%ae/canary", "/%c0%ae%c0%ae%c0%afcanary", "/%e0%80%ae%e0%80%ae/canary",
		"//etc/passwd", "///canary", "/%2fetc/passwd", "/%2f..%2fcanary",
		"/abs-link", "/rel-link", "/dir-link/canary", "/dir-link/system/abs-link",
		"/system/../canary", "/" + testBucket + "/../canary", "/%252e%252e/canary",
		"/etc/passwd", "http://x/../canary",
	} {
		status, body := e.raw(t, target)
		if bytes.Contains(body, e.canary) || bytes.Contains(body, []byte("root:")) {
			t.Errorf("GET %q returned bytes from outside the volume (status %d)", target, status)
		}
		if status != 400 && status != 404 {
			t.Errorf("GET %q: status %d, want 400 or 404", target, status)
		}
	}
}

func TestBucketDownVolumeStillServed(t *testing.T) {
	e, _, onVolume := seeded(t)
	e.bucket.Close() // the bucket is gone: connections refused
	resp, body := e.do(t, "GET", "/"+volumeKey)
	if resp.StatusCode != 200 || !bytes.Equal(body, onVolume[volumeKey]) || resp.Header.Get("X-Cache") != "FALLBACK" {
		t.Errorf("volume object with the bucket down: status %d, %d bytes, X-Cache %q", resp.StatusCode, len(body), resp.Header.Get("X-Cache"))
	}
	resp, body = e.do(t, "GET", "/"+bucketKey)
	if resp.StatusCode != 502 {
		t.Errorf("bucket-only object with the bucket down: status %d, want 502", resp.StatusCode)
	}
	if bytes.Contains(body, []byte("127.0.0.1")) || bytes.Contains(body, []byte("refused")) {
		t.Errorf("502 body %q reveals the cause", body)
	}
}

func TestBucketErrorsAndTimeouts(t *testing.T) {
	e, _, onVolume := seeded(t, func(c *envConfig) { c.s3.Timeout = 300 * time.Millisecond })
	e.bucket.SetMode(origintest.Fail500)
	resp, body := e.do(t, "GET", "/"+volumeKey)
	if resp.StatusCode != 200 || !bytes.Equal(body, onVolume[volumeKey]) {
		t.Errorf("bucket 500, object on the volume: status %d", resp.StatusCode)
	}
	resp, _ = e.do(t, "GET", "/"+bucketKey)
	if resp.StatusCode != 502 {
		t.Errorf("bucket 500, object not on the volume: status %d, want 502", resp.StatusCode)
	}
	e.bucket.SetMode(origintest.Stall)
	resp, _ = e.do(t, "GET", "/"+volumeKey)
	if resp.StatusCode != 200 {
		t.Errorf("bucket stalls, object on the volume: status %d, want 200", resp.StatusCode)
	}
	resp, _ = e.do(t, "GET", "/"+bucketKey)
	if resp.StatusCode != 504 {
		t.Errorf("bucket stalls, object not on the volume: status %d, want 504", resp.StatusCode)
	}
}

func TestMetricsCountRequests(t *testing.T) {
	e, _, _ := seeded(t)
	e.do(t, "GET", "/"+bucketKey)
	e.do(t, "GET", "/"+volumeKey)
	e.do(t, "GET", "/nothing/here.png")
	families, err := e.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			labels := []string{f.GetName()}
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			v := m.GetCounter().GetValue()
			if m.Histogram != nil {
				v = float64(m.GetHistogram().GetSampleCount())
			}
			got[strings.Join(labels, ",")] = v
		}
	}
	for k, want := range map[string]float64{
		"fedicache_requests_total,source=bucket,status=200": 1,
		"fedicache_requests_total,source=volume,status=200": 1,
		"fedicache_requests_total,source=none,status=404":   1,
		"fedicache_response_bytes_total,source=bucket":      200_000,
		"fedicache_response_bytes_total,source=volume":      300_000,
	} {
		if got[k] != want {
			t.Errorf("%s = %v, want %v", k, got[k], want)
		}
	}
	// The bucket's latency histogram is the command's (cmd/fedicache, TestServeMetrics).
}
