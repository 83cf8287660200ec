package proxy_test

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fedicache/fedicache/cache"
	"github.com/fedicache/fedicache/cache/tiertest"
	"github.com/fedicache/fedicache/origin/origintest"
	"github.com/fedicache/fedicache/proxy/proxytest"
)

// faultLong reports whether the long fault cases were asked for (FEDICACHE_FAULT_LONG=1).
func faultLong() bool { return os.Getenv("FEDICACHE_FAULT_LONG") == "1" }

// cachedEnv is an env whose front answers through a Layered cache that the test can inspect:
// its two tiers (Env.Memory, Env.Disk), their folders (Env.DiskDir, Env.SpoolDir) and the
// cache's clock.
type cachedEnv struct {
	*env
	clock *origintest.Clock
	// clients are the transports of newClient, whose idle connections checkCache closes
	// before it stops the front (a connection that never sent a request holds a shutdown for
	// 5 s).
	clients []*http.Transport
}

// cachedOptions are what newCachedEnv may change; the zero value is newEnv's setup.
type cachedOptions struct {
	s3Timeout time.Duration // zero means 2s
	diskMax   int64         // zero means 1 GiB
	maxConns  int           // zero means the proxy's default
	ttl       time.Duration // zero means 1h
}

// newCachedEnv returns an env (bucket, old volume, canary) whose front answers through a
// Layered cache over them, with a memory tier (objects up to 1 MiB) and a disk tier in a
// folder the test knows, on a clock the test moves.
func newCachedEnv(t *testing.T, o cachedOptions) *cachedEnv {
	t.Helper()
	clock := origintest.NewClock(time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC))
	quiet := slog.New(slog.DiscardHandler) // the faults are meant: their warnings are noise
	e := proxytest.NewEnv(t, proxytest.WithTiers, func(c *proxytest.Config) {
		if o.s3Timeout != 0 {
			c.S3.Timeout = o.s3Timeout
		}
		if o.diskMax != 0 {
			c.Disk.MaxBytes = o.diskMax
		}
		c.Disk.Logger = quiet
		c.Cache.TTL, c.Cache.StaleIfError = cmp.Or(o.ttl, time.Hour), 24*time.Hour
		c.Cache.Clock, c.Cache.Logger = clock.Now, quiet
		c.Proxy.MaxConns, c.Proxy.Logger = o.maxConns, quiet
	})
	return &cachedEnv{env: wrapEnv(e), clock: clock}
}

// checkCache stops the front and the cache's fetches, then checks what the cache kept: every
// entry either tier holds for a key of objects reads back as exactly its bytes, the disk folder
// holds nothing else, and no temporary file is left in it or in the spool folder.
func (c *cachedEnv) checkCache(t *testing.T, objects map[string][]byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c.Client.CloseIdleConnections()
	for _, tr := range c.clients {
		tr.CloseIdleConnections()
	}
	if err := c.Front.Shutdown(ctx); err != nil {
		t.Errorf("shutting the front down: %v", err)
	}
	c.Cache.Settle()
	c.Cache.Close()
	tiertest.CheckKept(t, objects, c.Memory, c.Disk, c.DiskDir, c.SpoolDir)
}

// fetch sends a GET with the given headers through client and returns the response, its body
// and the error reading the body, which a test of broken answers wants to see.
func fetch(client *http.Client, url string, hdr ...string) (*http.Response, []byte, error) {
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		return nil, nil, err
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp, body, err
}

// newClient returns a client of the front for up to conns connections at once.
func (c *cachedEnv) newClient(t *testing.T, conns int) *http.Client {
	tr := &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: conns}
	t.Cleanup(tr.CloseIdleConnections)
	c.clients = append(c.clients, tr)
	return &http.Client{Transport: tr, Timeout: 60 * time.Second}
}

// warm brings key into the cache and returns once a tier holds it: a range request at the
// start of an uncached object is answered from a fetch of the whole object, which goes on
// into the tiers once the range is answered; Settle waits for it.
func (c *cachedEnv) warm(t *testing.T, key string) {
	t.Helper()
	resp, _, err := fetch(c.Client, c.URL+escapePath(key), "Range", "bytes=0-0")
	if err != nil || resp == nil || resp.StatusCode != 206 {
		t.Fatalf("warming %s: %v %v", key, resp, err)
	}
	c.Cache.Settle()
	for _, tier := range []cache.Tier{c.Memory, c.Disk} {
		if body, _, err := tier.Open(key, nil); err == nil {
			body.Close()
			return
		}
	}
	t.Fatalf("warming %s: no tier holds it after its fill", key)
}

// where says where a fault-suite object is stored.
type where int

const (
	inBucketOnly where = iota
	inBoth             // copied already: the same bytes in the bucket and on the volume
	onVolumeOnly
)

// faultObject is an object of the fault suite.
type faultObject struct {
	key   string
	data  []byte
	where where
}

// seedFaultObjects stores n objects of mixed sizes (small ones for the memory tier, some
// larger than its object limit) in the bucket, on the volume or in both.
func seedFaultObjects(t *testing.T, e *proxytest.Env, n int) ([]faultObject, map[string][]byte) {
	t.Helper()
	objs := make([]faultObject, n)
	all := map[string][]byte{}
	exts := []string{"jpg", "png", "mp4", "webp", "gif"}
	for i := range objs {
		size := 1 + (i*7919)%60_000
		switch {
		case i%12 == 0:
			size = 1<<20 + 100_000 + i*1000 // beyond the memory tier's limit: disk only
		case i%4 == 0:
			size = 100_000 + i*3000
		case i%29 == 0:
			size = 0
		}
		o := faultObject{
			key:   fmt.Sprintf("media_attachments/files/000/%03d/%03d/original/%016x.%s", i/100, i%100, i*31337, exts[i%len(exts)]),
			data:  tiertest.Blob(uint64(1000+i), size),
			where: where(i % 5 % 3), // of every 5: 2 in the bucket only, 2 in both, 1 on the volume only
		}
		if o.where != onVolumeOnly {
			e.Bucket.Put(t, o.key, o.data)
		}
		if o.where != inBucketOnly {
			e.PutVolume(t, o.key, o.data)
		}
		objs[i], all[o.key] = o, o.data
	}
	return objs, all
}

// checkAnswer checks one answer of the fault suite for o: a 200 carries exactly its bytes in
// full, a 206 exactly the bytes asked for, and an error is 502 or 504, only for an object the
// old volume lacks. It returns what is wrong, or "".
func checkAnswer(o faultObject, rng *[2]int, resp *http.Response, body []byte, readErr error) string {
	size := len(o.data)
	switch resp.StatusCode {
	case 200:
		if rng != nil {
			return "200 to a satisfiable range"
		}
		if readErr != nil || !bytes.Equal(body, o.data) {
			return fmt.Sprintf("a short or wrong 200: %d of %d bytes, read error %v", len(body), size, readErr)
		}
	case 206:
		if rng == nil {
			return "206 without a range"
		}
		want := fmt.Sprintf("bytes %d-%d/%d", rng[0], rng[1], size)
		if cr := resp.Header.Get("Content-Range"); cr != want {
			return fmt.Sprintf("Content-Range %q, want %q", cr, want)
		}
		if readErr != nil || !bytes.Equal(body, o.data[rng[0]:rng[1]+1]) {
			return fmt.Sprintf("a short or wrong 206: %d bytes, read error %v", len(body), readErr)
		}
	case 502, 504:
		if o.where != inBucketOnly {
			return fmt.Sprintf("%d for an object the old volume holds", resp.StatusCode)
		}
		if bytes.Contains(body, []byte("127.0.0.1")) {
			return "the error body names the bucket"
		}
	default:
		return fmt.Sprintf("status %d", resp.StatusCode)
	}
	return ""
}

// TestFaultBucketErrorsNowAndThen: 50 clients fetch many objects, whole and in ranges, while
// the bucket keeps switching between answering and failing with 500 or 503, and entries keep
// expiring and being purged. Every 200 and 206 carries exactly the right bytes; an error is a
// 502 for an object the old volume lacks; afterwards every object is served again and the cache
// holds only whole entries.
func TestFaultBucketErrorsNowAndThen(t *testing.T) {
	proxytest.CheckLeaks(t)
	c := newCachedEnv(t, cachedOptions{})
	objs, all := seedFaultObjects(t, c.Env, 120)
	clients, perClient := 50, 24
	if faultLong() {
		perClient = 200
	}
	client := c.newClient(t, clients)
	modes := []origintest.Mode{origintest.Fail500, origintest.Healthy, origintest.Fail503, origintest.Healthy}

	var done atomic.Int64
	var mu sync.Mutex
	statuses := map[int]int{}
	var wg sync.WaitGroup
	for ci := range clients {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(ci), 7))
			for range perClient {
				o := objs[r.IntN(len(objs))]
				var rng *[2]int
				var hdr []string
				if n := len(o.data); n > 0 && r.IntN(10) < 3 {
					first := r.IntN(n)
					rng = &[2]int{first, first + r.IntN(n-first)}
					hdr = []string{"Range", fmt.Sprintf("bytes=%d-%d", rng[0], rng[1])}
				}
				resp, body, err := fetch(client, c.URL+escapePath(o.key), hdr...)
				if resp == nil {
					t.Errorf("GET %s: %v", o.key, err)
					return
				}
				if bad := checkAnswer(o, rng, resp, body, err); bad != "" {
					t.Errorf("GET %s %v (X-Cache %q): %s", o.key, hdr, resp.Header.Get("X-Cache"), bad)
				}
				mu.Lock()
				statuses[resp.StatusCode]++
				mu.Unlock()
				n := done.Add(1)
				if n%40 == 0 {
					c.Bucket.SetMode(modes[(n/40)%int64(len(modes))])
				}
				if n%150 == 0 {
					c.Cache.Purge(objs[r.IntN(len(objs))].key)
				}
				if n%300 == 0 {
					c.clock.Advance(2 * time.Hour) // every entry needs revalidating
				}
			}
		})
	}
	wg.Wait()
	t.Logf("statuses: %v; %d bucket GETs", statuses, c.Bucket.TotalGets())
	if statuses[502]+statuses[504] == 0 {
		t.Log("no request met a failing bucket with an uncached object")
	}

	c.Bucket.SetMode(origintest.Healthy)
	for _, o := range objs {
		resp, body, err := fetch(client, c.URL+escapePath(o.key))
		if resp == nil || resp.StatusCode != 200 || err != nil || !bytes.Equal(body, o.data) {
			t.Errorf("after the bucket recovered, GET %s: %v, %d bytes, %v", o.key, resp != nil && resp.StatusCode == 200, len(body), err)
		}
	}
	c.checkCache(t, all)
}

// TestFaultBucketCutsTheBody: when the bucket drops the connection mid-body, every client of
// the shared fetch gets a broken connection, never a complete-looking short 200; nothing is
// cached; the next request fetches again and succeeds. A range on a cold object is answered
// while the background fill that follows it is cut, and that fill leaves nothing behind.
func TestFaultBucketCutsTheBody(t *testing.T) {
	proxytest.CheckLeaks(t)
	c := newCachedEnv(t, cachedOptions{})
	client := c.newClient(t, 16)
	all := map[string][]byte{}
	for i, tc := range []struct {
		name      string
		size      int
		gate, cut int64
		where     where
	}{
		{"small, memory and disk", 30_000, 8 << 10, 15_000, inBucketOnly},
		{"large, disk only", 2 << 20, 256 << 10, 1 << 20, inBucketOnly},
		{"large, also on the volume", 2 << 20, 256 << 10, 1 << 20, inBoth},
	} {
		t.Run(tc.name, func(t *testing.T) {
			key := fmt.Sprintf("media_attachments/files/000/000/%03d/original/cut%013d.mp4", i, i)
			data := tiertest.Blob(uint64(50+i), tc.size)
			all[key] = data
			c.Bucket.Put(t, key, data)
			if tc.where == inBoth {
				c.PutVolume(t, key, data)
			}
			c.Bucket.CutBody(key, tc.cut)
			gate := c.Bucket.GateBody(key, tc.gate) // every client joins before the cut

			const clients = 10
			joined := make(chan struct{}, clients)
			results := make(chan string, clients)
			for range clients {
				go func() {
					resp, err := client.Get(c.URL + "/" + key)
					joined <- struct{}{}
					if err != nil {
						results <- "" // the connection broke before the headers: fine
						return
					}
					got, err := io.ReadAll(resp.Body)
					resp.Body.Close()
					switch {
					case resp.StatusCode != 200:
						results <- fmt.Sprintf("status %d, want a 200 whose body breaks", resp.StatusCode)
					case err == nil:
						results <- fmt.Sprintf("a cut body read as complete: %d of %d bytes", len(got), len(data))
					case !bytes.Equal(got, data[:len(got)]):
						results <- "the bytes before the cut differ"
					default:
						results <- ""
					}
				}()
			}
			for range clients {
				<-joined
			}
			gate.Open()
			for range clients {
				if bad := <-results; bad != "" {
					t.Error(bad)
				}
			}
			if n := c.Bucket.Gets(key); n != 1 {
				t.Errorf("%d bucket GETs for %d clients, want 1", n, clients)
			}
			for _, tier := range []cache.Tier{c.Memory, c.Disk} {
				if body, _, err := tier.Open(key, nil); err == nil {
					body.Close()
					t.Errorf("the %s tier kept the cut body", tier.Name())
				}
			}

			c.Bucket.CutBody(key, 0)
			resp, body, err := fetch(client, c.URL+"/"+key)
			if resp == nil || resp.StatusCode != 200 || err != nil || !bytes.Equal(body, data) {
				t.Fatalf("after the cut ended: %v, %d bytes, %v", resp != nil && resp.StatusCode == 200, len(body), err)
			}
			if xc := resp.Header.Get("X-Cache"); xc != "MISS" {
				t.Errorf("after the cut ended: X-Cache %q, want MISS", xc)
			}
			if resp, body, err := fetch(client, c.URL+"/"+key); resp == nil || err != nil || !bytes.Equal(body, data) {
				t.Errorf("once more: %v, %d bytes, %v", resp != nil, len(body), err)
			}
			if n := c.Bucket.Gets(key); n != 2 {
				t.Errorf("%d bucket GETs, want 2: the refetched object was not kept", n)
			}
		})
	}

	t.Run("range then a cut background fill", func(t *testing.T) {
		const key = "media_attachments/files/000/000/099/original/cutrange00000099.mp4"
		data := tiertest.Blob(99, 3<<20)
		all[key] = data
		c.Bucket.Put(t, key, data)
		c.Bucket.CutBody(key, 1<<20)
		// A range far into the object: a ranged GET of its own, then a background fill of the
		// whole object, which the bucket cuts.
		resp, body, err := fetch(client, c.URL+"/"+key, "Range", "bytes=2000000-2000099")
		if resp == nil || resp.StatusCode != 206 || err != nil || !bytes.Equal(body, data[2000000:2000100]) {
			t.Fatalf("range on a cold object: %v, %d bytes, %v", resp != nil && resp.StatusCode == 206, len(body), err)
		}
		c.Cache.WaitFills()
		if n := c.Bucket.Gets(key); n != 2 {
			t.Errorf("%d bucket GETs, want 2: the range and the background fill", n)
		}
		if body, _, err := c.Disk.Open(key, nil); err == nil {
			body.Close()
			t.Error("the disk tier kept the cut background fill")
		}
		// A range at the start: answered from a fetch of the whole object, cut too, whose
		// bytes before the cut still answer it; the tiers keep nothing.
		resp, body, err = fetch(client, c.URL+"/"+key, "Range", "bytes=0-99")
		if resp == nil || resp.StatusCode != 206 || err != nil || !bytes.Equal(body, data[:100]) {
			t.Fatalf("range at the start: %v, %d bytes, %v", resp != nil && resp.StatusCode == 206, len(body), err)
		}
		c.Cache.Settle()
		if body, _, err := c.Disk.Open(key, nil); err == nil {
			body.Close()
			t.Error("the disk tier kept the cut fetch")
		}
		if n := c.Bucket.Gets(key); n != 3 {
			t.Errorf("%d bucket GETs, want 3: the range at the start took one fetch", n)
		}
		c.Bucket.CutBody(key, 0)
		fetch(client, c.URL+"/"+key, "Range", "bytes=0-99")
		c.Cache.Settle()
		resp, body, err = fetch(client, c.URL+"/"+key, "Range", "bytes=2000000-2000099")
		if resp == nil || resp.StatusCode != 206 || err != nil || !bytes.Equal(body, data[2000000:2000100]) {
			t.Fatalf("range after the fill: %v, %d bytes, %v", resp != nil && resp.StatusCode == 206, len(body), err)
		}
		if xc := resp.Header.Get("X-Cache"); xc != "HIT" {
			t.Errorf("range after a whole fill: X-Cache %q, want HIT", xc)
		}
		if n := c.Bucket.Gets(key); n != 4 {
			t.Errorf("%d bucket GETs, want 4: the range at the start filled the cache with one", n)
		}
	})
	c.checkCache(t, all)
}

// TestFaultSlowBucketHoldsOnlyItsClients: while the bucket holds one object's body, the
// clients of that object wait (one bucket GET for all), and requests for other objects, cold,
// cached or on the volume, are answered meanwhile. Once the body moves, every waiting client
// gets all of it.
func TestFaultSlowBucketHoldsOnlyItsClients(t *testing.T) {
	proxytest.CheckLeaks(t)
	c := newCachedEnv(t, cachedOptions{})
	client := c.newClient(t, 32)
	objs, all := seedFaultObjects(t, c.Env, 12)
	const slowKey = "media_attachments/files/000/000/100/original/slow000000000100.mp4"
	slow := tiertest.Blob(100, 3<<20)
	all[slowKey] = slow
	c.Bucket.Put(t, slowKey, slow)
	for _, o := range objs[:4] { // cached before the bucket slows down
		if len(o.data) > 0 {
			c.warm(t, o.key)
		}
	}
	gate := c.Bucket.GateBody(slowKey, 512<<10)

	const clients = 20
	joined := make(chan struct{}, clients)
	results := make(chan string, clients)
	for range clients {
		go func() {
			resp, err := client.Get(c.URL + "/" + slowKey)
			joined <- struct{}{}
			if err != nil {
				results <- err.Error()
				return
			}
			got, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || err != nil || !bytes.Equal(got, slow) {
				results <- fmt.Sprintf("slow object: status %d, %d of %d bytes, %v", resp.StatusCode, len(got), len(slow), err)
				return
			}
			results <- ""
		}()
	}
	for range clients {
		<-joined
	}
	<-gate.Passed
	// The gate is still closed: everything else is served meanwhile.
	for _, o := range objs {
		resp, body, err := fetch(client, c.URL+escapePath(o.key))
		if resp == nil {
			t.Fatalf("GET %s while another object is held: %v", o.key, err)
		}
		if bad := checkAnswer(o, nil, resp, body, err); bad != "" || resp.StatusCode != 200 {
			t.Errorf("GET %s while another object is held: status %d %s", o.key, resp.StatusCode, bad)
		}
	}
	select {
	case bad := <-results:
		t.Fatalf("a client of the held object finished before its body moved: %q", bad)
	default:
	}
	gate.Open()
	for range clients {
		if bad := <-results; bad != "" {
			t.Error(bad)
		}
	}
	if n := c.Bucket.Gets(slowKey); n != 1 {
		t.Errorf("%d bucket GETs for the held object, want 1", n)
	}
	c.checkCache(t, all)
}

// TestFaultStalledBucketTimesOut: a bucket that does not answer within s3 timeout gives 504
// for an object only it has, while the old volume's and the cached objects are still served;
// a body that stalls mid-way breaks the client's connection; neither leaves anything cached,
// and both objects are served once the bucket answers again.
func TestFaultStalledBucketTimesOut(t *testing.T) {
	proxytest.CheckLeaks(t)
	c := newCachedEnv(t, cachedOptions{s3Timeout: 300 * time.Millisecond})
	client := c.newClient(t, 8)
	objs, all := seedFaultObjects(t, c.Env, 10)
	inBucket := pick(objs, inBucketOnly)
	cached, cold, onVolume := inBucket[0], inBucket[1], pick(objs, onVolumeOnly)[0]
	c.warm(t, cached.key)

	c.Bucket.SetMode(origintest.Stall)
	for _, tc := range []struct {
		o      faultObject
		status int
		xcache string
	}{
		{cold, 504, ""},
		{onVolume, 200, "FALLBACK"},
		{cached, 200, "HIT"},
	} {
		resp, body, err := fetch(client, c.URL+escapePath(tc.o.key))
		if resp == nil || resp.StatusCode != tc.status || checkAnswer(tc.o, nil, resp, body, err) != "" {
			t.Errorf("bucket stalled, GET %s: %v, want %d", tc.o.key, resp != nil && resp.StatusCode == tc.status, tc.status)
			continue
		}
		if tc.xcache != "" && resp.Header.Get("X-Cache") != tc.xcache {
			t.Errorf("bucket stalled, GET %s: X-Cache %q, want %q", tc.o.key, resp.Header.Get("X-Cache"), tc.xcache)
		}
	}
	if _, _, err := c.Disk.Open(cold.key, nil); err == nil {
		t.Error("the disk tier has an object the bucket never sent")
	}

	// A body that stalls mid-way: the connection breaks, nothing is cached.
	c.Bucket.SetMode(origintest.Healthy)
	const stallKey = "media_attachments/files/000/000/200/original/stall00000000200.mp4"
	data := tiertest.Blob(200, 2<<20)
	all[stallKey] = data
	c.Bucket.Put(t, stallKey, data)
	gate := c.Bucket.GateBody(stallKey, 256<<10)
	resp, body, err := fetch(client, c.URL+"/"+stallKey)
	if resp == nil || resp.StatusCode != 200 || err == nil {
		t.Errorf("body stalled mid-way: want a 200 whose body breaks, got %v, %d bytes, %v", resp != nil, len(body), err)
	}
	for _, tier := range []cache.Tier{c.Memory, c.Disk} {
		if b, _, err := tier.Open(stallKey, nil); err == nil {
			b.Close()
			t.Errorf("the %s tier kept a stalled body", tier.Name())
		}
	}
	gate.Open()
	for _, o := range []faultObject{cold, {key: stallKey, data: data}} {
		resp, body, err := fetch(client, c.URL+escapePath(o.key))
		if resp == nil || resp.StatusCode != 200 || err != nil || !bytes.Equal(body, o.data) {
			t.Errorf("bucket answering again, GET %s: %v, %d bytes, %v", o.key, resp != nil && resp.StatusCode == 200, len(body), err)
		}
	}
	c.checkCache(t, all)
}

// TestFaultBucketGoesAwayAndComesBack: while the bucket is unreachable (stalling, then failing
// with 503), cached objects are still served (HIT, and STALE past the TTL), objects only on the
// volume are served from it, and uncached bucket objects fail cleanly with 504 or 502. Once it
// answers again everything is served fresh. When it is gone for good (its listener closed),
// cached objects are still served.
func TestFaultBucketGoesAwayAndComesBack(t *testing.T) {
	proxytest.CheckLeaks(t)
	c := newCachedEnv(t, cachedOptions{s3Timeout: 300 * time.Millisecond})
	client := c.newClient(t, 8)
	objs, all := seedFaultObjects(t, c.Env, 12)
	var cached, uncached, volumeOnly []faultObject
	for i, o := range objs {
		switch {
		case o.where == onVolumeOnly:
			volumeOnly = append(volumeOnly, o)
		case i%2 == 0:
			cached = append(cached, o)
		case o.where == inBucketOnly:
			uncached = append(uncached, o)
		}
	}
	for _, o := range cached {
		c.warm(t, o.key)
	}

	expect := func(phase string, o faultObject, statuses []int, xcache ...string) {
		resp, body, err := fetch(client, c.URL+escapePath(o.key))
		if resp == nil {
			t.Errorf("%s, GET %s: %v", phase, o.key, err)
			return
		}
		if bad := checkAnswer(o, nil, resp, body, err); bad != "" {
			t.Errorf("%s, GET %s: %s", phase, o.key, bad)
		}
		if !slices.Contains(statuses, resp.StatusCode) {
			t.Errorf("%s, GET %s: status %d, want one of %v", phase, o.key, resp.StatusCode, statuses)
		}
		if got := resp.Header.Get("X-Cache"); resp.StatusCode == 200 && len(xcache) > 0 && !slices.Contains(xcache, got) {
			t.Errorf("%s, GET %s: X-Cache %q, want one of %v", phase, o.key, got, xcache)
		}
	}
	// each asks for every object of objs at once, as many clients would.
	each := func(objs []faultObject, ask func(o faultObject)) {
		var wg sync.WaitGroup
		for _, o := range objs {
			wg.Go(func() { ask(o) })
		}
		wg.Wait()
	}

	// A cached object is served from the cache while the bucket is away: HIT, then STALE once
	// past the TTL. One also on the volume may instead be refreshed from the volume (see
	// TestFaultOutageKeepsTheBucketsCopy).
	cachedXCache := func(o faultObject) []string {
		if o.where == inBoth {
			return []string{"HIT", "STALE", "FALLBACK"}
		}
		return []string{"HIT", "STALE"}
	}
	for _, down := range []struct {
		mode   origintest.Mode
		errors []int
	}{
		{origintest.Stall, []int{504}},
		// 504 too: with a timeout this short, the SDK's retries of the 503s outlast it.
		{origintest.Fail503, []int{502, 504}},
	} {
		c.Bucket.SetMode(down.mode)
		phase := "bucket " + string(down.mode)
		each(cached, func(o faultObject) { expect(phase, o, []int{200}, cachedXCache(o)...) })
		each(uncached, func(o faultObject) { expect(phase, o, down.errors) })
		each(volumeOnly, func(o faultObject) { expect(phase, o, []int{200}, "FALLBACK", "HIT") })
		c.clock.Advance(2 * time.Hour) // past the TTL: the bucket cannot confirm the entries
		each(cached, func(o faultObject) {
			if o.where == inBucketOnly {
				expect(phase+" past the TTL", o, []int{200}, "STALE")
			} else {
				expect(phase+" past the TTL", o, []int{200}, cachedXCache(o)...)
			}
		})
	}

	c.Bucket.SetMode(origintest.Healthy)
	each(objs, func(o faultObject) { expect("bucket back", o, []int{200}, "HIT", "MISS", "FALLBACK") })
	before := c.Bucket.TotalGets()
	each(cached, func(o faultObject) {
		expect("bucket back, again", o, []int{200}, "HIT", "MISS") // MISS: sharing a fill still storing
	})
	if n := c.Bucket.TotalGets() - before; n != 0 {
		t.Errorf("cached objects made %d bucket GETs once the bucket was back", n)
	}

	c.Bucket.Close() // gone for good: connections refused
	c.clock.Advance(2 * time.Hour)
	each(cached, func(o faultObject) { expect("bucket gone", o, []int{200}, cachedXCache(o)...) })
	for _, o := range uncached {
		c.Cache.Purge(o.key) // cached while the bucket was back
	}
	each(uncached, func(o faultObject) { expect("bucket gone", o, []int{502}) })
	c.checkCache(t, all)
}

// TestFaultOutageKeepsTheBucketsCopy: an object copied to the bucket and still on the old
// volume, cached from the bucket, is served STALE with the bucket's ETag while the bucket fails
// past the TTL (README: "the bucket failing, the entry is served STALE"), and the cache keeps
// its entry: it is not dropped and fetched again from the volume, whose ETag differs, which
// would make every client's and CDN's copy look changed.
func TestFaultOutageKeepsTheBucketsCopy(t *testing.T) {
	proxytest.CheckLeaks(t)
	c := newCachedEnv(t, cachedOptions{s3Timeout: 300 * time.Millisecond})
	client := c.newClient(t, 4)
	objs, all := seedFaultObjects(t, c.Env, 5)
	for _, o := range pick(objs, inBoth) {
		c.warm(t, o.key)
		first, _, _ := fetch(client, c.URL+escapePath(o.key))
		etag := first.Header.Get("ETag")
		c.Bucket.SetMode(origintest.Fail503)
		c.clock.Advance(2 * time.Hour)
		for range 2 {
			resp, body, err := fetch(client, c.URL+escapePath(o.key), "If-None-Match", etag)
			if resp == nil || err != nil {
				t.Fatalf("GET %s: %v", o.key, err)
			}
			if resp.StatusCode != 304 || resp.Header.Get("ETag") != etag || resp.Header.Get("X-Cache") != "STALE" {
				t.Errorf("GET %s with the bucket failing past the TTL: status %d, ETag %s, X-Cache %q, %d bytes; want 304 STALE with ETag %s",
					o.key, resp.StatusCode, resp.Header.Get("ETag"), resp.Header.Get("X-Cache"), len(body), etag)
			}
		}
		c.Bucket.SetMode(origintest.Healthy)
	}
	c.checkCache(t, all)
}

// TestFaultDiskCacheFull: with a disk tier far smaller than the objects, every request is
// still answered with the right bytes, and the disk tier keeps nothing half-written.
func TestFaultDiskCacheFull(t *testing.T) {
	proxytest.CheckLeaks(t)
	c := newCachedEnv(t, cachedOptions{diskMax: 64 << 10})
	client := c.newClient(t, 8)
	all := map[string][]byte{}
	var keys []string
	for i, size := range []int{40_000, 100_000, 900_000, 2 << 20, 3<<20 + 7} {
		key := fmt.Sprintf("media_attachments/files/000/000/%03d/original/full%012d.mp4", i, i)
		all[key] = tiertest.Blob(uint64(300+i), size)
		c.Bucket.Put(t, key, all[key])
		keys = append(keys, key)
	}
	for round := range 3 {
		var wg sync.WaitGroup
		for _, key := range keys {
			for range 4 {
				wg.Go(func() {
					resp, body, err := fetch(client, c.URL+"/"+key)
					if resp == nil || resp.StatusCode != 200 || err != nil || !bytes.Equal(body, all[key]) {
						t.Errorf("round %d, GET %s with the disk tier full: %v, %d bytes, %v", round, key, resp != nil && resp.StatusCode == 200, len(body), err)
					}
				})
			}
		}
		wg.Wait()
	}
	if st := c.Disk.Stats(); st.Bytes > 64<<10 {
		t.Errorf("the disk tier holds %d bytes, beyond its 64 KiB", st.Bytes)
	}
	c.checkCache(t, all)
}

// pick returns the objects of objs stored at w.
func pick(objs []faultObject, w where) []faultObject {
	var out []faultObject
	for _, o := range objs {
		if o.where == w {
			out = append(out, o)
		}
	}
	return out
}
