package proxy_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/fedicache/fedicache/cache/tiertest"
	"github.com/fedicache/fedicache/origin/origintest"
)

func TestCacheHitHeadersAndTiers(t *testing.T) {
	e := newEnv(t, withCache)
	small := tiertest.Blob(1, 30_000)
	large := tiertest.Blob(2, 3<<20) // beyond the memory tier's object limit
	const largeKey = "media_attachments/files/000/000/002/original/2222222222222222.mp4"
	e.bucket.Put(t, bucketKey, small)
	e.bucket.Put(t, largeKey, large)
	e.putVolume(t, volumeKey, []byte("old volume bytes"))

	for _, tc := range []struct {
		key         string
		data        []byte
		first, tier string
	}{
		{bucketKey, small, "MISS", "memory"},
		{largeKey, large, "MISS", "disk"},
		{volumeKey, []byte("old volume bytes"), "FALLBACK", "memory"},
	} {
		resp, body := e.do(t, "GET", "/"+tc.key)
		if resp.StatusCode != 200 || !bytes.Equal(body, tc.data) || resp.Header.Get("X-Cache") != tc.first {
			t.Fatalf("first GET %s: %d, %d bytes, X-Cache %q", tc.key, resp.StatusCode, len(body), resp.Header.Get("X-Cache"))
		}
		for _, m := range []string{"GET", "HEAD"} {
			resp, body = e.do(t, m, "/"+tc.key)
			want := tc.data
			if m == "HEAD" {
				want = nil
			}
			if resp.StatusCode != 200 || !bytes.Equal(body, want) || resp.ContentLength != int64(len(tc.data)) {
				t.Errorf("%s %s from the cache: %d, %d bytes, Content-Length %d", m, tc.key, resp.StatusCode, len(body), resp.ContentLength)
			}
			tier := resp.Header.Get("X-Cache-Tier")
			// The memory tier (ristretto) may drop a write under load; the disk tier then
			// answers and puts the object back in memory.
			if resp.Header.Get("X-Cache") != "HIT" || tier != tc.tier && !(tc.tier == "memory" && tier == "disk") {
				t.Errorf("%s %s: X-Cache %q, X-Cache-Tier %q; want HIT from %s", m, tc.key, resp.Header.Get("X-Cache"), tier, tc.tier)
			}
			for _, h := range []string{"ETag", "Last-Modified", "Cache-Control", "Access-Control-Allow-Origin", "Content-Security-Policy", "X-Content-Type-Options"} {
				if resp.Header.Get(h) == "" {
					t.Errorf("%s %s from the cache: no %s", m, tc.key, h)
				}
			}
		}
		// Ranges and conditionals on hits.
		resp, body = e.do(t, "GET", "/"+tc.key, "Range", "bytes=5-14")
		if resp.StatusCode != 206 || !bytes.Equal(body, tc.data[5:15]) || resp.Header.Get("Content-Range") != fmt.Sprintf("bytes 5-14/%d", len(tc.data)) {
			t.Errorf("range on a hit of %s: %d, %q, Content-Range %q", tc.key, resp.StatusCode, body, resp.Header.Get("Content-Range"))
		}
		resp, _ = e.do(t, "GET", "/"+tc.key, "Range", fmt.Sprintf("bytes=%d-", len(tc.data)))
		if resp.StatusCode != 416 || resp.Header.Get("Content-Range") != fmt.Sprintf("bytes */%d", len(tc.data)) {
			t.Errorf("416 on a hit of %s: %d, Content-Range %q", tc.key, resp.StatusCode, resp.Header.Get("Content-Range"))
		}
		resp, _ = e.do(t, "GET", "/"+tc.key)
		etag := resp.Header.Get("ETag")
		resp, body = e.do(t, "GET", "/"+tc.key, "If-None-Match", etag)
		if resp.StatusCode != 304 || len(body) != 0 {
			t.Errorf("If-None-Match on a hit of %s: %d, %d bytes", tc.key, resp.StatusCode, len(body))
		}
		resp, _ = e.do(t, "GET", "/"+tc.key, "If-Modified-Since", resp.Header.Get("Last-Modified"))
		if resp.StatusCode != 304 {
			t.Errorf("If-Modified-Since on a hit of %s: %d", tc.key, resp.StatusCode)
		}
	}
	if n := e.bucket.Gets(bucketKey) + e.bucket.Gets(largeKey); n != 2 {
		t.Errorf("%d bucket GETs, want 2 (one per object)", n)
	}
	// The cache's metrics are registered by the command (cmd/fedicache, TestServeMetrics).
}

// TestTruncatedOriginAbortsTheClient: a body the bucket cuts short reaches the client as a
// broken connection, never as a complete-looking 200, with or without the cache.
func TestTruncatedOriginAbortsTheClient(t *testing.T) {
	for _, opts := range [][]envOption{nil, {withCache}} {
		e := newEnv(t, opts...)
		data := tiertest.Blob(3, 2<<20)
		e.bucket.Put(t, bucketKey, data)
		e.bucket.CutBody(bucketKey, 1<<20)
		resp, err := e.client.Get(e.url + "/" + bucketKey)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err == nil {
			t.Errorf("cache %v: a cut body read as complete: status %d, %d of %d bytes", opts != nil, resp.StatusCode, len(got), len(data))
		}
		e.bucket.CutBody(bucketKey, 0)
		resp2, body := e.do(t, "GET", "/"+bucketKey)
		if !bytes.Equal(body, data) || resp2.Header.Get("X-Cache") != "MISS" {
			t.Errorf("cache %v: after the cut: %d bytes, X-Cache %q (the cut body must not be cached)", opts != nil, len(body), resp2.Header.Get("X-Cache"))
		}
	}
}

func TestPurgeEndpoint(t *testing.T) {
	e := newEnv(t, withCache)
	e.bucket.Put(t, bucketKey, []byte("purge me"))
	e.do(t, "GET", "/"+bucketKey)
	if resp, _ := e.do(t, "GET", "/"+bucketKey); resp.Header.Get("X-Cache") != "HIT" {
		t.Fatalf("not cached: X-Cache %q", resp.Header.Get("X-Cache"))
	}
	e.cache.Settle() // the disk hit's promotion into memory is taken in after its answer
	for _, tc := range []struct {
		auth   string
		status int
	}{
		{"", http.StatusUnauthorized},
		{"Basic Zm9vOmJhcg==", http.StatusUnauthorized},
		{"Bearer wrong-token", http.StatusForbidden},
		{"Bearer s3cret-token-longer", http.StatusForbidden},
	} {
		if status, _ := e.AdminDo(t, "POST", "/purge?key="+bucketKey, tc.auth); status != tc.status {
			t.Errorf("purge with Authorization %q: %d, want %d", tc.auth, status, tc.status)
		}
	}
	if resp, _ := e.do(t, "GET", "/"+bucketKey); resp.Header.Get("X-Cache") != "HIT" {
		t.Fatal("a refused purge removed the entry")
	}
	status, body := e.AdminDo(t, "POST", "/purge?key="+bucketKey, "Bearer s3cret-token")
	if status != 200 || !strings.Contains(body, `"purged":2`) { // its memory and disk entries
		t.Errorf("purge: %d %s", status, body)
	}
	if resp, _ := e.do(t, "GET", "/"+bucketKey); resp.Header.Get("X-Cache") != "MISS" {
		t.Errorf("after purge: X-Cache %q, want MISS", resp.Header.Get("X-Cache"))
	}
	e.cache.Settle() // the fetch stores the object after its client has the bytes
	if resp, _ := e.do(t, "GET", "/"+bucketKey); resp.Header.Get("X-Cache-Tier") != "disk" {
		t.Errorf("after the miss: X-Cache-Tier %q, want disk (which puts it in memory too)", resp.Header.Get("X-Cache-Tier"))
	}
	e.cache.Settle()
	status, body = e.AdminDo(t, "POST", "/purge?prefix=media_attachments/", "Bearer s3cret-token")
	if status != 200 || !strings.Contains(body, `"purged":2`) {
		t.Errorf("purge by prefix: %d %s", status, body)
	}
	if status, _ := e.AdminDo(t, "POST", "/purge", "Bearer s3cret-token"); status != 400 {
		t.Errorf("purge without key or prefix: %d, want 400", status)
	}

	noToken := newEnv(t, withCache, func(c *envConfig) { c.admin.Token = "" })
	if status, _ := noToken.AdminDo(t, "POST", "/purge?key=x", "Bearer "); status != 404 {
		t.Errorf("purge with no token configured: %d, want 404", status)
	}
}

// TestCorruptOriginNeverCompletes: the bucket sends an object with one byte altered (its MD5
// ETag no longer matches). Through the cache, every client over HTTP sees the transfer fail,
// never a complete 200 with the wrong bytes, whichever byte it is and however large the object.
func TestCorruptOriginNeverCompletes(t *testing.T) {
	e := newEnv(t, withCache)
	for _, size := range []int{30_000, 2 << 20} { // in the memory tier; disk only
		for _, off := range []int{0, size / 2, size - 1} {
			key := fmt.Sprintf("media_attachments/files/000/%03d/%03d/original/0123456789abcdef.jpg", size%1000, off%997)
			data := tiertest.Blob(uint64(off), size)
			e.bucket.Put(t, key, data)
			e.bucket.CorruptBody(key, int64(off))
			var wg sync.WaitGroup
			for c := range 10 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					resp, err := e.client.Get(e.url + "/" + key)
					if err != nil {
						return // the connection failed: a failed transfer
					}
					got, err := io.ReadAll(resp.Body)
					resp.Body.Close()
					if err == nil && len(got) == size {
						t.Errorf("%d bytes, byte %d altered, client %d: a complete %d (%s, same bytes %v)",
							size, off, c, resp.StatusCode, resp.Header.Get("X-Cache"), bytes.Equal(got, data))
					}
				}()
			}
			wg.Wait()
			e.cache.Settle()
			e.bucket.CorruptBody(key, -1)
			if resp, body := e.do(t, "GET", "/"+key); resp.StatusCode != 200 || !bytes.Equal(body, data) || resp.Header.Get("X-Cache") != "MISS" {
				t.Errorf("%d bytes, byte %d altered, after the bucket healed: %d %q, right bytes %v", size, off, resp.StatusCode, resp.Header.Get("X-Cache"), bytes.Equal(body, data))
			}
		}
	}
}

// TestHeadOfEmptyObjectHasLength: a HEAD of a 0-byte object says Content-Length: 0 as its GET
// does, uncached, from the disk tier and from the memory hit path.
func TestHeadOfEmptyObjectHasLength(t *testing.T) {
	e := newEnv(t, withCache)
	e.bucket.Put(t, bucketKey, []byte{})
	for i := range 3 { // uncached, then cached (the memory hit path answers the third round)
		for _, method := range []string{"HEAD", "GET"} {
			resp, body := e.do(t, method, "/"+bucketKey)
			if resp.StatusCode != 200 || len(body) != 0 || len(resp.Header["Content-Length"]) != 1 || resp.Header.Get("Content-Length") != "0" {
				t.Errorf("%s #%d (%s): %d, Content-Length %q", method, i, resp.Header.Get("X-Cache"), resp.StatusCode, resp.Header["Content-Length"])
			}
		}
		e.cache.Settle()
	}
}

// TestCorruptMultipartObjectNeverCompletes: an object uploaded in parts (its ETag is no MD5)
// with a full-object checksum, sent with one byte altered: the checksum catches it, every client
// over HTTP sees the transfer fail, nothing is cached, and the right bytes are served once the
// bucket sends them.
func TestCorruptMultipartObjectNeverCompletes(t *testing.T) {
	e := newEnv(t, withCache)
	for i, size := range []int{30_000, 2 << 20} {
		key := fmt.Sprintf("media_attachments/files/000/777/%03d/original/0123456789abcdef.mp4", i)
		data := tiertest.Blob(uint64(77+i), size)
		e.bucket.PutWithChecksum(t, key, data, origintest.CRC64NVME, true)
		e.bucket.CorruptBody(key, int64(size-1))
		resp, err := e.client.Get(e.url + "/" + key)
		if err == nil {
			got, rerr := io.ReadAll(resp.Body)
			resp.Body.Close()
			if rerr == nil && len(got) == size {
				t.Errorf("%d bytes, last byte altered: a complete %d", size, resp.StatusCode)
			}
		}
		e.cache.Settle()
		e.bucket.CorruptBody(key, -1)
		if resp, body := e.do(t, "GET", "/"+key); resp.StatusCode != 200 || !bytes.Equal(body, data) || resp.Header.Get("X-Cache") != "MISS" {
			t.Errorf("%d bytes, after the bucket healed: %d %q, right bytes %v", size, resp.StatusCode, resp.Header.Get("X-Cache"), bytes.Equal(body, data))
		}
	}
}
