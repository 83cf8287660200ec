package s3_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/fedicache/fedicache/origin"
	"github.com/fedicache/fedicache/origin/origintest"
	"github.com/fedicache/fedicache/origin/s3"
	"github.com/fedicache/fedicache/origin/s3/s3test"
)

// observed records what a Bucket tells Config.Observe.
type observed struct {
	mu   sync.Mutex
	ops  []string
	errs []error
}

func (o *observed) observe(op string, _ time.Duration, err error) {
	o.mu.Lock()
	o.ops = append(o.ops, op)
	o.errs = append(o.errs, err)
	o.mu.Unlock()
}

// failed returns how many observed requests failed, and how many there were.
func (o *observed) failed() (failed, all int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, err := range o.errs {
		if err != nil {
			failed++
		}
	}
	return failed, len(o.errs)
}

// checksumBucket returns a Bucket on fb that reports to obs, with cfg's other settings changed
// by edit when it is not nil.
func checksumBucket(t *testing.T, fb *origintest.FakeBucket, obs *observed, edit func(*s3.Config)) *s3.Bucket {
	t.Helper()
	return s3test.New(t, fb, func(c *s3.Config) {
		if obs != nil {
			c.Observe = obs.observe
		}
		if edit != nil {
			edit(c)
		}
	})
}

// randomBytes returns n bytes that differ from run to run of no test.
func randomBytes(n int) []byte {
	rnd := rand.New(rand.NewPCG(7, uint64(n)))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rnd.UintN(256))
	}
	return b
}

// drain reads body to its end as the cache's fill does, 32 KiB at a time until an error, and
// returns the bytes and the error that ended it (io.EOF for a body read whole).
func drain(t *testing.T, body io.ReadCloser) ([]byte, error) {
	t.Helper()
	defer body.Close()
	var got []byte
	buf := make([]byte, 32<<10)
	for {
		n, err := body.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			return got, err
		}
	}
}

// getWhole sends a whole-object Get of key and fails the test when the Get itself fails.
func getWhole(t *testing.T, b *s3.Bucket, key string) io.ReadCloser {
	t.Helper()
	body, _, err := b.Get(context.Background(), key, nil)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	return body
}

// TestChecksumCatchesCorruption alters one byte of a multipart-style object (an ETag that is no
// MD5, so only the checksum can tell) on its way from the bucket: at the first, a middle and
// the last byte, for every algorithm. The body's final Read must fail with ErrChecksumMismatch,
// never end in io.EOF, and the Get itself must be a success for Observe.
func TestChecksumCatchesCorruption(t *testing.T) {
	data := randomBytes(200_003) // several reads, the last one short
	for _, algo := range origintest.ChecksumAlgorithms {
		t.Run(algo, func(t *testing.T) {
			const key = "media_attachments/files/000/000/001/original/a.mp4"
			fb := origintest.NewFakeBucket(t)
			fb.PutWithChecksum(t, key, data, algo, true)
			obs := &observed{}
			b := checksumBucket(t, fb, obs, nil)

			body, m, err := b.Get(context.Background(), key, nil)
			if err != nil {
				t.Fatalf("Get: %v", err)
			}
			if _, isMD5 := origin.ETagMD5(m.ETag); isMD5 {
				t.Fatalf("ETag %s is an MD5: the object must look multipart", m.ETag)
			}
			if c, ok := body.(origin.CheckedBody); !ok || !c.BodyChecked() {
				t.Errorf("the body does not say it is checked against its %s", algo)
			}
			if got, err := drain(t, body); err != io.EOF || !bytes.Equal(got, data) {
				t.Fatalf("uncorrupted body: %d bytes, %v; want all %d and io.EOF", len(got), err, len(data))
			}

			for _, off := range []int64{0, int64(len(data)) / 2, int64(len(data)) - 1} {
				fb.CorruptBody(key, off)
				got, err := drain(t, getWhole(t, b, key))
				if !errors.Is(err, s3.ErrChecksumMismatch) {
					t.Errorf("byte %d altered: the body ended with %v after %d bytes, want ErrChecksumMismatch", off, err, len(got))
				}
				if errors.Is(err, io.EOF) {
					t.Errorf("byte %d altered: the error %v is io.EOF for errors.Is", off, err)
				}
				if int64(len(got)) != m.Size || bytes.Equal(got, data) {
					t.Errorf("byte %d altered: read %d bytes (equal to the object: %v), want all %d, altered",
						off, len(got), bytes.Equal(got, data), m.Size)
				}
			}

			fb.CorruptBody(key, -1)
			if got, err := drain(t, getWhole(t, b, key)); err != io.EOF || !bytes.Equal(got, data) {
				t.Errorf("corruption stopped: %d bytes, %v; want all %d and io.EOF", len(got), err, len(data))
			}
			if failed, all := obs.failed(); failed != 0 || all != 5 {
				t.Errorf("Observe was told of %d requests, %d failed; want 5, none failed (a bad body is no failed request)", all, failed)
			}
			if n := fb.ChecksumModeRequests(); n != 5 {
				t.Errorf("%d requests asked for checksums, want the 5 whole-object Gets", n)
			}
		})
	}
}

// TestChecksumRangedGet: a range asks for no checksum (S3 sends none for it) and is served.
func TestChecksumRangedGet(t *testing.T) {
	const key = "a.mp4"
	data := randomBytes(100_000)
	fb := origintest.NewFakeBucket(t)
	fb.PutWithChecksum(t, key, data, origintest.CRC32C, true)
	b := checksumBucket(t, fb, nil, nil)
	body, m, err := b.Get(context.Background(), key, &origin.Range{Start: 1000, End: 50_999})
	if err != nil {
		t.Fatalf("ranged Get: %v", err)
	}
	if c, ok := body.(origin.CheckedBody); ok && c.BodyChecked() {
		t.Error("a range says it is checked against the whole object's checksum")
	}
	if got, err := drain(t, body); err != io.EOF || !bytes.Equal(got, data[1000:51_000]) {
		t.Errorf("ranged Get: %d bytes, %v; want the 50000 of the range and io.EOF", len(got), err)
	}
	if m.Size != int64(len(data)) {
		t.Errorf("ranged Get: size %d, want %d", m.Size, len(data))
	}
	if n := fb.ChecksumModeRequests(); n != 0 {
		t.Errorf("%d ranged requests asked for checksums, want none", n)
	}
}

// TestChecksumNoneToCheck: objects the bucket keeps no checksum of read as before, the checksum
// asked for all the same.
func TestChecksumNoneToCheck(t *testing.T) {
	data := randomBytes(70_000)
	fb := origintest.NewFakeBucket(t)
	fb.Put(t, "plain.png", data)
	fb.PutGenerated("generated.mp4", 150_000) // an ETag that is no MD5, and no checksum
	b := checksumBucket(t, fb, nil, nil)
	plain := getWhole(t, b, "plain.png")
	if c, ok := plain.(origin.CheckedBody); ok && c.BodyChecked() {
		t.Error("a body without a checksum says it is checked")
	}
	if got, err := drain(t, plain); err != io.EOF || !bytes.Equal(got, data) {
		t.Errorf("object without checksum: %d bytes, %v; want all %d and io.EOF", len(got), err, len(data))
	}
	if got, err := drain(t, getWhole(t, b, "generated.mp4")); err != io.EOF || len(got) != 150_000 {
		t.Errorf("generated object: %d bytes, %v; want 150000 and io.EOF", len(got), err)
	}
	if n := fb.ChecksumModeRequests(); n != 2 || !b.ChecksumsAsked() {
		t.Errorf("%d requests asked for checksums (ChecksumsAsked %v), want 2 (true)", n, b.ChecksumsAsked())
	}
}

// TestChecksumComposite: a COMPOSITE checksum is one of the parts' checksums, not of the body:
// the body cannot be checked against it, with or without the "-N" suffix, and reads to its end.
// A FULL_OBJECT checksum that the body does not match fails it.
func TestChecksumComposite(t *testing.T) {
	const key = "a.mp4"
	data := randomBytes(90_000)
	fb := origintest.NewFakeBucket(t)
	fb.PutWithChecksum(t, key, data, origintest.CRC32, true)
	b := checksumBucket(t, fb, nil, nil)
	for _, tc := range []struct {
		name, value, typ string
		fails            bool
	}{
		{"composite", origintest.CompositeChecksum(t, origintest.CRC32, data[:50_000], data[50_000:]), "COMPOSITE", false},
		{"composite without its type", origintest.CompositeChecksum(t, origintest.CRC32, data[:50_000], data[50_000:]), "", false},
		{"composite without its suffix", origintest.Checksum(t, origintest.CRC32, []byte("parts")), "COMPOSITE", false},
		{"full object, of other bytes", origintest.Checksum(t, origintest.CRC32, []byte("other")), "FULL_OBJECT", true},
		{"of other bytes, without a type", origintest.Checksum(t, origintest.CRC32, []byte("other")), "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fb.SetChecksum(key, origintest.CRC32, tc.value, tc.typ)
			got, err := drain(t, getWhole(t, b, key))
			if tc.fails {
				if !errors.Is(err, s3.ErrChecksumMismatch) {
					t.Errorf("body ended with %v, want ErrChecksumMismatch", err)
				}
				return
			}
			if err != io.EOF || !bytes.Equal(got, data) {
				t.Errorf("%d bytes, %v; want all %d and io.EOF", len(got), err, len(data))
			}
		})
	}
}

// TestChecksumCutBody: a body cut short is a broken transfer, not a checksum mismatch.
func TestChecksumCutBody(t *testing.T) {
	const key = "a.mp4"
	fb := origintest.NewFakeBucket(t)
	fb.PutWithChecksum(t, key, randomBytes(100_000), origintest.SHA256, true)
	fb.CutBody(key, 40_000)
	b := checksumBucket(t, fb, nil, nil)
	got, err := drain(t, getWhole(t, b, key))
	if err == nil || err == io.EOF || errors.Is(err, s3.ErrChecksumMismatch) {
		t.Errorf("body cut after %d bytes ended with %v, want a transfer error", len(got), err)
	}
}

// TestChecksumModeRefused plays the services that refuse x-amz-checksum-mode: the refused Get
// is sent again without it, once, the Bucket stops asking, and Observe hears of one request
// per Get, none failed.
func TestChecksumModeRefused(t *testing.T) {
	for _, status := range []int{http.StatusNotImplemented, http.StatusBadRequest} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			const key = "a.png"
			data := randomBytes(50_000)
			fb := origintest.NewFakeBucket(t)
			fb.PutWithChecksum(t, key, data, origintest.CRC32, false)
			fb.RefuseChecksumMode(status)
			obs := &observed{}
			b := checksumBucket(t, fb, obs, nil)
			if !b.ChecksumsAsked() {
				t.Fatal("ChecksumsAsked is false before any request")
			}
			for i := range 2 {
				if got, err := drain(t, getWhole(t, b, key)); err != io.EOF || !bytes.Equal(got, data) {
					t.Fatalf("Get %d: %d bytes, %v; want all %d and io.EOF", i, len(got), err, len(data))
				}
			}
			if asked, gets := fb.ChecksumModeRequests(), fb.Gets(key); asked != 1 || gets != 3 {
				t.Errorf("%d GETs, %d asking for checksums; want 3 (one refused, sent again) and 1", gets, asked)
			}
			if b.ChecksumsAsked() {
				t.Error("ChecksumsAsked is still true after the service refused the header")
			}
			if sv, err := b.StateView(); err != nil || sv.ChecksumsAsked() {
				t.Errorf("StateView: ChecksumsAsked %v (%v), want false: the refusal holds for it too", sv != nil && sv.ChecksumsAsked(), err)
			}
			if failed, all := obs.failed(); failed != 0 || all != 2 {
				t.Errorf("Observe was told of %d requests, %d failed; want 2, none failed", all, failed)
			}
		})
	}
}

// TestChecksumModeOtherErrors: an error that is no refusal of the header is not retried, and
// the Bucket goes on asking.
func TestChecksumModeOtherErrors(t *testing.T) {
	const key = "a.png"
	fb := origintest.NewFakeBucket(t)
	fb.PutWithChecksum(t, key, []byte("png"), origintest.CRC32, false)
	fb.FailKey(key, http.StatusForbidden)
	b := checksumBucket(t, fb, nil, nil)
	if body, _, err := b.Get(context.Background(), key, nil); err == nil {
		body.Close()
		t.Fatal("Get of a key answered 403 succeeded")
	}
	if _, _, err := b.Get(context.Background(), "missing.png", nil); !errors.Is(err, origin.ErrNotFound) {
		t.Errorf("Get of a missing key: %v, want ErrNotFound", err)
	}
	if gets := fb.Gets(key); gets != 1 || !b.ChecksumsAsked() {
		t.Errorf("%d GETs of the failing key (ChecksumsAsked %v), want 1 (true)", gets, b.ChecksumsAsked())
	}
}

// TestDisableChecksumMode: with the setting, whole-object Gets do not ask, and so cannot tell
// an altered body.
func TestDisableChecksumMode(t *testing.T) {
	const key = "a.mp4"
	data := randomBytes(60_000)
	fb := origintest.NewFakeBucket(t)
	fb.PutWithChecksum(t, key, data, origintest.CRC32, true)
	fb.CorruptBody(key, 10)
	b := checksumBucket(t, fb, nil, func(c *s3.Config) { c.DisableChecksumMode = true })
	if b.ChecksumsAsked() {
		t.Error("ChecksumsAsked with DisableChecksumMode")
	}
	if got, err := drain(t, getWhole(t, b, key)); err != io.EOF || len(got) != len(data) {
		t.Errorf("%d bytes, %v; want all %d and io.EOF, unchecked", len(got), err, len(data))
	}
	if n := fb.ChecksumModeRequests(); n != 0 {
		t.Errorf("%d requests asked for checksums, want none", n)
	}
}

// TestChecksumMultipartETagRevalidates: the multipart-style ETag the fake answers with is the one
// revalidation compares (gofakes3 alone knows only the MD5).
func TestChecksumMultipartETagRevalidates(t *testing.T) {
	const key = "a.mp4"
	fb := origintest.NewFakeBucket(t)
	fb.PutWithChecksum(t, key, randomBytes(1000), origintest.SHA1, true)
	b := checksumBucket(t, fb, nil, nil)
	ctx := context.Background()
	m, err := b.Stat(ctx, key)
	if err != nil {
		t.Fatalf("Stat: %v", err)
	}
	if _, unchanged, err := b.Revalidate(ctx, key, m.ETag); err != nil || !unchanged {
		t.Errorf("Validate(%s): unchanged %v, %v; want true", m.ETag, unchanged, err)
	}
}
