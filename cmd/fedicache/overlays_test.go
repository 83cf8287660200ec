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
			text := uncommentStores(string(raw), "  ")
			if !strings.Contains(text, "  stores:\n    - name: old") {
				t.Fatalf("%s has no commented example of an old bucket under fallback", p)
			}
			yaml := strings.ReplaceAll(text, "/mnt/mastodon-system", t.TempDir())
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

// uncommentStores returns a configuration's text with its commented example of fallback.stores
// ("# stores:" and the "#   " lines under it, at indent) uncommented.
func uncommentStores(text, indent string) string {
	var out []string
	in := false
	for _, line := range strings.Split(text, "\n") {
		switch {
		case strings.HasPrefix(line, indent+"# stores:"):
			in = true
			line = indent + "stores:"
		case in && strings.HasPrefix(line, indent+"#   "):
			line = indent + strings.TrimPrefix(line, indent+"# ")
		default:
			in = false
		}
		out = append(out, line)
	}
	return strings.Join(out, "\n")
}
