// Command load is the benchmark's own HTTP client, for the two loads wrk cannot make:
//
//	load storm -url URL [-n 100]
//	    N clients, each on its own connection, GET one URL at the same instant: a cold-key
//	    storm, as when a new post with media reaches many timelines at once. All connections
//	    are opened first, then every request is written at once.
//	load walk -base URL -list FILE [-c 64] [-max 10s]
//	    C connections GET each URL path listed in FILE once, in order, then stop: a cold spread
//	    whose every request is a miss (wrk runs for a fixed time and would wrap around).
//
// The output is one line of key=value pairs, prefixed "RESULT", for the benchmark script;
// latencies are in microseconds, duration_us runs from the first request to the last answer.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// outcome is what one request saw.
type outcome struct {
	status      int
	bytes       int64
	ttfb, total time.Duration
	err         error
}

func main() {
	log.SetFlags(0)
	log.SetPrefix("load: ")
	if len(os.Args) < 2 {
		log.Fatal("usage: load storm -url URL [-n N] | load walk -base URL -list FILE [-c C] [-max D]")
	}
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	switch os.Args[1] {
	case "storm":
		rawURL := fs.String("url", "", "the URL every client GETs")
		n := fs.Int("n", 100, "clients, each on its own connection")
		timeout := fs.Duration("timeout", 2*time.Minute, "limit on each client's whole exchange")
		_ = fs.Parse(os.Args[2:])
		u, err := url.Parse(*rawURL)
		if err != nil || u.Host == "" {
			log.Fatalf("-url %q is not a URL such as http://127.0.0.1:8080/key", *rawURL)
		}
		outcomes, elapsed := storm(u, *n, *timeout)
		fmt.Println(summarize(outcomes, elapsed))
	case "walk":
		base := fs.String("base", "", "the server, e.g. http://127.0.0.1:8080")
		list := fs.String("list", "", "file of URL paths, one a line")
		c := fs.Int("c", 64, "connections")
		maxTime := fs.Duration("max", 10*time.Second, "stop starting requests after this long")
		_ = fs.Parse(os.Args[2:])
		data, err := os.ReadFile(*list)
		if err != nil {
			log.Fatal(err)
		}
		paths := strings.Fields(string(data))
		outcomes, elapsed := walk(*base, paths, *c, *maxTime)
		fmt.Println(summarize(outcomes, elapsed))
	default:
		log.Fatalf("unknown load %q: use storm or walk", os.Args[1])
	}
}

// storm opens n connections to u's host, then sends a GET of u on every one at once.
func storm(u *url.URL, n int, timeout time.Duration) ([]outcome, time.Duration) {
	conns := make([]net.Conn, n)
	for i := range conns {
		var err error
		if conns[i], err = net.DialTimeout("tcp", u.Host, 10*time.Second); err != nil {
			log.Fatalf("connect %d: %v", i, err)
		}
	}
	start := make(chan struct{})
	outcomes := make([]outcome, n)
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Go(func() {
			defer c.Close()
			<-start
			outcomes[i] = fetchOn(c, u, timeout)
		})
	}
	began := time.Now()
	close(start)
	wg.Wait()
	return outcomes, time.Since(began)
}

// fetchOn sends one GET of u on c and reads the whole answer.
func fetchOn(c net.Conn, u *url.URL, timeout time.Duration) outcome {
	began := time.Now()
	_ = c.SetDeadline(began.Add(timeout))
	req, err := http.NewRequest(http.MethodGet, u.String(), nil)
	if err != nil {
		return outcome{err: err}
	}
	req.Close = true
	if err := req.Write(c); err != nil {
		return outcome{err: err}
	}
	resp, err := http.ReadResponse(bufio.NewReaderSize(c, 32<<10), req)
	if err != nil {
		return outcome{err: err}
	}
	o := outcome{status: resp.StatusCode, ttfb: time.Since(began)}
	o.bytes, o.err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	o.total = time.Since(began)
	return o
}

// walk GETs base+path for each path once, on c keep-alive connections, until the paths run
// out or maxTime has passed.
func walk(base string, paths []string, c int, maxTime time.Duration) ([]outcome, time.Duration) {
	client := &http.Client{
		Transport: &http.Transport{
			MaxConnsPerHost:     c,
			MaxIdleConnsPerHost: c,
			DisableCompression:  true,
		},
		Timeout: time.Minute,
	}
	outcomes := make([]outcome, len(paths))
	var next atomic.Int64
	began := time.Now()
	deadline := began.Add(maxTime)
	var wg sync.WaitGroup
	for range c {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(paths) || time.Now().After(deadline) {
					return
				}
				outcomes[i] = get(client, base+paths[i])
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(began)
	// Paths never requested (maxTime passed) leave zero outcomes.
	return slices.DeleteFunc(outcomes, func(o outcome) bool { return o.total == 0 }), elapsed
}

// get GETs u with client and reads the whole answer.
func get(client *http.Client, u string) outcome {
	began := time.Now()
	resp, err := client.Get(u)
	if err != nil {
		return outcome{err: err, total: time.Since(began)}
	}
	o := outcome{status: resp.StatusCode, ttfb: time.Since(began)}
	o.bytes, o.err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	o.total = time.Since(began)
	return o
}

// summarize renders the outcomes as one RESULT line. errors counts failed exchanges and
// answers other than 200 and 206.
func summarize(outcomes []outcome, elapsed time.Duration) string {
	statuses := map[int]int{}
	var ttfb, total []time.Duration
	var bytes int64
	errs := 0
	var firstErr error
	for _, o := range outcomes {
		if o.err != nil {
			errs++
			if firstErr == nil {
				firstErr = o.err
			}
			continue
		}
		statuses[o.status]++
		if o.status != http.StatusOK && o.status != http.StatusPartialContent {
			errs++
		}
		bytes += o.bytes
		ttfb = append(ttfb, o.ttfb)
		total = append(total, o.total)
	}
	if firstErr != nil {
		log.Printf("%d requests failed, the first with: %v", errs, firstErr)
	}
	var codes []string
	for code, count := range statuses {
		codes = append(codes, fmt.Sprintf("%d:%d", code, count))
	}
	slices.Sort(codes)
	return fmt.Sprintf("RESULT requests=%d bytes=%d duration_us=%d errors=%d statuses=%s "+
		"p50_us=%d p99_us=%d max_us=%d ttfb_p50_us=%d ttfb_p99_us=%d",
		len(outcomes), bytes, elapsed.Microseconds(), errs, strings.Join(codes, ","),
		percentile(total, 50), percentile(total, 99), percentile(total, 100),
		percentile(ttfb, 50), percentile(ttfb, 99))
}

// percentile returns the p-th percentile (nearest rank) of ds in microseconds, 0 when empty.
func percentile(ds []time.Duration, p int) int64 {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	i := (p*len(ds)+99)/100 - 1
	return ds[max(i, 0)].Microseconds()
}
