//go:build unix

package replica

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/pulpdist/pulpdist/libs/pack"
	"github.com/pulpdist/pulpdist/libs/tree"
)

// Environment of the crash test's child process.
const (
	// crashChildEnv set to "1" makes TestApplyCrash the child: it applies
	// the pack crashPackEnv to the replica crashDirEnv and kills itself
	// with SIGKILL just before step crashAtEnv (1-based; 0 never kills and
	// prints every step as "STEP\t<name>").
	crashChildEnv = "PULPDIST_CRASH_CHILD"
	crashDirEnv   = "PULPDIST_CRASH_DIR"
	crashPackEnv  = "PULPDIST_CRASH_PACK"
	crashAtEnv    = "PULPDIST_CRASH_AT"
	// crashLongEnv set to "1" kills the child at every step instead of
	// crashDefaultPoints of them.
	crashLongEnv       = "PULPDIST_CRASH_LONG"
	crashDefaultPoints = 60
)

// TestApplyCrash kills a process applying a pack at many points (every
// step with PULPDIST_CRASH_LONG=1) and checks each time that the replica
// serves exactly the old or exactly the new version, that Open recovers
// (staging/ empty, no current.tmp, every held version intact), and that
// applying the same pack again then succeeds.
func TestApplyCrash(t *testing.T) {
	if os.Getenv(crashChildEnv) == "1" {
		crashChild(t)
		return
	}
	ctx := context.Background()
	work := t.TempDir()
	srcZ, srcA := crashTreeZ(t, work), crashTreeA(t, work)
	srcB := crashTreeB(t, work, srcA)
	fullZ, mZ := packBytes(t, srcZ, nil)
	fullA, mA := packBytes(t, srcA, nil)
	deltaAB, mB := packBytes(t, srcB, mA)
	packPath := filepath.Join(work, "a-to-b.pack")
	mustDo(t, os.WriteFile(packPath, deltaAB, 0o644))

	// The template serves A and holds Z, so that the apply of B prunes Z.
	tmpl := filepath.Join(work, "template")
	r, err := Open(tmpl, 1)
	mustDo(t, err)
	_, err = r.Apply(ctx, reader(t, fullZ))
	mustDo(t, err)
	_, err = r.Apply(ctx, reader(t, fullA))
	mustDo(t, err)
	assertServes(t, r, mA)
	if held, _ := r.versions(); len(held) != 2 {
		t.Fatalf("template holds %v, want A and Z", held)
	}
	versions := map[string]*tree.Manifest{mZ.Root(): mZ, mA.Root(): mA, mB.Root(): mB}

	// A full run, never killed, lists the steps.
	countDir := filepath.Join(work, "count")
	copyTree(t, tmpl, countDir)
	out := runCrashChild(t, countDir, packPath, 0)
	var steps []string
	for line := range strings.Lines(out) {
		if s, ok := strings.CutPrefix(line, "STEP\t"); ok {
			steps = append(steps, strings.TrimSuffix(s, "\n"))
		}
	}
	if len(steps) < 50 {
		t.Fatalf("a full apply reports %d steps, want at least 50:\n%s", len(steps), out)
	}
	for _, want := range []string{"rename staging to versions/" + mB.Root(), "rename manifest " + mB.Root(), "symlink current.tmp", "rename current", "prune rename " + mZ.Root(), "write data/big.bin at 2 MiB"} {
		if !slices.Contains(steps, want) {
			t.Fatalf("no step %q among %q", want, steps)
		}
	}
	rc, err := Open(countDir, 1)
	mustDo(t, err)
	assertServes(t, rc, mB)
	mustDo(t, removeAll(countDir))

	points := crashPoints(steps, os.Getenv(crashLongEnv) == "1")
	t.Logf("%d steps, killing at %d points", len(steps), len(points))
	start := time.Now()
	// The children spend most of their time waiting for fsync: run them
	// side by side (-test.parallel, GOMAXPROCS by default).
	t.Run("points", func(t *testing.T) {
		for _, n := range points {
			what := "completes"
			if n <= len(steps) {
				what = fmt.Sprintf("killed before step %d (%s in the full run)", n, steps[n-1])
			}
			t.Run(fmt.Sprintf("kill%03d", n), func(t *testing.T) {
				t.Parallel()
				dir := filepath.Join(work, fmt.Sprintf("kill%03d", n))
				copyTree(t, tmpl, dir)
				defer func() { mustDo(t, removeAll(dir)) }()
				runCrashChild(t, dir, packPath, n)
				if n > len(steps) {
					assertCrashState(t, dir, versions, mB.Root(), mB.Root(), what)
				} else {
					assertCrashState(t, dir, versions, mA.Root(), mB.Root(), what)
				}

				// The next run recovers and completes.
				served, err := os.Readlink(filepath.Join(dir, currentLink))
				mustDo(t, err)
				r, err := Open(dir, 1)
				if err != nil {
					t.Fatalf("%s: Open: %v", what, err)
				}
				assertStagingEmpty(t, r)
				if _, err := os.Lstat(filepath.Join(dir, currentTmp)); !errors.Is(err, fs.ErrNotExist) {
					t.Fatalf("%s: current.tmp survived Open: %v", what, err)
				}
				if again, _ := os.Readlink(filepath.Join(dir, currentLink)); again != served {
					t.Fatalf("%s: Open moved current from %s to %s", what, served, again)
				}
				assertHeldIntact(t, r, versions, what)
				if _, err := r.Apply(ctx, reader(t, deltaAB)); err != nil {
					t.Fatalf("%s: apply after recovery: %v", what, err)
				}
				assertServes(t, r, mB)
				assertStagingEmpty(t, r)
				assertHeldIntact(t, r, versions, what)
			})
		}
	})
	t.Logf("%d crash points in %s", len(points), time.Since(start).Round(time.Millisecond))
}

// crashPoints picks the steps to kill at (1-based), plus len(steps)+1, a
// run that completes: every step when long, else every step from the
// rename of the built tree on (install and prune, where the served version
// changes) and the others spread evenly, crashDefaultPoints in all.
func crashPoints(steps []string, long bool) []int {
	total := len(steps)
	set := map[int]bool{total + 1: true}
	if long || total+1 <= crashDefaultPoints {
		for n := 1; n <= total; n++ {
			set[n] = true
		}
		return slices.Sorted(maps.Keys(set))
	}
	for i, s := range steps {
		if strings.HasPrefix(s, "rename staging") {
			for n := i + 1; n <= total; n++ {
				set[n] = true
			}
			break
		}
	}
	for k := crashDefaultPoints - len(set); len(set) < crashDefaultPoints; k++ {
		for i := range k {
			set[1+i*(total-1)/max(k-1, 1)] = true
		}
	}
	return slices.Sorted(maps.Keys(set))
}

// runCrashChild runs this test binary as the child applying packPath to
// dir, killed before step at (0: never). It checks that the child died of
// SIGKILL, or completed when at is 0 or past the last step, and returns
// its output.
func runCrashChild(t *testing.T, dir, packPath string, at int) string {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestApplyCrash$", "-test.count=1")
	cmd.Env = append(os.Environ(),
		crashChildEnv+"=1",
		crashDirEnv+"="+dir,
		crashPackEnv+"="+packPath,
		crashAtEnv+"="+strconv.Itoa(at),
	)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		if !strings.Contains(out.String(), "APPLIED") {
			t.Fatalf("child (kill at %d) exited 0 without applying:\n%s", at, out.String())
		}
	case errors.As(err, &exit):
		ws, ok := exit.Sys().(syscall.WaitStatus)
		if !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
			t.Fatalf("child (kill at %d) ended with %v, want SIGKILL:\n%s", at, err, out.String())
		}
		if at == 0 {
			t.Fatalf("child killed although told not to:\n%s", out.String())
		}
		return out.String()
	default:
		t.Fatalf("run child: %v", err)
	}
	return out.String()
}

// crashChild is the child process: it applies the pack and dies at the
// step it was told to.
func crashChild(t *testing.T) {
	at, err := strconv.Atoi(os.Getenv(crashAtEnv))
	if err != nil {
		t.Fatalf("%s: %v", crashAtEnv, err)
	}
	r, err := Open(os.Getenv(crashDirEnv), 1)
	mustDo(t, err)
	f, err := os.Open(os.Getenv(crashPackEnv))
	mustDo(t, err)
	defer f.Close()
	pr, err := pack.NewReader(f, pack.Limits{})
	mustDo(t, err)
	var n atomic.Int64
	r.SetStepHook(func(step string) {
		i := n.Add(1)
		switch {
		case at == 0:
			// One write per line: lines from parallel fsync workers do
			// not interleave.
			fmt.Fprintf(os.Stdout, "STEP\t%s\n", step)
		case i == int64(at):
			// SIGKILL to the whole process is acted on before kill(2)
			// returns to user space: nothing of Apply runs after it.
			_ = syscall.Kill(os.Getpid(), syscall.SIGKILL) // cannot fail for our own pid
			select {}
		}
	})
	if _, err := r.Apply(context.Background(), pr); err != nil {
		t.Fatalf("child apply: %v", err)
	}
	fmt.Fprintln(os.Stdout, "APPLIED") // the parent reads the child's stdout
}

// assertCrashState checks, before any recovery, that current serves
// exactly old or exactly new, with its stored manifest.
func assertCrashState(t *testing.T, dir string, versions map[string]*tree.Manifest, old, new, what string) {
	t.Helper()
	target, err := os.Readlink(filepath.Join(dir, currentLink))
	if err != nil {
		t.Fatalf("%s: current: %v", what, err)
	}
	root, _ := strings.CutPrefix(target, versionsDir+"/")
	if root != old && root != new {
		t.Fatalf("%s: current -> %q, neither old %s nor new %s", what, target, old, new)
	}
	got, err := tree.Scan(context.Background(), filepath.Join(dir, currentLink))
	if err != nil {
		t.Fatalf("%s: scan current: %v", what, err)
	}
	if want := versions[root]; !slices.EqualFunc(got.Entries, want.Entries, func(a, b tree.Entry) bool { return a.Equivalent(&b) }) {
		t.Fatalf("%s: current -> %s serves another tree: %s", what, root, firstDifference(got, want))
	}
	f, err := os.Open(filepath.Join(dir, manifestsDir, root+".json"))
	if err != nil {
		t.Fatalf("%s: manifest of the served version: %v", what, err)
	}
	defer f.Close()
	stored, err := tree.Decode(f)
	if err != nil || stored.Root() != root {
		t.Fatalf("%s: stored manifest of %s: %v", what, root, err)
	}
}

// assertHeldIntact checks that versions/ and manifests/ name the same
// versions and that each held version is exactly its manifest.
func assertHeldIntact(t *testing.T, r *Replica, versions map[string]*tree.Manifest, what string) {
	t.Helper()
	held, err := r.versions()
	mustDo(t, err)
	entries, err := os.ReadDir(r.path(manifestsDir))
	mustDo(t, err)
	var manifests []string
	for _, e := range entries {
		manifests = append(manifests, strings.TrimSuffix(e.Name(), ".json"))
	}
	if !slices.Equal(held, manifests) {
		t.Fatalf("%s: versions %v but manifests %v", what, held, manifests)
	}
	for _, root := range held {
		want, ok := versions[root]
		if !ok {
			t.Fatalf("%s: unknown version %s held", what, root)
		}
		if got := scan(t, r.path(versionsDir, root)); !slices.EqualFunc(got.Entries, want.Entries, func(a, b tree.Entry) bool { return a.Equivalent(&b) }) {
			t.Fatalf("%s: held version %s changed: %s", what, root, firstDifference(got, want))
		}
	}
}

// crashTreeZ is a small, older version that the replica holds and the
// apply of B prunes.
func crashTreeZ(t *testing.T, work string) string {
	dir := filepath.Join(work, "z")
	writeFiles(t, dir, map[string][]byte{
		"README.md":      []byte("version Z\n"),
		"old/retired.go": []byte("package old\n"),
	})
	return dir
}

// crashTreeA is the served version: nested directories, files from 0
// bytes to 3 MiB, identical files, a hard link group, a symlink, an
// executable.
func crashTreeA(t *testing.T, work string) string {
	dir := filepath.Join(work, "a")
	writeFiles(t, dir, map[string][]byte{
		"README.md":           []byte("# demo tree\n"),
		"bin/tool":            []byte("#!/bin/sh\necho tool\n"),
		"data/big.bin":        randomBytes(11, 3<<20),
		"data/medium.bin":     randomBytes(13, 300_000),
		"data/empty":          nil,
		"docs/guide.txt":      []byte("how to use it, version A\n"),
		"docs/old-name.txt":   []byte("a file that gets renamed\n"),
		"docs/obsolete.txt":   []byte("a file that gets deleted\n"),
		"src/app/main.go":     []byte("package main\n\nfunc main() {}\n"),
		"src/app/util.go":     []byte("package main\n\nfunc util() {}\n"),
		"src/app/dup.go":      []byte("package main\n\nfunc util() {}\n"),
		"src/lib/x/y/deep.go": []byte("package y\n"),
	})
	mustDo(t, os.Chmod(filepath.Join(dir, "bin/tool"), 0o755))
	mustDo(t, os.Symlink("docs/guide.txt", filepath.Join(dir, "latest")))
	mustDo(t, os.Link(filepath.Join(dir, "README.md"), filepath.Join(dir, "docs/readme-link.md")))
	return dir
}

// crashTreeB copies A and changes it: a modified 3.5 MiB file, a mode
// change, an mtime change, a modified, a renamed and a deleted file, a new
// directory, a retargeted symlink, a directory mode change and a new hard
// link group; the other files, and A's group, are unchanged and get
// hard-linked.
func crashTreeB(t *testing.T, work, a string) string {
	dir := filepath.Join(work, "b")
	copyTree(t, a, dir)
	writeFiles(t, dir, map[string][]byte{
		"data/big.bin":        randomBytes(12, 3<<20+1<<19),
		"docs/guide.txt":      []byte("how to use it, version B\n"),
		"new/dir/file.txt":    []byte("new in B\n"),
		"new/notes.md":        []byte("notes\n"),
		"src/lib/x/y/more.go": []byte("package y\n\nvar More = 1\n"),
	})
	mustDo(t, os.Rename(filepath.Join(dir, "docs/old-name.txt"), filepath.Join(dir, "docs/new-name.txt")))
	mustDo(t, os.Remove(filepath.Join(dir, "docs/obsolete.txt")))
	mustDo(t, os.Chmod(filepath.Join(dir, "bin/tool"), 0o700))
	late := mtime.Add(time.Hour)
	mustDo(t, os.Chtimes(filepath.Join(dir, "src/app/main.go"), late, late))
	mustDo(t, os.Remove(filepath.Join(dir, "latest")))
	mustDo(t, os.Symlink("docs/new-name.txt", filepath.Join(dir, "latest")))
	mustDo(t, os.Chmod(filepath.Join(dir, "docs"), 0o750))
	// A new group whose leader (the smallest path) is the link, not the
	// first file.
	mustDo(t, os.Link(filepath.Join(dir, "new/notes.md"), filepath.Join(dir, "new/dir/notes-link.md")))
	return dir
}
