package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/fedicache/fedicache/origin/origintest"
)

// testCert is a self-signed certificate for 127.0.0.1, in PEM, with the given serial number.
func testCert(t *testing.T, serial int64) (certPEM, keyPEM []byte, cert *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: "media.example"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ = x509.ParseCertificate(der)
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), cert
}

// replaceFile writes b to path through a rename, as a deployment tool would.
func replaceFile(t *testing.T, path string, b []byte) {
	t.Helper()
	tmp := path + ".new"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// TestTLSServesAndReloadsTheCertificate: with tls.cert_file and tls.key_file the public
// listener speaks TLS; a renewed pair is served to new connections without a restart, even
// when the two files change one after the other; a broken pair keeps the last good one.
func TestTLSServesAndReloadsTheCertificate(t *testing.T) {
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	bucket := origintest.NewFakeBucket(t)
	vol := t.TempDir()
	key := "media_attachments/files/000/000/001/original/0123456789abcdef.png"
	body := []byte(strings.Repeat("png!", 1000))
	writeTree(t, vol, map[string][]byte{key: body})

	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	certA, keyA, a := testCert(t, 1)
	certB, keyB, b := testCert(t, 2)
	replaceFile(t, certFile, certA)
	replaceFile(t, keyFile, keyA)
	cfg := writeConfig(t, `
listen: "127.0.0.1:0"
admin_listen: "127.0.0.1:0"
`+bucketYAML(bucket)+`  permission: ""
fallback:
  dir: `+vol+`
tls:
  cert_file: `+certFile+`
  key_file: `+keyFile+`
  reload_interval: 20ms
`)
	logs := newLogBuffer()
	exit := make(chan int, 1)
	go func() { exit <- run([]string{"serve", "--config", cfg}, io.Discard, logs) }()
	public := logs.waitFor(t, regexp.MustCompile(`"listen":"([^"]+)","scheme":"https"`))

	roots := x509.NewCertPool()
	roots.AddCert(a)
	roots.AddCert(b)
	// get fetches key over a new TLS connection and returns the serial the server presented.
	get := func() int64 {
		t.Helper()
		conn, err := tls.Dial("tcp", public, &tls.Config{RootCAs: roots, ServerName: "127.0.0.1"})
		if err != nil {
			t.Fatalf("TLS handshake: %v", err)
		}
		defer conn.Close()
		if _, err := io.WriteString(conn, "GET /"+key+" HTTP/1.1\r\nHost: media.example\r\nConnection: close\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		resp, err := io.ReadAll(conn)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(string(resp), "HTTP/1.1 200") || !strings.HasSuffix(string(resp), string(body)) {
			t.Fatalf("GET over TLS: %.200q", resp)
		}
		return conn.ConnectionState().PeerCertificates[0].SerialNumber.Int64()
	}
	if got := get(); got != 1 {
		t.Fatalf("served certificate %d, want 1", got)
	}

	// A plain-HTTP request on the TLS port gets no media.
	if c, err := net.Dial("tcp", public); err == nil {
		_, _ = io.WriteString(c, "GET /"+key+" HTTP/1.1\r\nHost: media.example\r\n\r\n")
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		got, _ := io.ReadAll(c)
		c.Close()
		if strings.Contains(string(got), string(body)) {
			t.Error("plain HTTP on the TLS listener was answered with the media")
		}
	}

	// Renew: the certificate first, the key a moment later (a half-done rotation fails to
	// load and must not be served).
	replaceFile(t, certFile, certB)
	logs.waitFor(t, regexp.MustCompile(`(TLS certificate not reloaded)`))
	if got := get(); got != 1 {
		t.Errorf("during a half-done rotation the server presented %d, want the last good one, 1", got)
	}
	replaceFile(t, keyFile, keyB)
	logs.waitFor(t, regexp.MustCompile(`(TLS certificate reloaded)`))
	if got := get(); got != 2 {
		t.Errorf("after the renewal the server presented %d, want 2", got)
	}
	stopServe(t, exit)
}

func TestTLSConfigErrors(t *testing.T) {
	dir := t.TempDir()
	certA, _, _ := testCert(t, 1)
	_, keyB, _ := testCert(t, 2)
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	replaceFile(t, certFile, certA)
	replaceFile(t, keyFile, keyB)
	for name, tc := range map[string]struct{ yaml, want string }{
		"cert without key": {"tls:\n  cert_file: " + certFile + "\n", "tls.cert_file and tls.key_file go together"},
		"mismatched pair":  {"tls:\n  cert_file: " + certFile + "\n  key_file: " + keyFile + "\n", "tls.cert_file, tls.key_file: "},
		"missing files":    {"tls:\n  cert_file: " + dir + "/none.crt\n  key_file: " + dir + "/none.key\n", "no such file"},
	} {
		t.Run(name, func(t *testing.T) {
			cfg := writeConfig(t, "s3:\n  bucket: media\n"+tc.yaml)
			code, _, errOut := runCLI(t, "serve", "--config", cfg)
			if code != 2 || !strings.Contains(errOut, tc.want) {
				t.Errorf("exit %d, want 2 with %q in:\n%s", code, tc.want, errOut)
			}
		})
	}
}
