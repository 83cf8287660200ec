package proxy_test

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
)

// lockedBuffer collects log output written from several goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// requestLines returns the access-log lines written so far, decoded.
func (l *lockedBuffer) requestLines(t *testing.T) []map[string]any {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var lines []map[string]any
	for _, raw := range strings.Split(strings.TrimSpace(l.b.String()), "\n") {
		if raw == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(raw), &m); err != nil {
			t.Fatalf("log line is not JSON: %q", raw)
		}
		if m["msg"] == "request" {
			lines = append(lines, m)
		}
	}
	return lines
}

func withLog(level slog.Level, sample int, out io.Writer) envOption {
	return func(c *envConfig) {
		c.proxy.Logger = slog.New(slog.NewJSONHandler(out, &slog.HandlerOptions{Level: level}))
		c.proxy.RequestSample = sample
	}
}

// TestAccessLogAtDebugLogsEveryRequest: one JSON line per request, with what an operator
// needs and nothing from the client (no query, no headers).
func TestAccessLogAtDebugLogsEveryRequest(t *testing.T) {
	var out lockedBuffer
	e, inBucket, _ := seeded(t, withCache, withLog(slog.LevelDebug, 0, &out))
	e.do(t, "GET", escapePath(bucketKey)+"?token=query-secret", "X-Private", "header-secret")
	e.do(t, "GET", escapePath(bucketKey))
	e.do(t, "GET", "/media_attachments/files/000/000/999/original/nothere0000000.png")

	lines := out.requestLines(t)
	if len(lines) != 3 {
		t.Fatalf("%d request lines for 3 requests:\n%s", len(lines), out.b.String())
	}
	first := lines[0]
	for field, want := range map[string]any{
		"level": "DEBUG", "method": "GET", "path": "/" + bucketKey, "status": 200.0,
		"cache": "MISS", "bytes": float64(len(inBucket[bucketKey])),
	} {
		if first[field] != want {
			t.Errorf("first line %s = %v, want %v", field, first[field], want)
		}
	}
	if _, ok := first["ms"].(float64); !ok {
		t.Errorf("first line has no duration: %v", first)
	}
	if lines[1]["cache"] != "HIT" || lines[1]["tier"] == "" {
		t.Errorf("second line: cache %v tier %v, want a HIT with its tier", lines[1]["cache"], lines[1]["tier"])
	}
	if lines[2]["status"] != 404.0 {
		t.Errorf("third line: status %v, want 404", lines[2]["status"])
	}
	all := out.b.String()
	for _, secret := range []string{"query-secret", "header-secret", "127.0.0.1"} {
		if strings.Contains(all, secret) {
			t.Errorf("the log holds %q: a query, a header or a client address was logged", secret)
		}
	}
}

// TestAccessLogAtInfoIsSampled: at info, one request in RequestSample is logged; with zero,
// none.
func TestAccessLogAtInfoIsSampled(t *testing.T) {
	for _, tc := range []struct{ sample, requests, want int }{{10, 50, 5}, {0, 20, 0}, {1, 7, 7}} {
		var out lockedBuffer
		e, _, _ := seeded(t, withCache, withLog(slog.LevelInfo, tc.sample, &out))
		for range tc.requests {
			e.do(t, "GET", escapePath(bucketKey))
		}
		lines := out.requestLines(t)
		if len(lines) != tc.want {
			t.Errorf("sample %d: %d lines for %d requests, want %d", tc.sample, len(lines), tc.requests, tc.want)
		}
		for _, l := range lines {
			if l["level"] != "INFO" || (tc.sample > 1 && l["sample"] != float64(tc.sample)) {
				t.Errorf("sample %d: line %v", tc.sample, l)
			}
		}
	}
}
