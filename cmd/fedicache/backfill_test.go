package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fedicache/fedicache/cmd/fedicache/config"
	"github.com/fedicache/fedicache/origin/origintest"
	"github.com/fedicache/fedicache/origin/s3/s3test"
)

// TestServeBackfillsWhatItServesFromTheVolume: with backfill.enabled, serve copies the old
// volume into the bucket in the background; an object served as FALLBACK reaches the bucket and
// is then served from it.
func TestServeBackfillsWhatItServesFromTheVolume(t *testing.T) {
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	bucket := origintest.NewFakeBucket(t)
	vol := t.TempDir()
	files := map[string][]byte{
		"media_attachments/files/000/000/001/original/0123456789abcdef.jpg": bytes.Repeat([]byte("a"), 50_000),
		"accounts/avatars/000/000/002/original/aaaaaaaaaaaaaaaa.png":        bytes.Repeat([]byte("b"), 3_000),
		"backups/dumps/000/000/003/original/export.zip":                     []byte("never copied"),
	}
	writeTree(t, vol, files)
	cfgPath := writeConfig(t, `
listen: "127.0.0.1:0"
admin_listen: "127.0.0.1:0"
`+bucketYAML(bucket)+`fallback:
  dir: `+vol+`
backfill:
  enabled: true
admin:
  token: t0ken
`)
	logs := newLogBuffer()
	exit := make(chan int, 1)
	go func() { exit <- run([]string{"serve", "--config", cfgPath}, io.Discard, logs) }()
	public := logs.waitFor(t, regexp.MustCompile(`"listen":"([^"]+)"`))
	admin := logs.waitFor(t, regexp.MustCompile(`"admin_listen":"([^"]+)"`))
	logs.waitFor(t, regexp.MustCompile(`"msg":"(backfill finished)"`))

	var st struct {
		Sections struct {
			Backfill []struct {
				Source                    string
				Copied, Scanned, Excluded int64
				Done                      bool
			} `json:"backfill"`
		} `json:"sections"`
	}
	resp, err := http.Get("http://" + admin + "/status")
	if err != nil {
		t.Fatal(err)
	}
	_ = json.NewDecoder(resp.Body).Decode(&st)
	resp.Body.Close()
	if b := st.Sections.Backfill; len(b) != 1 || b[0].Source != "volume" || b[0].Copied != 2 || b[0].Excluded != 1 || !b[0].Done {
		t.Errorf("/status backfill: %+v; want the volume's copy, 2 copied, the export excluded", b)
	}
	for k, v := range files {
		h := bucket.PutHeader(k)
		if strings.HasPrefix(k, "backups/") {
			if h != nil {
				t.Errorf("%s was copied", k)
			}
			continue
		}
		if h == nil {
			t.Errorf("%s did not reach the bucket", k)
			continue
		}
		// Served from the bucket now.
		resp, err := http.Get("http://" + public + "/" + k)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !bytes.Equal(got, v) || resp.Header.Get("X-Cache") != "MISS" {
			t.Errorf("%s after the backfill: X-Cache %q, %d bytes", k, resp.Header.Get("X-Cache"), len(got))
		}
	}
	resp, err = http.Get("http://" + admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Contains(metrics, []byte(`fedicache_backfill_copied_files{source="volume"} 2`)) {
		t.Error("/metrics does not show the backfill's copies")
	}
	stopServe(t, exit)
}

// TestFallbackIsQueuedFirst: an object answered from the volume is copied at once by the queue,
// even when the walk is held back by a tiny rate.
func TestFallbackIsQueuedFirst(t *testing.T) {
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	bucket := origintest.NewFakeBucket(t)
	vol := t.TempDir()
	const key = "media_attachments/files/000/000/009/original/9999999999999999.jpg"
	files := map[string][]byte{}
	for i, k := range []string{"a/1.jpg", "a/2.jpg", "a/3.jpg", key} {
		files[k] = bytes.Repeat([]byte{byte(i)}, 1000)
	}
	writeTree(t, vol, files)
	cfgPath := writeConfig(t, `
listen: "127.0.0.1:0"
admin_listen: "127.0.0.1:0"
`+bucketYAML(bucket)+`fallback:
  dir: `+vol+`
backfill:
  enabled: true
  rate: 0.001
`)
	logs := newLogBuffer()
	exit := make(chan int, 1)
	go func() { exit <- run([]string{"serve", "--config", cfgPath}, io.Discard, logs) }()
	public := logs.waitFor(t, regexp.MustCompile(`"listen":"([^"]+)"`))
	resp, err := http.Get("http://" + public + "/" + key)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get("X-Cache") != "FALLBACK" {
		t.Fatalf("X-Cache %q, want FALLBACK", resp.Header.Get("X-Cache"))
	}
	deadline := time.Now().Add(20 * time.Second)
	for bucket.PutHeader(key) == nil {
		if time.Now().After(deadline) {
			t.Fatal("the object served from the volume never reached the bucket")
		}
		time.Sleep(20 * time.Millisecond) // the copy runs in the background: poll for its result
	}
	stopServe(t, exit)
}

// stopServe ends a serve started in process and checks its exit status.
func stopServe(t *testing.T, exit chan int) {
	t.Helper()
	if err := signalSelf(); err != nil {
		t.Fatal(err)
	}
	select {
	case code := <-exit:
		if code != 0 {
			t.Errorf("exit status %d", code)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop")
	}
}

// backfillWorld is an old volume of n files and a fake bucket, with a config file for them.
func backfillWorld(t *testing.T, n int, extra string) (*origintest.FakeBucket, map[string][]byte, string) {
	t.Helper()
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	bucket := origintest.NewFakeBucket(t)
	vol := t.TempDir()
	files := map[string][]byte{}
	for i := range n {
		k := fmt.Sprintf("media_attachments/files/000/%03d/%03d/original/%016x.png", i/100, i%100, i)
		files[k] = bytes.Repeat([]byte{byte(i)}, 2_000+i*13)
	}
	writeTree(t, vol, files)
	cfg := writeConfig(t, `
`+bucketYAML(bucket)+`fallback:
  dir: `+vol+`
log:
  level: warn
`+extra)
	return bucket, files, cfg
}

func TestBackfillCommand(t *testing.T) {
	bucket, files, cfg := backfillWorld(t, 40, "")
	code, out, errOut := runCLI(t, "backfill", "--config", cfg, "--dry-run")
	if code != 0 || strings.Count(out, "would copy media_") != 40 || !strings.Contains(out, "dry run: nothing written") {
		t.Fatalf("dry run: exit %d\n%s\n%s", code, out, errOut)
	}
	if bucket.Puts() != 0 {
		t.Fatalf("the dry run sent %d PUTs", bucket.Puts())
	}
	code, out, errOut = runCLI(t, "backfill", "--config", cfg, "--concurrency", "3", "--exclude", "media_attachments/files/000/000/01?/*/*")
	if code != 0 || !strings.Contains(out, "copied           30 files") || !strings.Contains(out, "10 excluded") {
		t.Fatalf("copy: exit %d\n%s\n%s", code, out, errOut)
	}
	// Ten files are not copied yet: retiring the volume would lose them.
	code, out, _ = runCLI(t, "backfill", "--config", cfg, "--verify", "--verify-out", filepath.Join(t.TempDir(), "partial.txt"))
	if code != 1 || !strings.Contains(out, "missing 10") || !strings.Contains(out, "10 objects are not in the bucket yet") || !strings.Contains(out, "volume is NOT safe to retire") {
		t.Errorf("verify with 10 files missing: exit %d, want 1\n%s", code, out)
	}
	code, out, _ = runCLI(t, "backfill", "--config", cfg)
	if code != 0 || !strings.Contains(out, "copied           10 files") || !strings.Contains(out, "30 already in the bucket") {
		t.Fatalf("second copy: exit %d\n%s", code, out)
	}
	// A rerun over an unchanged volume trusts the record of the run before: it lists nothing.
	code, out, _ = runCLI(t, "backfill", "--config", cfg)
	if code != 0 || !strings.Contains(out, "copied           0 files") || !strings.Contains(out, "not listed       40 of those") {
		t.Fatalf("rerun: exit %d\n%s", code, out)
	}
	safe := filepath.Join(t.TempDir(), "safe.txt")
	code, out, _ = runCLI(t, "backfill", "--config", cfg, "--verify=hash", "--verify-out", safe)
	listed, _ := os.ReadFile(safe)
	if code != 0 || len(strings.Fields(string(listed))) != len(files) || !strings.Contains(out, "verified 40") || !strings.Contains(out, "volume is safe to retire") {
		t.Errorf("verify: exit %d, %d keys listed\n%s", code, len(strings.Fields(string(listed))), out)
	}
	for _, args := range [][]string{{"--verify=sha"}, {"--concurrency", "0"}, {"--bandwidth", "lots"}, {"--include", "[x"}} {
		if code, _, errOut := runCLI(t, append([]string{"backfill", "--config", cfg}, args...)...); code != 2 || !strings.Contains(errOut, "e.g.") {
			t.Errorf("backfill %v: exit %d, %q; want 2 with an example", args, code, errOut)
		}
	}
	bucket.FailKey("media_attachments/files/000/000/000/original/0000000000000000.png", http.StatusForbidden)
	bucket.Delete(t, "media_attachments/files/000/000/000/original/0000000000000000.png")
	// An object deleted from the bucket behind fedicache's back is found by a full run only
	// (serve copies it again when it answers it from the volume).
	if code, out, _ := runCLI(t, "backfill", "--config", cfg); code != 0 || !strings.Contains(out, "copied           0 files") {
		t.Errorf("a rerun trusting the record: exit %d\n%s", code, out)
	}
	if code, out, _ := runCLI(t, "backfill", "--config", cfg, "--full"); code != 1 || !strings.Contains(out, "failed: media_attachments/files/000/000/000/original/0000000000000000.png") {
		t.Errorf("a failing file: exit %d\n%s", code, out)
	}
}

// TestBackfillKilledAndResumed kills a backfill process with SIGKILL part way, then reruns it:
// the rerun completes the copy, with no partial object.
func TestBackfillKilledAndResumed(t *testing.T) {
	if cfg := os.Getenv("FEDICACHE_TEST_BACKFILL_CHILD"); cfg != "" {
		os.Exit(run([]string{"backfill", "--config", cfg, "--rate", "100"}, io.Discard, io.Discard))
	}
	bucket, files, cfg := backfillWorld(t, 300, "")
	child := exec.Command(os.Args[0], "-test.run=^TestBackfillKilledAndResumed$")
	child.Env = append(os.Environ(), "FEDICACHE_TEST_BACKFILL_CHILD="+cfg)
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for bucket.Puts() < 40 {
		if time.Now().After(deadline) {
			child.Process.Kill()
			t.Fatal("the child never got going")
		}
		time.Sleep(10 * time.Millisecond) // another process works: poll its effect
	}
	if err := child.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = child.Wait()
	before := bucket.Puts()
	if before >= len(files) {
		t.Fatalf("the child copied all %d files before it was killed", before)
	}
	code, out, _ := runCLI(t, "backfill", "--config", cfg)
	if code != 0 {
		t.Fatalf("rerun: exit %d\n%s", code, out)
	}
	b := s3test.New(t, bucket)
	for k, v := range files {
		body, _, err := b.Get(context.Background(), k, nil)
		if err != nil {
			t.Errorf("%s: %v", k, err)
			continue
		}
		got, _ := io.ReadAll(body)
		body.Close()
		if !bytes.Equal(got, v) {
			t.Errorf("%s: %d bytes, want %d", k, len(got), len(v))
		}
	}
	if copied := bucket.Puts() - before; copied > len(files)-before+8 {
		t.Errorf("the rerun sent %d PUTs for %d files left", copied, len(files)-before)
	}
}

// bucketYAML is the s3 section of a configuration for the fake bucket.
func bucketYAML(bucket *origintest.FakeBucket) string {
	return "s3:\n  endpoint: " + bucket.URL + "\n  bucket: " + origintest.BucketName +
		"\n  access_key_id: AKID\n  secret_access_key: secret\n"
}

// writeTree writes files (key -> bytes) under dir, as an old volume holds them.
func writeTree(t *testing.T, dir string, files map[string][]byte) {
	t.Helper()
	for k, v := range files {
		p := filepath.Join(dir, filepath.FromSlash(k))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, v, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestFieldFlagsAreBackfillFlags: the flags that the configuration names library fields by (a
// bad --include glob is reported as --include) are flags of the backfill command.
func TestFieldFlagsAreBackfillFlags(t *testing.T) {
	flags := newBackfillCmd().Flags()
	for _, f := range config.FieldFlags() {
		if flags.Lookup(strings.TrimPrefix(f, "--")) == nil {
			t.Errorf("the configuration names a field by %s: the backfill command has no such flag", f)
		}
	}
}
