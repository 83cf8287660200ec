package origintest

// What gofakes3 lacks of S3's copies and conditional multipart writes, in front of it: CopyObject
// with the metadata directive and If-None-Match, UploadPartCopy, If-None-Match on
// CompleteMultipartUpload, the canned ACL of a multipart upload, and Cache-Control kept with
// every object written.

import (
	"bytes"
	"cmp"
	"crypto/md5"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/johannesboyne/gofakes3"
)

// keptCacheControl is the metadata key under which a write's Cache-Control travels through
// gofakes3, which keeps only X-Amz-* headers and a few Content-* ones; keptHeaders turns it back
// into Cache-Control when the object is stored.
const keptCacheControl = "X-Amz-Meta-Fedicache-Fake-Cache-Control"

// keptHeaders is the FakeBucket's backend as gofakes3 sees it: it stores the Cache-Control of a
// write (see keptCacheControl) as S3 does, sent back with the object.
type keptHeaders struct{ *generated }

func (k keptHeaders) PutObject(bucket, key string, meta map[string]string, input io.Reader, size int64, conditions *gofakes3.PutConditions) (gofakes3.PutObjectResult, error) {
	if v, ok := meta[keptCacheControl]; ok {
		delete(meta, keptCacheControl)
		meta["Cache-Control"] = v
	}
	return k.generated.PutObject(bucket, key, meta, input, size, conditions)
}

// pendingUpload is what CreateMultipartUpload said of the object that completing it stores.
type pendingUpload struct{ acl string }

// copies returns next (gofakes3) behind the handling of copies and multipart uploads that
// gofakes3 lacks. It runs after serve's counting, faults and signature checks.
func (b *FakeBucket) copies(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := strings.TrimPrefix(r.URL.Path, "/"+BucketName+"/")
		q := r.URL.Query()
		if cc := r.Header.Get("Cache-Control"); cc != "" && (r.Method == http.MethodPut || r.Method == http.MethodPost) {
			r.Header.Set(keptCacheControl, cc)
		}
		switch {
		case r.Method == http.MethodPut && r.Header.Get("X-Amz-Copy-Source") != "" && q.Has("uploadId"):
			b.uploadPartCopy(next, w, r)
		case r.Method == http.MethodPut && r.Header.Get("X-Amz-Copy-Source") != "":
			b.copyObject(w, r, key)
		case r.Method == http.MethodPost && q.Has("uploads"):
			b.createUpload(next, w, r)
		case r.Method == http.MethodPost && q.Has("uploadId"):
			b.completeUpload(next, w, r, key, q.Get("uploadId"))
		default:
			next.ServeHTTP(w, r)
		}
	})
}

// copySource reads the object r's X-Amz-Copy-Source names, its bytes [first, last] (the whole
// object when last is negative), checking x-amz-copy-source-if-match. It answers the error
// itself and returns ok false when it cannot.
func (b *FakeBucket) copySource(w http.ResponseWriter, r *http.Request, first, last int64) (obj *gofakes3.Object, data []byte, ok bool) {
	src, err := url.PathUnescape(strings.TrimPrefix(r.Header.Get("X-Amz-Copy-Source"), "/"))
	bucket, key, found := strings.Cut(src, "/")
	if err != nil || !found {
		s3Error(w, http.StatusBadRequest, "InvalidArgument")
		return nil, nil, false
	}
	if bucket != BucketName {
		s3Error(w, http.StatusNotFound, "NoSuchBucket")
		return nil, nil, false
	}
	var rng *gofakes3.ObjectRangeRequest
	if last >= 0 {
		rng = &gofakes3.ObjectRangeRequest{Start: first, End: last}
	}
	obj, err = b.backend.GetObject(BucketName, key, rng)
	if err != nil {
		s3Error(w, http.StatusNotFound, "NoSuchKey")
		return nil, nil, false
	}
	defer obj.Contents.Close()
	if m := r.Header.Get("X-Amz-Copy-Source-If-Match"); m != "" && m != `"`+hex.EncodeToString(obj.Hash)+`"` {
		s3Error(w, http.StatusPreconditionFailed, "PreconditionFailed")
		return nil, nil, false
	}
	if data, err = io.ReadAll(obj.Contents); err != nil {
		s3Error(w, http.StatusInternalServerError, "InternalError")
		return nil, nil, false
	}
	return obj, data, true
}

// copyObject answers CopyObject: the source's bytes stored under key, with the source's
// metadata (x-amz-metadata-directive COPY, the default) or the request's (REPLACE), and refused
// with 412 when If-None-Match: * finds key holding an object. A copy stored takes the request's
// canned ACL (private without one), as S3 copies no ACL; one refused leaves key's as it was.
func (b *FakeBucket) copyObject(w http.ResponseWriter, r *http.Request, key string) {
	if r.Header.Get("If-None-Match") == "*" && b.exists(key) {
		s3Error(w, http.StatusPreconditionFailed, "PreconditionFailed")
		return
	}
	obj, data, ok := b.copySource(w, r, 0, -1)
	if !ok {
		return
	}
	meta := map[string]string{}
	if strings.EqualFold(r.Header.Get("X-Amz-Metadata-Directive"), "REPLACE") {
		for name, v := range r.Header {
			if strings.HasPrefix(name, "X-Amz-Meta-") || name == "Content-Type" || name == "Cache-Control" ||
				name == "Content-Disposition" || name == "Content-Encoding" {
				meta[name] = v[0]
			}
		}
		delete(meta, keptCacheControl)
	} else {
		for name, v := range obj.Metadata {
			meta[name] = v
		}
	}
	now := time.Now().UTC()
	meta["Last-Modified"] = now.Format(http.TimeFormat)
	if _, err := b.backend.PutObject(BucketName, key, meta, bytes.NewReader(data), int64(len(data)), nil); err != nil {
		s3Error(w, http.StatusInternalServerError, "InternalError")
		return
	}
	b.mu.Lock()
	delete(b.sums, key)
	b.acls[key] = cmp.Or(r.Header.Get("X-Amz-Acl"), "private")
	b.mu.Unlock()
	sum := md5.Sum(data)
	writeXML(w, gofakes3.CopyObjectResult{ETag: `"` + hex.EncodeToString(sum[:]) + `"`, LastModified: gofakes3.NewContentTime(now)})
}

// copyPartResult is the answer to UploadPartCopy.
type copyPartResult struct {
	XMLName      xml.Name `xml:"CopyPartResult"`
	ETag         string   `xml:"ETag"`
	LastModified string   `xml:"LastModified"`
}

// uploadPartCopy answers UploadPartCopy: the source's bytes in x-amz-copy-source-range (all of
// them without one) handed to gofakes3 as the body of an UploadPart.
func (b *FakeBucket) uploadPartCopy(next http.Handler, w http.ResponseWriter, r *http.Request) {
	first, last := int64(0), int64(-1)
	if rng := r.Header.Get("X-Amz-Copy-Source-Range"); rng != "" {
		a, z, ok := strings.Cut(strings.TrimPrefix(rng, "bytes="), "-")
		var err1, err2 error
		first, err1 = strconv.ParseInt(a, 10, 64)
		last, err2 = strconv.ParseInt(z, 10, 64)
		if !ok || err1 != nil || err2 != nil || first < 0 || last < first {
			s3Error(w, http.StatusBadRequest, "InvalidArgument")
			return
		}
	}
	_, data, ok := b.copySource(w, r, first, last)
	if !ok {
		return
	}
	part := r.Clone(r.Context())
	for name := range part.Header {
		if strings.HasPrefix(name, "X-Amz-Copy-Source") {
			part.Header.Del(name)
		}
	}
	part.Body = io.NopCloser(bytes.NewReader(data))
	part.ContentLength = int64(len(data))
	part.Header.Set("Content-Length", strconv.Itoa(len(data)))
	rec := httptest.NewRecorder()
	next.ServeHTTP(rec, part)
	if rec.Code != http.StatusOK {
		copyAnswer(w, rec)
		return
	}
	writeXML(w, copyPartResult{ETag: rec.Header().Get("ETag"), LastModified: time.Now().UTC().Format(time.RFC3339)})
}

// createUpload answers CreateMultipartUpload through gofakes3 and notes the upload's ACL.
func (b *FakeBucket) createUpload(next http.Handler, w http.ResponseWriter, r *http.Request) {
	rec := httptest.NewRecorder()
	next.ServeHTTP(rec, r)
	var res gofakes3.InitiateMultipartUploadResult
	if rec.Code == http.StatusOK && xml.Unmarshal(rec.Body.Bytes(), &res) == nil && res.UploadID != "" {
		b.mu.Lock()
		if b.uploads == nil {
			b.uploads = map[string]pendingUpload{}
		}
		b.uploads[string(res.UploadID)] = pendingUpload{acl: cmp.Or(r.Header.Get("X-Amz-Acl"), "private")}
		b.mu.Unlock()
	}
	copyAnswer(w, rec)
}

// completeUpload answers CompleteMultipartUpload through gofakes3, refusing it with 412 when
// If-None-Match: * finds key holding an object, and gives the object its upload's ACL.
func (b *FakeBucket) completeUpload(next http.Handler, w http.ResponseWriter, r *http.Request, key, id string) {
	if r.Header.Get("If-None-Match") == "*" && b.exists(key) {
		s3Error(w, http.StatusPreconditionFailed, "PreconditionFailed")
		return
	}
	rec := httptest.NewRecorder()
	next.ServeHTTP(rec, r)
	if rec.Code == http.StatusOK {
		b.mu.Lock()
		if up, ok := b.uploads[id]; ok {
			b.acls[key] = up.acl
			delete(b.uploads, id)
		}
		delete(b.sums, key)
		b.mu.Unlock()
	}
	copyAnswer(w, rec)
}

// exists reports whether the bucket key key holds an object.
func (b *FakeBucket) exists(key string) bool {
	_, err := b.backend.HeadObject(BucketName, key)
	return err == nil
}

// copyAnswer sends the answer rec recorded.
func copyAnswer(w http.ResponseWriter, rec *httptest.ResponseRecorder) {
	for name, v := range rec.Header() {
		w.Header()[name] = v
	}
	w.WriteHeader(rec.Code)
	_, _ = w.Write(rec.Body.Bytes())
}

// writeXML answers 200 with v as an XML document.
func writeXML(w http.ResponseWriter, v any) {
	body, err := xml.Marshal(v)
	if err != nil {
		s3Error(w, http.StatusInternalServerError, "InternalError")
		return
	}
	w.Header().Set("Content-Type", "application/xml")
	_, _ = io.WriteString(w, xml.Header)
	_, _ = w.Write(body)
}

// s3Error answers with an S3 error document of code.
func s3Error(w http.ResponseWriter, status int, code string) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	_, _ = fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>%s</Message></Error>`,
		code, http.StatusText(status))
}

// PutWithHeaders stores data under the bucket key key, as Put does, with the Content-Type and
// Cache-Control given (none when empty) rather than those of its extension.
func (b *FakeBucket) PutWithHeaders(t testing.TB, key string, data []byte, contentType, cacheControl string) {
	t.Helper()
	meta := map[string]string{"Last-Modified": time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC).Format(http.TimeFormat)}
	if contentType != "" {
		meta["Content-Type"] = contentType
	}
	if cacheControl != "" {
		meta["Cache-Control"] = cacheControl
	}
	if _, err := b.backend.PutObject(BucketName, key, meta, bytes.NewReader(data), int64(len(data)), nil); err != nil {
		t.Fatal(err)
	}
	b.mu.Lock()
	delete(b.sums, key)
	b.mu.Unlock()
	b.SetACL(key, "public-read")
}

// Object returns the bytes the bucket key key holds, or an error when it holds none.
func (b *FakeBucket) Object(key string) ([]byte, error) {
	obj, err := b.backend.GetObject(BucketName, key, nil)
	if err != nil {
		return nil, err
	}
	defer obj.Contents.Close()
	return io.ReadAll(obj.Contents)
}
