package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fedicache/fedicache/cmd/fedicache/config"
)

// TestOverlaysOldBucketExample: each provider overlay's commented example of an old bucket as
// fallback, uncommented as an admin would, is a valid configuration whose store is named "old"
// and takes its credentials from the variables the Deployment and the Job set from the Secret.
func TestOverlaysOldBucketExample(t *testing.T) {
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	id, secret := config.OldStoreCredentialVariables("old")
	t.Setenv(id, "AKOLD")
	t.Setenv(secret, "old-secret")
	t.Setenv("FEDICACHE_S3_ACCESS_KEY_ID", "AKNEW")
	t.Setenv("FEDICACHE_S3_SECRET_ACCESS_KEY", "new-secret")
	t.Setenv("FEDICACHE_ADMIN_TOKEN", "t0ken")
	overlays, err := filepath.Glob(filepath.Join("..", "..", "deploy", "overlays", "*", "fedicache.yaml"))
	if err != nil || len(overlays) == 0 {
		t.Fatalf("no overlays: %v", err)
	}
	for _, p := range overlays {
		t.Run(filepath.Base(filepath.Dir(p)), func(t *testing.T) {
			raw, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			var out []string
			in := false
			for _, line := range strings.Split(string(raw), "\n") {
				switch {
				case strings.HasPrefix(line, "  # stores:"):
					in = true
					line = "  stores:"
				case in && strings.HasPrefix(line, "  #   "):
					line = "  " + strings.TrimPrefix(line, "  # ")
				default:
					in = false
				}
				out = append(out, line)
			}
			if !strings.Contains(strings.Join(out, "\n"), "  stores:\n    - name: old") {
				t.Fatalf("%s has no commented example of an old bucket under fallback", p)
			}
			yaml := strings.ReplaceAll(strings.Join(out, "\n"), "/mnt/mastodon-system", t.TempDir())
			f := filepath.Join(t.TempDir(), "fedicache.yaml")
			if err := os.WriteFile(f, []byte(yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			cfg, err := config.Load(f, nil)
			if err != nil {
				t.Fatalf("the example, uncommented: %v", err)
			}
			if len(cfg.FallbackStores) != 1 || cfg.FallbackStores[0].Name != "old" || cfg.FallbackStores[0].S3 == nil ||
				cfg.FallbackStores[0].S3.AccessKeyID != "AKOLD" || cfg.FallbackStores[0].S3.SecretAccessKey != "old-secret" {
				t.Errorf("fallback.stores %+v", cfg.FallbackStores)
			}
		})
	}
}
