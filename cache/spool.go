package cache

import "os"

// newTempFile returns a temporary file in dir through which a large object streams to several
// requests when no tier keeps it. It is unlinked at once: the open file lives until it is
// closed, and nothing is left behind on a crash.
func newTempFile(dir string) (*os.File, error) {
	f, err := os.CreateTemp(dir, "fedicache-spool-*")
	if err != nil {
		return nil, err
	}
	_ = os.Remove(f.Name())
	return f, nil
}
