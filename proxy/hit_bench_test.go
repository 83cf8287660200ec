package proxy

import (
	"bytes"
	"context"
	"crypto/sha256"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"testing"
	"time"
	"unsafe"

	"github.com/fedicache/fedicache/cache"
	"github.com/fedicache/fedicache/cache/disk"
	"github.com/fedicache/fedicache/cache/memory"
	"github.com/fedicache/fedicache/cache/tiertest"
	"github.com/fedicache/fedicache/origin"
	"github.com/valyala/fasthttp"
)

const hitKey = "media_attachments/files/000/000/001/small/0123456789abcdef.png"

// noOrigin fails every request: the benchmarks only ever hit the tiers.
type noOrigin struct{}

func (noOrigin) Stat(context.Context, string) (origin.Meta, error) {
	return origin.Meta{}, origin.ErrNotFound
}
func (noOrigin) Get(context.Context, string, *origin.Range) (io.ReadCloser, origin.Meta, error) {
	return nil, origin.Meta{}, origin.ErrNotFound
}

// hitServer returns a Server whose cache holds hitKey (size bytes) in the tier asked for.
func hitServer(tb testing.TB, tier string, size int) *Server {
	tb.Helper()
	body := tiertest.Blob(1, size)
	e := tiertest.NewEntry(hitKey, body)
	e.ValidatedAt = time.Now()
	var l *cache.Layered
	switch tier {
	case "memory":
		m, err := memory.New(memory.Config{MaxBytes: 64 << 20, MaxObjectBytes: 1 << 20})
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(m.Close)
		m.Put(e, body)
		m.Wait()
		l = cache.New(origin.Fallback(noOrigin{}, nil), m, nil, cache.Config{Guard: tombstoneGuard()})
	case "disk":
		d, err := disk.Open(disk.Config{Dir: tb.TempDir(), MaxBytes: 1 << 30})
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { d.Close() })
		if err := d.Store(e, bytes.NewReader(body)); err != nil {
			tb.Fatal(err)
		}
		l = cache.New(origin.Fallback(noOrigin{}, nil), nil, d, cache.Config{})
	}
	s := New(l, Config{}, nil)
	s.log = discardLogger()
	return s
}

// hashGuard refuses the keys whose SHA-256 it holds, as cache/state does for tombstones: the
// memory hit path asks it on every hit.
type hashGuard map[[sha256.Size]byte]struct{}

func (g hashGuard) Check(key string) error {
	if _, ok := g[sha256.Sum256(unsafe.Slice(unsafe.StringData(key), len(key)))]; ok {
		return origin.ErrHidden
	}
	return nil
}

// Generation makes the guard's verdicts stand until it changes, as cache/state's do: the hit
// path checks an entry once, not on every hit.
func (hashGuard) Generation() uint64 { return 1 }

// tombstoneGuard returns a hashGuard holding ten thousand other keys.
func tombstoneGuard() hashGuard {
	g := hashGuard{}
	for i := range 10_000 {
		g[sha256.Sum256([]byte(strconv.Itoa(i)))] = struct{}{}
	}
	return g
}

// serveOnce runs the handler on ctx for a GET of hitKey with the given headers and checks
// the status.
func serveOnce(tb testing.TB, s *Server, ctx *fasthttp.RequestCtx, want int, hdr ...string) {
	ctx.Response.Reset()
	ctx.Request.Header.Reset()
	ctx.Request.Header.SetMethod("GET")
	ctx.Request.SetRequestURI("/" + hitKey)
	for i := 0; i+1 < len(hdr); i += 2 {
		ctx.Request.Header.Set(hdr[i], hdr[i+1])
	}
	s.handle(ctx)
	if ctx.Response.StatusCode() != want {
		tb.Fatalf("status %d, want %d", ctx.Response.StatusCode(), want)
	}
	ctx.Response.ResetBody() // closes a body stream
}

func TestMemoryHitAllocatesNothing(t *testing.T) {
	if raceDetector {
		t.Skip("allocation counts mean nothing under the race detector")
	}
	s := hitServer(t, "memory", 30_000)
	var ctx fasthttp.RequestCtx
	etag := tiertest.NewEntry(hitKey, tiertest.Blob(1, 30_000)).Meta.ETag
	for _, tc := range []struct {
		want int
		hdr  []string
	}{
		{200, nil},
		{206, []string{"Range", "bytes=100-199"}},
		{304, []string{"If-None-Match", etag}},
		{206, []string{"Range", "bytes=-500", "If-Range", etag}},
		{200, []string{"Range", "bytes=100-199", "If-Range", `"other"`}},
		{304, []string{"If-Modified-Since", time.Now().UTC().Format(http.TimeFormat)}},
		{200, []string{"If-None-Match", `"other"`}},
	} {
		want, hdr := tc.want, tc.hdr
		serveOnce(t, s, &ctx, want, hdr...)
		if n := testing.AllocsPerRun(200, func() { serveOnce(t, s, &ctx, want, hdr...) }); n != 0 {
			t.Errorf("a memory hit with %v allocates %.1f times per request, want 0", hdr, n)
		}
	}
	if got := string(ctx.Response.Header.Peek("X-Cache-Tier")); got != "memory" {
		t.Errorf("X-Cache-Tier %q", got)
	}
	// The sampled access log costs the requests it skips nothing.
	s.access = newAccessLog(slog.New(slog.NewJSONHandler(io.Discard, nil)), 1000)
	if n := testing.AllocsPerRun(200, func() { serveOnce(t, s, &ctx, 200) }); n != 0 {
		t.Errorf("a memory hit with the access log sampled allocates %.1f times per request, want 0", n)
	}
}

func benchmarkHit(b *testing.B, tier string, size int, hdr ...string) {
	s := hitServer(b, tier, size)
	want := 200
	if len(hdr) > 0 {
		want = 206
	}
	var ctx fasthttp.RequestCtx
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		serveOnce(b, s, &ctx, want, hdr...)
	}
}

func BenchmarkMemoryHit(b *testing.B) { benchmarkHit(b, "memory", 30_000) }

// BenchmarkMemoryHitLogged is a memory hit with the access log as serve runs it by default: one
// JSON line in 100 at info.
func BenchmarkMemoryHitLogged(b *testing.B) {
	s := hitServer(b, "memory", 30_000)
	s.access = newAccessLog(slog.New(slog.NewJSONHandler(io.Discard, nil)), 100)
	var ctx fasthttp.RequestCtx
	b.ReportAllocs()
	for b.Loop() {
		serveOnce(b, s, &ctx, 200)
	}
}
func BenchmarkMemoryHitRange(b *testing.B) {
	benchmarkHit(b, "memory", 30_000, "Range", "bytes=1000-1999")
}
func BenchmarkDiskHit(b *testing.B) { benchmarkHit(b, "disk", 2<<20) }
func BenchmarkDiskHitRange(b *testing.B) {
	benchmarkHit(b, "disk", 2<<20, "Range", "bytes=1000000-1000999")
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// BenchmarkReadRequest is the reading of a memory hit's request alone: its key and the headers
// that decide the answer.
func BenchmarkReadRequest(b *testing.B) {
	s := New(nil, Config{}, nil)
	var ctx fasthttp.RequestCtx
	ctx.Request.Header.SetMethod("GET")
	ctx.Request.SetRequestURI("/" + hitKey)
	b.ReportAllocs()
	for b.Loop() {
		var r request
		s.readRequest(&ctx, &r)
		r.release()
	}
}
