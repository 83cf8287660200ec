package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
)

// logBuffer is a writer that tests can read while a server writes to it.
type logBuffer struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	wrote chan struct{}
}

func newLogBuffer() *logBuffer { return &logBuffer{wrote: make(chan struct{}, 1)} }

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	select {
	case l.wrote <- struct{}{}:
	default:
	}
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// waitFor waits until re matches what was written and returns the first submatch.
func (l *logBuffer) waitFor(t *testing.T, re *regexp.Regexp) string {
	t.Helper()
	deadline := time.After(15 * time.Second)
	for {
		if m := re.FindStringSubmatch(l.String()); m != nil {
			return m[1]
		}
		select {
		case <-l.wrote:
		case <-deadline:
			t.Fatalf("never saw %s in:\n%s", re, l.String())
		}
	}
}

// TestSIGTERMDrainsInFlightDownload sends SIGTERM while a download is under way: readiness
// fails, new connections are refused, the download completes, and the process exits 0.
func TestSIGTERMDrainsInFlightDownload(t *testing.T) {
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	const key = "media_attachments/files/000/000/001/original/0000000000000001.mp4"
	body := bytes.Repeat([]byte("fedicache"), 200_000) // 1.8 MB
	backend := s3mem.New()
	if err := backend.CreateBucket("media"); err != nil {
		t.Fatal(err)
	}
	fake := gofakes3.New(backend).Server()
	release := make(chan struct{})
	bucket := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || !strings.HasSuffix(r.URL.Path, key) {
			fake.ServeHTTP(w, r)
			return
		}
		// The object streams: half now, the rest once the test releases it.
		w.Header().Set("Content-Type", "video/mp4")
		w.Header().Set("Content-Length", "1800000")
		w.Header().Set("ETag", `"0123"`)
		w.Header().Set("Last-Modified", time.Now().UTC().Format(http.TimeFormat))
		_, _ = w.Write(body[:900_000])
		w.(http.Flusher).Flush()
		<-release
		_, _ = w.Write(body[900_000:])
	})}
	bln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = bucket.Serve(bln) }()
	defer bucket.Close()

	cfgPath := writeConfig(t, `
listen: "127.0.0.1:0"
admin_listen: "127.0.0.1:0"
shutdown_grace: 20s
s3:
  endpoint: http://`+bln.Addr().String()+`
  bucket: media
  access_key_id: AKID
  secret_access_key: secret
  timeout: 10s
  permission: ""
`)
	logs := newLogBuffer()
	exit := make(chan int, 1)
	go func() { exit <- run([]string{"serve", "--config", cfgPath}, io.Discard, logs) }()
	public := logs.waitFor(t, regexp.MustCompile(`"listen":"([^"]+)"`))
	admin := logs.waitFor(t, regexp.MustCompile(`"admin_listen":"([^"]+)"`))

	resp, err := http.Get("http://" + admin + "/readyz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("readyz before shutdown: %v %v", resp, err)
	}
	resp.Body.Close()

	conn, err := net.Dial("tcp", public)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "GET /"+key+" HTTP/1.1\r\nHost: media.example\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	dl, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 900_000)
	if _, err := io.ReadFull(dl.Body, got); err != nil {
		t.Fatalf("first half: %v", err)
	}

	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	logs.waitFor(t, regexp.MustCompile(`(shutting down)`))

	resp, err = http.Get("http://" + admin + "/readyz")
	if err != nil {
		t.Fatalf("readyz during shutdown: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("readyz during shutdown: %d, want 503", resp.StatusCode)
	}
	if c, err := net.DialTimeout("tcp", public, time.Second); err == nil {
		// The listener is closed: a connection may be accepted by the kernel backlog only
		// before the close; it must not be answered.
		_, _ = io.WriteString(c, "GET /"+key+" HTTP/1.1\r\nHost: x\r\n\r\n")
		_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
		if n, _ := c.Read(make([]byte, 1)); n > 0 {
			t.Error("a new connection was answered after SIGTERM")
		}
		c.Close()
	}

	close(release)
	rest, err := io.ReadAll(dl.Body)
	if err != nil {
		t.Fatalf("the rest of the in-flight download: %v", err)
	}
	if !bytes.Equal(append(got, rest...), body) {
		t.Errorf("in-flight download: %d bytes, want %d equal", len(got)+len(rest), len(body))
	}
	select {
	case code := <-exit:
		if code != 0 {
			t.Errorf("exit status %d, want 0; logs:\n%s", code, logs.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("fedicache did not exit after the download ended")
	}
}

// TestDemo runs the demo command and checks what it prints: a bucket object (MISS), a volume
// object (FALLBACK) and the never-served export (404).
func TestDemo(t *testing.T) {
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	ctx, cancel := context.WithCancel(context.Background())
	out := newLogBuffer()
	done := make(chan error, 1)
	go func() { done <- runDemo(ctx, "127.0.0.1:0", "127.0.0.1:0", out, io.Discard) }()
	out.waitFor(t, regexp.MustCompile(`(Ctrl-C)`))
	urls := regexp.MustCompile(`(?m)^  (\S.+?)\s{2,}(http://\S+)$`).FindAllStringSubmatch(out.String(), -1)
	if len(urls) != len(demoObjects()) {
		t.Fatalf("the demo printed %d object URLs, want %d:\n%s", len(urls), len(demoObjects()), out.String())
	}
	for i, o := range demoObjects() {
		resp, err := http.Get(urls[i][2])
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		switch {
		case strings.HasPrefix(o.key, "backups/"):
			if resp.StatusCode != 404 {
				t.Errorf("%s: status %d, want 404", o.key, resp.StatusCode)
			}
		case o.inBucket:
			if resp.StatusCode != 200 || resp.Header.Get("X-Cache") != "MISS" || !bytes.Equal(data, o.data()) {
				t.Errorf("%s: status %d, X-Cache %q, %d bytes", o.key, resp.StatusCode, resp.Header.Get("X-Cache"), len(data))
			}
		default:
			if resp.StatusCode != 200 || resp.Header.Get("X-Cache") != "FALLBACK" || !bytes.Equal(data, o.data()) {
				t.Errorf("%s: status %d, X-Cache %q, %d bytes", o.key, resp.StatusCode, resp.Header.Get("X-Cache"), len(data))
			}
		}
	}
	// Asked again, a bucket object is a disk hit, which puts it in memory (the memory tier takes
	// it in shortly after); then a memory hit.
	tiers := []string{"disk", "memory"}
	for deadline := time.Now().Add(5 * time.Second); len(tiers) > 0; {
		resp, err := http.Get(urls[0][2])
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		got := resp.Header.Get("X-Cache-Tier")
		switch {
		case resp.Header.Get("X-Cache") == "HIT" && got == tiers[0]:
			tiers = tiers[1:]
		case got == "disk" && tiers[0] == "memory" && time.Now().Before(deadline):
			time.Sleep(10 * time.Millisecond)
		default:
			t.Fatalf("GET again: X-Cache %q, X-Cache-Tier %q; want HIT from %s", resp.Header.Get("X-Cache"), got, tiers[0])
		}
	}
	status := regexp.MustCompile(`curl -s (http://\S+/status)`).FindStringSubmatch(out.String())
	if status == nil {
		t.Fatalf("no status URL printed")
	}
	resp, err := http.Get(status[1])
	if err != nil {
		t.Fatal(err)
	}
	var st struct{ Ready bool }
	_ = json.NewDecoder(resp.Body).Decode(&st)
	resp.Body.Close()
	if !st.Ready {
		t.Error("the demo's /status does not say ready")
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("demo ended with %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the demo did not stop")
	}
}

// signalSelf sends SIGTERM to this process, which a serve started in process catches.
func signalSelf() error { return syscall.Kill(os.Getpid(), syscall.SIGTERM) }
