package cache_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/fedicache/fedicache/cache/tiertest"
	"github.com/fedicache/fedicache/origin"
	"github.com/fedicache/fedicache/origin/origintest"
)

// TestIntegrityCorruptBody: the bucket sends an object with one byte altered (right
// length, an MD5 ETag that no longer matches). Whatever the byte (first, middle, last), the
// size (in the memory tier or not) and the number of clients, and whether a client reads while
// the fetch streams or only once it has ended, no client receives all the bytes: each sees its
// read fail, as an HTTP client sees the connection cut. Nothing is cached; once the bucket sends
// the right bytes, they are served.
func TestIntegrityCorruptBody(t *testing.T) {
	// "etag": the cache checks the MD5 its ETag gives; "checksum": the bucket's answer also
	// carries a checksum of the whole object, which the bucket client checks instead.
	for _, check := range []string{"etag", "checksum"} {
		for _, size := range []int{20_000, 300_000} { // under and over the memory tier's limit
			for _, clients := range []int{1, 100} {
				for _, pos := range []string{"first", "middle", "last"} {
					t.Run(fmt.Sprintf("%s, %d bytes, %d clients, %s byte", check, size, clients, pos), func(t *testing.T) {
						h := newHarness(t, harnessOpts{})
						data := tiertest.Blob(9, size)
						if check == "etag" {
							h.bucket.Put(t, bigKey, data)
						} else {
							h.bucket.PutWithChecksum(t, bigKey, data, origintest.CRC64NVME, false)
						}
						off := map[string]int64{"first": 0, "middle": int64(size / 2), "last": int64(size - 1)}[pos]
						h.bucket.CorruptBody(bigKey, off)
						gate := h.bucket.GateBody(bigKey, int64(size/3))
						bodies := make([]io.ReadCloser, clients)
						for i := range bodies {
							body, m, err := h.l.Get(context.Background(), bigKey, nil)
							if err != nil {
								t.Fatalf("client %d: %v", i, err)
							}
							if m.Size != int64(size) {
								t.Fatalf("client %d: size %d", i, m.Size)
							}
							bodies[i] = body
						}
						got := make([]int, clients)
						errs := make([]error, clients)
						var wg sync.WaitGroup
						read := func(i int) {
							defer wg.Done()
							defer bodies[i].Close()
							b, err := io.ReadAll(bodies[i])
							got[i], errs[i] = len(b), err
						}
						// Half the clients read as the body streams; the others only once the fetch
						// has ended and found the damage.
						for i := 0; i < clients; i += 2 {
							wg.Add(1)
							go read(i)
						}
						gate.Open()
						if clients == 1 {
							wg.Wait()
						}
						h.l.Settle()
						for i := 1; i < clients; i += 2 {
							wg.Add(1)
							go read(i)
						}
						wg.Wait()
						for i := range clients {
							if errs[i] == nil || got[i] >= size {
								t.Fatalf("client %d received %d of %d bytes with %v: a damaged body looked complete", i, got[i], size, errs[i])
							}
						}
						if st := h.l.Stats(); st.Memory.Entries != 0 || st.Disk.Entries != 0 || st.FillErrors == 0 {
							t.Errorf("a damaged body was cached: memory %d, disk %d, fill errors %d", st.Memory.Entries, st.Disk.Entries, st.FillErrors)
						}
						h.bucket.CorruptBody(bigKey, -1)
						b, from, err := h.get(t, bigKey)
						if err != nil || string(b) != string(data) || from.Source != origin.SourceBucket {
							t.Errorf("after the bucket healed: %d bytes, %v, source %q", len(b), err, from.Source)
						}
					})
				}
			}
		}
	}
}

// TestIntegrityLateReader is the order the harness found: the fetch ends (and finds the damage)
// before the only client reads a byte; the client must not get the last byte.
func TestIntegrityLateReader(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	data := tiertest.Blob(10, 5_000)
	h.bucket.Put(t, smallKey, data)
	h.bucket.CorruptBody(smallKey, int64(len(data)-1))
	body, _, err := h.l.Get(context.Background(), smallKey, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer body.Close()
	h.l.Settle() // the fetch has the whole body and has checked it
	b, err := io.ReadAll(body)
	if err == nil || len(b) >= len(data) || errors.Is(err, io.EOF) {
		t.Fatalf("a late reader got %d of %d bytes, %v", len(b), len(data), err)
	}
}

// TestIntegrityRevalidationNeverConfirmsDamage: a disk entry too large to be checked on every hit
// (served by sendfile) whose bytes rotted on the disk is not confirmed fresh by the bucket's
// "unchanged" at its revalidation: it is dropped and fetched again.
func TestIntegrityRevalidationNeverConfirmsDamage(t *testing.T) {
	h := newHarness(t, harnessOpts{noMemory: true})
	data := tiertest.Blob(11, 3<<20)
	h.bucket.Put(t, bigKey, data)
	h.get(t, bigKey)
	if _, from, _ := h.get(t, bigKey); from.Source != "disk" {
		t.Fatalf("not on disk: %q", from.Source)
	}
	p := entryFile(t, h.diskDir)
	overwrite(t, p, int64(len(data)/2), []byte{'!'})
	h.clock.Advance(2 * time.Hour) // past the TTL
	b, from, err := h.get(t, bigKey)
	if err != nil || !bytes.Equal(b, data) || from.Source != origin.SourceBucket {
		t.Errorf("after its revalidation: %d bytes (right %v), %v, source %q; want the bucket's bytes", len(b), bytes.Equal(b, data), err, from.Source)
	}
	if n := h.bucket.Gets(bigKey); n != 2 {
		t.Errorf("%d bucket GETs, want 2 (the fill, the refetch)", n)
	}
}
