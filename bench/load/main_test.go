package main

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/fedicache/fedicache/bench/internal/seeded"
)

// TestSeekAndPlay runs the seek load on a server that answers ranges right, then on one whose
// bytes are wrong and one that ignores Range: only the first passes.
func TestSeekAndPlay(t *testing.T) {
	const size, seed = 9*mib + 12345, 42
	right := seeded.Bytes(seed, size)
	wrong := bytes.Clone(right)
	wrong[size/2+100] ^= 1
	for _, tc := range []struct {
		name   string
		serve  http.HandlerFunc
		errors string
	}{
		{"right", func(w http.ResponseWriter, r *http.Request) {
			http.ServeContent(w, r, "v.mp4", time.Time{}, bytes.NewReader(right))
		}, "errors=0 "},
		{"wrong byte", func(w http.ResponseWriter, r *http.Request) {
			http.ServeContent(w, r, "v.mp4", time.Time{}, bytes.NewReader(wrong))
		}, "errors=4 "}, // the middle MiB, the first 8 MiB and both players
		{"no ranges", func(w http.ResponseWriter, r *http.Request) {
			_, _ = w.Write(right)
		}, "errors=4 "}, // every viewer; the players accept a 200
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(tc.serve)
			defer srv.Close()
			u, _ := url.Parse(srv.URL + "/v.mp4")
			line := seekAndPlay(u, size, seed, 2, 10*time.Second)
			if !strings.HasPrefix(line, "RESULT requests=6 ") || !strings.Contains(line, " "+tc.errors) {
				t.Fatalf("%s: %s", tc.name, line)
			}
			for _, k := range []string{"middle_ttfb_us=", "last_ttfb_us=", "play_ttfb_us=", "viewers_us=", "players_us="} {
				if !strings.Contains(line, " "+k) {
					t.Errorf("no %s in %s", k, line)
				}
			}
			t.Log(line)
		})
	}
}
