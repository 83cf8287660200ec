// Command load is the benchmark's own HTTP client, for the loads wrk cannot make:
//
//	load storm -url URL [-n 100]
//	    N clients, each on its own connection, GET one URL at the same instant: a cold-key
//	    storm, as when a new post with media reaches many timelines at once. All connections
//	    are opened first, then every request is written at once.
//	load walk -base URL -list FILE [-c 64] [-max 10s]
//	    C connections GET each URL path listed in FILE once, in order, then stop: a cold spread
//	    whose every request is a miss (wrk runs for a fixed time and would wrap around).
//	load seek -url URL -size N [-seed S] [-players 2]
//	    Seek and play a cold video, as viewers of a timeline do: 4 viewers at once, each on its
//	    own connection, ask for one range (the first MiB, a MiB from the middle, the last MiB,
//	    the first 8 MiB); once all have their answer, the players read the whole video at once,
//	    each with "Range: bytes=0-" as a browser's video element starts. Every answer is
//	    checked: status (206; 200 or 206 for a player), Content-Range, length and, given the
//	    seed bench/gen made the video from, every byte.
//
// The output is one line of key=value pairs, prefixed "RESULT", for the benchmark script;
// latencies are in microseconds, duration_us runs from the first request to the last answer.
// seek adds the first-byte time of each viewer (first_ttfb_us, middle_ttfb_us, last_ttfb_us,
// head8_ttfb_us) and of the slowest player (play_ttfb_us), and how long the viewers and the
// players took (viewers_us, players_us).
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

	"github.com/fedicache/fedicache/proxy/cluster"

	"github.com/fedicache/fedicache/bench/internal/seeded"
)

const mib = 1 << 20

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
		log.Fatal("usage: load storm -url URL [-n N] | load walk -base URL -list FILE [-c C] [-max D] | " +
			"load seek -url URL -size N [-seed S] [-players P]")
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
		members := fs.String("members", "", "the replicas as cluster.peers makes them (ip:admin-port, comma-separated): "+
			"with -self, the latency of the keys this replica owns and of the others is reported apart")
		self := fs.String("self", "", "the replica -base reaches, as one of -members")
		_ = fs.Parse(os.Args[2:])
		data, err := os.ReadFile(*list)
		if err != nil {
			log.Fatal(err)
		}
		paths := strings.Fields(string(data))
		outcomes, elapsed := walk(*base, paths, *c, *maxTime)
		line := summarize(outcomes, elapsed)
		if *members != "" {
			line += ownerSplit(paths, outcomes, strings.Split(*members, ","), *self)
		}
		fmt.Println(line)
	case "seek":
		rawURL := fs.String("url", "", "the video's URL")
		size := fs.Int64("size", 0, "the video's size in bytes (at least 8 MiB)")
		seed := fs.Uint64("seed", 0, "the seed bench/gen made the video's bytes from (0: check lengths only)")
		players := fs.Int("players", 2, "players reading the whole video once the seeks are answered")
		timeout := fs.Duration("timeout", 2*time.Minute, "limit on each client's whole exchange")
		_ = fs.Parse(os.Args[2:])
		u, err := url.Parse(*rawURL)
		if err != nil || u.Host == "" {
			log.Fatalf("-url %q is not a URL such as http://127.0.0.1:8080/key", *rawURL)
		}
		if *size < 8*mib {
			log.Fatalf("-size %d: the video must be at least 8 MiB", *size)
		}
		fmt.Println(seekAndPlay(u, *size, *seed, *players, *timeout))
	default:
		log.Fatalf("unknown load %q: use storm, walk or seek", os.Args[1])
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
			outcomes[i] = fetchOn(c, u, timeout, nil)
		})
	}
	began := time.Now()
	close(start)
	wg.Wait()
	return outcomes, time.Since(began)
}

// fetchOn sends one GET of u on c and reads the whole answer. With a check, the GET asks for
// its range and the check judges the answer; without, the body is only counted.
func fetchOn(c net.Conn, u *url.URL, timeout time.Duration, check *rangeCheck) outcome {
	began := time.Now()
	_ = c.SetDeadline(began.Add(timeout))
	req, err := http.NewRequest(http.MethodGet, u.String(), nil)
	if err != nil {
		return outcome{err: err}
	}
	req.Close = true
	if check != nil {
		req.Header.Set("Range", check.header())
	}
	if err := req.Write(c); err != nil {
		return outcome{err: err}
	}
	resp, err := http.ReadResponse(bufio.NewReaderSize(c, 32<<10), req)
	if err != nil {
		return outcome{err: err}
	}
	o := outcome{status: resp.StatusCode, ttfb: time.Since(began)}
	var body io.Writer = io.Discard
	if check != nil {
		check.head(resp)
		body = check
	}
	o.bytes, o.err = io.Copy(body, resp.Body)
	resp.Body.Close()
	o.total = time.Since(began)
	if o.err == nil && check != nil {
		o.err = check.verdict(o.bytes)
	}
	return o
}

// rangeCheck asks for one range of an object and checks the answer: its status and
// Content-Range, its length and, when the object's bytes are known, every byte.
type rangeCheck struct {
	name        string
	first, last int64  // the range asked for; last -1: from first to the end
	size        int64  // the object's size
	want        []byte // the object's bytes; nil: not checked
	problem     string // the first thing wrong with the answer's head
	off         int64  // where the next body byte lies in the object
	end         int64  // where the answer's body ends in the object
	bad         int64  // where the first wrong byte lies, -1 if none
}

func (k *rangeCheck) header() string {
	if k.last < 0 {
		return fmt.Sprintf("bytes=%d-", k.first)
	}
	return fmt.Sprintf("bytes=%d-%d", k.first, k.last)
}

// head checks the status and the headers, and sets where the body should lie in the object.
// A player's "bytes=0-" may be answered 200 with the whole object, as a browser accepts.
func (k *rangeCheck) head(resp *http.Response) {
	k.bad = -1
	last := k.last
	if last < 0 {
		last = k.size - 1
	}
	k.off, k.end = k.first, last+1
	want := fmt.Sprintf("bytes %d-%d/%d", k.first, last, k.size)
	switch {
	case resp.StatusCode == http.StatusOK && k.last < 0 && k.first == 0:
		k.off, k.end = 0, k.size
	case resp.StatusCode != http.StatusPartialContent:
		k.problem = fmt.Sprintf("status %d, not 206", resp.StatusCode)
	case resp.Header.Get("Content-Range") != want:
		k.problem = fmt.Sprintf("Content-Range %q, not %q", resp.Header.Get("Content-Range"), want)
	}
	// -1: chunked, no length given; the body's length is checked then.
	if k.problem == "" && resp.ContentLength >= 0 && resp.ContentLength != k.end-k.off {
		k.problem = fmt.Sprintf("Content-Length %d, not %d", resp.ContentLength, k.end-k.off)
	}
}

// Write compares the body with the object's bytes as it comes.
func (k *rangeCheck) Write(p []byte) (int, error) {
	if k.want != nil && k.bad < 0 && k.problem == "" {
		want := k.want[min(k.off, k.end):min(k.off+int64(len(p)), k.end)]
		for i := range want {
			if p[i] != want[i] {
				k.bad = k.off + int64(i)
				break
			}
		}
	}
	k.off += int64(len(p))
	return len(p), nil
}

// verdict is what was wrong with the answer, nil if nothing.
func (k *rangeCheck) verdict(n int64) error {
	switch {
	case k.problem != "":
		return fmt.Errorf("%s (%s): %s", k.name, k.header(), k.problem)
	case k.off != k.end:
		return fmt.Errorf("%s (%s): body of %d bytes ends at %d, not %d", k.name, k.header(), n, k.off, k.end)
	case k.bad >= 0:
		return fmt.Errorf("%s (%s): wrong byte at %d", k.name, k.header(), k.bad)
	}
	return nil
}

// seekAndPlay runs the seek-and-play load on the video at u (size bytes, made from seed when
// not 0) and renders it as a RESULT line.
func seekAndPlay(u *url.URL, size int64, seed uint64, players int, timeout time.Duration) string {
	var want []byte
	if seed != 0 {
		want = seeded.Bytes(seed, size)
	}
	middle := size / 2
	views := []*rangeCheck{
		{name: "first", first: 0, last: mib - 1},
		{name: "middle", first: middle, last: middle + mib - 1},
		{name: "last", first: size - mib, last: size - 1},
		{name: "head8", first: 0, last: 8*mib - 1},
	}
	var plays []*rangeCheck
	for range players {
		plays = append(plays, &rangeCheck{name: "play", first: 0, last: -1})
	}
	for _, k := range append(views, plays...) {
		k.size, k.want = size, want
	}
	began := time.Now()
	outcomes := atOnce(u, views, timeout)
	viewers := time.Since(began)
	played := time.Now()
	outcomes = append(outcomes, atOnce(u, plays, timeout)...)
	playersTook := time.Since(played)
	line := summarize(outcomes, time.Since(began))
	for i, k := range views {
		line += fmt.Sprintf(" %s_ttfb_us=%d", k.name, outcomes[i].ttfb.Microseconds())
	}
	var playTTFB time.Duration
	for _, o := range outcomes[len(views):] {
		playTTFB = max(playTTFB, o.ttfb)
	}
	return line + fmt.Sprintf(" play_ttfb_us=%d viewers_us=%d players_us=%d",
		playTTFB.Microseconds(), viewers.Microseconds(), playersTook.Microseconds())
}

// atOnce opens a connection for each check, then sends every GET at once and waits for all
// the answers.
func atOnce(u *url.URL, checks []*rangeCheck, timeout time.Duration) []outcome {
	conns := make([]net.Conn, len(checks))
	for i := range conns {
		var err error
		if conns[i], err = net.DialTimeout("tcp", u.Host, 10*time.Second); err != nil {
			log.Fatalf("connect %d: %v", i, err)
		}
	}
	start := make(chan struct{})
	outcomes := make([]outcome, len(checks))
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Go(func() {
			defer c.Close()
			<-start
			outcomes[i] = fetchOn(c, u, timeout, checks[i])
		})
	}
	close(start)
	wg.Wait()
	return outcomes
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
		if o.status != 0 {
			statuses[o.status]++
		}
		if o.err != nil {
			errs++
			if firstErr == nil {
				firstErr = o.err
			}
			continue
		}
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

// ownerSplit returns the latency of the answers to keys self owns among members and of the
// others (which self asked their owners for), as " own_n=... own_p50_us=... own_p99_us=...
// peer_n=... peer_p50_us=... peer_p99_us=...", for the RESULT line. The keys are the paths
// without their leading slash.
func ownerSplit(paths []string, outcomes []outcome, members []string, self string) string {
	owner := cluster.OwnerFunc(members)
	var own, peer []time.Duration
	for i, o := range outcomes {
		if o.err != nil || o.status == 0 {
			continue
		}
		if owner(strings.TrimPrefix(paths[i], "/")) == self {
			own = append(own, o.total)
		} else {
			peer = append(peer, o.total)
		}
	}
	return fmt.Sprintf(" own_n=%d own_p50_us=%d own_p99_us=%d peer_n=%d peer_p50_us=%d peer_p99_us=%d",
		len(own), percentile(own, 50), percentile(own, 99), len(peer), percentile(peer, 50), percentile(peer, 99))
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
