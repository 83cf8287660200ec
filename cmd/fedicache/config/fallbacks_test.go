package config

import (
	"strings"
	"testing"
)

// TestOldStores: fallback.stores read from the file and from the environment (a JSON array),
// the credentials of an old bucket from its own variables, and each mistake named by the
// entry, its key and the fix.
func TestOldStores(t *testing.T) {
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	dir := t.TempDir()
	t.Run("file", func(t *testing.T) {
		id, secret := OldStoreCredentialVariables("old-wasabi")
		if id != "FEDICACHE_FALLBACK_OLD_WASABI_ACCESS_KEY_ID" || secret != "FEDICACHE_FALLBACK_OLD_WASABI_SECRET_ACCESS_KEY" {
			t.Fatalf("credential variables %s, %s", id, secret)
		}
		t.Setenv(id, "AKOLD")
		t.Setenv(secret, "old-secret")
		cfg, err := Load(writeConfig(t, `
s3: {bucket: media, timeout: 7s}
fallback:
  dir: `+dir+`
  stores:
    - name: old-wasabi
      endpoint: "https://s3.eu-central-1.wasabisys.com"
      region: eu-central-1
      bucket: mastodon-old
      prefix: system
      permission: ""
    - {name: nfs, dir: `+dir+`}
`), nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(cfg.Warnings) != 0 {
			t.Errorf("warnings %q: the old bucket's credential variables are settings", cfg.Warnings)
		}
		if len(cfg.FallbackStores) != 2 {
			t.Fatalf("stores %+v, want 2", cfg.FallbackStores)
		}
		w := cfg.FallbackStores[0]
		if w.Name != "old-wasabi" || w.S3 == nil || w.Dir != "" {
			t.Fatalf("first store %+v", w)
		}
		c := *w.S3
		if c.Endpoint != "https://s3.eu-central-1.wasabisys.com" || c.Region != "eu-central-1" || c.Bucket != "mastodon-old" ||
			c.Prefix != "system" || !c.ForcePathStyle || c.RequirePublicRead || c.AccessKeyID != "AKOLD" ||
			c.SecretAccessKey != "old-secret" || c.Timeout.String() != "7s" {
			t.Errorf("old bucket %+v", c)
		}
		if n := cfg.FallbackStores[1]; n.Name != "nfs" || n.Dir != dir || n.S3 != nil {
			t.Errorf("second store %+v", n)
		}
	})
	t.Run("environment", func(t *testing.T) {
		t.Setenv("FEDICACHE_FALLBACK_STORES", `[{"name":"r2-old","endpoint":"https://acct.r2.cloudflarestorage.com","region":"auto","bucket":"b","access_key_id":"k","secret_access_key":"s"}]`)
		cfg, err := Load(writeConfig(t, "s3: {bucket: media}\n"), nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(cfg.FallbackStores) != 1 || cfg.FallbackStores[0].S3 == nil || !cfg.FallbackStores[0].S3.RequirePublicRead {
			t.Fatalf("stores %+v: want one old bucket, checking ACLs by default", cfg.FallbackStores)
		}
	})
	for _, tc := range []struct {
		name, stores string
		want         []string
	}{
		{"unknown key", `[{name: a, bucket: b, endpont: "http://x"}]`, []string{`fallback.stores[0]: unknown key "endpont"`, "endpoint"}},
		{"bad name", `[{name: "Old Bucket", bucket: b}]`, []string{"fallback.stores[0].name", "lower-case"}},
		{"both", `[{name: a, bucket: b, dir: /x}]`, []string{"fallback.stores[0] (a): both dir and bucket"}},
		{"neither", `[{name: a}]`, []string{"fallback.stores[0] (a): neither dir nor bucket"}},
		{"taken", `[{name: volume, dir: /x}]`, []string{`name "volume" is taken`}},
		{"twice", `[{name: a, bucket: b}, {name: a, bucket: c}]`, []string{`fallback.stores[1]: name "a" is taken`}},
		{"one credential", `[{name: a, bucket: b, access_key_id: k}]`, []string{"only one of access_key_id and secret_access_key", "FEDICACHE_FALLBACK_A_SECRET_ACCESS_KEY"}},
		{"bad endpoint", `[{name: a, bucket: b, endpoint: "ftp://x"}]`, []string{"fallback.stores[0] (a): endpoint"}},
		{"permission", `[{name: a, bucket: b, permission: private}]`, []string{"fallback.stores[0] (a).permission", "public-read"}},
		{"volume with bucket keys", `[{name: a, dir: /x, region: eu}]`, []string{"fallback.stores[0] (a).region: an old volume (dir) has no region"}},
		{"volume with an endpoint", `[{name: a, dir: /x, endpoint: "http://x"}]`, []string{"fallback.stores[0] (a).endpoint: an old volume (dir) has no endpoint"}},
		{"not a list", `{name: a}`, []string{"fallback.stores: a list of old stores"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(writeConfig(t, "s3: {bucket: media}\nfallback: {dir: "+dir+", stores: "+tc.stores+"}\n"), nil)
			if err == nil {
				t.Fatal("loaded")
			}
			msg := invalid(t, err)
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("%q\ndoes not say %q", msg, w)
				}
			}
		})
	}
}
