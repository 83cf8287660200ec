// Package s3test builds, for tests, the bucket clients (*s3.Bucket) of an in-process S3
// (origintest.FakeBucket), in an AWS environment the host's settings do not reach.
package s3test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/fedicache/fedicache/origin/origintest"
	"github.com/fedicache/fedicache/origin/s3"
)

// The static credentials of Config, those whose signatures a FakeBucket checks.
const (
	AccessKeyID     = origintest.AccessKeyID
	SecretAccessKey = origintest.SecretAccessKey
)

// Timeout is the Timeout of Config: short, so that a test of a stalled bucket does not wait the
// default 30s, long enough for a loaded machine.
const Timeout = 5 * time.Second

// Config returns the configuration of a client of fake: its endpoint, path style, its bucket
// (origintest.BucketName), the static credentials AccessKeyID and SecretAccessKey, and Timeout.
func Config(fake *origintest.FakeBucket) s3.Config {
	return s3.Config{
		Endpoint:        fake.URL,
		Bucket:          origintest.BucketName,
		ForcePathStyle:  true,
		AccessKeyID:     AccessKeyID,
		SecretAccessKey: SecretAccessKey,
		Timeout:         Timeout,
	}
}

// New returns a client of fake: Config(fake) changed by each of edits in turn, built by
// NewFromConfig.
func New(t testing.TB, fake *origintest.FakeBucket, edits ...func(*s3.Config)) *s3.Bucket {
	t.Helper()
	cfg := Config(fake)
	for _, edit := range edits {
		edit(&cfg)
	}
	return NewFromConfig(t, cfg)
}

// NewFromConfig returns the client cfg describes, built in a Hermetic environment; it fails the
// test when s3.New refuses cfg. The environment is restored when the test ends.
func NewFromConfig(t testing.TB, cfg s3.Config) *s3.Bucket {
	t.Helper()
	Hermetic(t)
	b, err := s3.New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("s3.New: %v", err)
	}
	return b
}

// Hermetic keeps the host's AWS settings out of the test until it ends: no instance metadata
// (AWS_EC2_METADATA_DISABLED), empty shared config and credentials files, no profile. It
// leaves the credentials of the environment (AWS_ACCESS_KEY_ID...) as they are: see
// NoCredentials.
func Hermetic(t testing.TB) {
	t.Helper()
	dir := t.TempDir()
	for env, name := range map[string]string{"AWS_CONFIG_FILE": "config", "AWS_SHARED_CREDENTIALS_FILE": "credentials"} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		t.Setenv(env, p)
	}
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_PROFILE", "")
}

// NoCredentials empties the AWS credential chain until the test ends: Hermetic, and no
// credentials in the environment either (static keys, web identity, container credentials).
func NoCredentials(t testing.TB) {
	t.Helper()
	Hermetic(t)
	for _, name := range []string{
		"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ACCESS_KEY", "AWS_SECRET_KEY",
		"AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN",
		"AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
	} {
		t.Setenv(name, "")
	}
}
