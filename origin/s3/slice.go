package s3

import (
	"io"
)

// sliceBody serves bytes [skip, skip+remain) of a whole-object body, for a service that answers
// a range request with 200 and the whole object (as HTTP allows a server to do). The bytes
// before the range are read and dropped on the first Read, under the body's watchdog.
type sliceBody struct {
	body   io.ReadCloser
	skip   int64
	remain int64
}

// Read implements io.Reader.
func (s *sliceBody) Read(p []byte) (int, error) {
	if s.skip > 0 {
		n, err := io.CopyN(io.Discard, s.body, s.skip)
		s.skip -= n
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return 0, err
		}
	}
	if s.remain <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > s.remain {
		p = p[:s.remain]
	}
	n, err := s.body.Read(p)
	s.remain -= int64(n)
	if err == io.EOF && s.remain > 0 {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

// Close implements io.Closer.
func (s *sliceBody) Close() error { return s.body.Close() }
