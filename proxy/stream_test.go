package proxy_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"runtime"
	"testing"
	"time"

	"github.com/fedicache/fedicache/origin/origintest"
)

// TestHugeObjectStreamsWithFlatMemory sends a 2 GiB object, generated on the fly by the bucket,
// through the front and checks every byte while the heap stays within 64 MiB of where it began.
func TestHugeObjectStreamsWithFlatMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("streams 2 GiB")
	}
	e := newEnv(t)
	const key = "media_attachments/files/000/000/077/original/7777777777777777.mp4"
	const size = int64(2 << 30)
	e.bucket.PutGenerated(key, size)

	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapInuse
	peak := make(chan uint64)
	stop := make(chan struct{})
	go func() {
		var max uint64
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				peak <- max
				return
			case <-tick.C:
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				max = maxOf(max, ms.HeapInuse)
			}
		}
	}()

	resp, err := e.client.Get(e.url + "/" + key)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.ContentLength != size {
		t.Fatalf("status %d, Content-Length %d", resp.StatusCode, resp.ContentLength)
	}
	buf := make([]byte, 1<<20)
	want := make([]byte, 1<<20)
	var off int64
	for {
		n, err := io.ReadFull(resp.Body, buf)
		if n > 0 {
			(&origintest.Pattern{Off: off}).Read(want[:n])
			if !bytes.Equal(buf[:n], want[:n]) {
				t.Fatalf("bytes differ in the MiB at offset %d", off)
			}
			off += int64(n)
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			break
		}
		if err != nil {
			t.Fatalf("after %d bytes: %v", off, err)
		}
	}
	close(stop)
	max := <-peak
	if off != size {
		t.Fatalf("received %d bytes, want %d", off, size)
	}
	growth := int64(max) - int64(base)
	t.Logf("2 GiB streamed; heap in use grew by %.1f MiB at most", float64(growth)/(1<<20))
	if growth > 64<<20 {
		t.Errorf("heap in use grew by %d MiB while streaming, bound 64 MiB", growth>>20)
	}
}

func maxOf(a, b uint64) uint64 {
	if a > b {
		return a
	}
	return b
}

// TestClientLeavingCancelsBucketRequest checks that a client that goes away mid-download ends
// the bucket request instead of letting it run to the end of a large object.
func TestClientLeavingCancelsBucketRequest(t *testing.T) {
	e := newEnv(t)
	const key = "media_attachments/files/000/000/078/original/8888888888888888.mp4"
	const size = int64(4 << 30)
	e.bucket.PutGenerated(key, size)

	conn, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(conn, "GET /"+key+" HTTP/1.1\r\nHost: media.example\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	if _, err := io.CopyN(io.Discard, conn, 1<<20); err != nil {
		t.Fatal(err)
	}
	conn.Close()

	select {
	case err := <-e.bucket.Ended():
		if !errors.Is(err, context.Canceled) {
			t.Errorf("the bucket request ended with %v, want it canceled", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the bucket request still runs 20s after the client left")
	}
	if sent := e.bucket.Sent(); sent > size/4 {
		t.Errorf("the bucket sent %d MiB of a %d MiB object to a client that left after 1 MiB", sent>>20, size>>20)
	}
	// The front still serves.
	resp, err := e.client.Head(e.url + "/" + key)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("HEAD after the client left: %v %v", resp, err)
	}
}
