package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"syscall"
	"testing"
	"time"

	"github.com/fedicache/fedicache/cache/disk"
	"github.com/fedicache/fedicache/cache/tiertest"
	"github.com/fedicache/fedicache/origin"
	"github.com/fedicache/fedicache/origin/origintest"
	"github.com/fedicache/fedicache/proxy/proxytest"
)

// TestFaultSIGTERMDrains200Downloads sends SIGTERM while 200 downloads of 50 objects are under
// way, each held by the bucket part way through its body: once the bucket lets the bodies go,
// every download completes with exactly its object's bytes, fedicache exits 0, and its disk
// cache holds only whole entries and no temporary file.
func TestFaultSIGTERMDrains200Downloads(t *testing.T) {
	proxytest.CheckLeaks(t)
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	bucket := origintest.NewFakeBucket(t)
	const objects, perObject = 50, 4
	keys := make([]string, objects)
	data := map[string][]byte{}
	var gates []*origintest.Gate
	for i := range keys {
		size := 300_000 // disk only
		if i%2 == 1 {
			size = 40_000 // memory and disk
		}
		keys[i] = fmt.Sprintf("media_attachments/files/000/000/%03d/original/drain%011d.mp4", i, i)
		data[keys[i]] = tiertest.Blob(uint64(900+i), size)
		bucket.Put(t, keys[i], data[keys[i]])
		gates = append(gates, bucket.GateBody(keys[i], 16<<10))
	}
	diskDir := t.TempDir()
	cfgPath := writeConfig(t, `
listen: "127.0.0.1:0"
admin_listen: "127.0.0.1:0"
shutdown_grace: 30s
`+bucketYAML(bucket)+`  timeout: 20s
  permission: ""
cache:
  memory:
    max_object_bytes: 64KiB
  disk:
    dir: `+diskDir+`
`)
	logs := newLogBuffer()
	exit := make(chan int, 1)
	go func() { exit <- run([]string{"serve", "--config", cfgPath}, io.Discard, logs) }()
	public := logs.waitFor(t, regexp.MustCompile(`"listen":"([^"]+)"`))

	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true, DisableCompression: true}}
	started := make(chan struct{}, objects*perObject)
	results := make(chan string, objects*perObject)
	for _, key := range keys {
		for range perObject {
			go func() {
				resp, err := client.Get("http://" + public + "/" + key)
				started <- struct{}{}
				if err != nil {
					results <- fmt.Sprintf("%s: %v", key, err)
					return
				}
				defer resp.Body.Close()
				got, err := io.ReadAll(resp.Body)
				if resp.StatusCode != 200 || err != nil || !bytes.Equal(got, data[key]) {
					results <- fmt.Sprintf("%s: status %d, %d of %d bytes, %v", key, resp.StatusCode, len(got), len(data[key]), err)
					return
				}
				results <- ""
			}()
		}
	}
	for range objects * perObject {
		<-started // its answer's headers arrived: it is under way
	}

	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	logs.waitFor(t, regexp.MustCompile(`(shutting down)`))
	for _, g := range gates {
		g.Open()
	}
	failed := 0
	for range objects * perObject {
		if bad := <-results; bad != "" {
			failed++
			t.Error(bad)
		}
	}
	if failed > 0 {
		t.Errorf("%d of %d downloads under way at SIGTERM failed", failed, objects*perObject)
	}
	select {
	case code := <-exit:
		if code != 0 {
			t.Errorf("exit status %d, want 0; logs:\n%s", code, logs.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("fedicache did not exit after the downloads ended")
	}

	// What the fills stored is whole, and nothing half-written is left.
	if ents, err := os.ReadDir(filepath.Join(diskDir, "tmp")); err != nil || len(ents) != 0 {
		t.Errorf("%d temporary files left in the disk cache (%v)", len(ents), err)
	}
	files := 0
	_ = filepath.WalkDir(diskDir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() && filepath.Base(filepath.Dir(p)) != "tmp" && p != filepath.Join(diskDir, "clean") {
			files++
		}
		return nil
	})
	d, err := disk.Open(disk.Config{Dir: diskDir, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	stored := 0
	for _, key := range keys {
		body, _, err := d.Open(key, nil)
		if errors.Is(err, origin.ErrNotFound) {
			continue
		}
		if err != nil {
			t.Errorf("disk cache, %s: %v", key, err)
			continue
		}
		got, err := io.ReadAll(body)
		body.Close()
		if err != nil || !bytes.Equal(got, data[key]) {
			t.Errorf("disk cache holds %s half-written: %d of %d bytes, %v", key, len(got), len(data[key]), err)
		}
		stored++
	}
	if files != stored {
		t.Errorf("the disk cache holds %d files, %d of them whole entries", files, stored)
	}
	t.Logf("%d of %d objects stored on disk by the drained fills", stored, objects)
}
