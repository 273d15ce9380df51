//go:build linux

package siteagent_test

import (
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pulpdist/pulpdist/libs/bus"
	"github.com/pulpdist/pulpdist/libs/pack"
	"github.com/pulpdist/pulpdist/libs/replica"
	"github.com/pulpdist/pulpdist/libs/tmpfstest"
	"github.com/pulpdist/pulpdist/libs/tree"
	"github.com/pulpdist/pulpdist/services/siteagent"
)

// storeDelta writes the pack from base to the tree in dir (which holds
// every content the pack needs) into the deltas store and returns its
// name, BLAKE3 and target manifest.
func (h *harness) storeDelta(t *testing.T, treeName string, base *tree.Manifest, dir string) (name, hash string, m *tree.Manifest) {
	t.Helper()
	b, m := buildPack(t, dir, pack.Options{Tree: treeName, From: base})
	name = bus.DeltaID(treeName, base.Root(), m.Root())
	return name, h.putDelta(t, name, b), m
}

// grow copies the tree src and adds a file of n random bytes.
func grow(t *testing.T, src, rel string, n int) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS(src)); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never returns an error
	write(t, dir, rel, string(b))
	return dir
}

// TestFullDiskFailsTheRun: a site whose data directory is too small for the
// version it is sent (to download or to build) reports the run FAILED at
// once, with the reason, and goes on serving the version it had; once a
// version fits, it applies.
func TestFullDiskFailsTheRun(t *testing.T) {
	dataDir, ok := tmpfstest.Mount(t, tmpfstest.Options{Size: 4 << 20})
	if !ok {
		return // ran in a user and mount namespace
	}
	h := start(t, "site-a", func(c *siteagent.Config) { c.DataDir = dataDir })
	h.dataDir = dataDir // for current()
	treeDir := filepath.Join(dataDir, "trees", "demo")

	srcA := t.TempDir()
	write(t, srcA, "a.txt", "alpha")
	write(t, srcA, "dir/b.txt", "beta")
	name, hash, rootA := h.storePack(t, "demo", srcA, nil)
	fin := h.run(t, bus.SyncCommand{RunID: "a", TriggerID: "t", Kind: bus.CommandApply, Site: "site-a", Tree: "demo", To: rootA, Pack: name, PackHash: hash})
	if fin.Result != bus.ResultCompleted {
		t.Fatalf("apply A: %+v", fin)
	}
	mA, err := tree.Scan(t.Context(), srcA)
	if err != nil {
		t.Fatal(err)
	}

	// B adds 3 MiB: the pack fits in the data directory's 4 MiB, the pack
	// and the tree built from it do not, and the apply runs out of space.
	// D adds 5 MiB: the download of the pack runs out of space.
	for _, tc := range []struct {
		run, fails string // fails: what the reason starts with
		size       int
	}{{"b", "apply ", 3 << 20}, {"d", "fetch pack ", 5 << 20}} {
		name, hash, m := h.storeDelta(t, "demo", mA, grow(t, srcA, "data/huge", tc.size))
		fin = h.run(t, bus.SyncCommand{RunID: tc.run, TriggerID: "t", Kind: bus.CommandApply, Site: "site-a", Tree: "demo", From: rootA, To: m.Root(), Pack: name, PackHash: hash})
		if fin.Result != bus.ResultFailed || !strings.HasPrefix(fin.Error, tc.fails) || !strings.Contains(fin.Error, "no space left on device") {
			t.Fatalf("run %s on a full disk: %s (%q), want FAILED at %q with no space left on device", tc.run, fin.Result, fin.Error, tc.fails)
		}
		if cur := current(t, h, "demo"); cur != rootA {
			t.Fatalf("after run %s the site serves %q, want %s", tc.run, cur, rootA)
		}
		if served, err := replica.Verify(t.Context(), treeDir); err != nil || served != rootA {
			t.Fatalf("after run %s: Verify = %s, %v; want %s", tc.run, served, err, rootA)
		}
		if v, err := bus.GetSiteVersion(t.Context(), h.layout.Sites, "site-a", "demo"); err != nil || v != rootA {
			t.Fatalf("after run %s: site version %q, %v; want %s", tc.run, v, err, rootA)
		}
		for _, d := range []string{filepath.Join(treeDir, "staging"), filepath.Join(dataDir, "tmp"), filepath.Join(dataDir, "partial")} {
			left, err := os.ReadDir(d)
			if err != nil {
				t.Fatal(err)
			}
			if len(left) != 0 {
				t.Fatalf("%s holds %v after run %s", d, left, tc.run)
			}
		}
	}

	// C adds 1 MiB: pack and tree fit in the space given back.
	name, hash, mC := h.storeDelta(t, "demo", mA, grow(t, srcA, "data/medium", 1<<20))
	fin = h.run(t, bus.SyncCommand{RunID: "c", TriggerID: "t", Kind: bus.CommandApply, Site: "site-a", Tree: "demo", From: rootA, To: mC.Root(), Pack: name, PackHash: hash})
	if fin.Result != bus.ResultCompleted || current(t, h, "demo") != mC.Root() {
		t.Fatalf("apply C: %+v, serving %s", fin, current(t, h, "demo"))
	}
}
