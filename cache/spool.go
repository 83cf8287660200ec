package cache

import (
	"os"
)

// tempSpool is a temporary file through which a large object streams to several requests
// when no tier keeps it. Close removes it.
type tempSpool struct{ f *os.File }

func newTempSpool(dir string) (*tempSpool, error) {
	f, err := os.CreateTemp(dir, "fedicache-spool-*")
	if err != nil {
		return nil, err
	}
	// Unlinked at once: the open file lives until Close, and nothing is left behind on a crash.
	_ = os.Remove(f.Name())
	return &tempSpool{f: f}, nil
}

func (s *tempSpool) Write(p []byte) (int, error)             { return s.f.Write(p) }
func (s *tempSpool) ReadAt(p []byte, off int64) (int, error) { return s.f.ReadAt(p, off) }
func (s *tempSpool) Commit() error                           { return nil }
func (s *tempSpool) Abort()                                  {}
func (s *tempSpool) Close() error                            { return s.f.Close() }
