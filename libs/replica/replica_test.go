package replica

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pulpdist/pulpdist/libs/pack"
	"github.com/pulpdist/pulpdist/libs/pack/packtest"
	"github.com/pulpdist/pulpdist/libs/tree"
)

var mtime = time.Unix(1_700_000_000, 42)

// writeFiles creates files (path → content) under dir with mode 0644 and
// a fixed mtime.
func writeFiles(t *testing.T, dir string, files map[string][]byte) {
	t.Helper()
	for p, c := range files {
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, c, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(full, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
}

func randomBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// v1 writes the first version of the test tree.
func v1(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "v1")
	writeFiles(t, dir, map[string][]byte{
		"a.txt":      []byte("alpha"),
		"sub/b.txt":  []byte("bravo"),
		"sub/c.txt":  []byte("charlie"),
		"sub/a-copy": []byte("alpha"),
		"bin/run":    []byte("#!/bin/sh\nexit 0\n"),
		"data/big":   randomBytes(1, 300_000),
		"data/twice": []byte("same content twice"),
		"data/again": []byte("same content twice"),
	})
	mustDo(t, os.Chmod(filepath.Join(dir, "bin/run"), 0o755))
	mustDo(t, os.Symlink("a.txt", filepath.Join(dir, "link")))
	mustDo(t, os.Mkdir(filepath.Join(dir, "emptydir"), 0o750))
	mustDo(t, os.Chmod(filepath.Join(dir, "sub"), 0o711))
	return dir
}

// v2 copies v1 and changes it in every way a version can change.
func v2(t *testing.T, from string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "v2")
	copyTree(t, from, dir)
	writeFiles(t, dir, map[string][]byte{
		"sub/b.txt":    []byte("BRAVO, modified"),
		"new/file.txt": []byte("a new file"),
		"late-alpha":   []byte("alpha"), // known content, other mtime below
	})
	late := mtime.Add(time.Hour)
	mustDo(t, os.Chtimes(filepath.Join(dir, "late-alpha"), late, late))
	mustDo(t, os.Remove(filepath.Join(dir, "sub/c.txt")))
	mustDo(t, os.Chmod(filepath.Join(dir, "bin/run"), 0o700))
	mustDo(t, os.Remove(filepath.Join(dir, "link")))
	mustDo(t, os.Symlink("sub/b.txt", filepath.Join(dir, "link")))
	mustDo(t, os.Remove(filepath.Join(dir, "emptydir")))
	mustDo(t, os.Mkdir(filepath.Join(dir, "otherdir"), 0o700))
	mustDo(t, os.Chmod(filepath.Join(dir, "sub"), 0o755))
	return dir
}

func mustDo(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// copyTree copies src to dst with modes, mtimes, symlinks and the hard
// links between files of src.
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	copied := map[[2]uint64]string{} // device and inode → path in dst
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		info, err := os.Lstat(p)
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			if err := os.MkdirAll(target, 0o700); err != nil {
				return err
			}
			return os.Chmod(target, info.Mode().Perm())
		case info.Mode()&fs.ModeSymlink != 0:
			l, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(l, target)
		default:
			st := info.Sys().(*syscall.Stat_t)
			id := [2]uint64{uint64(st.Dev), uint64(st.Ino)} //nolint:unconvert // narrower on some platforms
			if first, ok := copied[id]; ok {
				return os.Link(first, target)
			}
			copied[id] = target
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			if err := os.WriteFile(target, b, 0o600); err != nil {
				return err
			}
			if err := os.Chmod(target, info.Mode().Perm()); err != nil {
				return err
			}
			return os.Chtimes(target, info.ModTime(), info.ModTime())
		}
	})
	mustDo(t, err)
}

func scan(t *testing.T, dir string) *tree.Manifest {
	t.Helper()
	m, err := tree.Scan(context.Background(), dir)
	mustDo(t, err)
	return m
}

// contentPaths maps every content hash packBytes has seen to a file
// holding it, so that a later pack finds its base's content.
var contentPaths sync.Map

// packBytes builds the pack from base (nil: empty base) to the tree in
// dir. Base content is found among the trees packBytes scanned before.
// With omit, the pack carries no content at all (parts and segments
// dropped) and so lacks, among others, the hashes in omit.
func packBytes(t *testing.T, dir string, base *tree.Manifest, omit ...string) ([]byte, *tree.Manifest) {
	t.Helper()
	m := scan(t, dir)
	here := map[string]string{}
	for _, e := range m.Entries {
		if e.Kind == tree.KindFile {
			here[e.Hash] = filepath.Join(dir, e.Path)
			contentPaths.Store(e.Hash, here[e.Hash])
		}
	}
	open := func(_ context.Context, hash string) (io.ReadCloser, error) {
		if p, ok := here[hash]; ok {
			return os.Open(p)
		}
		p, ok := contentPaths.Load(hash)
		if !ok {
			return nil, fmt.Errorf("no content %s", hash)
		}
		return os.Open(p.(string))
	}
	var buf bytes.Buffer
	_, err := pack.Build(context.Background(), &buf, pack.Options{Tree: "demo", From: base, To: m, TempDir: t.TempDir()}, open)
	mustDo(t, err)
	if len(omit) == 0 {
		return buf.Bytes(), m
	}
	h, _ := packtest.Split(t, buf.Bytes())
	h.Parts, h.Segments = []pack.Part{}, []pack.Segment{}
	return packtest.Raw(t, h, nil), m
}

func reader(t *testing.T, data []byte) *pack.Reader {
	t.Helper()
	r, err := pack.NewReader(bytes.NewReader(data), pack.Limits{})
	mustDo(t, err)
	return r
}

func inodeOf(t *testing.T, p string) uint64 {
	t.Helper()
	info, err := os.Lstat(p)
	mustDo(t, err)
	return info.Sys().(*syscall.Stat_t).Ino
}

// assertServes checks that current serves exactly want.
func assertServes(t *testing.T, r *Replica, want *tree.Manifest) {
	t.Helper()
	cur, err := r.Current()
	mustDo(t, err)
	if cur != want.Root() {
		t.Fatalf("current = %s, want %s", cur, want.Root())
	}
	got := scan(t, r.CurrentPath())
	if !slices.EqualFunc(got.Entries, want.Entries, func(a, b tree.Entry) bool { return a.Equivalent(&b) }) {
		t.Fatalf("served tree differs: %s", firstDifference(got, want))
	}
	stored, err := r.Manifest(cur)
	mustDo(t, err)
	if stored.Root() != want.Root() {
		t.Fatal("stored manifest differs")
	}
}

// snapshot describes the replica directory outside staging/, to check
// that a failed Apply changed nothing.
func snapshot(t *testing.T, r *Replica) string {
	t.Helper()
	var b strings.Builder
	cur, err := r.Current()
	mustDo(t, err)
	fmt.Fprintf(&b, "current=%s\n", cur)
	for _, sub := range []string{versionsDir, manifestsDir} {
		entries, err := os.ReadDir(r.path(sub))
		mustDo(t, err)
		for _, e := range entries {
			fmt.Fprintf(&b, "%s/%s\n", sub, e.Name())
			if sub == versionsDir {
				fmt.Fprintf(&b, "  root=%s\n", scan(t, r.path(sub, e.Name())).Root())
			}
		}
	}
	return b.String()
}

func assertStagingEmpty(t *testing.T, r *Replica) {
	t.Helper()
	entries, err := os.ReadDir(r.path(stagingDir))
	mustDo(t, err)
	if len(entries) != 0 {
		t.Fatalf("staging not empty: %v", entries)
	}
}

func TestApplyFullThenDelta(t *testing.T) {
	ctx := context.Background()
	src1 := v1(t)
	full, m1 := packBytes(t, src1, nil)
	r, err := Open(t.TempDir(), 1)
	mustDo(t, err)
	if cur, err := r.Current(); err != nil || cur != "" {
		t.Fatalf("new replica current = %q, %v", cur, err)
	}

	st, err := r.Apply(ctx, reader(t, full))
	mustDo(t, err)
	assertServes(t, r, m1)
	// 8 files, 6 distinct contents: "again" is a copy of "twice" and
	// "sub/a-copy" of "a.txt", separate files as at the origin.
	if st.FilesWritten != 8 || st.FilesLinked != 0 || st.HardLinks != 0 || st.BytesWritten != 300_000+int64(len("alpha")*2+len("bravo")+len("charlie")+len("#!/bin/sh\nexit 0\n")+2*len("same content twice")) {
		t.Fatalf("first apply stats %+v", st)
	}
	v1dir := r.path(versionsDir, m1.Root())
	if inodeOf(t, filepath.Join(v1dir, "data/twice")) == inodeOf(t, filepath.Join(v1dir, "data/again")) ||
		inodeOf(t, filepath.Join(v1dir, "a.txt")) == inodeOf(t, filepath.Join(v1dir, "sub/a-copy")) {
		t.Error("identical files the origin keeps apart share an inode")
	}
	assertStagingEmpty(t, r)

	src2 := v2(t, src1)
	delta, m2 := packBytes(t, src2, m1)
	st, err = r.Apply(ctx, reader(t, delta))
	mustDo(t, err)
	assertServes(t, r, m2)
	assertStagingEmpty(t, r)
	// Written: sub/b.txt and new/file.txt from the pack; bin/run (mode
	// change) and late-alpha (mtime change) copied from the base.
	// Linked: the five unchanged files, each to its own base file.
	if st.FilesWritten != 4 || st.FilesLinked != 5 || st.BytesWritten != int64(len("BRAVO, modified")+len("a new file")+len("#!/bin/sh\nexit 0\n")+len("alpha")) {
		t.Fatalf("delta stats %+v", st)
	}
	v2dir := r.path(versionsDir, m2.Root())
	for _, p := range []string{"a.txt", "sub/a-copy", "data/big", "data/twice", "data/again"} {
		if inodeOf(t, filepath.Join(v1dir, p)) != inodeOf(t, filepath.Join(v2dir, p)) {
			t.Errorf("unchanged %s is not a hard link of the previous version", p)
		}
	}
	for _, p := range []string{"bin/run", "late-alpha"} {
		if inodeOf(t, filepath.Join(v2dir, p)) == inodeOf(t, filepath.Join(v1dir, "a.txt")) ||
			(p == "bin/run" && inodeOf(t, filepath.Join(v1dir, p)) == inodeOf(t, filepath.Join(v2dir, p))) {
			t.Errorf("%s shares an inode although its mode or mtime changed", p)
		}
	}
	// The previous version is held, untouched.
	if got := scan(t, v1dir).Root(); got != m1.Root() {
		t.Fatalf("previous version changed: root %s", got)
	}

	// Applying the current version again does nothing, not even reading.
	before := snapshot(t, r)
	st, err = r.Apply(ctx, reader(t, delta))
	if err != nil || st != (Stats{}) {
		t.Fatalf("re-apply = %+v, %v", st, err)
	}
	if after := snapshot(t, r); after != before {
		t.Fatalf("re-apply changed the replica:\n%s\n%s", before, after)
	}
}

func TestApplyBackToHeldVersion(t *testing.T) {
	ctx := context.Background()
	src1 := v1(t)
	src2 := v2(t, src1)
	full1, m1 := packBytes(t, src1, nil)
	r, err := Open(t.TempDir(), 3)
	mustDo(t, err)
	_, err = r.Apply(ctx, reader(t, full1))
	mustDo(t, err)
	delta, m2 := packBytes(t, src2, m1)
	_, err = r.Apply(ctx, reader(t, delta))
	mustDo(t, err)
	back, _ := packBytes(t, src1, m2)
	_, err = r.Apply(ctx, reader(t, back))
	mustDo(t, err)
	assertServes(t, r, m1)
	assertStagingEmpty(t, r)
	if got := scan(t, r.path(versionsDir, m2.Root())).Root(); got != m2.Root() {
		t.Fatal("held version changed")
	}
}

func TestApplyWrongBase(t *testing.T) {
	ctx := context.Background()
	src1 := v1(t)
	src2 := v2(t, src1)
	full1, m1 := packBytes(t, src1, nil)
	delta, _ := packBytes(t, src2, m1)

	// An empty replica has no base for a delta.
	empty, err := Open(t.TempDir(), 1)
	mustDo(t, err)
	if _, err := empty.Apply(ctx, reader(t, delta)); !errors.Is(err, ErrBaseMismatch) {
		t.Fatalf("delta on empty replica: %v", err)
	}
	if cur, _ := empty.Current(); cur != "" {
		t.Fatal("current set")
	}
	assertStagingEmpty(t, empty)

	// A replica at another version refuses it too.
	other := filepath.Join(t.TempDir(), "other")
	writeFiles(t, other, map[string][]byte{"x": []byte("x")})
	fullOther, _ := packBytes(t, other, nil)
	r, err := Open(t.TempDir(), 1)
	mustDo(t, err)
	_, err = r.Apply(ctx, reader(t, fullOther))
	mustDo(t, err)
	before := snapshot(t, r)
	if _, err := r.Apply(ctx, reader(t, delta)); !errors.Is(err, ErrBaseMismatch) {
		t.Fatalf("delta on other version: %v", err)
	}
	if after := snapshot(t, r); after != before {
		t.Fatalf("replica changed:\n%s\n%s", before, after)
	}
	// A full pack has no base to mismatch.
	_, err = r.Apply(ctx, reader(t, full1))
	mustDo(t, err)
	assertServes(t, r, m1)
}

func TestApplyFailuresChangeNothing(t *testing.T) {
	src1 := v1(t)
	src2 := v2(t, src1)
	full1, m1 := packBytes(t, src1, nil)
	delta, m2 := packBytes(t, src2, m1)
	newHash := ""
	for _, e := range m2.Entries {
		if e.Path == "new/file.txt" {
			newHash = e.Hash
		}
	}
	missing, _ := packBytes(t, src2, m1, newHash)
	// data/big is incompressible and, as the last part of a full pack,
	// ends the stream: a byte flipped near the end corrupts its content.
	srcBig := filepath.Join(t.TempDir(), "big")
	writeFiles(t, srcBig, map[string][]byte{"a": []byte("a"), "z": randomBytes(9, 100_000)})
	corrupt, _ := packBytes(t, srcBig, nil)
	corrupt[len(corrupt)-5000] ^= 0xff

	tests := []struct {
		name  string
		data  []byte
		setup func(t *testing.T, r *Replica)
		ctx   func() context.Context
		want  []error
	}{
		{name: "corrupted part", data: corrupt, want: []error{pack.ErrHashMismatch}},
		{name: "missing content", data: missing, want: []error{ErrMissingContent, pack.ErrFormat}},
		{name: "tampered base", data: delta, setup: func(t *testing.T, r *Replica) {
			// Someone changed a held file in place (same size and mtime):
			// the hard link carries the damage, verification catches it.
			p := r.path(versionsDir, m1.Root(), "data/twice")
			mustDo(t, os.WriteFile(p, []byte("SAME content twice"), 0o644))
			mustDo(t, os.Chtimes(p, mtime, mtime))
		}, want: []error{ErrVerify}},
		{name: "cancelled", data: delta, ctx: func() context.Context {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			return ctx
		}, want: []error{context.Canceled}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := Open(t.TempDir(), 1)
			mustDo(t, err)
			_, err = r.Apply(context.Background(), reader(t, full1))
			mustDo(t, err)
			if tt.setup != nil {
				tt.setup(t, r)
			}
			before := snapshot(t, r)
			ctx := context.Background()
			if tt.ctx != nil {
				ctx = tt.ctx()
			}
			_, err = r.Apply(ctx, reader(t, tt.data))
			for _, want := range tt.want {
				if !errors.Is(err, want) {
					t.Fatalf("error %v, want %v", err, want)
				}
			}
			if after := snapshot(t, r); after != before {
				t.Fatalf("replica changed:\n%s\n%s", before, after)
			}
			assertStagingEmpty(t, r)
		})
	}
}

func TestEscapingManifestIsRefused(t *testing.T) {
	hash := strings.Repeat("ab", 32)
	manifest := `{"format":1,"entries":[{"path":"../escape","kind":"file","mode":420,"size":1,"mtime":1,"hash":"` + hash + `"}]}`
	if _, err := tree.Decode(strings.NewReader(manifest)); !errors.Is(err, tree.ErrUnsafePath) {
		t.Fatalf("tree.Decode: %v", err)
	}
	js := `{"format":2,"tree":"demo","from":"","to":"` + hash + `","set":[{"path":"../escape","kind":"file","mode":420,"size":1,"mtime":1,"hash":"` + hash + `"}],"remove":[],"segments":[{"size":1}],"parts":[{"hash":"` + hash + `","size":1}]}`
	data := packtest.RawJSON(t, []byte(js), nil)
	if _, err := pack.NewReader(bytes.NewReader(data), pack.Limits{}); !errors.Is(err, pack.ErrFormat) || !errors.Is(err, tree.ErrUnsafePath) {
		t.Fatalf("pack.NewReader: %v", err)
	}
}

func TestPruneKeepsPreviousVersions(t *testing.T) {
	ctx := context.Background()
	for _, keep := range []int{0, 1, 2} {
		t.Run(fmt.Sprintf("keep=%d", keep), func(t *testing.T) {
			r, err := Open(t.TempDir(), keep)
			mustDo(t, err)
			want := max(keep, 1)
			var roots []string
			var prev *tree.Manifest
			for i := range 5 {
				src := filepath.Join(t.TempDir(), "src")
				writeFiles(t, src, map[string][]byte{
					"shared":  []byte("shared by all versions"),
					"version": fmt.Appendf(nil, "version %d", i),
				})
				data, m := packBytes(t, src, prev)
				_, err := r.Apply(ctx, reader(t, data))
				mustDo(t, err)
				roots = append(roots, m.Root())
				prev = m
				held, err := r.versions()
				mustDo(t, err)
				slices.Sort(held)
				expect := slices.Clone(roots[max(0, len(roots)-want-1):])
				slices.Sort(expect)
				if !slices.Equal(held, expect) {
					t.Fatalf("after version %d: held %v, want %v", i, held, expect)
				}
				for _, root := range held {
					if _, err := r.Manifest(root); err != nil {
						t.Fatalf("held version without manifest: %v", err)
					}
				}
				assertStagingEmpty(t, r)
			}
		})
	}
}

func TestOpenRecovers(t *testing.T) {
	dir := t.TempDir()
	r, err := Open(dir, 1)
	mustDo(t, err)
	src := v1(t)
	data, m := packBytes(t, src, nil)
	_, err = r.Apply(context.Background(), reader(t, data))
	mustDo(t, err)
	// Leftovers of a crash: a half-built tree, a stray symlink, a version
	// renamed into place without its manifest, a manifest temp file, and a
	// read-only directory in staging.
	half := filepath.Join(dir, stagingDir, m.Root()+".123")
	mustDo(t, os.MkdirAll(filepath.Join(half, "ro/deep"), 0o755))
	mustDo(t, os.Chmod(filepath.Join(half, "ro"), 0o500))
	mustDo(t, os.Symlink("versions/x", filepath.Join(dir, currentTmp)))
	orphan := filepath.Join(dir, versionsDir, strings.Repeat("0", 64))
	mustDo(t, os.MkdirAll(orphan, 0o755))
	mustDo(t, os.WriteFile(filepath.Join(dir, manifestsDir, ".x.json.tmp123"), nil, 0o644))

	r, err = Open(dir, 1)
	mustDo(t, err)
	assertStagingEmpty(t, r)
	assertServes(t, r, m)
	for _, p := range []string{filepath.Join(dir, currentTmp), orphan, filepath.Join(dir, manifestsDir, ".x.json.tmp123")} {
		if _, err := os.Lstat(p); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s survived Open: %v", p, err)
		}
	}
}

func TestOpenAndManifestErrors(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	mustDo(t, os.WriteFile(file, nil, 0o644))
	if _, err := Open(file, 1); err == nil {
		t.Fatal("Open on a file succeeded")
	}
	dir := t.TempDir()
	mustDo(t, os.Symlink("/etc", filepath.Join(dir, currentLink)))
	if _, err := Open(dir, 1); err == nil || !strings.Contains(err.Error(), "unexpected link target") {
		t.Fatalf("Open with a foreign current: %v", err)
	}
	r, err := Open(t.TempDir(), 1)
	mustDo(t, err)
	for _, root := range []string{"", "../../etc/passwd", strings.Repeat("A", 64)} {
		if _, err := r.Manifest(root); err == nil {
			t.Fatalf("Manifest(%q) succeeded", root)
		}
	}
	if _, err := r.Manifest(strings.Repeat("a", 64)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Manifest of an unknown root: %v", err)
	}
}

// TestReopenKeepsOldVersions: opening a replica (as a restarted agent does
// to read what it serves) with a smaller keep prunes nothing.
func TestReopenKeepsOldVersions(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	r, err := Open(dir, 3)
	mustDo(t, err)
	var prev *tree.Manifest
	for i := range 4 {
		src := filepath.Join(t.TempDir(), "src")
		writeFiles(t, src, map[string][]byte{"version": fmt.Appendf(nil, "version %d", i)})
		data, m := packBytes(t, src, prev)
		_, err := r.Apply(ctx, reader(t, data))
		mustDo(t, err)
		prev = m
	}
	before, err := r.versions()
	mustDo(t, err)
	if len(before) != 4 {
		t.Fatalf("held %d versions, want 4 (current + keep 3)", len(before))
	}
	again, err := Open(dir, 1)
	mustDo(t, err)
	after, err := again.versions()
	mustDo(t, err)
	if !slices.Equal(after, before) {
		t.Fatalf("reopening with keep 1 changed the held versions: %v → %v", before, after)
	}
}

// TestApplySyncs checks how an apply makes the staged version durable: on
// Linux one syncfs of the filesystem, elsewhere (and with fsyncEach) an
// fsync of each file written and each directory; both serve the version.
func TestApplySyncs(t *testing.T) {
	ctx := context.Background()
	src1 := v1(t)
	full, m1 := packBytes(t, src1, nil)
	delta, m2 := packBytes(t, v2(t, src1), m1)
	for _, each := range []bool{false, true} {
		t.Run(fmt.Sprintf("fsyncEach=%v", each), func(t *testing.T) {
			r, err := Open(t.TempDir(), 1)
			mustDo(t, err)
			_, err = r.Apply(ctx, reader(t, full))
			mustDo(t, err)
			r.fsyncEach = each
			var mu sync.Mutex // the per-file fsyncs report their steps in parallel
			var steps []string
			r.SetStepHook(func(s string) {
				mu.Lock()
				defer mu.Unlock()
				steps = append(steps, s)
			})
			_, err = r.Apply(ctx, reader(t, delta))
			mustDo(t, err)
			assertServes(t, r, m2)
			fsyncs, syncfs := 0, 0
			for _, s := range steps {
				switch {
				case s == "sync filesystem":
					syncfs++
				case strings.HasPrefix(s, "fsync ") && !strings.HasPrefix(s, "fsync versions") &&
					!strings.HasPrefix(s, "fsync manifest") && s != "fsync replica dir":
					fsyncs++ // a staged file or directory
				}
			}
			wantFS := runtime.GOOS == "linux" && !each
			if wantFS && (syncfs != 1 || fsyncs != 0) || !wantFS && (syncfs != 0 || fsyncs < 4) {
				t.Fatalf("%d syncfs, %d staged fsyncs (steps %q)", syncfs, fsyncs, steps)
			}
		})
	}
}
