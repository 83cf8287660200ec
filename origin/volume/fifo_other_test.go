//go:build !unix

package volume_test

import "errors"

// mkfifo reports that this system makes no FIFOs.
func mkfifo(string) error { return errors.ErrUnsupported }
