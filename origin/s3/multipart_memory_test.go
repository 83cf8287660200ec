package s3

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/fedicache/fedicache/origin"
)

// TestPutMultipartMemory checks that the memory a multipart Put allocates grows with its
// number of parts, by a small cost per request, and not with its bytes, which go from the body
// to the connection without being copied into memory of the uploader's own:
//   - 64 MiB in 4 parts of 16 MiB allocates less than 1 MiB more than 16 MiB in 4 parts of
//     5 MiB (buffered parts would take 48 MiB more);
//   - each part costs less than 256 KiB (64 MiB in 13 parts of 5 MiB against 16 MiB in 4);
//   - 64 MiB in 13 parts allocates less than 4 MiB in all.
//
// gofakes3 keeps every part in memory, so the bucket is a front that answers the upload's
// requests and drops the parts' bytes; the memory counted is the whole process's, client and
// that front together.
func TestPutMultipartMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("sends 160 MiB")
	}
	endpoint := newDiscardingBucket(t)
	small := newTestBucket(t, multipartConfig(endpoint))
	cfg := multipartConfig(endpoint)
	cfg.PartSize = 16 << 20
	large := newTestBucket(t, cfg)
	put := func(b *Bucket, size int64) int64 {
		t.Helper()
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		if err := b.Put(context.Background(), bigKey, io.NewSectionReader(patternBody{}, 0, size), size, origin.PutOptions{}); err != nil {
			t.Fatalf("Put of %d bytes: %v", size, err)
		}
		runtime.ReadMemStats(&after)
		return int64(after.TotalAlloc - before.TotalAlloc)
	}
	// The first Puts set up the connections and the SDK's caches.
	put(small, 16<<20)
	put(large, 32<<20)
	fourSmall, fourLarge, thirteenSmall := put(small, 16<<20), put(large, 64<<20), put(small, 64<<20)
	perPart := (thirteenSmall - fourSmall) / 9
	t.Logf("allocated %d KiB for 16 MiB in 4 parts, %d KiB for 64 MiB in 4 parts, %d KiB for 64 MiB in 13 parts (%d KiB a part)",
		fourSmall>>10, fourLarge>>10, thirteenSmall>>10, perPart>>10)
	if fourLarge-fourSmall >= 1<<20 {
		t.Errorf("64 MiB in 4 parts allocated %d bytes more than 16 MiB in 4 parts, want under 1 MiB", fourLarge-fourSmall)
	}
	if perPart >= 256<<10 {
		t.Errorf("each part allocated %d bytes, want under 256 KiB", perPart)
	}
	if thirteenSmall >= 4<<20 {
		t.Errorf("64 MiB in 13 parts allocated %d bytes, want under 4 MiB", thirteenSmall)
	}
}

// BenchmarkPutMultipart reports the memory a multipart Put allocates per upload, which should
// stay the same from one object size to the next, against a front that drops the parts.
func BenchmarkPutMultipart(b *testing.B) {
	endpoint := newDiscardingBucket(b)
	for _, size := range []int64{16 << 20, 64 << 20} {
		b.Run(fmt.Sprintf("%dMiB", size>>20), func(b *testing.B) {
			bucket := newBenchBucket(b, multipartConfig(endpoint))
			b.ReportAllocs()
			b.SetBytes(size)
			for b.Loop() {
				if err := bucket.Put(context.Background(), bigKey, io.NewSectionReader(patternBody{}, 0, size), size, origin.PutOptions{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// newBenchBucket is newTestBucket for a benchmark, with the host's AWS settings kept out as
// hermetic does.
func newBenchBucket(b *testing.B, cfg Config) *Bucket {
	b.Helper()
	dir := b.TempDir()
	b.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	b.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "config"))
	b.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "credentials"))
	b.Setenv("AWS_PROFILE", "")
	bucket, err := New(context.Background(), cfg)
	if err != nil {
		b.Fatalf("New: %v", err)
	}
	return bucket
}

// newDiscardingBucket serves the requests of a multipart upload over HTTP, reading each part's
// body and keeping none of it, and returns its URL.
func newDiscardingBucket(tb testing.TB) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		c := callOf(r)
		switch {
		case isCreateUpload(c):
			fmt.Fprint(w, `<?xml version="1.0" encoding="UTF-8"?><InitiateMultipartUploadResult><UploadId>discarded</UploadId></InitiateMultipartUploadResult>`)
		case isUploadPart(c):
			w.Header().Set("ETag", `"`+c.Query.Get("partNumber")+`"`)
		case isComplete(c):
			fmt.Fprint(w, `<?xml version="1.0" encoding="UTF-8"?><CompleteMultipartUploadResult><ETag>"discarded"</ETag></CompleteMultipartUploadResult>`)
		default:
			writeError(w, http.StatusNotImplemented, "NotImplemented")
		}
	}))
	tb.Cleanup(srv.Close)
	return srv.URL
}
