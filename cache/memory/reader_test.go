package memory

import (
	"errors"
	"io"
	"testing"
	"testing/iotest"
)

func TestReaderContract(t *testing.T) {
	data := []byte("0123456789abcdefghijklmnopqrstuvwxyz")
	if err := iotest.TestReader(&reader{b: data}, data); err != nil {
		t.Error(err)
	}
	if err := iotest.TestReader(&reader{}, nil); err != nil {
		t.Error(err)
	}
}

// shortWriter takes at most n bytes per Write.
type shortWriter struct {
	n   int
	got []byte
}

func (w *shortWriter) Write(p []byte) (int, error) {
	p = p[:min(len(p), w.n)]
	w.got = append(w.got, p...)
	return len(p), nil
}

func TestReaderShortWrite(t *testing.T) {
	data := []byte("0123456789")
	r := &reader{b: data}
	w := &shortWriter{n: 4}
	if n, err := r.WriteTo(w); n != 4 || !errors.Is(err, io.ErrShortWrite) {
		t.Errorf("WriteTo a short writer: %d, %v", n, err)
	}
	rest, err := io.ReadAll(r)
	if err != nil || string(rest) != "456789" {
		t.Errorf("after a short write the reader holds %q, %v", rest, err)
	}
	r.Close()
	if _, err := r.WriteTo(w); err == nil {
		t.Error("WriteTo after Close succeeded")
	}
}
