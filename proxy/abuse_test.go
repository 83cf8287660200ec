package proxy_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fedicache/fedicache/cache/tiertest"
	"github.com/fedicache/fedicache/proxy/proxytest"
)

// rawGet sends a GET of target with the given header lines byte for byte, as a hostile client
// would, on a new connection, and returns the response with its body, or the error reading them.
func rawGet(addr, target string, headers ...string) (*http.Response, []byte, error) {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, nil, err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
	var req strings.Builder
	req.WriteString("GET " + target + " HTTP/1.1\r\nHost: media.example\r\nConnection: close\r\n")
	for _, h := range headers {
		req.WriteString(h + "\r\n")
	}
	req.WriteString("\r\n")
	if _, err := io.WriteString(conn, req.String()); err != nil {
		return nil, nil, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp, body, err
}

// saneAnswer checks the answer to a hostile request for an object whose bytes are data: a
// status among allowed and never a 5xx; a 200 with exactly data; a 206 with exactly the bytes its
// Content-Range names; a 304, 416, 400 or 404 without the object's bytes. It returns what is
// wrong, or "".
func saneAnswer(resp *http.Response, body []byte, readErr error, data []byte, allowed ...int) string {
	status := resp.StatusCode
	if status >= 500 {
		return fmt.Sprintf("status %d", status)
	}
	ok := false
	for _, a := range allowed {
		ok = ok || a == status
	}
	if !ok {
		return fmt.Sprintf("status %d, want one of %v", status, allowed)
	}
	if readErr != nil {
		return fmt.Sprintf("status %d with a broken body: %v", status, readErr)
	}
	size := len(data)
	switch status {
	case 200:
		if !bytes.Equal(body, data) {
			return fmt.Sprintf("200 with %d bytes, not the object's %d", len(body), size)
		}
	case 206:
		var first, last, total int
		if _, err := fmt.Sscanf(resp.Header.Get("Content-Range"), "bytes %d-%d/%d", &first, &last, &total); err != nil ||
			total != size || first < 0 || first > last || last >= size {
			return fmt.Sprintf("206 with Content-Range %q for %d bytes", resp.Header.Get("Content-Range"), size)
		}
		if !bytes.Equal(body, data[first:last+1]) {
			return fmt.Sprintf("206 with %d bytes, not bytes %d-%d", len(body), first, last)
		}
	case 416:
		if cr := resp.Header.Get("Content-Range"); cr != "bytes */"+strconv.Itoa(size) {
			return fmt.Sprintf("416 with Content-Range %q", cr)
		}
		fallthrough
	default:
		if size >= 16 && bytes.Contains(body, data[:16]) {
			return fmt.Sprintf("%d carried the object's bytes", status)
		}
	}
	return ""
}

// hostileTargets are the objects every hostile-header case is tried on: through a front with
// no cache (the bucket's and the volume's own answers) and through one with a cache, warmed
// (memory and disk hits).
func hostileTargets(t *testing.T) []hostileTarget {
	t.Helper()
	small, large := tiertest.Blob(500, 20_000), tiertest.Blob(501, 1<<20+5000)
	const smallKey = "media_attachments/files/000/000/500/original/hostile0000000500.png"
	const largeKey = "media_attachments/files/000/000/501/original/hostile0000000501.mp4"
	const volKey = "media_attachments/files/000/000/502/original/hostile0000000502.jpg"
	var targets []hostileTarget
	plain := newEnv(t)
	cached := newEnv(t, withCache)
	for _, e := range []*env{plain, cached} {
		e.bucket.Put(t, smallKey, small)
		e.bucket.Put(t, largeKey, large)
		e.putVolume(t, volKey, small)
		for _, o := range []struct {
			key  string
			data []byte
			name string
		}{{smallKey, small, "small"}, {largeKey, large, "large"}, {volKey, small, "volume"}} {
			name := "no cache, " + o.name
			if e == cached {
				name = "cache hit, " + o.name
				if resp, body := e.do(t, "GET", "/"+o.key); resp.StatusCode != 200 || !bytes.Equal(body, o.data) {
					t.Fatalf("warming %s: %d", o.key, resp.StatusCode)
				}
			}
			targets = append(targets, hostileTarget{name, e, o.key, o.data})
		}
	}
	return targets
}

// hostileTarget is one object a hostile request is sent for.
type hostileTarget struct {
	name string
	e    *env
	key  string
	data []byte
}

// TestFaultHostileRanges: malformed, overflowing, multi-part and non-ASCII Range values get a
// 200 with the whole object, a 206 with the right bytes or a 416, never a 5xx.
func TestFaultHostileRanges(t *testing.T) {
	proxytest.CheckLeaks(t)
	ranges := []string{
		"bytes=99999999999999999999-",
		"bytes=0-99999999999999999999",
		"bytes=99999999999999999999-99999999999999999999",
		"bytes=-99999999999999999999",
		"bytes=9223372036854775807-",
		"bytes=9223372036854775807-9223372036854775807",
		"bytes=9223372036854775806-9223372036854775807",
		"bytes=-9223372036854775807",
		"bytes=-9223372036854775808",
		"bytes=0-9223372036854775807",
		"bytes=-1-5",
		"bytes=--1",
		"bytes=-1",
		"bytes=-0",
		"bytes=5-4",
		"bytes=",
		"bytes=-",
		"bytes=" + strings.Repeat(",", 4000),
		"bytes=" + strings.Repeat("0-0,", 2000),
		"bytes=" + strings.Repeat("1", 5000) + "-",
		"bytes=0000000000000000000000000001-2",
		"bytes=١-٢",     // Arabic-Indic digits
		"bytes=１-２",     // fullwidth digits
		"bytes=\t0-9\t", // tabs
		"bytes = 0-9",
		"bytes=0 - 9",
		"bytes=0x10-0x20",
		"bytes=1e3-",
		"bytes=+0-9",
		"bytes=0-9;q=1",
		"BYTES=0-9",
		"bytes=\xff\xfe-1",
		"bytes=0-9\x00",
		"bytes=0-9\x0b",
	}
	for _, tg := range hostileTargets(t) {
		for _, rng := range ranges {
			resp, body, err := rawGet(tg.e.addr, "/"+tg.key, "Range: "+rng)
			if resp == nil {
				t.Errorf("%s, Range %.40q: %v", tg.name, rng, err)
				continue
			}
			if bad := saneAnswer(resp, body, err, tg.data, 200, 206, 416, 400); bad != "" {
				t.Errorf("%s, Range %.40q: %s", tg.name, rng, bad)
			}
		}
	}
}

// TestFaultHostileConditionals: huge, unquoted, garbage and oversized If-None-Match,
// If-Modified-Since and If-Range values get a 200 with the whole object, a 206 or a 304, never
// a 5xx; a list that holds the current ETag still gets its 304.
func TestFaultHostileConditionals(t *testing.T) {
	proxytest.CheckLeaks(t)
	for _, tg := range hostileTargets(t) {
		resp, _ := tg.e.do(t, "GET", "/"+tg.key)
		etag := resp.Header.Get("ETag")
		if etag == "" {
			t.Fatalf("%s: no ETag", tg.name)
		}
		list := strings.Repeat(`"0123456789abcdef0123456789abcdef", `, 300) // 10 KB
		for _, tc := range []struct {
			hdr  []string
			want []int
		}{
			{[]string{"If-None-Match: " + list + `"last"`}, []int{200}},
			{[]string{"If-None-Match: " + list + etag}, []int{304}},
			{[]string{"If-None-Match: " + strings.Trim(etag, `"`)}, []int{200}},
			{[]string{"If-None-Match: W/" + etag}, []int{304}},
			{[]string{"If-None-Match: *"}, []int{304}},
			{[]string{"If-None-Match: , , , ,"}, []int{200}},
			{[]string{`If-None-Match: "`}, []int{200}},
			{[]string{`If-None-Match: ""`}, []int{200}},
			{[]string{"If-None-Match: W/"}, []int{200}},
			{[]string{"If-None-Match: " + strings.Repeat("x", 10<<10)}, []int{200}},
			{[]string{`If-None-Match: "` + strings.Repeat("x", 10<<10) + `"`}, []int{200}},
			{[]string{"If-None-Match: " + strings.Repeat(",", 10<<10)}, []int{200}},
			{[]string{"If-None-Match: \x01\x02\x7f"}, []int{200, 400}},
			{[]string{"If-None-Match: \xff\xfe\"\xc0\xae\""}, []int{200}},
			{[]string{"If-None-Match: " + etag, "If-None-Match: " + list}, []int{200, 304}},
			{[]string{"If-Modified-Since: yesterday"}, []int{200}},
			{[]string{"If-Modified-Since: Mon, 99 Foo 9999 99:99:99 GMT"}, []int{200}},
			{[]string{"If-Modified-Since: " + strings.Repeat("Mon, ", 2000)}, []int{200}},
			{[]string{"If-Modified-Since: Mon, 01 Jan 0001 00:00:00 GMT"}, []int{200}},
			{[]string{"If-Modified-Since: Fri, 31 Dec 9999 23:59:59 GMT"}, []int{304}},
			{[]string{"Range: bytes=0-9", "If-Range: " + strings.Repeat("x", 10<<10)}, []int{200}},
			{[]string{"Range: bytes=0-9", "If-Range: W/" + etag}, []int{200}},
			{[]string{"Range: bytes=0-9", "If-Range: " + etag + ", " + etag}, []int{200, 206}},
			{[]string{"Range: bytes=0-9", "If-Range: " + etag}, []int{206}},
		} {
			resp, body, err := rawGet(tg.e.addr, "/"+tg.key, tc.hdr...)
			if resp == nil {
				t.Errorf("%s, %.60q: %v", tg.name, tc.hdr, err)
				continue
			}
			if bad := saneAnswer(resp, body, err, tg.data, tc.want...); bad != "" {
				t.Errorf("%s, %.60q: %s", tg.name, tc.hdr, bad)
			}
		}
	}
}

// TestFaultHostileEncodings: stray, invalid, double, overlong and traversing percent-encodings
// get 400 or 404 (or the object they really name), never a 5xx, never a byte from outside the
// old volume, and never a header the client smuggled in.
func TestFaultHostileEncodings(t *testing.T) {
	proxytest.CheckLeaks(t)
	e, inBucket, onVolume := seeded(t)
	known := map[string][]byte{}
	for k, v := range inBucket {
		known[k] = v
	}
	for k, v := range onVolume {
		known[k] = v
	}
	for _, tc := range []struct {
		target string
		want   []int
	}{
		{"/%", []int{400, 404}},
		{"/%%", []int{400, 404}},
		{"/%zz", []int{400, 404}},
		{"/%2", []int{400, 404}},
		{"/%2g", []int{400, 404}},
		{"/a/%", []int{400, 404}},
		{"/%u002e%u002e/canary", []int{400, 404}},
		{"/%u002e%u002e%u2215canary", []int{400, 404}},
		{"/%c0%ae%c0%ae/canary", []int{400, 404}},
		{"/%e0%80%ae%e0%80%ae%e0%80%afcanary", []int{400, 404}},
		{"/%f0%80%80%ae%f0%80%80%ae/canary", []int{400, 404}},
		{"/..%c0%af..%c0%afcanary", []int{400, 404}},
		{"/%c1%9c..%c1%9ccanary", []int{400, 404}},
		{"/%2f%2e%2e/canary", []int{400, 404}},
		{"/%2f%2e%2e%2fcanary", []int{400, 404}},
		{"/%2e%2e%2f%2e%2e%2fcanary", []int{400, 404}},
		{"/system/%2e%2e/canary", []int{400, 404}},
		{"/%25%32%65%25%32%65/canary", []int{400, 404}},
		{"/%252e%252e%252fcanary", []int{400, 404}},
		{"/%%32%65%%32%65/canary", []int{400, 404}},
		{"/%ef%bc%8e%ef%bc%8e/canary", []int{400, 404}},
		{"/%ef%bc%8e%ef%bc%8e%ef%bc%8fcanary", []int{400, 404}},
		{"/%e2%80%ae", []int{400, 404}},
		{"/%ff", []int{400, 404}},
		{"/%00", []int{400, 404}},
		{"/canary%00", []int{400, 404}},
		{"/%0d%0aSet-Cookie:%20a=b", []int{400, 404}},
		{"/x%0d%0a%0d%0aHTTP/1.1%20200%20OK", []int{400, 404}},
		{"/" + strings.Repeat("%41", 2000), []int{400, 404}},
		{"/" + strings.Repeat("%2e%2e/", 50) + "canary", []int{400, 404}},
		{"/" + strings.ReplaceAll(bucketKey, "/", "%2f"), []int{200, 400, 404}},
		{"/" + strings.ReplaceAll(volumeKey, "/", "%2F"), []int{200, 400, 404}},
		{"/" + escapeEvery(bucketKey), []int{200}},
		{"/" + escapeEvery(volumeKey), []int{200}},
	} {
		resp, body, err := rawGet(e.addr, tc.target)
		if resp == nil {
			t.Errorf("GET %.60q: %v", tc.target, err)
			continue
		}
		if bytes.Contains(body, e.canary) {
			t.Errorf("GET %.60q returned bytes from outside the volume", tc.target)
		}
		if resp.StatusCode >= 500 {
			t.Errorf("GET %.60q: status %d", tc.target, resp.StatusCode)
		}
		if resp.Header.Get("Set-Cookie") != "" {
			t.Errorf("GET %.60q: a smuggled Set-Cookie came back", tc.target)
		}
		ok := false
		for _, w := range tc.want {
			ok = ok || resp.StatusCode == w
		}
		if !ok {
			t.Errorf("GET %.60q: status %d, want one of %v", tc.target, resp.StatusCode, tc.want)
			continue
		}
		if resp.StatusCode == 200 {
			matches := false
			for _, data := range known {
				matches = matches || err == nil && bytes.Equal(body, data)
			}
			if !matches {
				t.Errorf("GET %.60q: a 200 with %d bytes that are no object's", tc.target, len(body))
			}
		}
	}
	if resp, body := e.do(t, "GET", "/"+bucketKey); resp.StatusCode != 200 || !bytes.Equal(body, inBucket[bucketKey]) {
		t.Errorf("after the hostile requests: status %d", resp.StatusCode)
	}
}

// escapeEvery percent-encodes every byte of s but the slashes.
func escapeEvery(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '/' {
			b.WriteByte('/')
			continue
		}
		fmt.Fprintf(&b, "%%%02x", s[i])
	}
	return b.String()
}

// TestFaultHugeHeaders: 100 KB of request headers get 431 and a closed connection; the server
// answers the next client as usual.
func TestFaultHugeHeaders(t *testing.T) {
	proxytest.CheckLeaks(t)
	e, inBucket, _ := seeded(t)
	for _, hdr := range []string{
		"X-Big: " + strings.Repeat("a", 100<<10),
		"Cookie: " + strings.Repeat("session=0123456789; ", 5000),
		strings.Repeat("X-Many: 1\r\n", 10_000) + "X-Last: 1",
	} {
		conn, err := net.Dial("tcp", e.addr)
		if err != nil {
			t.Fatal(err)
		}
		_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
		wrote := make(chan error, 1)
		go func() {
			_, err := io.WriteString(conn, "GET /"+bucketKey+" HTTP/1.1\r\nHost: media.example\r\n"+hdr+"\r\n\r\n")
			wrote <- err
		}()
		br := bufio.NewReader(conn)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Errorf("%.20q...: no answer: %v", hdr, err)
		} else {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
				t.Errorf("%.20q...: status %d, want 431", hdr, resp.StatusCode)
			}
			if bytes.Contains(body, inBucket[bucketKey][:16]) {
				t.Errorf("%.20q...: the object came back", hdr)
			}
			if n, err := br.Read(make([]byte, 1)); n > 0 || err == nil {
				t.Errorf("%.20q...: the connection stayed open after the 431", hdr)
			}
		}
		conn.Close()
		<-wrote
	}
	if resp, body := e.do(t, "GET", "/"+bucketKey); resp.StatusCode != 200 || !bytes.Equal(body, inBucket[bucketKey]) {
		t.Errorf("after the huge headers: status %d", resp.StatusCode)
	}
}

// TestFaultSlowReader: a client reading a 5 MB object a few KB at a time through a small
// receive buffer gets all of it, and a fast client meanwhile, on the same object and on
// another, is not held back: it completes while the slow one still reads. Both while the
// object is fetched (the slow client started the shared fetch) and once it is a disk hit.
func TestFaultSlowReader(t *testing.T) {
	proxytest.CheckLeaks(t)
	c := newCachedEnv(t, cachedOptions{})
	client := c.newClient(t, 4)
	const size = 5 << 20
	// Over loopback (a 64 KiB MSS) a receive buffer under 16 KiB makes TCP itself crawl:
	// zero-window probes with backoff, minutes for 5 MB.
	const rcvbuf = 16 << 10
	step := 8 << 10 // 640 steps of 1 ms at least: the slow client takes 0.6 s or more
	if faultLong() {
		step = 1 << 10 // 5 s or more
	}
	other := tiertest.Blob(401, 3<<20)
	const otherKey = "media_attachments/files/000/000/401/original/other00000000401.mp4"
	c.bucket.Put(t, otherKey, other)
	all := map[string][]byte{otherKey: other}
	for i, warm := range []bool{false, true} {
		name := map[bool]string{false: "shared fetch", true: "disk hit"}[warm]
		t.Run(name, func(t *testing.T) {
			key := fmt.Sprintf("media_attachments/files/000/000/%03d/original/slowreader%06d.mp4", 410+i, i)
			data := tiertest.Blob(uint64(410+i), size)
			all[key] = data
			c.bucket.Put(t, key, data)
			if warm {
				c.warm(t, key)
			}
			conn, err := net.Dial("tcp", c.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if err := conn.(*net.TCPConn).SetReadBuffer(rcvbuf); err != nil {
				t.Fatal(err)
			}
			if _, err := io.WriteString(conn, "GET /"+key+" HTTP/1.1\r\nHost: media.example\r\n\r\n"); err != nil {
				t.Fatal(err)
			}
			resp, err := http.ReadResponse(bufio.NewReaderSize(conn, 4<<10), nil)
			if err != nil || resp.StatusCode != 200 {
				t.Fatalf("slow client: %v %v", resp, err)
			}
			if xc := resp.Header.Get("X-Cache"); warm != (xc == "HIT") {
				t.Errorf("slow client: X-Cache %q", xc)
			}
			reading := make(chan struct{})
			slowDone := make(chan string, 1)
			go func() {
				tick := time.NewTicker(time.Millisecond)
				defer tick.Stop()
				got := make([]byte, 0, size)
				buf := make([]byte, step)
				for {
					<-tick.C
					n, err := io.ReadFull(resp.Body, buf)
					got = append(got, buf[:n]...)
					if len(got) >= 64<<10 && len(got)-n < 64<<10 {
						close(reading)
					}
					if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
						break
					}
					if err != nil {
						slowDone <- fmt.Sprintf("slow client, after %d bytes: %v", len(got), err)
						return
					}
				}
				if !bytes.Equal(got, data) {
					slowDone <- fmt.Sprintf("slow client: %d bytes, not the %d stored", len(got), len(data))
					return
				}
				slowDone <- ""
			}()
			<-reading
			var wg sync.WaitGroup
			for _, o := range []struct {
				key  string
				data []byte
			}{{key, data}, {otherKey, other}} {
				wg.Go(func() {
					resp, body, err := fetch(client, c.url+"/"+o.key)
					if resp == nil || resp.StatusCode != 200 || err != nil || !bytes.Equal(body, o.data) {
						t.Errorf("fast client of %s beside the slow one: %v, %d bytes, %v", o.key, resp != nil && resp.StatusCode == 200, len(body), err)
					}
				})
			}
			wg.Wait()
			select {
			case bad := <-slowDone:
				t.Errorf("the slow client finished before the fast ones (%q): they were held back", bad)
			default:
				if bad := <-slowDone; bad != "" {
					t.Error(bad)
				}
			}
		})
	}
	c.checkCache(t, all)
}

// TestFaultIdleConnections: thousands of connections that send nothing do not stop the
// server from answering, and once they close, the server's descriptors for them are gone (and
// its goroutines once it stops).
func TestFaultIdleConnections(t *testing.T) {
	proxytest.CheckLeaks(t)
	e, inBucket, _ := seeded(t)
	n := 2000
	if faultLong() {
		n = 10_000
	}
	if raceEnabled && n > 3000 {
		n = 3000 // the race detector allows 8128 goroutines; each connection has one
		t.Logf("scaled down to %d idle connections under the race detector", n)
	}
	n = raiseFDLimit(t, n)
	if resp, _ := e.do(t, "GET", "/"+bucketKey); resp.StatusCode != 200 {
		t.Fatalf("before: status %d", resp.StatusCode)
	}
	base := proxytest.CountResources()
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range n {
		c, err := net.Dial("tcp", e.addr)
		if err != nil {
			t.Fatalf("idle connection %d: %v", len(conns)+1, err)
		}
		conns = append(conns, c)
	}
	for _, m := range []string{"GET", "HEAD"} {
		resp, body := e.do(t, m, "/"+bucketKey)
		if resp.StatusCode != 200 || m == "GET" && !bytes.Equal(body, inBucket[bucketKey]) {
			t.Errorf("%s with %d idle connections open: status %d, %d bytes", m, n, resp.StatusCode, len(body))
		}
	}
	// Some of the idle connections do send a request at last, and get their answer.
	for i := 0; i < len(conns); i += len(conns) / 10 {
		c := conns[i]
		_ = c.SetDeadline(time.Now().Add(20 * time.Second))
		if _, err := io.WriteString(c, "GET /"+bucketKey+" HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil || resp.StatusCode != 200 {
			t.Errorf("idle connection %d, its request at last: %v %v", i, resp, err)
			continue
		}
		body, err := io.ReadAll(resp.Body)
		if err != nil || !bytes.Equal(body, inBucket[bucketKey]) {
			t.Errorf("idle connection %d: %d bytes, %v", i, len(body), err)
		}
	}
	for _, c := range conns {
		c.Close()
	}
	conns = conns[:0]
	// The server's worker goroutines stay pooled a while; CheckLeaks sees them end with it.
	base.FDsSettled(t, "after the idle clients left")
}

// TestFaultMaxConnsRefusesExtra: beyond proxy.Config.MaxConns, new connections are answered
// 503 and closed at once rather than kept waiting; once the held ones close, requests are
// served again and nothing is left open.
func TestFaultMaxConnsRefusesExtra(t *testing.T) {
	proxytest.CheckLeaks(t)
	const limit, extra = 20, 40
	c := newCachedEnv(t, cachedOptions{maxConns: limit})
	data := tiertest.Blob(600, 10_000)
	c.bucket.Put(t, bucketKey, data)
	if resp, _ := c.do(t, "GET", "/"+bucketKey); resp.StatusCode != 200 {
		t.Fatalf("before: status %d", resp.StatusCode)
	}
	c.client.CloseIdleConnections()
	base := proxytest.CountResources()

	conns := make([]net.Conn, limit+extra)
	closed := make(chan int, len(conns))
	for i := range conns {
		conn, err := net.Dial("tcp", c.addr)
		if err != nil {
			t.Fatal(err)
		}
		conns[i] = conn
		go func() {
			_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
			b, err := io.ReadAll(conn) // ends when the server closes it (or the test does)
			if err == nil && len(b) > 0 && bytes.HasPrefix(b, []byte("HTTP/1.1 503")) {
				closed <- i
				return
			}
			closed <- -1
		}()
	}
	for range extra {
		if i := <-closed; i < 0 {
			t.Fatal("a connection ended without a 503")
		}
	}
	// The limit is reached: a request now is refused, not queued.
	resp, body, err := rawGet(c.addr, "/"+bucketKey)
	if err == nil && resp.StatusCode != 503 {
		t.Errorf("at the limit: status %d, %d bytes; want 503 or a refused connection", resp.StatusCode, len(body))
	}
	for _, conn := range conns {
		conn.Close()
	}
	for range limit {
		<-closed
	}
	// The held connections went: the server answers again (its workers free up as it notices).
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		resp, body, err := rawGet(c.addr, "/"+bucketKey)
		if err == nil && resp.StatusCode == 200 && bytes.Equal(body, data) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the held connections closed: %v %v", resp, err)
		}
		<-tick.C
	}
	base.FDsSettled(t, "after the connections closed")
}
