//go:build linux

// Package tmpfstest gives a test a small tmpfs, so that it can run a
// filesystem out of space or out of inodes on purpose.
//
// Mounting needs privilege. As root (the developers' machines and CI run
// tests as root) Mount mounts directly. Otherwise it runs the calling test
// again in a child process inside a new user and mount namespace, where the
// test is root and may mount, and the child's result is the test's. Where
// neither works the test is skipped, except under CI=true, where it fails:
// CI must never pass by skipping these tests.
package tmpfstest

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
)

// EnvChild marks the child process that Mount starts in a user and mount
// namespace; there Mount mounts directly or gives up.
const EnvChild = "PULPDIST_TMPFSTEST_CHILD"

// skipMarker starts the skip message of a child that could not mount
// either, so that the parent tells it from a test that skipped itself.
const skipMarker = "tmpfstest: cannot mount in a user namespace"

// Options size the filesystem.
type Options struct {
	// Size is the capacity in bytes, rounded up to whole pages; required.
	Size int64
	// Inodes, when above 0, is the number of inodes, the root directory's
	// included; 0 leaves tmpfs's default (plenty).
	Inodes int64
}

// mountData is the tmpfs mount option string for o.
func (o Options) mountData() string {
	data := fmt.Sprintf("size=%d,mode=0755", o.Size)
	if o.Inodes > 0 {
		data += fmt.Sprintf(",nr_inodes=%d", o.Inodes)
	}
	return data
}

// Mount mounts a tmpfs sized by o on a new empty directory and returns the
// directory and true; the filesystem is unmounted when the test ends.
// Cleanups registered after Mount run before the unmount, so whatever
// keeps files open there (a service started by the test) must be stopped
// by one of them.
//
// Mount returns false when it had to run the test in a child process (not
// root: see the package comment) and the test passed there; the caller
// must then return at once. Everything the test did before calling Mount
// runs again in the child, so call it first:
//
//	dir, ok := tmpfstest.Mount(t, tmpfstest.Options{Size: 4 << 20})
//	if !ok {
//		return // the test ran in a user and mount namespace
//	}
func Mount(tb testing.TB, o Options) (string, bool) {
	tb.Helper()
	if o.Size <= 0 || o.Inodes < 0 {
		tb.Fatalf("tmpfstest: size %d, inodes %d: the size must be above 0 and the inodes 0 or more", o.Size, o.Inodes)
		return "", false
	}
	dir := filepath.Join(tb.TempDir(), "tmpfs")
	if err := os.Mkdir(dir, 0o755); err != nil {
		tb.Fatalf("tmpfstest: %v", err)
		return "", false
	}
	err := syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV, o.mountData())
	switch {
	case err == nil:
		tb.Cleanup(func() {
			if err := syscall.Unmount(dir, 0); err != nil {
				tb.Errorf("tmpfstest: unmount %s: %v", dir, err)
			}
		})
		return dir, true
	case os.Getenv(EnvChild) == "1":
		tb.Skipf("%s: mount tmpfs on %s: %v", skipMarker, dir, err)
	case errors.Is(err, syscall.EPERM):
		runInNamespace(tb, err)
	default:
		tb.Fatalf("tmpfstest: mount tmpfs (%s) on %s: %v", o.mountData(), dir, err)
	}
	return "", false
}

// runInNamespace runs the test tb again, alone, in a child process in a
// new user and mount namespace, and makes its result tb's.
func runInNamespace(tb testing.TB, mountErr error) {
	tb.Helper()
	exe, err := os.Executable()
	if err != nil {
		tb.Fatalf("tmpfstest: find the test binary: %v", err)
		return
	}
	args := []string{"-test.run=" + runPattern(tb.Name()), "-test.v=true", "-test.count=1"}
	if f := flag.Lookup("test.timeout"); f != nil {
		args = append(args, "-test.timeout="+f.Value.String())
	}
	cmd := exec.CommandContext(tb.Context(), exe, args...)
	cmd.Env = append(os.Environ(), EnvChild+"=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:  syscall.CLONE_NEWUSER | syscall.CLONE_NEWNS,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getuid(), Size: 1}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getgid(), Size: 1}},
	}
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	switch {
	case err != nil && !errors.As(err, &exit):
		unavailable(tb, fmt.Sprintf("mount: %v; start a user and mount namespace: %v", mountErr, err))
	case bytes.Contains(out, []byte(skipMarker)):
		unavailable(tb, fmt.Sprintf("mount: %v; in a user and mount namespace:\n%s", mountErr, out))
	case err != nil:
		tb.Fatalf("tmpfstest: the test failed in a user and mount namespace (%v):\n%s", err, out)
	case bytes.Contains(out, []byte("--- SKIP: "+tb.Name()+" (")):
		tb.Skipf("tmpfstest: the test skipped in a user and mount namespace:\n%s", out)
	case !bytes.Contains(out, []byte("--- PASS: "+tb.Name()+" (")):
		tb.Fatalf("tmpfstest: the test did not run in its user and mount namespace:\n%s", out)
	default:
		tb.Logf("tmpfstest: the test ran in a user and mount namespace:\n%s", out)
	}
}

// runPattern is the -test.run pattern selecting exactly the test (or
// subtest) named name.
func runPattern(name string) string {
	parts := strings.Split(name, "/")
	for i, p := range parts {
		parts[i] = "^" + regexp.QuoteMeta(p) + "$"
	}
	return strings.Join(parts, "/")
}

// unavailable fails under CI=true and skips elsewhere.
func unavailable(tb testing.TB, why string) {
	tb.Helper()
	if os.Getenv("CI") == "true" {
		tb.Fatalf("tmpfstest: cannot mount a tmpfs, and CI=true requires it (run as root, or allow user namespaces): %s", why)
		return
	}
	tb.Skipf("tmpfstest: skipping, cannot mount a tmpfs (run as root, or allow user namespaces; under CI=true this fails): %s", why)
}
