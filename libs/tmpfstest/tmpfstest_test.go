//go:build linux

package tmpfstest

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// tmpfsMagic is TMPFS_MAGIC from linux/magic.h.
const tmpfsMagic = 0x01021994

// checkLimits checks that dir is a tmpfs of 1 MiB and 16 inodes that
// really runs out of both.
func checkLimits(t *testing.T, dir string) {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	if st.Type != tmpfsMagic || st.Blocks*uint64(st.Bsize) != 1<<20 || st.Files != 16 {
		t.Fatalf("statfs %s: type %#x, %d blocks of %d, %d inodes; want a tmpfs of 1 MiB and 16 inodes", dir, st.Type, st.Blocks, st.Bsize, st.Files)
	}
	big := filepath.Join(dir, "big")
	err := os.WriteFile(big, make([]byte, 2<<20), 0o644)
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("writing 2 MiB into 1 MiB: %v, want ENOSPC", err)
	}
	if err := os.Remove(big); err != nil {
		t.Fatal(err)
	}
	// The root directory holds one of the 16 inodes.
	created := 0
	for ; created < 100; created++ {
		err = os.WriteFile(filepath.Join(dir, fmt.Sprint(created)), nil, 0o644)
		if err != nil {
			break
		}
	}
	if created != 15 || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("created %d files, then %v; want 15, then ENOSPC", created, err)
	}
}

func TestMount(t *testing.T) {
	dir, ok := Mount(t, Options{Size: 1 << 20, Inodes: 16})
	if !ok {
		return
	}
	checkLimits(t, dir)
}

// TestMountInNamespace takes the path of an unprivileged user, whoever
// runs it: the test runs again in a user and mount namespace.
func TestMountInNamespace(t *testing.T) {
	if os.Getenv(EnvChild) != "1" {
		runInNamespace(t, syscall.EPERM)
		return
	}
	dir, ok := Mount(t, Options{Size: 1 << 20, Inodes: 16})
	if !ok {
		t.Fatal("Mount in the child did not mount")
	}
	checkLimits(t, dir)
}

func TestRunPattern(t *testing.T) {
	for name, want := range map[string]string{
		"TestA":             "^TestA$",
		"TestA/sub_case#01": "^TestA$/^sub_case#01$",
		"TestA/a.b(c)":      `^TestA$/^a\.b\(c\)$`,
	} {
		if got := runPattern(name); got != want {
			t.Errorf("runPattern(%q) = %q, want %q", name, got, want)
		}
	}
}

// recorder is a testing.TB that records how Mount gave up.
type recorder struct {
	testing.TB
	skipped, fatal string
}

func (r *recorder) Helper()                   {}
func (r *recorder) Skipf(f string, a ...any)  { r.skipped = fmt.Sprintf(f, a...) }
func (r *recorder) Fatalf(f string, a ...any) { r.fatal = fmt.Sprintf(f, a...) }

func TestBadOptions(t *testing.T) {
	for _, o := range []Options{{}, {Size: -1}, {Size: 1 << 20, Inodes: -1}} {
		r := &recorder{TB: t}
		if dir, ok := Mount(r, o); ok || dir != "" {
			t.Fatalf("%+v: mounted %q", o, dir)
		}
		if !strings.Contains(r.fatal, "the size must be above 0") {
			t.Fatalf("%+v: fatal %q", o, r.fatal)
		}
	}
}

func TestUnavailable(t *testing.T) {
	for _, ci := range []string{"", "true"} {
		t.Run("CI="+ci, func(t *testing.T) {
			t.Setenv("CI", ci)
			r := &recorder{TB: t}
			unavailable(r, "no privilege here")
			msg, other := r.skipped, r.fatal
			if ci == "true" {
				msg, other = r.fatal, r.skipped
			}
			if other != "" || !strings.Contains(msg, "cannot mount a tmpfs") || !strings.Contains(msg, "no privilege here") {
				t.Fatalf("skipped=%q fatal=%q", r.skipped, r.fatal)
			}
		})
	}
}
