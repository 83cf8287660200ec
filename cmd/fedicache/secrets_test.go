package main

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/fedicache/fedicache/origin/origintest"
)

// The credentials of TestCredentialsNeverLogged: each is unique enough that finding it in any
// output means it leaked.
var testSecrets = map[string]string{
	"s3.secret_access_key":   "SECRET-s3-4b1c9e77d2",
	"cache_buster.secret":    "SECRET-buster-88a03f",
	"admin.token":            "SECRET-admin-51e2c0",
	"cloudflare.api_token":   "SECRET-cloudflare-7d9",
	"s3.access_key_id (env)": "AKIDSECRET0042",
}

// TestCredentialsNeverLogged runs serve and backfill at debug with every credential set, walks
// them through their successes and failures (a cache-buster request with the secret and with a
// wrong one, an admin purge, a bucket answering 500, Cloudflare refusing the token, a request
// too large to parse carrying the secret header), and searches their whole output, /status
// and /metrics for the credentials.
func TestCredentialsNeverLogged(t *testing.T) {
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("FEDICACHE_S3_SECRET_ACCESS_KEY", testSecrets["s3.secret_access_key"])
	t.Setenv("FEDICACHE_S3_ACCESS_KEY_ID", testSecrets["s3.access_key_id (env)"])
	t.Setenv("FEDICACHE_ADMIN_TOKEN", testSecrets["admin.token"])
	cf := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, `{"success":false,"errors":[{"code":10000,"message":"Authentication error"}]}`, http.StatusForbidden)
	}))
	defer cf.Close()
	cloudflareAPI = cf.URL
	t.Cleanup(func() { cloudflareAPI = "" })

	bucket, files, _ := backfillWorld(t, 6, "")
	const inBucket = "media_attachments/files/000/000/777/original/abcdefabcdef0001.png"
	bucket.Put(t, inBucket, []byte("in the bucket"))
	var volumeKey string
	for k := range files {
		volumeKey = k
		break
	}
	vol := t.TempDir()
	writeTree(t, vol, files)
	cfg := writeConfig(t, `
listen: "127.0.0.1:0"
admin_listen: "127.0.0.1:0"
s3:
  endpoint: `+bucket.URL+`
  bucket: `+origintest.BucketName+`
  timeout: 2s
fallback:
  dir: `+vol+`
cache_buster:
  secret_header: X-Cache-Buster-Secret
  secret: `+testSecrets["cache_buster.secret"]+`
cloudflare:
  zone_id: zone42
  api_token: `+testSecrets["cloudflare.api_token"]+`
log:
  level: debug
  request_sample: 1
`)
	var output bytes.Buffer
	logs := newLogBuffer()
	exit := make(chan int, 1)
	stdout := newLogBuffer()
	go func() { exit <- run([]string{"serve", "--config", cfg}, stdout, logs) }()
	public := logs.waitFor(t, regexp.MustCompile(`"listen":"([^"]+)"`))
	admin := logs.waitFor(t, regexp.MustCompile(`"admin_listen":"([^"]+)"`))

	do := func(method, url string, hdr ...string) string {
		t.Helper()
		req, _ := http.NewRequest(method, url, nil)
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, url, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.Status + "\n" + string(b)
	}
	pub := "http://" + public + "/"
	output.WriteString(do("GET", pub+inBucket))
	output.WriteString(do("GET", pub+volumeKey))
	output.WriteString(do("GET", pub+"media_attachments/files/000/000/999/original/0000000000000000.png"))
	output.WriteString(do("GET", pub+inBucket, "X-Cache-Buster-Secret", "wrong-secret"))
	if got := do("GET", pub+inBucket, "X-Cache-Buster-Secret", testSecrets["cache_buster.secret"]); !strings.Contains(got, `"cdn_purge_queued":true`) {
		t.Errorf("the cache buster did not run: %s", got)
	} else {
		output.WriteString(got)
	}
	output.WriteString(do("POST", "http://"+admin+"/purge?key="+inBucket, "Authorization", "Bearer "+testSecrets["admin.token"]))
	output.WriteString(do("POST", "http://"+admin+"/purge?key="+inBucket, "Authorization", "Bearer wrong"))
	// Requests too large or too broken to parse, carrying the secret header: fasthttp's
	// error messages must not quote them.
	for _, bad := range []string{
		"GET /" + inBucket + " HTTP/1.1\r\nHost: x\r\nX-Cache-Buster-Secret: " + testSecrets["cache_buster.secret"] + "\r\nX-Pad: " + strings.Repeat("p", 40_000) + "\r\n\r\n",
		"GET /" + inBucket + " HTTP/1.1\r\nHost: x\r\nX-Cache-Buster-Secret: " + testSecrets["cache_buster.secret"] + "\r\nno colon here\r\n\r\n",
		"BROKEN\x00 X-Cache-Buster-Secret: " + testSecrets["cache_buster.secret"] + "\r\n\r\n",
	} {
		c, err := net.Dial("tcp", public)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.WriteString(c, bad)
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		b, _ := io.ReadAll(c)
		c.Close()
		output.Write(b)
	}
	bucket.SetMode(origintest.Fail500)
	output.WriteString(do("GET", pub+"media_attachments/files/000/000/998/original/0000000000000001.png"))
	bucket.SetMode(origintest.Healthy)
	logs.waitFor(t, regexp.MustCompile(`(cloudflare purge failed)`))
	output.WriteString(do("GET", "http://"+admin+"/status"))
	output.WriteString(do("GET", "http://"+admin+"/metrics"))
	output.WriteString(do("GET", "http://"+admin+"/"))
	stopServe(t, exit)
	output.WriteString(logs.String() + stdout.String())

	// The backfill, at debug: a run where the bucket refuses a key, then a complete one with
	// verification.
	bucket.FailKey(volumeKey, http.StatusForbidden)
	code, out, errOut := runCLI(t, "backfill", "--config", cfg, "--concurrency", "2")
	if code == 0 {
		t.Error("a backfill against a failing bucket exited 0")
	}
	// An error names the key and the cause.
	if !regexp.MustCompile(`(?m)^.*copy failed.*` + regexp.QuoteMeta(volumeKey) + `.*(403|Forbidden).*$`).MatchString(errOut) {
		t.Errorf("the failed copy's log line lacks the key or the cause:\n%s", errOut)
	}
	output.WriteString(out + errOut)
	bucket.FailKey(volumeKey, 0)
	for _, args := range [][]string{{}, {"--verify", "--verify-out", filepath.Join(t.TempDir(), "verified.txt")}} {
		code, out, errOut = runCLI(t, append([]string{"backfill", "--config", cfg}, args...)...)
		if code != 0 {
			t.Errorf("backfill %v: exit %d\n%s%s", args, code, out, errOut)
		}
		output.WriteString(out + errOut)
	}

	all := output.String()
	for name, secret := range testSecrets {
		if strings.Contains(all, secret) {
			i := strings.Index(all, secret)
			t.Errorf("%s appears in the output: …%s…", name, all[max(0, i-200):min(len(all), i+50)])
		}
	}
	// The test saw what it meant to see.
	for _, want := range []string{`"msg":"request"`, "cloudflare purge failed", "origin request failed", "backfill"} {
		if !strings.Contains(all, want) {
			t.Errorf("the output lacks %q: the test did not exercise that path", want)
		}
	}
}
