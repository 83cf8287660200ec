package tiertest

import (
	"fmt"
	"syscall"
	"testing"
)

// TinyFS mounts a tmpfs of size bytes on a new folder and unmounts it when the test ends; it
// skips the test where mounting is not allowed (not root, no tmpfs).
func TinyFS(t *testing.T, size int) string {
	t.Helper()
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, fmt.Sprintf("size=%d", size)); err != nil {
		t.Skipf("cannot mount a %d-byte tmpfs (needs root): %v", size, err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}
