package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeConfig(t *testing.T, yaml string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(p, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// runCLI runs the command line in process and returns its exit status and output.
func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

// TestInvalidConfigsExitTwo runs invalid configurations through the command line: the process
// exits with status 2 and says the problem, naming the key. Every problem the configuration
// layer finds is checked in package config (TestInvalidConfigsNameTheKey); these are the ways in:
// the file, a library's check, the environment, a flag, a flag cobra does not know, no file.
func TestInvalidConfigsExitTwo(t *testing.T) {
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	tests := []struct {
		name, yaml string
		env        map[string]string
		args       []string
		want       []string // every one must appear in stderr
	}{
		{"no bucket", "listen: \":8080\"\n", nil, nil, []string{"s3.bucket", "e.g."}},
		{"bad duration", "s3:\n  bucket: b\n  timeout: soon\n", nil, nil, []string{"s3.timeout", `"soon"`, "30s"}},
		{"bucket with a path", "s3:\n  bucket: media/files\n", nil, nil,
			[]string{`s3.bucket "media/files" is not a bucket name`, "a path in s3.prefix", "e.g. s3.bucket: mastodon-media"}},
		{"bad yaml", "s3: [bucket\n", nil, nil, []string{"not valid YAML"}},
		{"env is checked too", "s3:\n  bucket: b\n", map[string]string{"FEDICACHE_S3_TIMEOUT": "forever"}, nil, []string{"s3.timeout", `"forever"`}},
		{"flag is checked too", "s3:\n  bucket: b\n", nil, []string{"--listen", "nowhere"}, []string{"listen", `"nowhere"`}},
		{"unknown flag", "s3:\n  bucket: b\n", nil, []string{"--bucket", "x"}, []string{"unknown flag", "--help"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			args := append([]string{"serve", "--config", writeConfig(t, tt.yaml)}, tt.args...)
			code, _, stderr := runCLI(t, args...)
			if code != 2 {
				t.Errorf("exit status %d, want 2; stderr:\n%s", code, stderr)
			}
			for _, w := range tt.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr does not say %q:\n%s", w, stderr)
				}
			}
			if strings.Contains(stderr, "goroutine ") || strings.Contains(stderr, "panic") {
				t.Errorf("stderr holds a stack trace:\n%s", stderr)
			}
			if strings.Contains(stderr, "Config.") {
				t.Errorf("stderr names a Go field, not its key:\n%s", stderr)
			}
		})
	}
	code, _, stderr := runCLI(t, "serve", "--config", filepath.Join(t.TempDir(), "missing.yaml"))
	if code != 2 || !strings.Contains(stderr, "missing.yaml") {
		t.Errorf("missing config file: exit %d, stderr %q", code, stderr)
	}
}

func TestVersion(t *testing.T) {
	code, out, _ := runCLI(t, "version")
	if code != 0 || !strings.HasPrefix(out, "fedicache ") {
		t.Errorf("version: exit %d, output %q", code, out)
	}
}
