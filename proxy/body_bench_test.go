//go:build unix

package proxy

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/fedicache/fedicache/cache"
	"github.com/fedicache/fedicache/cache/tiertest"
	"github.com/fedicache/fedicache/origin"
	"github.com/valyala/fasthttp"
)

// benchmarkBody streams size bytes from the body open returns through setBody and fasthttp's
// writer of an answer to a loopback connection, as the server writes a miss, a promoted disk
// hit or a ranged disk hit.
func benchmarkBody(b *testing.B, size int, src origin.Source, open func() io.ReadCloser) {
	s := New(nil, Config{}, nil)
	s.log = discardLogger()
	conn := loopback(b)
	var ctx fasthttp.RequestCtx
	ctx.Init2(conn, nil, false)
	bw := bufio.NewWriterSize(conn, 4096) // fasthttp's default write buffer
	var m origin.Meta
	b.SetBytes(int64(size))
	b.ReportAllocs()
	cpu := cpuTime()
	for b.Loop() {
		ctx.Response.Reset()
		s.setObjectHeaders(&ctx.Response.Header, &m, origin.From{Source: src}, "")
		ctx.Response.Header.SetContentType("image/png")
		_, cancel := context.WithCancel(context.Background())
		s.setBody(&ctx, open(), int64(size), src, hitKey, cancel)
		if err := ctx.Response.Write(bw); err != nil {
			b.Fatal(err)
		}
		if err := bw.Flush(); err != nil {
			b.Fatal(err)
		}
	}
	reportCPU(b, cpu)
}

// cpuTime returns the CPU time the process has used, in user and system mode.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU reports the process's CPU time per iteration since since: on a shared machine a
// steadier figure than the wall time (it counts the reading side of a loopback too).
func reportCPU(b *testing.B, since time.Duration) {
	b.ReportMetric(float64(cpuTime()-since)/float64(b.N), "cpu-ns/op")
}

func BenchmarkBodyStream(b *testing.B) {
	for _, size := range []int{100_000, 4 << 20} {
		data := tiertest.Blob(1, size)
		name := "-" + sizeName(size)
		b.Run("miss"+name, func(b *testing.B) {
			var body plainBody
			benchmarkBody(b, size, origin.SourceBucket, func() io.ReadCloser {
				body.b = data
				return &body
			})
		})
		b.Run("memory"+name, func(b *testing.B) {
			var r bytes.Reader
			benchmarkBody(b, size, cache.SourceDisk, func() io.ReadCloser {
				r.Reset(data)
				return io.NopCloser(&r)
			})
		})
		b.Run("filerange"+name, func(b *testing.B) {
			path := filepath.Join(b.TempDir(), "object")
			if err := os.WriteFile(path, data, 0o600); err != nil {
				b.Fatal(err)
			}
			benchmarkBody(b, size, cache.SourceDisk, func() io.ReadCloser {
				f, err := os.Open(path)
				if err != nil {
					b.Fatal(err)
				}
				return origin.FileRange(f, int64(size))
			})
		})
	}
}

func sizeName(n int) string {
	if n >= 1<<20 {
		return strconv.Itoa(n>>20) + "MiB"
	}
	return strconv.Itoa(n/1000) + "kB"
}
