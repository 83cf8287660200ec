package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/fedicache/fedicache/cmd/fedicache/config"
	"github.com/fedicache/fedicache/origin/origintest"
	"github.com/fedicache/fedicache/origin/s3/s3test"
)

// logLine is one line of the JSON log.
type logLine struct {
	Level string `json:"level"`
	Msg   string `json:"msg"`
}

func logLines(t *testing.T, s string) []logLine {
	t.Helper()
	var out []logLine
	for line := range strings.SplitSeq(strings.TrimSpace(s), "\n") {
		var l logLine
		if err := json.Unmarshal([]byte(line), &l); err != nil {
			t.Fatalf("log line %q is not JSON: %v", line, err)
		}
		out = append(out, l)
	}
	return out
}

// TestStartLogsUnknownVariablesAndEmptyPermission runs serve with a misspelled variable, a
// correct one and an empty FEDICACHE_S3_PERMISSION: the start log warns once about the
// misspelling, naming the setting meant, says nothing of the others, says the bucket answers
// before any other line about it, and the ACL check is off.
func TestStartLogsUnknownVariablesAndEmptyPermission(t *testing.T) {
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	bucket := origintest.NewFakeBucket(t)
	t.Setenv("FEDICACHE_S3_BUKCET", "media")
	t.Setenv("FEDICACHE_LOG_LEVEL", "info")
	t.Setenv("FEDICACHE_S3_PERMISSION", "")
	cfgPath := writeConfig(t, `
listen: "127.0.0.1:0"
admin_listen: "127.0.0.1:0"
`+bucketYAML(bucket))
	logs := newLogBuffer()
	exit := make(chan int, 1)
	go func() { exit <- run([]string{"serve", "--config", cfgPath}, io.Discard, logs) }()
	logs.waitFor(t, regexp.MustCompile(`"msg":"(fedicache serving)"`))
	stopServe(t, exit)

	lines := logLines(t, logs.String())
	const want = "FEDICACHE_S3_BUKCET is not a setting (did you mean FEDICACHE_S3_BUCKET, s3.bucket?); it is ignored"
	warned, answers, acl := 0, -1, -1
	for i, l := range lines {
		switch {
		case l.Msg == want:
			warned++
			if l.Level != "WARN" {
				t.Errorf("the warning is logged at %s, want WARN", l.Level)
			}
			if answers >= 0 {
				t.Error("the warning comes after the bucket's line")
			}
		case strings.Contains(l.Msg, "is not a setting"):
			t.Errorf("unexpected warning: %s", l.Msg)
		case l.Msg == "bucket answers":
			answers = i
		case strings.HasPrefix(l.Msg, "ACL check"):
			acl = i
			if !strings.Contains(l.Msg, "s3.permission is empty") {
				t.Errorf("FEDICACHE_S3_PERMISSION= did not turn the ACL check off: %s", l.Msg)
			}
		}
	}
	if warned != 1 {
		t.Errorf("the warning about FEDICACHE_S3_BUKCET was logged %d times, want once; logs:\n%s", warned, logs.String())
	}
	if answers < 0 || acl < 0 || answers > acl {
		t.Errorf("want \"bucket answers\" first, then the ACL line (lines %d, %d); logs:\n%s", answers, acl, logs.String())
	}
	for _, l := range lines {
		if l.Level == "ERROR" {
			t.Errorf("error logged with a bucket that answers: %s", l.Msg)
		}
	}
}

// TestUnknownVariableWithInvalidConfiguration: when the configuration is invalid, perhaps for
// the misspelled variable, the warning comes with the problems.
func TestUnknownVariableWithInvalidConfiguration(t *testing.T) {
	t.Setenv("FEDICACHE_S3_BUKCET", "media")
	code, _, stderr := runCLI(t, "serve", "--config", writeConfig(t, "listen: \":8080\"\n"))
	if code != 2 || !strings.Contains(stderr, "s3.bucket is empty") ||
		!strings.Contains(stderr, "FEDICACHE_S3_BUKCET is not a setting (did you mean FEDICACHE_S3_BUCKET, s3.bucket?); it is ignored") {
		t.Errorf("exit %d, want 2 with the problem and the warning; stderr:\n%s", code, stderr)
	}
}

// TestBackfillLogsUnknownVariables: the backfill command logs the warnings too.
func TestBackfillLogsUnknownVariables(t *testing.T) {
	_, _, cfg := backfillWorld(t, 1, "")
	t.Setenv("FEDICACHE_BACKFILL_CONCURENCY", "4")
	code, out, stderr := runCLI(t, "backfill", "--config", cfg, "--dry-run")
	const want = "FEDICACHE_BACKFILL_CONCURENCY is not a setting (did you mean FEDICACHE_BACKFILL_CONCURRENCY, backfill.concurrency?); it is ignored"
	if code != 0 || strings.Count(stderr, want) != 1 {
		t.Errorf("exit %d, want 0 and the warning once; stdout:\n%s\nstderr:\n%s", code, out, stderr)
	}
}

// xmlRefusal is a bucket that answers every request status with the S3 error code (and no
// body to a HEAD, as S3 does).
func xmlRefusal(t *testing.T, status int, code string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?>`+
			`<Error><Code>`+code+`</Code><Message>refused by the test</Message><RequestId>1</RequestId></Error>`)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// closedPort returns the URL of a port nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String()
	ln.Close()
	return url
}

// TestStartupCheckNamesCauseAndFix: for each way a bucket can refuse fedicache, the start check
// logs one error line saying the replica is not ready, the cause and the fix.
func TestStartupCheckNamesCauseAndFix(t *testing.T) {
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	tests := []struct {
		name      string
		endpoint  func(t *testing.T) (endpoint, bucket string)
		anonymous bool
		want      []string
	}{
		{"wrong secret", func(t *testing.T) (string, string) {
			return xmlRefusal(t, http.StatusForbidden, "SignatureDoesNotMatch"), "media"
		}, false, []string{"bucket refused fedicache's credentials (SignatureDoesNotMatch)", "check s3.secret_access_key (or AWS_SECRET_ACCESS_KEY)"}},
		{"unknown key", func(t *testing.T) (string, string) {
			return xmlRefusal(t, http.StatusForbidden, "InvalidAccessKeyId"), "media"
		}, false, []string{"bucket refused fedicache's credentials (InvalidAccessKeyId)", "check s3.access_key_id (or AWS_ACCESS_KEY_ID)"}},
		{"access denied", func(t *testing.T) (string, string) {
			b := origintest.NewFakeBucket(t)
			b.FailEvery(1, http.StatusForbidden)
			return b.URL, origintest.BucketName
		}, false, []string{"bucket refused fedicache's requests (AccessDenied)", "s3:ListBucket", "s3.access_key_id"}},
		{"no such bucket", func(t *testing.T) (string, string) {
			return origintest.NewFakeBucket(t).URL, "missing"
		}, false, []string{`bucket "missing" does not exist at http://127.0.0.1:`, "(NoSuchBucket)", "check s3.bucket, s3.endpoint and s3.region"}},
		{"wrong region", func(t *testing.T) (string, string) {
			return xmlRefusal(t, http.StatusMovedPermanently, "PermanentRedirect"), "media"
		}, false, []string{`bucket is not in s3.region "us-east-1" (PermanentRedirect)`, "set s3.region"}},
		{"bucket failing", func(t *testing.T) (string, string) {
			return xmlRefusal(t, http.StatusServiceUnavailable, "SlowDown"), "media"
		}, false, []string{"bucket fails (503 Service Unavailable)", "not refusing fedicache"}},
		{"endpoint down", func(t *testing.T) (string, string) {
			return closedPort(t), "media"
		}, false, []string{"bucket endpoint http://127.0.0.1:", "does not answer (connection refused)", "check s3.endpoint"}},
		{"anonymous, unknown key", func(t *testing.T) (string, string) {
			// A private bucket: the public's probe is refused as any stranger's request is,
			// which says the bucket is there; the signed requests for fedicache's state are
			// refused for their key.
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				code := "AccessDenied"
				if strings.HasPrefix(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256 ") {
					code = "InvalidAccessKeyId"
				}
				w.Header().Set("Content-Type", "application/xml")
				w.WriteHeader(http.StatusForbidden)
				_, _ = io.WriteString(w, `<Error><Code>`+code+`</Code><Message>refused by the test</Message></Error>`)
			}))
			t.Cleanup(srv.Close)
			return srv.URL, "media"
		}, true, []string{"bucket refused fedicache's credentials (InvalidAccessKeyId)", "check s3.access_key_id (or AWS_ACCESS_KEY_ID)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			endpoint, name := tt.endpoint(t)
			cfg, err := config.Load(writeConfig(t, `
s3:
  endpoint: `+endpoint+`
  bucket: `+name+`
  access_key_id: AKID
  secret_access_key: secret
  permission: ""
  anonymous: `+strconv.FormatBool(tt.anonymous)+`
`), nil)
			if err != nil {
				t.Fatal(err)
			}
			bucket := s3test.NewFromConfig(t, cfg.S3)
			var buf bytes.Buffer
			startupCheck(context.Background(), bucket, cfg, newLogger(cfg, &buf))
			lines := logLines(t, buf.String())
			if len(lines) != 1 || lines[0].Level != "ERROR" {
				t.Fatalf("want one error line, got:\n%s", buf.String())
			}
			msg := lines[0].Msg
			for _, w := range append(tt.want, "the replica is not ready until") {
				if !strings.Contains(msg, w) {
					t.Errorf("the line does not say %q: %s", w, msg)
				}
			}
		})
	}
}

// TestServeSaysFirstThatTheBucketRefusesItsCredentials: serve against a bucket that refuses the
// secret logs that the replica is not ready, and why, before any other line about the bucket,
// and keeps running, not ready.
func TestServeSaysFirstThatTheBucketRefusesItsCredentials(t *testing.T) {
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	cfgPath := writeConfig(t, `
listen: "127.0.0.1:0"
admin_listen: "127.0.0.1:0"
s3:
  endpoint: `+xmlRefusal(t, http.StatusForbidden, "SignatureDoesNotMatch")+`
  bucket: media
  access_key_id: AKID
  secret_access_key: wrong
`)
	logs := newLogBuffer()
	exit := make(chan int, 1)
	go func() { exit <- run([]string{"serve", "--config", cfgPath}, io.Discard, logs) }()
	admin := logs.waitFor(t, regexp.MustCompile(`"admin_listen":"([^"]+)"`))
	resp, err := http.Get("http://" + admin + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("readyz: %d, want 503", resp.StatusCode)
	}
	stopServe(t, exit)

	lines := logLines(t, logs.String())
	first := -1
	for i, l := range lines {
		if l.Msg != "memory limit set" {
			first = i
			break
		}
	}
	if first < 0 {
		t.Fatalf("nothing logged:\n%s", logs.String())
	}
	l := lines[first]
	const want = "bucket refused fedicache's credentials (SignatureDoesNotMatch): the replica is not ready until it accepts them; " +
		"check s3.secret_access_key (or AWS_SECRET_ACCESS_KEY)"
	if l.Level != "ERROR" || !strings.HasPrefix(l.Msg, want) {
		t.Errorf("first line: %s %q, want ERROR %q; logs:\n%s", l.Level, l.Msg, want, logs.String())
	}
	n := 0
	for _, l := range lines {
		if strings.Contains(l.Msg, "the replica is not ready") {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d lines say the replica is not ready, want 1; logs:\n%s", n, logs.String())
	}
}
