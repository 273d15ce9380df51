//go:build linux

package replica

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/pulpdist/pulpdist/libs/tmpfstest"
	"github.com/pulpdist/pulpdist/libs/tree"
)

// statfs returns the free blocks and inodes of the filesystem holding dir.
func statfs(t *testing.T, dir string) syscall.Statfs_t {
	t.Helper()
	var st syscall.Statfs_t
	mustDo(t, syscall.Statfs(dir, &st))
	return st
}

// smallTree writes a small version A: two files, one in a subdirectory.
func smallTree(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "a")
	writeFiles(t, dir, map[string][]byte{"a.txt": []byte("alpha"), "sub/b.txt": []byte("bravo")})
	return dir
}

// plus returns a copy of the tree src with files added.
func plus(t *testing.T, src string, files map[string][]byte) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "plus")
	copyTree(t, src, dir)
	writeFiles(t, dir, files)
	return dir
}

// replicaWithA opens the replica demo in dir and applies the small
// version A to it; it returns the replica, A's source tree and manifest.
func replicaWithA(t *testing.T, dir string) (*Replica, string, *tree.Manifest) {
	t.Helper()
	srcA := smallTree(t)
	fullA, mA := packBytes(t, srcA, nil)
	r, err := Open(filepath.Join(dir, "demo"), 1)
	mustDo(t, err)
	_, err = r.Apply(t.Context(), reader(t, fullA))
	mustDo(t, err)
	return r, srcA, mA
}

// assertOutOfSpace checks that err is ENOSPC and says so.
func assertOutOfSpace(t *testing.T, err error) {
	t.Helper()
	if !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), "no space left on device") {
		t.Fatalf("apply error %v, want ENOSPC (no space left on device)", err)
	}
}

// assertUnchanged checks that a failed Apply left the replica serving want
// exactly as snapshot before described it, with staging/ empty.
func assertUnchanged(t *testing.T, r *Replica, before string, want *tree.Manifest) {
	t.Helper()
	if after := snapshot(t, r); after != before {
		t.Fatalf("replica changed:\n%s\n%s", before, after)
	}
	assertServes(t, r, want)
	root, err := Verify(context.Background(), r.dir)
	if err != nil || root != want.Root() {
		t.Fatalf("Verify = %s, %v; want %s", root, err, want.Root())
	}
	assertStagingEmpty(t, r)
}

// TestApplyOutOfSpace applies a version larger than the free space: Apply
// fails with ENOSPC, the old version is served as before, the space used
// by the half-built tree is given back, and a version that fits applies.
func TestApplyOutOfSpace(t *testing.T) {
	dir, ok := tmpfstest.Mount(t, tmpfstest.Options{Size: 4 << 20})
	if !ok {
		return // ran in a user and mount namespace
	}
	ctx := t.Context()
	r, srcA, mA := replicaWithA(t, dir)

	// B adds 5 MiB of incompressible data to a 4 MiB filesystem.
	deltaB, _ := packBytes(t, plus(t, srcA, map[string][]byte{"data/huge": randomBytes(3, 5<<20)}), mA)
	before, free := snapshot(t, r), statfs(t, dir).Bavail
	_, err := r.Apply(ctx, reader(t, deltaB))
	assertOutOfSpace(t, err)
	assertUnchanged(t, r, before, mA)
	if got := statfs(t, dir).Bavail; got != free {
		t.Fatalf("%d blocks free after the failed apply, %d before: the half-built tree was not removed", got, free)
	}

	// C adds 2 MiB: it fits in the space given back.
	deltaC, mC := packBytes(t, plus(t, srcA, map[string][]byte{"data/medium": randomBytes(4, 2<<20)}), mA)
	_, err = r.Apply(ctx, reader(t, deltaC))
	mustDo(t, err)
	assertServes(t, r, mC)
	assertStagingEmpty(t, r)
}

// TestApplyOutOfSpaceAfterBuild runs the filesystem out of space just
// after the tree is built and renamed into versions/: at the manifest
// write (no block left) and at the creation of current.tmp (no inode
// left). Apply undoes the rename and the manifest and fails with ENOSPC;
// once space is freed the same pack applies.
func TestApplyOutOfSpaceAfterBuild(t *testing.T) {
	tests := []struct {
		name   string
		inodes int64
		// exhaust fills the filesystem at dir so that just what the build
		// of m needs stays free, and returns what to remove to free it.
		exhaust func(t *testing.T, dir string, m *tree.Manifest) string
		// failsAt is the last step Apply reaches, next the one it must not.
		failsAt, next func(root string) string
	}{{
		name: "manifest",
		exhaust: func(t *testing.T, dir string, _ *tree.Manifest) string {
			// The build writes new.bin, two pages; the manifest needs a
			// third. Directories and short symlinks take no blocks.
			st := statfs(t, dir)
			filler := filepath.Join(dir, "filler")
			mustDo(t, os.WriteFile(filler, make([]byte, (st.Bavail-2)*uint64(st.Bsize)), 0o644))
			if got := statfs(t, dir).Bavail; got != 2 {
				t.Fatalf("%d blocks left free, want 2", got)
			}
			return filler
		},
		failsAt: func(root string) string { return "create manifest " + root + " temp" },
		next:    func(string) string { return "symlink current.tmp" },
	}, {
		name:   "current.tmp",
		inodes: 64,
		exhaust: func(t *testing.T, dir string, m *tree.Manifest) string {
			// The build creates the staging directory and every entry
			// (tmpfs charges a hard link as an inode), then the
			// manifest's temp file. current.tmp finds no inode.
			need := uint64(1 + len(m.Entries) + 1)
			fill := filepath.Join(dir, "fill")
			mustDo(t, os.Mkdir(fill, 0o755))
			for i := 0; statfs(t, dir).Ffree > need; i++ {
				mustDo(t, os.WriteFile(filepath.Join(fill, fmt.Sprint(i)), nil, 0o644))
			}
			if got := statfs(t, dir).Ffree; got != need {
				t.Fatalf("%d inodes left free, want %d", got, need)
			}
			return fill
		},
		failsAt: func(string) string { return "symlink current.tmp" },
		next:    func(string) string { return "rename current" },
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir, ok := tmpfstest.Mount(t, tmpfstest.Options{Size: 4 << 20, Inodes: tt.inodes})
			if !ok {
				return // ran in a user and mount namespace
			}
			ctx := t.Context()
			r, srcA, mA := replicaWithA(t, dir)
			deltaB, mB := packBytes(t, plus(t, srcA, map[string][]byte{"new.bin": randomBytes(5, 8192)}), mA)
			filler := tt.exhaust(t, dir, mB)

			var mu sync.Mutex
			var steps []string
			r.SetStepHook(func(s string) {
				mu.Lock()
				defer mu.Unlock()
				steps = append(steps, s)
			})
			before, free := snapshot(t, r), statfs(t, dir)
			_, err := r.Apply(ctx, reader(t, deltaB))
			r.SetStepHook(nil)
			assertOutOfSpace(t, err)
			if !slices.Contains(steps, "rename staging to versions/"+mB.Root()) || !slices.Contains(steps, tt.failsAt(mB.Root())) ||
				slices.Contains(steps, tt.next(mB.Root())) {
				t.Fatalf("apply failed at the wrong step (want after %q, before %q): %v\nsteps: %q", tt.failsAt(mB.Root()), tt.next(mB.Root()), err, steps)
			}
			assertUnchanged(t, r, before, mA)
			if st := statfs(t, dir); st.Bavail != free.Bavail || st.Ffree != free.Ffree {
				t.Fatalf("%d blocks and %d inodes free after the failed apply, %d and %d before", st.Bavail, st.Ffree, free.Bavail, free.Ffree)
			}

			mustDo(t, os.RemoveAll(filler))
			_, err = r.Apply(ctx, reader(t, deltaB))
			mustDo(t, err)
			assertServes(t, r, mB)
			assertStagingEmpty(t, r)
		})
	}
}
