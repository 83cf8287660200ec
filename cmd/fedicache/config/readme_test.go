package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const (
	tableStart = "<!-- config-table:start (generated from cmd/fedicache/config/settings.go by its test) -->"
	tableEnd   = "<!-- config-table:end -->"
)

// configTable renders the settings as the Markdown table README carries.
func configTable() string {
	var b strings.Builder
	b.WriteString("| key | environment | default | what it does |\n| --- | --- | --- | --- |\n")
	for _, s := range settings {
		def := fmt.Sprint(s.def)
		switch d := s.def.(type) {
		case string:
			def = fmt.Sprintf("%q", d)
		case []string:
			def = "[" + strings.Join(quoteAll(d), ", ") + "]"
		}
		env := "FEDICACHE_" + strings.ToUpper(strings.NewReplacer(".", "_").Replace(s.key))
		fmt.Fprintf(&b, "| `%s` | `%s` | `%s` | %s |\n", s.key, env, def, s.help)
	}
	return b.String()
}

func quoteAll(in []string) []string {
	out := make([]string, len(in))
	for i, s := range in {
		out[i] = fmt.Sprintf("%q", s)
	}
	return out
}

// TestREADMEConfigTable fails when README's configuration table and the code drift apart.
// FEDICACHE_UPDATE_README=1 rewrites the table in place.
func TestREADMEConfigTable(t *testing.T) {
	path := filepath.Join("..", "..", "..", "README.md")
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	readme := string(raw)
	i, j := strings.Index(readme, tableStart), strings.Index(readme, tableEnd)
	if i < 0 || j < i {
		t.Fatalf("README.md has no %s ... %s section", tableStart, tableEnd)
	}
	want := tableStart + "\n" + configTable() + tableEnd
	if got := readme[i : j+len(tableEnd)]; got != want {
		if os.Getenv("FEDICACHE_UPDATE_README") == "1" {
			if err := os.WriteFile(path, []byte(readme[:i]+want+readme[j+len(tableEnd):]), 0o644); err != nil {
				t.Fatal(err)
			}
			return
		}
		t.Errorf("README.md's configuration table is out of date; run FEDICACHE_UPDATE_README=1 go test ./cmd/fedicache/config -run README, or write:\n%s", want)
	}
}
