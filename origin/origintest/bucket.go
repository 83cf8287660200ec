package origintest

import (
	"bytes"
	"cmp"
	"io"
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
// unsigned requests as AWS does (RequireSignatures) and checksum requests as some S3-compatible
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
	sumAsks int // requests carrying x-amz-checksum-mode
	sent    atomic.Int64
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

// Gate holds a key's body after its first Bytes bytes until Open is called.
type Gate struct {
	Bytes  int64
	open   chan struct{}
	once   sync.Once
	Passed chan struct{} // closed once the first Bytes bytes were sent
	passed sync.Once
}

// Open lets the rest of the body through.
func (g *Gate) Open() { g.once.Do(func() { close(g.open) }) }

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
	fake := gofakes3.New(b.backend).Server()
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
		if _, part := r.URL.Query()["partNumber"]; !part {
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
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		cw.header = sum.headers(r)
		if sum.etag != "" && r.Header.Get("If-None-Match") == sum.etag {
			r.Header.Set("If-None-Match", sum.md5ETag) // gofakes3 compares with the MD5
		}
	}
	if r.Method == http.MethodGet {
		cw.gate, cw.cut = gate, cut
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

// PairWait is how long a paired GET or HEAD waits for its ACL request (see PairACL).
const PairWait = 2 * time.Second

// PairACL makes GETs and HEADs of key wait until a request for key's ACL has arrived, and fail
// (503) when none came within PairWait: a client that reads the ACL only after the object's
// answer fails them, one that asks both at once does not.
func (b *FakeBucket) PairACL(key string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.paired[key] = make(chan struct{})
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

// FailEvery makes one request in every n answer status (503 SlowDown, 500 InternalError, 429...),
// the rest as the mode says; n 0 stops it.
func (b *FakeBucket) FailEvery(n, status int) {
	b.mu.Lock()
	b.every, b.failSt, b.nReqs = n, status, 0
	b.mu.Unlock()
}

// SetACL sets the canned ACL of the bucket key key ("public-read", "private").
func (b *FakeBucket) SetACL(key, acl string) {
	b.mu.Lock()
	b.acls[key] = acl
	b.mu.Unlock()
}

// RequireSignatures makes the bucket, while on, answer unsigned requests (without an
// "Authorization: AWS4-HMAC-SHA256 ..." header or an X-Amz-Signature query parameter) as AWS
// answers the public for a private bucket whose objects carry ACLs: a GET or HEAD of an object
// whose canned ACL is public-read is served as usual; a GET or HEAD of any other object, or of a
// key that does not exist, and every other request (lists, HeadBucket, writes, deletes, ACL
// requests) get 403 AccessDenied (with an XML error body, none for a HEAD). Signed requests are
// answered as before, and every request is counted as before.
func (b *FakeBucket) RequireSignatures(on bool) {
	b.mu.Lock()
	b.sigOnly = on
	b.mu.Unlock()
}

// signedRequest reports whether r carries an AWS Signature Version 4, in its headers or its query.
func signedRequest(r *http.Request) bool {
	return strings.HasPrefix(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256 ") || r.URL.Query().Has("X-Amz-Signature")
}

// publicReadLocked reports whether r reads an object that exists and whose canned ACL is
// public-read. The caller holds b.mu.
func (b *FakeBucket) publicReadLocked(r *http.Request, key string) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead || b.acls[key] != "public-read" {
		return false
	}
	_, err := b.backend.HeadObject(BucketName, key)
	return err == nil
}

// accessDenied answers r 403 AccessDenied, as S3 refuses a request.
func accessDenied(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodHead {
		w.WriteHeader(http.StatusForbidden)
		return
	}
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(http.StatusForbidden)
	_, _ = io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?>`+
		`<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>`)
}

// NoACLs makes ACL requests answer 501 NotImplemented, as services without ACLs do.
func (b *FakeBucket) NoACLs(on bool) {
	b.mu.Lock()
	b.noACLs = on
	b.mu.Unlock()
}

// serveACL answers GetObjectAcl, PutObjectAcl and GetBucketAcl as S3 documents them.
func (b *FakeBucket) serveACL(w http.ResponseWriter, r *http.Request, key string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.noACLs {
		http.Error(w, "<Error><Code>NotImplemented</Code></Error>", http.StatusNotImplemented)
		return
	}
	if r.Method == http.MethodPut {
		b.acls[key] = cmp.Or(r.Header.Get("X-Amz-Acl"), "private")
		return
	}
	acl, ok := b.acls[key]
	if !ok && key != "" && key != "/"+BucketName {
		if _, err := b.backend.HeadObject(BucketName, key); err != nil {
			http.Error(w, "<Error><Code>NoSuchKey</Code></Error>", http.StatusNotFound)
			return
		}
	}
	grants := `<Grant><Grantee xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="CanonicalUser"><ID>owner</ID></Grantee><Permission>FULL_CONTROL</Permission></Grant>`
	if acl == "public-read" {
		grants += `<Grant><Grantee xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="Group"><URI>http://acs.amazonaws.com/groups/global/AllUsers</URI></Grantee><Permission>READ</Permission></Grant>`
	}
	w.Header().Set("Content-Type", "application/xml")
	_, _ = io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><AccessControlPolicy xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Owner><ID>owner</ID></Owner><AccessControlList>`+grants+`</AccessControlList></AccessControlPolicy>`)
}

// FailKey makes every request for the bucket key key answer status (0 stops it).
func (b *FakeBucket) FailKey(key string, status int) {
	b.mu.Lock()
	if status == 0 {
		delete(b.failKey, key)
	} else {
		b.failKey[key] = status
	}
	b.mu.Unlock()
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

// GateBody holds the body of key's next GETs after n bytes until the returned Gate opens.
func (b *FakeBucket) GateBody(key string, n int64) *Gate {
	g := &Gate{Bytes: n, open: make(chan struct{}), Passed: make(chan struct{})}
	b.mu.Lock()
	b.gates[key] = g
	b.mu.Unlock()
	return g
}

// CorruptBody makes key's GETs send byte off of their body altered (one bit flipped), with the
// right length and headers, as a faulty network or disk on the way would; a negative off stops
// it. The offset counts in the body sent, so for a whole-object GET it is the object's offset.
func (b *FakeBucket) CorruptBody(key string, off int64) {
	b.mu.Lock()
	if off < 0 {
		delete(b.flips, key)
	} else {
		b.flips[key] = off
	}
	b.mu.Unlock()
}

// CutBody makes key's GETs drop the connection after n body bytes.
func (b *FakeBucket) CutBody(key string, n int64) {
	b.mu.Lock()
	b.cuts[key] = n
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

// bodyWriter counts the body bytes written, holds them at a gate, cuts and alters them, and
// changes the headers of a 2xx answer.
type bodyWriter struct {
	http.ResponseWriter
	header func(http.Header) // changes the headers of a 2xx answer; nil for none
	status int               // the status written, 0 before
	sent   *atomic.Int64
	n      int64
	gate   *Gate
	cut    int64
	cutNow bool
	flip   int64 // offset of the body byte sent altered, -1 for none
}

// WriteHeader implements http.ResponseWriter, changing the headers of a 2xx answer first.
func (w *bodyWriter) WriteHeader(status int) {
	if w.status != 0 {
		return
	}
	w.status = status
	if w.header != nil && status >= 200 && status < 300 {
		w.header(w.ResponseWriter.Header())
	}
	w.ResponseWriter.WriteHeader(status)
}

// writeHeader writes the headers of a 200 answer when nothing did yet.
func (w *bodyWriter) writeHeader() {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
}

func (w *bodyWriter) Write(p []byte) (int, error) {
	w.writeHeader()
	if w.cutNow {
		return 0, io.ErrClosedPipe
	}
	if w.cut > 0 && w.n+int64(len(p)) > w.cut {
		p = p[:w.cut-w.n]
		w.cutNow = true
	}
	var headN int
	if g := w.gate; g != nil && w.n+int64(len(p)) > g.Bytes {
		if w.n < g.Bytes {
			head := p[:g.Bytes-w.n]
			n, err := w.write(head)
			if err != nil {
				return n, err
			}
			headN, p = n, p[n:]
		}
		if f, ok := w.ResponseWriter.(http.Flusher); ok {
			f.Flush()
		}
		g.passed.Do(func() { close(g.Passed) })
		<-g.open
	}
	n, err := w.write(p)
	n += headN
	if w.cutNow {
		if f, ok := w.ResponseWriter.(http.Flusher); ok {
			f.Flush()
		}
		return n, io.ErrClosedPipe
	}
	return n, err
}

func (w *bodyWriter) write(p []byte) (int, error) {
	if w.flip >= w.n && w.flip < w.n+int64(len(p)) {
		q := append([]byte(nil), p...)
		q[w.flip-w.n] ^= 0x20
		p = q
	}
	n, err := w.ResponseWriter.Write(p)
	w.n += int64(n)
	w.sent.Add(int64(n))
	return n, err
}

func (w *bodyWriter) Flush() {
	w.writeHeader()
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// generated serves PutGenerated objects from PatternByte without storing them.
type generated struct {
	*s3mem.Backend
	mu    sync.Mutex
	sizes map[string]int64
}

func (g *generated) size(key string) (int64, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	s, ok := g.sizes[key]
	return s, ok
}

func (g *generated) HeadObject(bucket, key string) (*gofakes3.Object, error) {
	if size, ok := g.size(key); ok {
		return g.object(key, size, nil)
	}
	return g.Backend.HeadObject(bucket, key)
}

func (g *generated) GetObject(bucket, key string, rr *gofakes3.ObjectRangeRequest) (*gofakes3.Object, error) {
	if size, ok := g.size(key); ok {
		return g.object(key, size, rr)
	}
	return g.Backend.GetObject(bucket, key, rr)
}

func (g *generated) object(key string, size int64, rr *gofakes3.ObjectRangeRequest) (*gofakes3.Object, error) {
	rng, err := rr.Range(size)
	if err != nil {
		return nil, err
	}
	start, n := int64(0), size
	if rng != nil {
		start, n = rng.Start, rng.Length
	}
	return &gofakes3.Object{
		Name: key,
		Metadata: map[string]string{
			"Content-Type":  origin.ContentType(key),
			"Last-Modified": time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC).Format(http.TimeFormat),
		},
		Size:     size,
		Range:    rng,
		Hash:     []byte("generated-object!"), // an ETag that is not the body's MD5, as for multipart uploads
		Contents: io.NopCloser(io.LimitReader(&Pattern{Off: start}, n)),
	}, nil
}

// Pattern is an endless deterministic byte stream starting at offset Off: byte i is
// PatternByte(i).
type Pattern struct{ Off int64 }

// PatternByte is byte i of every generated object.
func PatternByte(i int64) byte { return byte(i*7 + i>>12) }

func (p *Pattern) Read(b []byte) (int, error) {
	for i := range b {
		b[i] = PatternByte(p.Off + int64(i))
	}
	p.Off += int64(len(b))
	return len(b), nil
}
