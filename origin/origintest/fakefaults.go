package origintest

// The faults a FakeBucket can be told to make: failing statuses, held, cut and altered bodies,
// reads that wait for their ACL request.

import (
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
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

// FailEvery makes one request in every n answer status (503 SlowDown, 500 InternalError, 429...),
// the rest as the mode says; n 0 stops it.
func (b *FakeBucket) FailEvery(n, status int) {
	b.mu.Lock()
	b.every, b.failSt, b.nReqs = n, status, 0
	b.mu.Unlock()
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

// GateBody holds the body of key's next GETs after n bytes until the returned Gate opens. A
// negative n lets the next GETs through (those held stay held until their Gate opens) and
// returns nil.
func (b *FakeBucket) GateBody(key string, n int64) *Gate {
	b.mu.Lock()
	defer b.mu.Unlock()
	if n < 0 {
		delete(b.gates, key)
		return nil
	}
	g := &Gate{Bytes: n, open: make(chan struct{}), Passed: make(chan struct{})}
	b.gates[key] = g
	return g
}

// Pace makes every GET from now on send its body at bytesPerSecond (0: as fast as it goes), and
// answer every GET and HEAD after wait: a bucket across a network, whose first byte and whose
// later bytes take time.
func (b *FakeBucket) Pace(bytesPerSecond int64, wait time.Duration) {
	b.mu.Lock()
	b.pace, b.wait = bytesPerSecond, wait
	b.mu.Unlock()
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
	pace   int64 // bytes per second, 0 for as fast as it goes
	began  time.Time
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

// write sends p, at the body's pace when it has one.
func (w *bodyWriter) write(p []byte) (int, error) {
	if w.pace > 0 {
		return w.paced(p)
	}
	return w.send(p)
}

func (w *bodyWriter) send(p []byte) (int, error) {
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

// paced sends p in pieces of 32 KiB, each once the body's pace allows it.
func (w *bodyWriter) paced(p []byte) (int, error) {
	if w.began.IsZero() {
		w.began = time.Now()
	}
	sent := 0
	for len(p) > 0 {
		piece := p[:min(len(p), 32<<10)]
		due := w.began.Add(time.Duration(float64(w.n+int64(len(piece))) / float64(w.pace) * float64(time.Second)))
		time.Sleep(time.Until(due))
		n, err := w.send(piece)
		sent += n
		if err != nil {
			return sent, err
		}
		if f, ok := w.ResponseWriter.(http.Flusher); ok {
			f.Flush()
		}
		p = p[n:]
	}
	return sent, nil
}

func (w *bodyWriter) Flush() {
	w.writeHeader()
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}
