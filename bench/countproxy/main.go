// Command countproxy is a reverse proxy that counts the GET requests it forwards, and the
// bytes of their answers, by path.
//
// The benchmark puts it in front of the bucket and points both nginx and fedicache at it, so
// one counter measures how often each of them reaches the bucket and how much it downloads.
// GET /counts lists "GETS BYTES PATH" lines, most requested first; GET /counts?reset=1 lists
// them and starts again. A GET of a subresource (?acl, ?tagging...) is listed apart from the
// object's own GETs, as "PATH?acl". No bucket may be named "counts".
package main

import (
	"cmp"
	"flag"
	"fmt"
	"log"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
)

// tally is what was seen of one path.
type tally struct{ gets, bytes int64 }

// counter holds the tallies by path.
type counter struct {
	mu      sync.Mutex
	tallies map[string]tally
}

// add counts gets requests and bytes of answers for path.
func (c *counter) add(path string, gets, bytes int64) {
	c.mu.Lock()
	t := c.tallies[path]
	c.tallies[path] = tally{t.gets + gets, t.bytes + bytes}
	c.mu.Unlock()
}

// ServeHTTP writes the tallies, most requested first, and clears them when asked to.
func (c *counter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	tallies := c.tallies
	if r.URL.Query().Get("reset") == "1" {
		c.tallies = map[string]tally{}
	}
	c.mu.Unlock()
	paths := make([]string, 0, len(tallies))
	for p := range tallies {
		paths = append(paths, p)
	}
	slices.SortFunc(paths, func(a, b string) int {
		return cmp.Or(cmp.Compare(tallies[b].gets, tallies[a].gets), cmp.Compare(a, b))
	})
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	for _, p := range paths {
		fmt.Fprintf(w, "%d %d %s\n", tallies[p].gets, tallies[p].bytes, p)
	}
}

// countingWriter adds the body bytes written through it to path's tally as they go.
type countingWriter struct {
	http.ResponseWriter
	c    *counter
	path string
}

func (w *countingWriter) Write(b []byte) (int, error) {
	n, err := w.ResponseWriter.Write(b)
	w.c.add(w.path, 0, int64(n))
	return n, err
}

// Unwrap lets http.ResponseController reach the real writer (ReverseProxy flushes through it).
func (w *countingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// subresource is "?name" for a GET of a subresource such as ?acl, "" for a plain GET (the
// SDK's x-id parameter aside).
func subresource(q url.Values) string {
	var names []string
	for name := range q {
		if name != "x-id" {
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		return ""
	}
	slices.Sort(names)
	return "?" + strings.Join(names, "&")
}

func main() {
	listen := flag.String("listen", "127.0.0.1:7071", "address to listen on")
	target := flag.String("target", "", "the bucket endpoint to forward to, e.g. http://127.0.0.1:7070")
	flag.Parse()
	u, err := url.Parse(*target)
	if err != nil || u.Host == "" {
		log.Fatalf("countproxy: -target %q is not a URL such as http://127.0.0.1:7070", *target)
	}

	c := &counter{tallies: map[string]tally{}}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.MaxIdleConnsPerHost = 512
	forward := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(u)
			// Keep the client's Host: a signed request was signed for it.
			r.Out.Host = r.In.Host
		},
		Transport: transport,
	}
	mux := http.NewServeMux()
	mux.Handle("GET /counts", c)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			forward.ServeHTTP(w, r)
			return
		}
		label := r.URL.Path + subresource(r.URL.Query())
		c.add(label, 1, 0)
		forward.ServeHTTP(&countingWriter{ResponseWriter: w, c: c, path: label}, r)
	})
	log.Fatal(http.ListenAndServe(*listen, mux))
}
