package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/fedicache/fedicache/cmd/fedicache/config"
	"sigs.k8s.io/yaml"
)

// valuesKey is a key of fedicache's configuration that a values file of the chart sets under
// config:, or documents there in a comment (`# key: default`), as a dotted path.
type valuesKey struct {
	path       string
	value      any  // as YAML reads it
	block      bool // no value on its line: a section, or a list below
	documented bool // in a comment
	line       int
}

var (
	valuesKeyLine = regexp.MustCompile(`^([a-z][a-z0-9_]*):(?:\s+(.*))?$`)
	valuesComment = regexp.MustCompile(`^#\s?`)
)

// configValuesKeys reads the config: map of a values file line by line, comments included, and
// returns the keys it sets or documents. A comment line shaped as a key (`# ttl: 24h`, at the
// indentation it would have once uncommented) documents that key; other comments are prose and
// must not be shaped so. The content of lists (fallback.stores' entries) is not keys.
func configValuesKeys(t *testing.T, path string) []valuesKey {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	type open struct {
		indent int
		key    string
		list   bool
	}
	var (
		out   []valuesKey
		stack []open
		in    bool
	)
	for n, line := range strings.Split(string(raw), "\n") {
		trimmed := strings.TrimLeft(line, " ")
		indent := len(line) - len(trimmed)
		if indent == 0 && !strings.HasPrefix(trimmed, "#") && trimmed != "" {
			in = trimmed == "config:"
			stack = stack[:0]
			continue
		}
		if !in || trimmed == "" {
			continue
		}
		documented := strings.HasPrefix(trimmed, "#")
		if documented {
			rest := valuesComment.ReplaceAllString(trimmed, "")
			inner := strings.TrimLeft(rest, " ")
			indent += len(rest) - len(inner) // "#" stands where the key would
			trimmed = inner
		}
		for len(stack) > 0 && stack[len(stack)-1].indent >= indent {
			stack = stack[:len(stack)-1]
		}
		if slices.ContainsFunc(stack, func(o open) bool { return o.list }) {
			continue // inside a list's entry
		}
		if strings.HasPrefix(trimmed, "- ") {
			if len(stack) > 0 {
				stack[len(stack)-1].list = true
			}
			continue
		}
		m := valuesKeyLine.FindStringSubmatch(trimmed)
		if m == nil {
			continue // prose
		}
		keys := []string{}
		for _, o := range stack {
			keys = append(keys, o.key)
		}
		keys = append(keys, m[1])
		var v map[string]any
		if err := yaml.Unmarshal([]byte("v: "+m[2]), &v); err != nil {
			t.Fatalf("%s:%d: %q: %v", path, n+1, line, err)
		}
		k := valuesKey{path: strings.Join(keys, "."), value: v["v"], block: v["v"] == nil, documented: documented, line: n + 1}
		out = append(out, k)
		if k.block {
			stack = append(stack, open{indent: indent, key: m[1]})
		}
	}
	return out
}

// TestHelmValuesAreConfigKeys: every key the chart's values files set or document under config:
// is a key of fedicache's configuration (settings.go's table), and where one documents a key's
// default it is fedicache's default. The values files need not name every key: fedicache's own
// table stays the one list.
func TestHelmValuesAreConfigKeys(t *testing.T) {
	known := map[string]bool{}
	for _, k := range config.Keys() {
		known[k] = true
	}
	section := func(p string) bool {
		return slices.ContainsFunc(config.Keys(), func(k string) bool { return strings.HasPrefix(k, p+".") })
	}
	files, err := filepath.Glob(filepath.Join(helmChartDir, "values*.yaml"))
	if err != nil || len(files) < 5 {
		t.Fatalf("values files %v: %v", files, err)
	}
	for _, f := range files {
		keys := configValuesKeys(t, f)
		var set, documented int
		for _, k := range keys {
			where := fmt.Sprintf("%s:%d: config.%s", filepath.Base(f), k.line, k.path)
			switch {
			case k.block && section(k.path):
				continue // a section: s3, cache.disk
			case !known[k.path]:
				t.Errorf("%s is not a key of fedicache (cmd/fedicache/config/settings.go)", where)
				continue
			}
			if !k.documented {
				set++
				continue
			}
			documented++
			if k.block {
				continue // a documented list, its entries below
			}
			if got, want := fmt.Sprint(k.value), fmt.Sprint(config.Default(k.path)); got != want {
				t.Errorf("%s documents the default %s; fedicache's is %s", where, got, want)
			}
		}
		if set == 0 {
			t.Errorf("%s: no key found under config:: is the reading blind?", f)
		}
		if filepath.Base(f) == "values.yaml" && documented < 20 {
			t.Errorf("%s documents %d keys with their defaults: is the reading blind?", f, documented)
		}
	}
}

// TestHelmValuesKeysReading checks the reading above on a sample: keys set, documented,
// sections, lists and prose.
func TestHelmValuesKeysReading(t *testing.T) {
	sample := `existingSecret: x
config:
  listen: ":8080"          # a comment
  # Prose: not a key.
  s3:
    bucket: b
    # timeout: 30s
  # tls:
  #   cert_file: ""
  fallback:
    # stores:
    #   - name: old
    #     endpoint: https://e
    dir: /mnt
resources: {}
`
	f := filepath.Join(t.TempDir(), "values.yaml")
	if err := os.WriteFile(f, []byte(sample), 0o644); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, k := range configValuesKeys(t, f) {
		got = append(got, fmt.Sprintf("%s=%v block %v doc %v", k.path, k.value, k.block, k.documented))
	}
	want := []string{"listen=:8080 block false doc false", "s3=<nil> block true doc false", "s3.bucket=b block false doc false",
		"s3.timeout=30s block false doc true", "tls=<nil> block true doc true", "tls.cert_file= block false doc true",
		"fallback=<nil> block true doc false", "fallback.stores=<nil> block true doc true", "fallback.dir=/mnt block false doc false"}
	if !slices.Equal(got, want) {
		t.Errorf("read %q\nwant %q", got, want)
	}
}

// TestHelmOldBucketExample: each provider's commented example of an old bucket as fallback,
// uncommented as an admin would, installs, and fedicache accepts it: a store named "old" whose
// credentials come from the Secret's old-s3-* keys, the variables the Deployment sets.
func TestHelmOldBucketExample(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(helmChartDir, "values-*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no provider values: %v", err)
	}
	for _, p := range files {
		t.Run(filepath.Base(p), func(t *testing.T) {
			raw, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			text := uncommentStores(string(raw), "    ")
			if !strings.Contains(text, "    stores:\n      - name: old") {
				t.Fatalf("%s has no commented example of an old bucket under config.fallback", p)
			}
			name := filepath.Join(t.TempDir(), filepath.Base(p))
			if err := os.WriteFile(name, []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
			h := helmRenderCase(t, []string{name}, nil)
			d := h.m.deployments[0].Spec.Template.Spec
			ctr := d.Containers[0]
			id, secret := config.OldStoreCredentialVariables("old")
			var refs []string
			for _, e := range ctr.Env {
				if (e.Name == id || e.Name == secret) && e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
					refs = append(refs, e.ValueFrom.SecretKeyRef.Key)
				}
			}
			if !slices.Equal(refs, []string{"old-s3-access-key-id", "old-s3-secret-access-key"}) {
				t.Errorf("the old bucket's credentials come from the Secret's keys %v", refs)
			}
			t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
			cfg, _ := podConfig(t, h.m, "serve", d, ctr)
			if len(cfg.FallbackStores) != 1 || cfg.FallbackStores[0].Name != "old" || cfg.FallbackStores[0].S3 == nil {
				t.Errorf("fallback.stores %+v: want the old bucket named old", cfg.FallbackStores)
			}
		})
	}
}
