package proxy

import (
	"context"
	"crypto/tls"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Certificate is the public listener's TLS certificate, read from a certificate file and a key
// file (PEM) and read again when either changes, so a renewed certificate (a Kubernetes Secret
// update, a Cloudflare origin certificate rotated by hand) is served without a restart.
// Connections already open keep the certificate they started with.
type Certificate struct {
	certFile, keyFile string
	cert              atomic.Pointer[tls.Certificate]

	mu     sync.Mutex // held by a reload
	stamp  string     // what the files looked like at the last load
	failed string     // what they looked like at the last failed load
}

// LoadCertificate reads the key pair in certFile and keyFile.
func LoadCertificate(certFile, keyFile string) (*Certificate, error) {
	c := &Certificate{certFile: certFile, keyFile: keyFile}
	if _, err := c.Reload(); err != nil {
		return nil, err
	}
	return c, nil
}

// TLSConfig returns the listener's configuration: TLS 1.2 and later, HTTP/1.1, and the current
// certificate at every handshake.
func (c *Certificate) TLSConfig() *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		NextProtos:     []string{"http/1.1"},
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return c.cert.Load(), nil },
	}
}

// Reload reads the files again when their size or modification time changed since the last
// load, and reports whether it did. A pair that does not load leaves the current certificate
// in place; the same failure is reported once, not at every call.
func (c *Certificate) Reload() (bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	stamp, err := c.fileStamp()
	if err == nil && stamp == c.stamp {
		return false, nil
	}
	if stamp == c.failed {
		return false, nil
	}
	var pair tls.Certificate
	if err == nil {
		pair, err = tls.LoadX509KeyPair(c.certFile, c.keyFile)
	}
	if err != nil {
		c.failed = stamp
		return false, fmt.Errorf("tls: load %s and %s: %w", c.certFile, c.keyFile, err)
	}
	c.cert.Store(&pair)
	c.stamp, c.failed = stamp, ""
	return true, nil
}

// fileStamp sums up both files' sizes and modification times. os.Stat follows symbolic links,
// so a Secret volume's swap of its ..data link counts as a change.
func (c *Certificate) fileStamp() (string, error) {
	var stamp string
	for _, name := range []string{c.certFile, c.keyFile} {
		fi, err := os.Stat(name)
		if err != nil {
			return "missing " + name, err
		}
		stamp += strconv.FormatInt(fi.Size(), 10) + "/" + strconv.FormatInt(fi.ModTime().UnixNano(), 10) + ";"
	}
	return stamp, nil
}

// Watch calls Reload every interval until ctx ends, and reports each reload or failure to
// report (err is nil after a successful reload).
func (c *Certificate) Watch(ctx context.Context, interval time.Duration, report func(error)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if reloaded, err := c.Reload(); err != nil || reloaded {
				report(err)
			}
		}
	}
}
