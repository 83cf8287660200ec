package config

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/fedicache/fedicache/backfill"
	"github.com/fedicache/fedicache/cache/disk"
	"github.com/fedicache/fedicache/cache/memory"
	"github.com/fedicache/fedicache/cache/state"
	"github.com/fedicache/fedicache/origin/s3"
	"github.com/fedicache/fedicache/proxy/cluster"
)

// moduleRoot is the module's folder, from this package's.
var moduleRoot = filepath.Join("..", "..", "..")

// keysNamedElsewhere are the library files whose error strings may name configuration keys:
// none.
var keysNamedElsewhere = []string{}

// stringLit is a string literal of the module's code.
type stringLit struct {
	pos   string // file:line
	file  string // slash-separated, from the module's root
	text  string
	isErr bool // in an error's text: errors.New, fmt.Errorf, panic, a fielderr.Error
}

// moduleStrings returns the string literals of every non-test Go file of the module, but
// import paths and struct tags.
func moduleStrings(t *testing.T) []stringLit {
	t.Helper()
	var out []stringLit
	err := filepath.WalkDir(moduleRoot, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if p != moduleRoot && (d.Name() == "testdata" || d.Name() == "vendor" || strings.HasPrefix(d.Name(), ".")) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		rel, _ := filepath.Rel(moduleRoot, p)
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, p, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		// The spans of error texts, then the literals.
		var errSpans [][2]token.Pos
		skip := map[*ast.BasicLit]bool{}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.ImportSpec:
				skip[n.Path] = true
			case *ast.Field:
				if n.Tag != nil {
					skip[n.Tag] = true
				}
			case *ast.CallExpr:
				if isErrorCall(n.Fun) {
					errSpans = append(errSpans, [2]token.Pos{n.Pos(), n.End()})
				}
			case *ast.CompositeLit:
				if sel, ok := n.Type.(*ast.SelectorExpr); ok && identName(sel.X) == "fielderr" && sel.Sel.Name == "Error" {
					errSpans = append(errSpans, [2]token.Pos{n.Pos(), n.End()})
				}
			}
			return true
		})
		ast.Inspect(f, func(n ast.Node) bool {
			lit, ok := n.(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING || skip[lit] {
				return true
			}
			s, err := strconv.Unquote(lit.Value)
			if err != nil {
				t.Errorf("%s: %v", fset.Position(lit.Pos()), err)
				return true
			}
			inErr := slices.ContainsFunc(errSpans, func(sp [2]token.Pos) bool { return sp[0] <= lit.Pos() && lit.End() <= sp[1] })
			pos := fset.Position(lit.Pos())
			out = append(out, stringLit{
				pos:   filepath.ToSlash(rel) + ":" + strconv.Itoa(pos.Line),
				file:  filepath.ToSlash(rel),
				text:  s,
				isErr: inErr,
			})
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) < 1000 {
		t.Fatalf("only %d string literals found under %s: not the module's root?", len(out), moduleRoot)
	}
	return out
}

func identName(e ast.Expr) string {
	if id, ok := e.(*ast.Ident); ok {
		return id.Name
	}
	return ""
}

// isErrorCall reports whether fun makes an error or a panic of its arguments.
func isErrorCall(fun ast.Expr) bool {
	switch f := fun.(type) {
	case *ast.Ident:
		return f.Name == "panic"
	case *ast.SelectorExpr:
		x := identName(f.X)
		return x == "errors" && f.Sel.Name == "New" || x == "fmt" && f.Sel.Name == "Errorf"
	}
	return false
}

var (
	dottedToken = regexp.MustCompile(`[a-z0-9_]+(?:\.[a-z0-9_]+)+`)
	bareToken   = regexp.MustCompile(`[a-z][a-z0-9]*(?:_[a-z0-9]+)+`)
)

// configTokens returns the words of s that look like configuration keys: a dotted lower_snake
// path whose first part is a section of the settings (s3.bucket, cache.disk.retry_after, real
// or not), or a bare top-level key (state_prefix). Parts of host names, paths, URLs and Go
// selectors (s3.amazonaws.com, /etc/tls/tls.key, cache.disk.Open) are not.
func configTokens(s string) []string {
	sections, bare := map[string]bool{}, map[string]bool{}
	for _, st := range settings {
		if first, _, dotted := strings.Cut(st.key, "."); dotted {
			sections[first] = true
		} else {
			bare[st.key] = true
		}
	}
	isWordByte := func(c byte) bool {
		return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_'
	}
	// inWord reports whether s[i:j] is part of a longer name: a host, a path, a selector.
	inWord := func(i, j int) bool {
		if i > 0 && (isWordByte(s[i-1]) || strings.IndexByte("./-@${", s[i-1]) >= 0) {
			return true
		}
		if j < len(s) && (isWordByte(s[j]) || s[j] == '-' || s[j] == '/') {
			return true
		}
		return j+1 < len(s) && s[j] == '.' && isWordByte(s[j+1])
	}
	var out []string
	for _, m := range dottedToken.FindAllStringIndex(s, -1) {
		tok := s[m[0]:m[1]]
		if first, _, _ := strings.Cut(tok, "."); sections[first] && !inWord(m[0], m[1]) {
			out = append(out, tok)
		}
	}
	for _, m := range bareToken.FindAllStringIndex(s, -1) {
		if tok := s[m[0]:m[1]]; bare[tok] && !inWord(m[0], m[1]) {
			out = append(out, tok)
		}
	}
	return out
}

func TestConfigTokens(t *testing.T) {
	for _, tc := range []struct {
		s    string
		want []string
	}{
		{"s3.bucket is empty: set it, e.g. s3.bucket: media", []string{"s3.bucket", "s3.bucket"}},
		{"cache.disk.retry_after %s is negative", []string{"cache.disk.retry_after"}},
		{"under state_prefix) needs", []string{"state_prefix"}},
		{"check s3.region.", []string{"s3.region"}},
		{"a state_prefixes word, a my_state_prefix", nil},
		{"https://s3.eu-central-003.backblazeb2.com", nil},
		{"xmlns=\"http://s3.amazonaws.com/doc/\"", nil},
		{"/etc/fedicache/tls/tls.key", nil},
		{"cache.disk.Open failed", nil},
		{"backfill.Config.Include", nil},
		{"the log.txt file", []string{"log.txt"}}, // looks like a key, and is none: flagged
		{"fedicache-peers.mastodon.svc.cluster.local", nil},
	} {
		if got := configTokens(tc.s); !slices.Equal(got, tc.want) {
			t.Errorf("configTokens(%q) = %q, want %q", tc.s, got, tc.want)
		}
	}
}

// TestKeysInStringsAreSettings: every word of the module's strings that looks like a key is a
// key of settings (or a section of them), so that no message sends an admin to a key that does
// not exist; and no library names a key in an error at all: libraries name their Config's
// fields, and cmd names the keys (fieldKeys).
func TestKeysInStringsAreSettings(t *testing.T) {
	known := map[string]bool{}
	for _, s := range settings {
		known[s.key] = true
		for i := range len(s.key) {
			if s.key[i] == '.' {
				known[s.key[:i]] = true // a section: "cache.disk"
			}
		}
	}
	for _, lit := range moduleStrings(t) {
		library := !strings.HasPrefix(lit.file, "cmd/")
		for _, tok := range configTokens(lit.text) {
			if !known[tok] {
				t.Errorf("%s: %q is not a configuration key (in %q)", lit.pos, tok, lit.text)
			}
			if library && lit.isErr && !slices.Contains(keysNamedElsewhere, lit.file) {
				t.Errorf("%s: a library error names the key %s (in %q): name the Config's field in a *fielderr.Error, "+
					"and map it to the key in cmd/fedicache/config/fielderrors.go", lit.pos, tok, lit.text)
			}
		}
	}
}

// libraryConfigs are the Configs of the packages whose *fielderr.Errors cmd maps.
var libraryConfigs = map[string]reflect.Type{
	"s3.Config":                reflect.TypeFor[s3.Config](),
	"memory.Config":            reflect.TypeFor[memory.Config](),
	"disk.Config":              reflect.TypeFor[disk.Config](),
	"state.Config":             reflect.TypeFor[state.Config](),
	"backfill.Config":          reflect.TypeFor[backfill.Config](),
	"cluster.PeersConfig":      reflect.TypeFor[cluster.PeersConfig](),
	"cluster.CloudflareConfig": reflect.TypeFor[cluster.CloudflareConfig](),
}

// TestFieldKeys: every entry of fieldKeys is a field of a library's Config, mapped to a key of
// settings, a flag of a command (FieldFlags; package main's TestFieldFlagsAreBackfillFlags
// checks that the backfill command declares each), or nothing; and every field the libraries'
// errors name (in a file that imports fielderr: a "Config.X" literal, or {Config.X} in a text)
// has its entry.
func TestFieldKeys(t *testing.T) {
	known := map[string]bool{}
	for _, s := range settings {
		known[s.key] = true
	}
	flags := FieldFlags()
	if len(flags) == 0 {
		t.Error("FieldFlags is empty: backfill.Config.Include and Exclude are set by flags")
	}
	for field, key := range fieldKeys {
		pkg, rest, _ := strings.Cut(field, ".")
		typ, name, _ := strings.Cut(rest, ".")
		if ct, ok := libraryConfigs[pkg+"."+typ]; !ok {
			t.Errorf("fieldKeys[%q]: no config type %s.%s is checked here", field, pkg, typ)
		} else if _, ok := ct.FieldByName(name); !ok {
			t.Errorf("fieldKeys[%q]: %s.%s has no field %s", field, pkg, typ, name)
		}
		switch {
		case key == "":
		case strings.HasPrefix(key, "--"):
			if !slices.Contains(flags, key) {
				t.Errorf("fieldKeys[%q] = %q: FieldFlags does not return it", field, key)
			}
		case !known[key]:
			t.Errorf("fieldKeys[%q] = %q: not a key of settings", field, key)
		}
	}

	named := regexp.MustCompile(`^Config\.[A-Z]\w*$|\{(Config\.[A-Z]\w*)\}`)
	found := 0
	err := filepath.WalkDir(moduleRoot, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return err
		}
		rel, _ := filepath.Rel(moduleRoot, p)
		if strings.HasPrefix(filepath.ToSlash(rel), "cmd/") {
			return nil
		}
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, p, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		if !slices.ContainsFunc(f.Imports, func(s *ast.ImportSpec) bool { return strings.HasSuffix(s.Path.Value, `/origin/fielderr"`) }) {
			return nil
		}
		pkg := f.Name.Name
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.KeyValueExpr:
				// Pkg: "s3" is the package's own name, as fieldKeys spells it.
				if identName(n.Key) == "Pkg" {
					if lit, ok := n.Value.(*ast.BasicLit); !ok || lit.Value != strconv.Quote(pkg) {
						t.Errorf("%s:%d: Pkg is not %q, the package's name", filepath.ToSlash(rel), fset.Position(n.Pos()).Line, pkg)
					}
				}
			case *ast.BasicLit:
				s, _ := strconv.Unquote(n.Value)
				for _, m := range named.FindAllStringSubmatch(s, -1) {
					field := m[0]
					if m[1] != "" {
						field = m[1]
					}
					found++
					if _, ok := fieldKeys[pkg+"."+field]; !ok {
						t.Errorf("%s:%d: %s.%s is named in an error and missing from fieldKeys: map it to its key, or to \"\" for none",
							filepath.ToSlash(rel), fset.Position(n.Pos()).Line, pkg, field)
					}
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if found < 20 {
		t.Errorf("only %d fields named in the libraries' errors: is the scan blind?", found)
	}
}
