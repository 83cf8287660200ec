package cache

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"testing"
)

// memFile is a streamFile in memory whose writes fail once it would hold more than limit bytes,
// as a file on a full disk does.
type memFile struct {
	mu     sync.Mutex
	b      []byte
	limit  int
	closed bool
}

var errFull = errors.New("no space left on device")

func (f *memFile) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if n := f.limit - len(f.b); len(p) > n {
		f.b = append(f.b, p[:n]...)
		return n, errFull
	}
	f.b = append(f.b, p...)
	return len(p), nil
}

func (f *memFile) ReadAt(p []byte, off int64) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if off >= int64(len(f.b)) {
		return 0, io.EOF
	}
	n := copy(p, f.b[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (f *memFile) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	return nil
}

// body returns n random bytes: no two windows of the ring look alike.
func body(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.NewChaCha8([32]byte{7}).Read(b)
	return b
}

// TestStreamHoldsBackTheLastByte: whether a reader reads while the body is written or comes
// after the writer has ended, it gets the last byte only when the writer finished without an
// error; else it gets every byte but the last, then the writer's error.
func TestStreamHoldsBackTheLastByte(t *testing.T) {
	errCheck := errors.New("checksum")
	for _, fail := range []bool{false, true} {
		for _, late := range []bool{false, true} {
			data := body(100_000)
			s := newStream(streamHooks{idle: func() {}})
			s.start(int64(len(data)), make([]byte, len(data)), nil)
			read := func() ([]byte, error) {
				s.join()
				r, err := s.open(context.Background(), false, nil)
				if err != nil {
					return nil, err
				}
				defer r.Close()
				return io.ReadAll(r)
			}
			var got []byte
			var err error
			var wg sync.WaitGroup
			if !late {
				wg.Go(func() { got, err = read() })
			}
			for i := 0; i < len(data); i += 4096 {
				if werr := s.write(context.Background(), data[i:min(i+4096, len(data))]); werr != nil {
					t.Fatal(werr)
				}
			}
			if fail {
				s.finish(errCheck)
			} else {
				s.finish(nil)
			}
			if late {
				got, err = read()
			}
			wg.Wait()
			switch {
			case fail && (!errors.Is(err, errCheck) || len(got) != len(data)-1):
				t.Errorf("late %v, the check failed: %d of %d bytes, %v; want all but the last, then the error", late, len(got), len(data), err)
			case !fail && (err != nil || !bytes.Equal(got, data)):
				t.Errorf("late %v, the check passed: %d of %d bytes, %v", late, len(got), len(data), err)
			}
		}
	}
}

// TestStreamCut: a cut fails the readers, waiting or not, and the writer's next write.
func TestStreamCut(t *testing.T) {
	errCut := errors.New("cut")
	s := newStream(streamHooks{idle: func() {}})
	s.start(10, make([]byte, 10), nil)
	s.join()
	r, _ := s.open(context.Background(), false, nil)
	if err := s.write(context.Background(), []byte("abc")); err != nil {
		t.Fatal(err)
	}
	done := make(chan error)
	go func() {
		_, err := io.ReadAll(r)
		done <- err
	}()
	s.cut(errCut, false)
	if err := <-done; !errors.Is(err, errCut) {
		t.Errorf("a reader after the cut: %v", err)
	}
	if err := s.write(context.Background(), []byte("d")); !errors.Is(err, errCut) {
		t.Errorf("a write after the cut: %v", err)
	}
	r.Close()
}

// TestStreamIdle: the idle hook is called when a stream still being written loses its last
// reader or starts with none, not once it has ended; cut with idleOnly cuts only then.
func TestStreamIdle(t *testing.T) {
	var idle atomic.Int32
	s := newStream(streamHooks{idle: func() { idle.Add(1) }})
	s.join()
	s.start(4, make([]byte, 4), nil)
	r, _ := s.open(context.Background(), false, nil)
	if idle.Load() != 0 || s.cut(errAbandoned, true) {
		t.Fatal("idle with a reader")
	}
	r.Close()
	if idle.Load() != 1 || !s.cut(errAbandoned, true) {
		t.Errorf("idle hook called %d times after the last reader left, want 1", idle.Load())
	}

	e := newStream(streamHooks{idle: func() { idle.Add(10) }})
	e.start(0, nil, nil)
	if idle.Load() != 11 {
		t.Errorf("a stream starting with no reader: idle %d", idle.Load()-1)
	}
	e.join()
	e.finish(nil)
	e.leave()
	if idle.Load() != 11 {
		t.Errorf("idle called after the end")
	}
}

// TestStreamRing: the file fails after a few bytes and there is no buf: the stream goes on
// through its ring, a fast and a slow reader both get every byte, and the writer waits for
// the slow one rather than overwrite what it has still to read.
func TestStreamRing(t *testing.T) {
	data := body(3*ringSize + 12345)
	f := &memFile{limit: 100_000}
	var rings atomic.Int32
	s := newStream(streamHooks{
		idle:       func() {},
		fileFailed: func(err error, ring bool) { rings.Add(1) },
	})
	s.start(int64(len(data)), nil, f)
	var readers [2]*streamReader
	for i := range readers {
		s.join()
		readers[i], _ = s.open(context.Background(), false, nil)
	}
	var wg sync.WaitGroup
	for i, r := range readers {
		wg.Go(func() {
			defer r.Close()
			var got bytes.Buffer
			p := make([]byte, []int{64 << 10, 1000}[i])
			for {
				n, err := r.Read(p)
				got.Write(p[:n])
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Errorf("reader %d after %d bytes: %v", i, got.Len(), err)
					return
				}
			}
			if !bytes.Equal(got.Bytes(), data) {
				t.Errorf("reader %d: %d of %d bytes, right %v", i, got.Len(), len(data), bytes.Equal(got.Bytes(), data))
			}
		})
	}
	for i := 0; i < len(data); i += 32 << 10 {
		if err := s.write(context.Background(), data[i:min(i+32<<10, len(data))]); err != nil {
			t.Fatal(err)
		}
	}
	s.finish(nil)
	wg.Wait()
	f.mu.Lock()
	defer f.mu.Unlock()
	if rings.Load() != 1 || !f.closed {
		t.Errorf("fileFailed called %d times, file closed %v; want 1 and closed", rings.Load(), f.closed)
	}
}

// reopenFile is a streamFile on a real file whose body starts at bodyOff (the disk tier's
// layout), which readers may reopen for sendfile.
type reopenFile struct {
	f       *os.File
	bodyOff int64
	n       int64
}

func (f *reopenFile) Write(p []byte) (int, error) {
	n, err := f.f.WriteAt(p, f.bodyOff+f.n)
	f.n += int64(n)
	return n, err
}

func (f *reopenFile) ReadAt(p []byte, off int64) (int, error) { return f.f.ReadAt(p, f.bodyOff+off) }
func (f *reopenFile) Close() error                            { return f.f.Close() }
func (f *reopenFile) Reopen() (*os.File, int64, error) {
	g, err := os.Open(f.f.Name())
	return g, f.bodyOff, err
}

// rangeTaker is a writer that takes file ranges as a TCP connection's ReadFrom does (for
// sendfile), counting them, and anything else by Write.
type rangeTaker struct {
	bytes.Buffer
	fileRanges int
}

func (w *rangeTaker) ReadFrom(r io.Reader) (int64, error) {
	if lr, ok := r.(*io.LimitedReader); ok {
		if _, ok := lr.R.(*os.File); ok {
			w.fileRanges++
		}
	}
	return w.Buffer.ReadFrom(r)
}

// TestStreamWriteToSendsFileRanges: a reader of a body that goes to a reopenable file hands its
// writer ranges of that file as they are written, under Read's rules: every byte when the
// writer's checks pass, all but the last then the error when they fail.
func TestStreamWriteToSendsFileRanges(t *testing.T) {
	errCheck := errors.New("checksum")
	for _, fail := range []bool{false, true} {
		data := body(3 << 20)
		tmp, err := os.CreateTemp(t.TempDir(), "spool-*")
		if err != nil {
			t.Fatal(err)
		}
		s := newStream(streamHooks{idle: func() {}})
		s.start(int64(len(data)), nil, &reopenFile{f: tmp, bodyOff: 123})
		s.join()
		r, err := s.open(context.Background(), false, nil)
		if err != nil {
			t.Fatal(err)
		}
		var w rangeTaker
		var n int64
		var werr error
		done := make(chan struct{})
		go func() {
			defer close(done)
			n, werr = r.WriteTo(&w)
		}()
		for i := 0; i < len(data); i += 256 << 10 {
			if err := s.write(context.Background(), data[i:min(i+256<<10, len(data))]); err != nil {
				t.Fatal(err)
			}
		}
		if fail {
			s.finish(errCheck)
		} else {
			s.finish(nil)
		}
		<-done
		r.Close()
		got := w.Bytes()
		switch {
		case w.fileRanges == 0:
			t.Errorf("fail %v: no file range handed to the writer", fail)
		case n != int64(len(got)):
			t.Errorf("fail %v: WriteTo says %d bytes, the writer took %d", fail, n, len(got))
		case fail && (!errors.Is(werr, errCheck) || !bytes.Equal(got, data[:len(data)-1])):
			t.Errorf("the check failed: %d of %d bytes, %v; want all but the last, then the error", len(got), len(data), werr)
		case !fail && (werr != nil || !bytes.Equal(got, data)):
			t.Errorf("the check passed: %d of %d bytes, %v", len(got), len(data), werr)
		}
	}
}

// TestStreamRangeEndsBeforeAFailure: a reader of a range that ends before the last byte gets
// its bytes and io.EOF once they are written, also when the writer fails after them and the
// reader comes to its end only then; a reader of a range the failure cut short gets the error.
func TestStreamRangeEndsBeforeAFailure(t *testing.T) {
	errCut := errors.New("unexpected EOF")
	data := body(1000)
	s := newStream(streamHooks{idle: func() {}})
	s.start(int64(len(data)), nil, &memFile{limit: 1 << 20})
	open := func(off, end int64) *streamReader {
		s.join()
		r, err := s.open(context.Background(), false, func(int64) (int64, int64, bool) { return off, end, true })
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	head, middle := open(0, 100), open(400, 600)
	if err := s.write(context.Background(), data[:500]); err != nil {
		t.Fatal(err)
	}
	s.finish(errCut)
	got, err := io.ReadAll(head)
	if err != nil || !bytes.Equal(got, data[:100]) {
		t.Errorf("a range written before the failure: %d bytes, %v; want its 100 bytes and io.EOF", len(got), err)
	}
	got, err = io.ReadAll(middle)
	if !errors.Is(err, errCut) || !bytes.Equal(got, data[400:500]) {
		t.Errorf("a range the failure cut short: %d bytes, %v; want the 100 written, then the error", len(got), err)
	}
	head.Close()
	middle.Close()
}
