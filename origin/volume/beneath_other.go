//go:build !linux

package volume

import (
	"io/fs"
	"os"
)

// beneath is a resolver of keys in one system call, which this system does not have: os.Root
// resolves every key.
type beneath struct{}

func newBeneath(*os.Root, string) *beneath        { return nil }
func (*beneath) close() error                     { return nil }
func (*beneath) open(string) (*os.File, error)    { return nil, errNoBeneath }
func (*beneath) stat(string) (fs.FileInfo, error) { return nil, errNoBeneath }
