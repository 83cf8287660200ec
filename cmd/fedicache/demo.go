package main

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/fedicache/fedicache/cmd/fedicache/config"
	"github.com/fedicache/fedicache/origin"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
	"github.com/spf13/cobra"
)

const demoBucket = "mastodon-media"

// demoObject is one sample object of the demo, in the bucket or on the old volume.
type demoObject struct {
	key, what string
	inBucket  bool
	data      func() []byte
}

func demoObjects() []demoObject {
	return []demoObject{
		{"media_attachments/files/109/852/623/730/091/815/original/3f1a9c0d5e7b2a64.png", "a new upload, in the bucket", true,
			func() []byte { return pngImage(640, 360, color.RGBA{0x56, 0x3a, 0xcc, 0xff}) }},
		{"media_attachments/files/109/852/623/730/091/815/small/3f1a9c0d5e7b2a64.png", "its thumbnail, in the bucket", true,
			func() []byte { return pngImage(160, 90, color.RGBA{0x56, 0x3a, 0xcc, 0xff}) }},
		{"accounts/avatars/000/000/001/original/9d2e4b7a1c0f3e58.jpg", "an avatar, in the bucket", true,
			func() []byte { return jpegImage(400, 400, color.RGBA{0x2b, 0x90, 0xd9, 0xff}) }},
		{"media_attachments/files/000/000/042/original/a0b1c2d3e4f5a6b7.png", "an old upload, only on the old volume", false,
			func() []byte { return pngImage(640, 360, color.RGBA{0xd9, 0x6b, 0x2b, 0xff}) }},
		{"accounts/headers/000/000/001/original/5e6f7a8b9c0d1e2f.jpg", "an old header, only on the old volume", false,
			func() []byte { return jpegImage(1500, 500, color.RGBA{0x2b, 0xd9, 0x8f, 0xff}) }},
		{"backups/dumps/000/000/001/original/archive-20200101.zip", "a user's export: never served", false,
			func() []byte { return []byte("PK private export") }},
	}
}

func newDemoCmd() *cobra.Command {
	var listen, adminListen string
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run fedicache on an in-process bucket and a sample old volume",
		Long: "Run fedicache against an in-process S3 bucket holding sample media and a temporary\n" +
			"old volume holding others, print URLs and curl commands, and serve until Ctrl-C.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			return runDemo(ctx, listen, adminListen, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:8080", "public listener host:port")
	cmd.Flags().StringVar(&adminListen, "admin-listen", "127.0.0.1:9090", "admin listener host:port")
	return cmd
}

// runDemo starts the in-process bucket, fills it and a temporary old volume, then serves.
func runDemo(ctx context.Context, listen, adminListen string, out, errOut io.Writer) error {
	backend := s3mem.New()
	if err := backend.CreateBucket(demoBucket); err != nil {
		return err
	}
	volDir, err := os.MkdirTemp("", "fedicache-demo-volume-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(volDir)
	cacheDir, err := os.MkdirTemp("", "fedicache-demo-cache-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(cacheDir)
	for _, o := range demoObjects() {
		data := o.data()
		if o.inBucket {
			meta := map[string]string{
				"Content-Type":  origin.ContentType(o.key),
				"Last-Modified": time.Now().UTC().Format(http.TimeFormat),
			}
			if _, err := backend.PutObject(demoBucket, o.key, meta, bytes.NewReader(data), int64(len(data)), nil); err != nil {
				return err
			}
			continue
		}
		path := filepath.Join(volDir, filepath.FromSlash(o.key))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(path, data, 0o644); err != nil {
			return err
		}
	}

	s3ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	s3srv := &http.Server{Handler: gofakes3.New(backend).Server(), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s3srv.Serve(s3ln) }()
	defer s3srv.Close()

	cfg, err := demoConfig(listen, adminListen, "http://"+s3ln.Addr().String(), volDir, cacheDir)
	if err != nil {
		return err
	}
	log := newLogger(cfg, errOut)
	return serve(ctx, cfg, log, func(a addrs) { printDemo(out, a, s3ln.Addr().String(), volDir) })
}

// demoConfig is the default configuration pointed at the demo's bucket and volume.
func demoConfig(listen, adminListen, endpoint, volDir, cacheDir string) (config.Config, error) {
	return config.LoadValues(map[string]any{
		"listen":               listen,
		"admin_listen":         adminListen,
		"s3.endpoint":          endpoint,
		"s3.bucket":            demoBucket,
		"s3.access_key_id":     "demo",
		"s3.secret_access_key": "demo-secret",
		"s3.permission":        "", // the in-process bucket has no ACLs
		"fallback.dir":         volDir,
		"cache.disk.dir":       cacheDir,
		"cache.disk.max_bytes": "256MiB",
		"admin.token":          "demo-token",
		"log.format":           "text",
	})
}

func printDemo(w io.Writer, a addrs, s3addr, volDir string) {
	base := "http://" + a.public.String()
	fmt.Fprintf(w, "\nfedicache demo\n  bucket %q on an in-process S3 server at http://%s\n  old volume at %s\n\n", demoBucket, s3addr, volDir)
	for _, o := range demoObjects() {
		fmt.Fprintf(w, "  %-45s %s/%s\n", o.what, base, o.key)
	}
	objs := demoObjects()
	fmt.Fprintf(w, "\nTry:\n")
	fmt.Fprintf(w, "  curl -s -o /dev/null -D - %s/%s | grep -i x-cache   # MISS: from the bucket\n", base, objs[0].key)
	fmt.Fprintf(w, "  curl -s -o /dev/null -D - %s/%s | grep -i x-cache   # again: HIT, X-Cache-Tier: disk (now in memory too)\n", base, objs[0].key)
	fmt.Fprintf(w, "  curl -s -o /dev/null -D - %s/%s | grep -i x-cache   # a third time: HIT, X-Cache-Tier: memory\n", base, objs[0].key)
	fmt.Fprintf(w, "  curl -s -o /dev/null -D - %s/%s | grep -i x-cache   # FALLBACK: from the old volume\n", base, objs[3].key)
	fmt.Fprintf(w, "  curl -s -r 0-99 -o /dev/null -w '%%{http_code} %%{size_download}\\n' %s/%s   # 206 100\n", base, objs[0].key)
	fmt.Fprintf(w, "  curl -s '%s/?max-keys=1'                # 404: no listing\n", base)
	fmt.Fprintf(w, "  curl -sI %s/%s | head -1   # 404: never served\n", base, objs[5].key)
	fmt.Fprintf(w, "  open http://%s/ in a browser              # admin: the status page\n", a.admin)
	fmt.Fprintf(w, "  curl -s http://%s/status                  # admin: status as JSON\n", a.admin)
	fmt.Fprintf(w, "  curl -s http://%s/metrics | grep -E 'fedicache_(requests|cache_hits|egress_saved)'\n", a.admin)
	fmt.Fprintf(w, "  curl -s -X POST -H 'Authorization: Bearer demo-token' 'http://%s/purge?prefix=media_attachments/'   # purge\n", a.admin)
	fmt.Fprintf(w, "\nCtrl-C stops.\n\n")
}

func pngImage(w, h int, c color.RGBA) []byte {
	var buf bytes.Buffer
	_ = png.Encode(&buf, gradient(w, h, c))
	return buf.Bytes()
}

func jpegImage(w, h int, c color.RGBA) []byte {
	var buf bytes.Buffer
	_ = jpeg.Encode(&buf, gradient(w, h, c), &jpeg.Options{Quality: 80})
	return buf.Bytes()
}

func gradient(w, h int, c color.RGBA) image.Image {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			f := float64(x+y) / float64(w+h)
			img.Set(x, y, color.RGBA{uint8(float64(c.R) * (1 - f/2)), uint8(float64(c.G) * (1 - f/3)), uint8(float64(c.B) * (0.5 + f/2)), 0xff})
		}
	}
	return img
}
