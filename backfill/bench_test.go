package backfill_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fedicache/fedicache/backfill"
	"github.com/fedicache/fedicache/cache/tiertest"
	"github.com/fedicache/fedicache/origin/origintest"
	"github.com/fedicache/fedicache/origin/s3"
	"github.com/fedicache/fedicache/origin/s3/s3test"
	"github.com/fedicache/fedicache/origin/volume"
)

// BenchmarkCopySmallFiles copies 10,000 files of 20 to 200 KB from a volume into an empty
// in-process fake bucket: one op is the whole copy. Its allocations are those of the backfill,
// the bucket client and the fake together; ns/file is the op divided by the files.
//
//	go test ./backfill -run '^$' -bench CopySmallFiles -benchtime 3x -benchmem
func BenchmarkCopySmallFiles(b *testing.B) {
	const n = 10_000
	dir := b.TempDir()
	files := map[string][]byte{}
	for i := range n {
		key := fmt.Sprintf("media_attachments/files/000/%03d/%03d/original/%016x.jpg", i/1000, i%1000, i*7919)
		files[key] = tiertest.Blob(uint64(i), 20_000+i*7919%180_000)
	}
	writeFiles(b, dir, files)
	vol, err := volume.Open(dir)
	if err != nil {
		b.Fatal(err)
	}
	defer vol.Close()
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		fake := origintest.NewFakeBucket(b)
		bucket := s3test.New(b, fake)
		runtime.GC()
		b.StartTimer()
		p := backfill.NewProgress()
		if err := backfill.Run(context.Background(), vol, bucket, backfill.Config{ACL: backfill.MastodonACL, Concurrency: 8}, p); err != nil {
			b.Fatal(err)
		}
		if s := p.Snapshot(); s.Copied != n {
			b.Fatalf("copied %d of %d: %+v", s.Copied, n, s)
		}
		b.StopTimer()
		fake.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/file")
}

// BenchmarkRerunLargeVolume runs the backfill over a volume of FEDICACHE_BACKFILL_LARGE files
// (1,000,000 for the figure the README gives) whose every key the bucket already holds: nothing
// is copied. It runs twice: the first run is one walk of the volume merged with one listing of
// the bucket, and keeps the record of its ranges; the second trusts the record and only walks.
// It reports the seconds of each, the peak Go heap and the peak RSS of the process. It is
// skipped unless FEDICACHE_BACKFILL_LARGE is set; the volume is built in a temporary directory,
// or once in FEDICACHE_BACKFILL_LARGE_DIR and reused from there.
//
// The bucket is a fake S3 over real HTTP that answers ListObjectsV2 from the same generator
// the volume was built from, without storing the keys, so that the heap measured is the
// backfill's and the client's, not a million objects of a fake.
//
//	FEDICACHE_BACKFILL_LARGE=1000000 go test ./backfill -run '^$' -bench RerunLargeVolume -benchtime 1x
func BenchmarkRerunLargeVolume(b *testing.B) {
	n, _ := strconv.Atoi(os.Getenv("FEDICACHE_BACKFILL_LARGE"))
	if n <= 0 {
		b.Skip("set FEDICACHE_BACKFILL_LARGE to the number of files, e.g. 1000000")
	}
	dir := os.Getenv("FEDICACHE_BACKFILL_LARGE_DIR")
	if dir == "" {
		dir = b.TempDir()
	}
	start := time.Now()
	built := buildLargeVolume(b, dir, n)
	b.Logf("volume of %d files ready in %s (built: %v)", n, time.Since(start).Round(time.Millisecond), built)
	vol, err := volume.Open(filepath.Join(dir, "volume"))
	if err != nil {
		b.Fatal(err)
	}
	defer vol.Close()
	bucket := s3test.NewFromConfig(b, s3.Config{
		Endpoint: listingFake(b, n), Bucket: origintest.BucketName, ForcePathStyle: true,
		AccessKeyID: s3test.AccessKeyID, SecretAccessKey: s3test.SecretAccessKey, Timeout: s3test.Timeout,
	})
	var secs, recordSecs float64
	var heap, rss uint64
	for b.Loop() {
		// The first run lists the whole bucket, and keeps the record of its ranges; the
		// second trusts it, and lists nothing.
		rec := &memRanges{}
		for i, timed := range []*float64{&secs, &recordSecs} {
			runtime.GC()
			peak := watchPeak()
			t0 := time.Now()
			p := backfill.NewProgress()
			if err := backfill.Run(context.Background(), vol, bucket, backfill.Config{ACL: backfill.MastodonACL, Ranges: rec}, p); err != nil {
				b.Fatal(err)
			}
			*timed = time.Since(t0).Seconds()
			h, r := peak()
			heap, rss = max(heap, h), max(rss, r)
			if s := p.Snapshot(); s.Present != int64(n) || s.Scanned != int64(n) || s.Unlisted != int64(i*n) || s.Copied != 0 || s.Conflicts != 0 || s.Failed != 0 {
				b.Fatalf("run %d: %+v", i+1, s)
			}
		}
	}
	b.ReportMetric(secs, "s/run-listing")
	b.ReportMetric(recordSecs, "s/run-on-record")
	b.ReportMetric(float64(heap)/(1<<20), "MiB-peak-heap")
	b.ReportMetric(float64(rss)/(1<<20), "MiB-peak-RSS")
}

// largeKey is the i-th key of the large volume, in key order: two styles of attachment i/2.
func largeKey(i int) string {
	id := i / 2
	style := [2]string{"original", "small"}[i%2]
	return fmt.Sprintf("media_attachments/files/%03d/%03d/%03d/%s/%016x.jpg", id/1_000_000, id/1000%1000, id%1000, style, id)
}

// buildLargeVolume makes the n empty files of largeKey in dir/volume, unless a marker beside
// it says it did before, and reports whether it built them now.
func buildLargeVolume(b *testing.B, dir string, n int) bool {
	marker := filepath.Join(dir, ".built-"+strconv.Itoa(n))
	if _, err := os.Stat(marker); err == nil {
		return false
	}
	var wg sync.WaitGroup
	var failed atomic.Value
	const builders = 8
	for w := range builders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := w; id < (n+1)/2; id += builders {
				for s := range 2 {
					if 2*id+s >= n {
						break
					}
					p := filepath.Join(dir, "volume", filepath.FromSlash(largeKey(2*id+s)))
					if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
						failed.Store(err)
						return
					}
					f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY, 0o644)
					if err != nil {
						failed.Store(err)
						return
					}
					f.Close()
				}
			}
		}()
	}
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(marker, nil, 0o600); err != nil {
		b.Fatal(err)
	}
	return true
}

// listingFake serves, over real HTTP, a bucket that holds the n keys of largeKey (empty
// objects): ListObjectsV2 made up from the generator, page by page, and an empty list of
// multipart uploads. It returns its endpoint.
func listingFake(b *testing.B, n int) string {
	const emptyETag = `"d41d8cd98f00b204e9800998ecf8427e"`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		get := q.Get
		w.Header().Set("Content-Type", "application/xml")
		if q.Has("uploads") {
			io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><ListMultipartUploadsResult><Bucket>media</Bucket><IsTruncated>false</IsTruncated></ListMultipartUploadsResult>`)
			return
		}
		if r.Method != http.MethodGet || get("list-type") != "2" {
			http.Error(w, "<Error><Code>NotImplemented</Code></Error>", http.StatusNotImplemented)
			return
		}
		from, _ := strconv.Atoi(get("continuation-token"))
		maxKeys, _ := strconv.Atoi(get("max-keys"))
		if maxKeys <= 0 || maxKeys > 1000 {
			maxKeys = 1000
		}
		to := min(from+maxKeys, n)
		var sb strings.Builder
		sb.WriteString(`<?xml version="1.0" encoding="UTF-8"?><ListBucketResult><Name>media</Name>`)
		fmt.Fprintf(&sb, "<KeyCount>%d</KeyCount><MaxKeys>%d</MaxKeys>", to-from, maxKeys)
		if to < n {
			fmt.Fprintf(&sb, "<IsTruncated>true</IsTruncated><NextContinuationToken>%d</NextContinuationToken>", to)
		} else {
			sb.WriteString("<IsTruncated>false</IsTruncated>")
		}
		for i := from; i < to; i++ {
			fmt.Fprintf(&sb, "<Contents><Key>%s</Key><LastModified>2024-05-01T12:00:00.000Z</LastModified><ETag>%s</ETag><Size>0</Size><StorageClass>STANDARD</StorageClass></Contents>",
				largeKey(i), emptyETag)
		}
		sb.WriteString("</ListBucketResult>")
		io.WriteString(w, sb.String())
	}))
	b.Cleanup(srv.Close)
	return srv.URL
}

// watchPeak samples the Go heap (live and unswept objects) every 20ms from now on, after
// resetting the process's peak RSS (Linux: /proc/self/clear_refs), and returns the func that
// stops and reports both peaks.
func watchPeak() func() (heap, rss uint64) {
	_ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	var peak atomic.Uint64
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			metrics.Read(sample)
			if v := sample[0].Value.Uint64(); v > peak.Load() {
				peak.Store(v)
			}
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	return func() (uint64, uint64) {
		close(stop)
		<-done
		return peak.Load(), peakRSS()
	}
}

// peakRSS returns the process's peak resident set (VmHWM), 0 where /proc does not say.
func peakRSS() uint64 {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(status), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}
