package s3

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/fedicache/fedicache/origin"
)

// TestPutMultipartCompleteFails checks that a completion failing every attempt fails the Put
// with the bucket's error and aborts the upload: no object, no pending upload.
func TestPutMultipartCompleteFails(t *testing.T) {
	f := newWriteFake(t)
	f.fail(-1, http.StatusInternalServerError, "InternalError", func(r *http.Request) bool {
		return isComplete(callOf(r))
	})
	cfg := multipartConfig(f.srv.URL)
	cfg.MaxBackoff = 10 * time.Millisecond
	b := newTestBucket(t, cfg)
	data := bigBody()
	err := b.Put(context.Background(), bigKey, bytes.NewReader(data), int64(len(data)), origin.PutOptions{IfNoneMatch: true})
	if err == nil || errors.Is(err, origin.ErrExists) || errorCode(err) != "InternalError" {
		t.Fatalf("Put with a failing completion: err %v, want the completion's InternalError", err)
	}
	if n := len(f.requests(isComplete)); n != DefaultMaxAttempts {
		t.Errorf("the completion was tried %d times, want %d", n, DefaultMaxAttempts)
	}
	if aborts := f.requests(isAbort); len(aborts) != 1 || aborts[0].Status != http.StatusNoContent {
		t.Errorf("aborts %+v, want one answered 204", aborts)
	}
	if _, err := f.objectBytes(bigKey); err == nil {
		t.Error("a failed multipart Put left an object")
	}
	if keys := pendingUploads(t, b); len(keys) != 0 {
		t.Errorf("a failed multipart Put left uploads pending: %v", keys)
	}
}

// TestPutMultipartKeyTakenDuringUpload checks a conditional Put whose key another writer takes
// while its parts go up: the parts are sent, the completion is refused (If-None-Match: *),
// Put returns origin.ErrExists, the upload is aborted and the other writer's object is intact.
func TestPutMultipartKeyTakenDuringUpload(t *testing.T) {
	f := newWriteFake(t)
	var (
		once   sync.Once
		putErr error
	)
	f.fail(-1, 0, "", func(r *http.Request) bool {
		if isUploadPart(callOf(r)) {
			once.Do(func() {
				other := []byte("the other writer's")
				_, putErr = f.backend.PutObject(testBucket, bigKey, nil, bytes.NewReader(other), int64(len(other)), nil)
			})
		}
		return false
	})
	b := newTestBucket(t, multipartConfig(f.srv.URL))
	data := bigBody()
	err := b.Put(context.Background(), bigKey, bytes.NewReader(data), int64(len(data)), origin.PutOptions{IfNoneMatch: true})
	once.Do(func() {}) // waits for the other writer's put, if it ran
	if putErr != nil {
		t.Fatalf("the other writer's put: %v", putErr)
	}
	if !errors.Is(err, origin.ErrExists) {
		t.Fatalf("conditional Put onto a key taken during the upload: err %v, want origin.ErrExists", err)
	}
	if got, _ := f.objectBytes(bigKey); string(got) != "the other writer's" {
		t.Errorf("the key holds %d bytes after the refused completion, want the other writer's object", len(got))
	}
	if n := len(f.requests(isUploadPart)); n != 3 {
		t.Errorf("%d parts sent, want all 3: only the completion is conditional", n)
	}
	completes := f.requests(isComplete)
	if len(completes) != 1 || completes[0].Header.Get("If-None-Match") != "*" || completes[0].Status != http.StatusPreconditionFailed {
		t.Errorf("completions %+v, want one with If-None-Match: * answered 412", completes)
	}
	if aborts := f.requests(isAbort); len(aborts) != 1 || aborts[0].Status != http.StatusNoContent {
		t.Errorf("aborts %+v, want one answered 204", aborts)
	}
	if keys := pendingUploads(t, b); len(keys) != 0 {
		t.Errorf("a refused multipart Put left uploads pending: %v", keys)
	}
}

// TestPutMultipartCanceledInFlight checks that a caller giving up while a part is on its way
// (not between attempts, as TestPutMultipartCanceled does) fails the Put with
// context.Canceled, sends no more parts and no completion, and aborts the upload.
func TestPutMultipartCanceledInFlight(t *testing.T) {
	f := newWriteFake(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f.fail(-1, 0, "", func(r *http.Request) bool {
		if isUploadPart(callOf(r)) && r.URL.Query().Get("partNumber") == "2" {
			cancel() // the request goes on to the bucket, which takes its body as the client drops it
		}
		return false
	})
	b := newTestBucket(t, multipartConfig(f.srv.URL))
	data := bigBody()
	err := b.Put(ctx, bigKey, bytes.NewReader(data), int64(len(data)), origin.PutOptions{})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Put canceled during a part: err %v, want context.Canceled", err)
	}
	if len(f.requests(isComplete)) != 0 {
		t.Error("a canceled upload was completed")
	}
	if aborts := f.requests(isAbort); len(aborts) != 1 || aborts[0].Status != http.StatusNoContent {
		t.Errorf("aborts %+v, want one answered 204", aborts)
	}
	if keys := pendingUploads(t, b); len(keys) != 0 {
		t.Errorf("a canceled multipart Put left uploads pending: %v", keys)
	}
	if _, err := f.objectBytes(bigKey); err == nil {
		t.Error("a canceled multipart Put left an object")
	}
}

// TestPutMultipartAbortFails checks that an upload whose abort fails too says so, keeping the
// first error, and that AbortStaleUploads sweeps the upload left behind.
func TestPutMultipartAbortFails(t *testing.T) {
	f := newWriteFake(t)
	f.fail(-1, http.StatusInternalServerError, "InternalError", func(r *http.Request) bool {
		return isUploadPart(callOf(r)) && r.URL.Query().Get("partNumber") == "3"
	})
	f.fail(-1, http.StatusServiceUnavailable, "ServiceUnavailable", func(r *http.Request) bool {
		return isAbort(callOf(r))
	})
	cfg := multipartConfig(f.srv.URL)
	cfg.MaxBackoff = 10 * time.Millisecond
	b := newTestBucket(t, cfg)
	data := bigBody()
	err := b.Put(context.Background(), bigKey, bytes.NewReader(data), int64(len(data)), origin.PutOptions{})
	if err == nil || errorCode(err) != "InternalError" {
		t.Fatalf("Put with a failing part and abort: err %v, want the part's InternalError", err)
	}
	if keys := pendingUploads(t, b); len(keys) != 1 {
		t.Fatalf("uploads pending after a failed abort: %v, want the one", keys)
	}
	f.mu.Lock()
	f.faults = nil
	f.mu.Unlock()
	if n, err := b.AbortStaleUploads(context.Background(), 0); n != 1 || err != nil {
		t.Errorf("AbortStaleUploads: %d, %v; want 1 aborted", n, err)
	}
	if keys := pendingUploads(t, b); len(keys) != 0 {
		t.Errorf("uploads pending after the sweep: %v", keys)
	}
}
