package main

import (
	"encoding/json"
	"net"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/fedicache/fedicache/cmd/fedicache/config"
)

// TestDockerfile keeps the image true to the code: the build stage runs the build script CI
// runs, on the Go that go.mod names; the final image runs the binary as a numeric non-root
// user, with no shell, exposing the default ports.
func TestDockerfile(t *testing.T) {
	raw, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	df := string(raw)
	mod, err := os.ReadFile("../../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	goLine := regexp.MustCompile(`(?m)^go (\S+)$`).FindStringSubmatch(string(mod))
	if goLine == nil {
		t.Fatal("go.mod has no go line")
	}
	if !strings.Contains(df, "ARG GO_VERSION="+goLine[1]+"\n") {
		t.Errorf("Dockerfile's GO_VERSION is not go.mod's go %s", goLine[1])
	}
	if !regexp.MustCompile(`(?m)^\s+GOOS=\$TARGETOS GOARCH=\$TARGETARCH VERSION=\$VERSION scripts/build\.sh `).MatchString(df) {
		t.Error("the build stage does not run scripts/build.sh (the script CI runs)")
	}

	// The final stage: everything after the last FROM.
	froms := regexp.MustCompile(`(?m)^FROM .*$`).FindAllStringIndex(df, -1)
	if len(froms) < 2 {
		t.Fatalf("want a multi-stage build, found %d FROM lines", len(froms))
	}
	final := df[froms[len(froms)-1][0]:]
	from := strings.Fields(strings.SplitN(final, "\n", 2)[0])[1]
	if !strings.HasPrefix(from, "gcr.io/distroless/static") || !strings.HasSuffix(from, ":nonroot") {
		t.Errorf("final image %s: want distroless static, nonroot (no shell, CA certificates)", from)
	}
	user := regexp.MustCompile(`(?m)^USER (\d+)(:\d+)?$`).FindStringSubmatch(final)
	if user == nil || user[1] == "0" {
		t.Errorf("final stage: want USER with a numeric non-root uid (runAsNonRoot needs one), got %v", user)
	}
	if strings.Contains(final, "\nRUN ") {
		t.Error("the final stage runs commands: it has no shell to run them")
	}

	expose := regexp.MustCompile(`(?m)^EXPOSE (.+)$`).FindStringSubmatch(final)
	if expose == nil {
		t.Fatal("final stage exposes no port")
	}
	for _, key := range []string{"listen", "admin_listen"} {
		_, port, _ := net.SplitHostPort(config.Default(key).(string))
		if !strings.Contains(" "+expose[1]+" ", " "+port+" ") {
			t.Errorf("EXPOSE %s lacks %s's default port %s", expose[1], key, port)
		}
	}
	execForm := func(instr string) []string {
		m := regexp.MustCompile(`(?m)^` + instr + ` (\[.*\])$`).FindStringSubmatch(final)
		if m == nil {
			t.Fatalf("final stage: no %s in exec form", instr)
		}
		var args []string
		if err := json.Unmarshal([]byte(m[1]), &args); err != nil {
			t.Fatalf("%s: %v", instr, err)
		}
		return args
	}
	if got := execForm("ENTRYPOINT"); len(got) != 1 || got[0] != "fedicache" {
		t.Errorf("ENTRYPOINT %q, want [fedicache]", got)
	}
	if got := execForm("CMD"); len(got) != 1 || got[0] != "serve" {
		t.Errorf("CMD %q, want [serve]", got)
	}
	if !strings.Contains(final, "COPY --from=build /out/fedicache /usr/local/bin/fedicache") {
		t.Error("the binary is not installed on the image's PATH as fedicache")
	}
}
