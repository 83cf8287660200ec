package origintest

import (
	"bytes"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"hash"
	"hash/crc32"
	"hash/crc64"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// The checksum algorithms of S3's additional checksums that Checksum knows, as they appear in
// the x-amz-checksum-<algo> headers.
const (
	CRC32     = "crc32"
	CRC32C    = "crc32c"
	CRC64NVME = "crc64nvme"
	SHA1      = "sha1"
	SHA256    = "sha256"
)

// ChecksumAlgorithms lists the algorithms Checksum knows.
var ChecksumAlgorithms = []string{CRC32, CRC32C, CRC64NVME, SHA1, SHA256}

// crc64NVME is the CRC-64/NVME polynomial, reversed, as crc64.MakeTable takes it.
const crc64NVME = 0x9a6c_9329_ac4b_c9b5

// newChecksum returns the hash of algo, or nil for an algorithm it does not know.
func newChecksum(algo string) hash.Hash {
	switch strings.ToLower(algo) {
	case CRC32:
		return crc32.NewIEEE()
	case CRC32C:
		return crc32.New(crc32.MakeTable(crc32.Castagnoli))
	case CRC64NVME:
		return crc64.New(crc64.MakeTable(crc64NVME))
	case SHA1:
		return sha1.New()
	case SHA256:
		return sha256.New()
	}
	return nil
}

// Checksum returns data's checksum by algo (CRC32, CRC32C, ...) as S3 sends it in an
// x-amz-checksum-<algo> header: base64 of the big-endian sum. It fails the test for an algorithm
// it does not know.
func Checksum(t testing.TB, algo string, data []byte) string {
	t.Helper()
	h := newChecksum(algo)
	if h == nil {
		t.Fatalf("origintest: no checksum algorithm %q (known: %v)", algo, ChecksumAlgorithms)
	}
	h.Write(data)
	return base64.StdEncoding.EncodeToString(h.Sum(nil))
}

// CompositeChecksum returns the checksum S3 gives an object uploaded in parts with a COMPOSITE
// checksum: the checksum of the parts' checksums (raw, one after the other), in base64, with
// "-<number of parts>" after it.
func CompositeChecksum(t testing.TB, algo string, parts ...[]byte) string {
	t.Helper()
	var sums []byte
	for _, p := range parts {
		raw, err := base64.StdEncoding.DecodeString(Checksum(t, algo, p))
		if err != nil {
			t.Fatal(err)
		}
		sums = append(sums, raw...)
	}
	return Checksum(t, algo, sums) + "-" + strconv.Itoa(len(parts))
}

// fakeChecksum is what a FakeBucket's answers for one key carry besides gofakes3's.
type fakeChecksum struct {
	header string // x-amz-checksum-<algo>, or "" for none
	value  string
	typ    string // x-amz-checksum-type, or "" for none
	// etag replaces gofakes3's ETag (the body's MD5) in GET and HEAD answers when set;
	// md5ETag is gofakes3's, which a conditional request for etag is translated to.
	etag, md5ETag string
}

// PutWithChecksum stores data under the bucket key key as Put does, with its checksum by algo
// (CRC32, CRC32C, CRC64NVME, SHA1, SHA256), as S3 keeps the checksum of an object uploaded
// with one: a GET or HEAD that asks for checksums (x-amz-checksum-mode: ENABLED) and carries no
// Range is answered with x-amz-checksum-<algo> (base64 of the checksum of the whole of data)
// and x-amz-checksum-type: FULL_OBJECT; other requests get neither, as S3 answers. With
// multipartETag its ETag is not the MD5 of data but `"<hex>-3"`, as for a multipart upload, so
// that the ETag cannot check the body; conditional requests (If-None-Match) compare against it.
// CorruptBody alters the body and leaves these headers right.
func (b *FakeBucket) PutWithChecksum(t testing.TB, key string, data []byte, algo string, multipartETag bool) {
	t.Helper()
	b.Put(t, key, data)
	sum := md5.Sum(data)
	c := fakeChecksum{
		header: "x-amz-checksum-" + strings.ToLower(algo),
		value:  Checksum(t, algo, data),
		typ:    "FULL_OBJECT",
	}
	if multipartETag {
		c.md5ETag = `"` + hex.EncodeToString(sum[:]) + `"`
		c.etag = `"` + hex.EncodeToString(sum[:]) + `-3"`
	}
	b.mu.Lock()
	b.sums[key] = c
	b.mu.Unlock()
}

// SetChecksum makes the GET and HEAD answers for the bucket key key that ask for checksums,
// and carry no Range, carry x-amz-checksum-<algo>: value and, when typ is not empty,
// x-amz-checksum-type: typ, whatever the body: a COMPOSITE checksum ("<base64>-N"), one the
// body does not match, or one of a service that labels its checksums oddly. An empty algo
// stops it; the ETag stays as PutWithChecksum set it.
func (b *FakeBucket) SetChecksum(key, algo, value, typ string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	c := b.sums[key]
	c.header, c.value, c.typ = "", "", ""
	if algo != "" {
		c.header, c.value, c.typ = "x-amz-checksum-"+strings.ToLower(algo), value, typ
	}
	b.sums[key] = c
}

// RefuseChecksumMode makes every request carrying x-amz-checksum-mode answer as services
// without checksums do: status 501 with "NotImplemented: Header 'x-amz-checksum-mode' with
// value 'ENABLED' not implemented" (the form of Cloudflare R2's refusals of x-amz-checksum-*
// headers), 400 with Backblaze B2's "InvalidArgument: Unsupported header 'x-amz-checksum-mode'
// received for this API call.". The request is counted as any other. Status 0 stops it.
func (b *FakeBucket) RefuseChecksumMode(status int) {
	b.mu.Lock()
	b.refuseSums = status
	b.mu.Unlock()
}

// ChecksumModeRequests returns how many requests carried x-amz-checksum-mode.
func (b *FakeBucket) ChecksumModeRequests() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.sumAsks
}

// refuseChecksumMode answers r as RefuseChecksumMode's status says.
func refuseChecksumMode(w http.ResponseWriter, r *http.Request, status int) {
	code, msg := "NotImplemented", "Header 'x-amz-checksum-mode' with value '"+
		r.Header.Get("X-Amz-Checksum-Mode")+"' not implemented"
	if status != http.StatusNotImplemented {
		code, msg = "InvalidArgument", "Unsupported header 'x-amz-checksum-mode' received for this API call."
	}
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		var body bytes.Buffer
		body.WriteString(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>` + code + `</Code><Message>`)
		body.WriteString(strings.ReplaceAll(msg, "'", "&apos;"))
		body.WriteString(`</Message></Error>`)
		_, _ = w.Write(body.Bytes())
	}
}

// headers returns the function that sets c's headers on a 2xx answer to r, or nil when
// c changes nothing for r.
func (c fakeChecksum) headers(r *http.Request) func(http.Header) {
	withSum := c.header != "" && strings.EqualFold(r.Header.Get("X-Amz-Checksum-Mode"), "ENABLED") &&
		r.Header.Get("Range") == ""
	if !withSum && c.etag == "" {
		return nil
	}
	return func(h http.Header) {
		if c.etag != "" {
			h.Set("ETag", c.etag)
		}
		if withSum {
			h.Set(c.header, c.value)
			if c.typ != "" {
				h.Set("x-amz-checksum-type", c.typ)
			}
		}
	}
}
