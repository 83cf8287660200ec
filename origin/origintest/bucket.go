package origintest

import (
	"bytes"
	"cmp"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fedicache/fedicache/origin"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
)

// BucketName is the bucket a FakeBucket serves.
const BucketName = "media"

// FakeBucket is an in-process S3 server (gofakes3) on a real TCP listener, behind a wrapper that
// counts the requests reaching each key and can fail, stall, slow down, cut or corrupt its
// answers, keeps the objects' canned ACLs and checksums (PutWithChecksum), and can refuse
// unsigned requests as AWS does (RequireSignatures), and checks every signature (VerifySigV4) and checksum requests as some S3-compatible
// services do (RefuseChecksumMode).
type FakeBucket struct {
	// URL is the server's endpoint, for path-style requests.
	URL string

	backend *generated
	srv     *http.Server

	mode atomic.Value // Mode

	mu      sync.Mutex
	gets    map[string]int         // bucket key -> GETs
	heads   map[string]int         // bucket key -> HEADs
	puts    map[string]http.Header // bucket key -> headers of its last PUT
	nPuts   int
	every   int // with failStatus: fail one request in every
	nReqs   int
	failSt  int
	failKey map[string]int           // bucket key -> status every request for it gets
	acls    map[string]string        // bucket key -> canned ACL
	paired  map[string]chan struct{} // bucket key -> closed once an ACL request for it arrived
	noACLs  bool                     // answer ACL requests NotImplemented, as services without ACLs do
	sigOnly bool                     // refuse unsigned requests but reads of public-read objects
	gates   map[string]*Gate
	cuts    map[string]int64
	flips   map[string]int64 // bucket key -> offset of the body byte its GETs send altered
	sums    map[string]fakeChecksum
	uploads map[string]pendingUpload // upload id -> what CreateMultipartUpload said (fakecopy.go)
	sumAsks int                      // requests carrying x-amz-checksum-mode
	sent    atomic.Int64
	pace    int64         // bytes per second of each GET's body, 0 for as fast as it goes
	wait    time.Duration // before each GET's or HEAD's answer
	ended   chan error
	unstall chan struct{}
	closed  bool

	// refuseSums is the status of the answer to a request carrying x-amz-checksum-mode, 0 to
	// serve it.
	refuseSums int
}

// Mode is how a FakeBucket answers every request.
type Mode string

// The modes of a FakeBucket.
const (
	Healthy Mode = ""      // as gofakes3 answers
	Fail500 Mode = "500"   // 500 InternalError
	Fail503 Mode = "503"   // 503 SlowDown
	Stall   Mode = "stall" // no answer until the client gives up or the bucket closes
)

// NewFakeBucket starts a FakeBucket holding no object; it stops with the test.
func NewFakeBucket(t testing.TB) *FakeBucket {
	t.Helper()
	b := &FakeBucket{
		backend: &generated{Backend: s3mem.New(), sizes: map[string]int64{}},
		gets:    map[string]int{},
		heads:   map[string]int{},
		puts:    map[string]http.Header{},
		failKey: map[string]int{},
		acls:    map[string]string{},
		paired:  map[string]chan struct{}{},
		gates:   map[string]*Gate{},
		cuts:    map[string]int64{},
		flips:   map[string]int64{},
		sums:    map[string]fakeChecksum{},
		ended:   make(chan error, 4096),
		unstall: make(chan struct{}),
	}
	b.mode.Store(Healthy)
	if err := b.backend.CreateBucket(BucketName); err != nil {
		t.Fatal(err)
	}
	fake := b.copies(gofakes3.New(keptHeaders{b.backend}).Server())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b.URL = "http://" + ln.Addr().String()
	b.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.serve(fake, w, r)
	})}
	go func() { _ = b.srv.Serve(ln) }()
	t.Cleanup(b.Close)
	return b
}

func (b *FakeBucket) serve(fake http.Handler, w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "" {
		// Keys other than AccessKeyID (a test's own) are taken on trust.
		if err := VerifySigV4(r, map[string]string{AccessKeyID: SecretAccessKey}); err != nil && !errors.Is(err, ErrUnknownAccessKey) {
			signatureMismatch(w, r, err)
			return
		}
	}
	key := strings.TrimPrefix(r.URL.Path, "/"+BucketName+"/")
	_, aclRequest := r.URL.Query()["acl"]
	b.mu.Lock()
	deny := b.sigOnly && !signedRequest(r) && (aclRequest || !b.publicReadLocked(r, key))
	b.mu.Unlock()
	if aclRequest {
		b.mu.Lock()
		if ch, ok := b.paired[key]; ok {
			select {
			case <-ch:
			default:
				close(ch)
			}
		}
		b.mu.Unlock()
		if deny {
			accessDenied(w, r)
			return
		}
		b.serveACL(w, r, key)
		return
	}
	b.mu.Lock()
	switch r.Method {
	case http.MethodGet:
		b.gets[key]++
	case http.MethodHead:
		b.heads[key]++
	case http.MethodPut:
		b.nPuts++
		if deny {
			break
		}
		b.puts[key] = r.Header.Clone()
		if _, part := r.URL.Query()["partNumber"]; !part && r.Header.Get("X-Amz-Copy-Source") == "" {
			b.acls[key] = cmp.Or(r.Header.Get("X-Amz-Acl"), "private")
		}
	}
	gate, cut := b.gates[key], b.cuts[key]
	pair := b.paired[key]
	flip, flipped := b.flips[key]
	sum := b.sums[key]
	_, sumAsked := r.Header["X-Amz-Checksum-Mode"]
	if sumAsked {
		b.sumAsks++
	}
	refuseSums := sumAsked && b.refuseSums != 0 && !deny
	refuseStatus := b.refuseSums
	b.nReqs++
	failNow := b.every > 0 && b.nReqs%b.every == 0
	failStatus := b.failSt
	pace, wait := b.pace, b.wait
	if st, ok := b.failKey[key]; ok {
		failNow, failStatus = true, st
	}
	b.mu.Unlock()
	if deny {
		accessDenied(w, r)
		return
	}
	if pair != nil && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
		select {
		case <-pair:
		case <-time.After(PairWait):
			http.Error(w, "<Error><Code>SlowDown</Code></Error>", http.StatusServiceUnavailable)
			return
		case <-r.Context().Done():
			return
		}
	}
	if refuseSums {
		refuseChecksumMode(w, r, refuseStatus)
		return
	}
	if failNow {
		code := map[int]string{
			http.StatusForbidden:           "AccessDenied",
			http.StatusTooManyRequests:     "TooManyRequests",
			http.StatusInternalServerError: "InternalError",
			http.StatusServiceUnavailable:  "SlowDown",
		}[failStatus]
		http.Error(w, "<Error><Code>"+code+"</Code></Error>", failStatus)
		return
	}
	switch b.mode.Load().(Mode) {
	case Fail500:
		http.Error(w, "<Error><Code>InternalError</Code></Error>", http.StatusInternalServerError)
		return
	case Fail503:
		http.Error(w, "<Error><Code>SlowDown</Code></Error>", http.StatusServiceUnavailable)
		return
	case Stall:
		select {
		case <-b.unstall:
		case <-r.Context().Done():
		}
		return
	}
	cw := &bodyWriter{ResponseWriter: w, sent: &b.sent, flip: -1}
	if wait > 0 && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
		select {
		case <-time.After(wait):
		case <-r.Context().Done():
			return
		}
	}
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		cw.header = sum.headers(r)
		if sum.etag != "" && r.Header.Get("If-None-Match") == sum.etag {
			r.Header.Set("If-None-Match", sum.md5ETag) // gofakes3 compares with the MD5
		}
	}
	if r.Method == http.MethodGet {
		cw.gate, cw.cut, cw.pace = gate, cut, pace
		if flipped {
			cw.flip = flip
		}
	}
	fake.ServeHTTP(cw, r)
	cw.writeHeader() // a HEAD answer may have had no WriteHeader
	if cw.cutNow {
		panic(http.ErrAbortHandler) // drops the connection mid-body
	}
	select {
	case b.ended <- r.Context().Err():
	default:
	}
}

// Close stops the server: connections are refused from then on.
func (b *FakeBucket) Close() {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return
	}
	b.closed = true
	close(b.unstall)
	for _, g := range b.gates {
		g.Open()
	}
	b.mu.Unlock()
	_ = b.srv.Close()
}

// PutHeader returns the headers of the last PUT of the bucket key key (nil when none).
func (b *FakeBucket) PutHeader(key string) http.Header {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.puts[key]
}

// Puts returns how many PUT requests reached the bucket (parts of uploads included).
func (b *FakeBucket) Puts() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.nPuts
}

// SetMode makes every later request answer as mode says.
func (b *FakeBucket) SetMode(m Mode) { b.mode.Store(m) }

// Put stores data under the bucket key key, with the Content-Type of its extension.
func (b *FakeBucket) Put(t testing.TB, key string, data []byte) {
	t.Helper()
	meta := map[string]string{
		"Content-Type":  origin.ContentType(key),
		"Last-Modified": time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC).Format(http.TimeFormat),
	}
	if _, err := b.backend.PutObject(BucketName, key, meta, bytes.NewReader(data), int64(len(data)), nil); err != nil {
		t.Fatal(err)
	}
	b.mu.Lock()
	delete(b.sums, key) // a new object, without checksum
	b.mu.Unlock()
	b.SetACL(key, "public-read") // as Mastodon stores media by default
}

// Delete removes the bucket key key.
func (b *FakeBucket) Delete(t testing.TB, key string) {
	t.Helper()
	if _, err := b.backend.DeleteObject(BucketName, key); err != nil {
		t.Fatal(err)
	}
	b.mu.Lock()
	delete(b.sums, key)
	b.mu.Unlock()
}

// PutGenerated makes key an object of size bytes whose byte i is PatternByte(i), generated as
// it is sent: gigabytes cost no memory.
func (b *FakeBucket) PutGenerated(key string, size int64) {
	b.mu.Lock()
	b.backend.sizes[key] = size
	b.mu.Unlock()
}

// Gets returns how many GETs reached the bucket key key.
func (b *FakeBucket) Gets(key string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.gets[key]
}

// Heads returns how many HEADs reached the bucket key key.
func (b *FakeBucket) Heads(key string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.heads[key]
}

// TotalGets returns how many GETs reached the bucket, all keys together.
func (b *FakeBucket) TotalGets() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for _, c := range b.gets {
		n += c
	}
	return n
}

// Sent returns the body bytes the bucket has written.
func (b *FakeBucket) Sent() int64 { return b.sent.Load() }

// Ended delivers, after each answer the bucket completed, its request context's error
// (context.Canceled when the client went away first).
func (b *FakeBucket) Ended() <-chan error { return b.ended }
