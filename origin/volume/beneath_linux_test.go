//go:build linux

package volume_test

import (
	"bytes"
	"context"
	"io"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/fedicache/fedicache/origin/volume"
)

// asOpenMakes makes the volumes the test opens resolve keys as Open chooses, in either pass of
// TestMain.
func asOpenMakes(t *testing.T) {
	prev := volume.SetRootOnly(false)
	t.Cleanup(func() { volume.SetRootOnly(prev) })
}

// TestOpenat2InUse checks that a volume resolves keys with openat2 where the system allows it,
// so that the first pass of TestMain tests that path.
func TestOpenat2InUse(t *testing.T) {
	asOpenMakes(t)
	dir := t.TempDir()
	d, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(d)
	fd, err := unix.Openat2(d, ".", &unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_MAGICLINKS,
	})
	if err != nil {
		t.Skipf("the system refuses openat2: %v", err)
	}
	unix.Close(fd)
	if !volume.UsesOpenat2(openVolume(t, dir)) {
		t.Errorf("the system has openat2, and the volume does not use it")
	}
}

// TestOpenat2Refused plays a system that refuses openat2: the volume serves through os.Root.
func TestOpenat2Refused(t *testing.T) {
	asOpenMakes(t)
	for _, errno := range []unix.Errno{unix.ENOSYS, unix.EPERM, unix.EINVAL} {
		t.Run(errno.Error(), func(t *testing.T) {
			calls := 0
			volume.SetOpenat2(t, func(int, string, *unix.OpenHow) (int, error) {
				calls++
				return -1, errno
			})
			v, canary := canaryVolume(t)
			if volume.UsesOpenat2(v) {
				t.Fatalf("openat2 fails with %v, and the volume uses it", errno)
			}
			expectServed(t, v, "link-in", inside)
			expectNotFound(t, v, "a/link-rel")
			expectNoCanary(t, v, canary, "a/link-rel")
			if calls != 1 {
				t.Errorf("openat2 called %d times, want once, at Open", calls)
			}
		})
	}
}

// TestOpenat2Again plays openat2 failing with EAGAIN after Open, as it does when a rename races
// with a lookup: after a few attempts, os.Root resolves the key.
func TestOpenat2Again(t *testing.T) {
	asOpenMakes(t)
	opened := false
	calls := 0
	volume.SetOpenat2(t, func(dirfd int, path string, how *unix.OpenHow) (int, error) {
		if !opened {
			opened = true
			return unix.Openat2(dirfd, path, how)
		}
		calls++
		return -1, unix.EAGAIN
	})
	v, canary := canaryVolume(t)
	if !volume.UsesOpenat2(v) {
		t.Skip("the system refuses openat2")
	}
	expectServed(t, v, "dir-in/real.jpg", inside)
	if calls < 2 {
		t.Errorf("openat2 called %d times for a Stat and a Get failing with EAGAIN, want retries", calls)
	}
	expectNotFound(t, v, "link-dir-out/canary")
	expectNoCanary(t, v, canary, "link-dir-out/canary")
}

// expectServed checks that Stat and Get of key succeed and that Get returns want.
func expectServed(t *testing.T, v *volume.Volume, key, want string) {
	t.Helper()
	ctx := context.Background()
	if _, err := v.Stat(ctx, key); err != nil {
		t.Errorf("Stat(%q): %v", key, err)
	}
	body, _, err := v.Get(ctx, key, nil)
	if err != nil {
		t.Errorf("Get(%q): %v", key, err)
		return
	}
	b, err := io.ReadAll(body)
	body.Close()
	if err != nil || string(b) != want {
		t.Errorf("Get(%q) = %q, %v; want %q", key, b, err, want)
	}
}

// expectNoCanary checks that OpenFile of key opens nothing, and above all not the canary.
func expectNoCanary(t *testing.T, v *volume.Volume, canary []byte, key string) {
	t.Helper()
	f, _, err := v.OpenFile(key)
	if err == nil {
		b, _ := io.ReadAll(f)
		f.Close()
		t.Errorf("OpenFile(%q) opened a file (the canary: %t)", key, bytes.Equal(b, canary))
	}
}
