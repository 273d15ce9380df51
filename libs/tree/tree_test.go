package tree

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"syscall"
	"testing"
	"testing/iotest"
	"time"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/")

// hashOf returns the hex BLAKE3 of s.
func hashOf(t testing.TB, s string) string {
	t.Helper()
	h, _, err := HashReader(strings.NewReader(s))
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// writeSample creates a small tree with files, nested and empty dirs,
// symlinks and an executable under dir.
func writeSample(t testing.TB, dir string) {
	t.Helper()
	mtime := time.Unix(1_700_000_000, 123456789)
	files := map[string]string{
		"a.txt":         "alpha",
		"a-b":           "dash",
		"sub/b.txt":     "bravo",
		"sub/deep/c.sh": "#!/bin/sh\necho charlie\n",
		"copy.txt":      "alpha",
		"empty":         "",
	}
	for _, d := range []string{"sub", "sub/deep", "emptydir"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for p, c := range files {
		full := filepath.Join(dir, p)
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(full, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(filepath.Join(dir, "sub/deep/c.sh"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("a.txt", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../../outside/nowhere", filepath.Join(dir, "sub/dangling")); err != nil {
		t.Fatal(err)
	}
}

// copyTree copies src to dst preserving modes, mtimes and symlinks.
func copyTree(t testing.TB, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		info, err := os.Lstat(p)
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			return os.MkdirAll(target, info.Mode().Perm())
		case info.Mode()&fs.ModeSymlink != 0:
			l, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(l, target)
		default:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			if err := os.WriteFile(target, b, info.Mode().Perm()); err != nil {
				return err
			}
			if err := os.Chmod(target, info.Mode().Perm()); err != nil {
				return err
			}
			return os.Chtimes(target, info.ModTime(), info.ModTime())
		}
	})
	if err != nil {
		t.Fatal(err)
	}
}

func scan(t testing.TB, dir string) *Manifest {
	t.Helper()
	m, err := Scan(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Validate(); err != nil {
		t.Fatalf("scanned manifest invalid: %v", err)
	}
	return m
}

func TestScanRecordsTree(t *testing.T) {
	dir := t.TempDir()
	writeSample(t, dir)
	m := scan(t, dir)
	var paths []string
	for _, e := range m.Entries {
		paths = append(paths, e.Path)
	}
	want := "a-b a.txt copy.txt empty emptydir link sub sub/b.txt sub/dangling sub/deep sub/deep/c.sh"
	if got := strings.Join(paths, " "); got != want {
		t.Fatalf("paths:\n got %s\nwant %s", got, want)
	}
	byPath := map[string]Entry{}
	for _, e := range m.Entries {
		byPath[e.Path] = e
	}
	if e := byPath["sub/deep/c.sh"]; e.Kind != KindFile || e.Mode != 0o755 || e.Size != 23 || e.MTime != 1_700_000_000_123456789 || e.Hash != hashOf(t, "#!/bin/sh\necho charlie\n") {
		t.Errorf("c.sh = %+v", e)
	}
	if e := byPath["sub/dangling"]; e.Kind != KindSymlink || e.Target != "../../outside/nowhere" || e.Mode != 0 {
		t.Errorf("dangling = %+v", e)
	}
	if e := byPath["emptydir"]; e.Kind != KindDir || e.Mode != 0o755 {
		t.Errorf("emptydir = %+v", e)
	}
	files, size := m.Totals()
	if files != 6 || size != int64(len("alpha")*2+len("dash")+len("bravo")+23) {
		t.Errorf("Totals = %d files, %d bytes", files, size)
	}
}

func TestRootDeterministic(t *testing.T) {
	a := filepath.Join(t.TempDir(), "one")
	writeSample(t, a)
	b := filepath.Join(t.TempDir(), "elsewhere", "two")
	copyTree(t, a, b)
	first := scan(t, a).Root()
	if again := scan(t, a).Root(); again != first {
		t.Fatalf("second scan root %s != %s", again, first)
	}
	if other := scan(t, b).Root(); other != first {
		t.Fatalf("copy root %s != %s", other, first)
	}
	// Through a symlink to the directory, as a replica's "current".
	link := filepath.Join(t.TempDir(), "current")
	if err := os.Symlink(a, link); err != nil {
		t.Fatal(err)
	}
	if viaLink := scan(t, link).Root(); viaLink != first {
		t.Fatalf("root through symlink %s != %s", viaLink, first)
	}
	if !IsHash(first) {
		t.Fatalf("root %q is not a hash", first)
	}
}

func TestRootChangesOnEveryChange(t *testing.T) {
	tests := []struct {
		name   string
		change func(t *testing.T, dir string) error
	}{
		{"content byte", func(_ *testing.T, d string) error {
			f := filepath.Join(d, "sub/b.txt")
			info, err := os.Stat(f)
			if err != nil {
				return err
			}
			if err := os.WriteFile(f, []byte("bravO"), 0o644); err != nil {
				return err
			}
			return os.Chtimes(f, info.ModTime(), info.ModTime())
		}},
		{"rename file", func(_ *testing.T, d string) error {
			return os.Rename(filepath.Join(d, "a.txt"), filepath.Join(d, "a2.txt"))
		}},
		{"rename dir", func(_ *testing.T, d string) error {
			return os.Rename(filepath.Join(d, "emptydir"), filepath.Join(d, "emptier"))
		}},
		{"file mode", func(_ *testing.T, d string) error { return os.Chmod(filepath.Join(d, "a.txt"), 0o600) }},
		{"dir mode", func(_ *testing.T, d string) error { return os.Chmod(filepath.Join(d, "sub"), 0o700) }},
		{"mtime", func(_ *testing.T, d string) error {
			ts := time.Unix(1_700_000_000, 123456790)
			return os.Chtimes(filepath.Join(d, "a.txt"), ts, ts)
		}},
		{"symlink target", func(_ *testing.T, d string) error {
			l := filepath.Join(d, "link")
			if err := os.Remove(l); err != nil {
				return err
			}
			return os.Symlink("a-b", l)
		}},
		{"file becomes symlink", func(_ *testing.T, d string) error {
			l := filepath.Join(d, "empty")
			if err := os.Remove(l); err != nil {
				return err
			}
			return os.Symlink("x", l)
		}},
		{"add empty dir", func(_ *testing.T, d string) error { return os.Mkdir(filepath.Join(d, "new"), 0o755) }},
		{"remove empty dir", func(_ *testing.T, d string) error { return os.Remove(filepath.Join(d, "emptydir")) }},
		{"remove file", func(_ *testing.T, d string) error { return os.Remove(filepath.Join(d, "empty")) }},
	}
	base := t.TempDir()
	writeSample(t, base)
	baseRoot := scan(t, base).Root()
	seen := map[string]string{baseRoot: "original"}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "tree")
			copyTree(t, base, dir)
			if err := tt.change(t, dir); err != nil {
				t.Fatal(err)
			}
			root := scan(t, dir).Root()
			if prev, ok := seen[root]; ok {
				t.Fatalf("root %s after %q equals root after %q", root, tt.name, prev)
			}
			seen[root] = tt.name
		})
	}
}

func TestRootSeparatesFields(t *testing.T) {
	h := strings.Repeat("ab", 32)
	file := func(p string) Entry { return Entry{Path: p, Kind: KindFile, Mode: 0o644, Size: 1, MTime: 5, Hash: h} }
	// Pairs that a naive concatenation would confuse.
	manifests := [][]Entry{
		{{Path: "ab", Kind: KindSymlink, Target: "c"}},
		{{Path: "a", Kind: KindSymlink, Target: "bc"}},
		{file("x")},
		{file("x"), {Path: "y", Kind: KindDir, Mode: 0o755}},
		{{Path: "x", Kind: KindDir, Mode: 0o755}},
		{{Path: "x", Kind: KindDir, Mode: 0o755}, {Path: "x/y", Kind: KindDir, Mode: 0o755}},
		// Two paths with one content: a hard link group, two files, a
		// symlink; the kind tells them apart.
		{file("x"), {Path: "y", Kind: KindHardlink, Target: "x"}},
		{file("x"), file("y")},
		{file("x"), {Path: "y", Kind: KindSymlink, Target: "x"}},
	}
	seen := map[string]int{}
	for i, es := range manifests {
		m := &Manifest{Format: FormatVersion, Entries: es}
		if err := m.Validate(); err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		r := m.Root()
		if j, ok := seen[r]; ok {
			t.Fatalf("cases %d and %d share root %s", i, j, r)
		}
		seen[r] = i
	}
	empty := &Manifest{Format: FormatVersion}
	if _, ok := seen[empty.Root()]; ok {
		t.Fatal("empty manifest shares a root")
	}
}

// goldenManifest is a fixed manifest whose JSON and root are pinned in
// testdata/: a change to either encoding is a format change.
func goldenManifest() *Manifest {
	return &Manifest{Format: FormatVersion, Entries: []Entry{
		{Path: "bin", Kind: KindDir, Mode: 0o755},
		{Path: "bin/run", Kind: KindFile, Mode: 0o755, Size: 5, MTime: 1_700_000_000_000000001, Hash: strings.Repeat("0f", 32)},
		{Path: "latest", Kind: KindSymlink, Target: "bin/run"},
		{Path: "readme", Kind: KindFile, Mode: 0o644, Hash: "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"},
	}}
}

func TestGolden(t *testing.T) {
	m := goldenManifest()
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}
	var js bytes.Buffer
	if err := Encode(&js, m); err != nil {
		t.Fatal(err)
	}
	var enc bytes.Buffer
	writeRootEncoding(&enc, m)
	golden := map[string][]byte{
		"golden.manifest.json":     js.Bytes(),
		"golden.root.txt":          []byte(m.Root() + "\n"),
		"golden.root-encoding.hex": fmt.Appendf(nil, "%x\n", enc.Bytes()),
	}
	for name, got := range golden {
		path := filepath.Join("testdata", name)
		if *update {
			if err := os.WriteFile(path, got, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run go test -update to create)", err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s changed:\n got %s\nwant %s", name, got, want)
		}
	}
	back, err := Decode(bytes.NewReader(js.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if back.Root() != m.Root() {
		t.Fatal("root changed through Encode/Decode")
	}
}

func TestValidatePath(t *testing.T) {
	tests := []struct {
		path string
		ok   bool
	}{
		{"a", true},
		{"a/b/c", true},
		{"..a/b..", true},
		{".hidden", true},
		{`back\slash`, true},
		{"sp ace/é", true},
		{strings.Repeat("n", 255), true},
		{"", false},
		{".", false},
		{"..", false},
		{"../x", false},
		{"a/../b", false},
		{"a/./b", false},
		{"a/..", false},
		{"/abs", false},
		{"a//b", false},
		{"a/", false},
		{"a\x00b", false},
		{strings.Repeat("n", 256), false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%q", tt.path), func(t *testing.T) {
			err := ValidatePath(tt.path)
			if tt.ok && err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if !tt.ok && !errors.Is(err, ErrUnsafePath) {
				t.Fatalf("error %v, want ErrUnsafePath", err)
			}
		})
	}
}

func TestValidateAndDecodeRefuseBadManifests(t *testing.T) {
	h := strings.Repeat("0a", 32)
	dir := func(p string) Entry { return Entry{Path: p, Kind: KindDir, Mode: 0o755} }
	file := func(p string) Entry { return Entry{Path: p, Kind: KindFile, Mode: 0o644, Size: 3, MTime: 9, Hash: h} }
	hardlink := func(p, leader string) Entry { return Entry{Path: p, Kind: KindHardlink, Target: leader} }
	with := func(e Entry, f func(*Entry)) Entry {
		e.Chunks = slices.Clone(e.Chunks)
		f(&e)
		return e
	}
	tests := []struct {
		name    string
		format  int
		entries []Entry
		wantErr string
	}{
		{"unsorted", 1, []Entry{file("b"), file("a")}, "sorts before"},
		{"unsorted slash", 1, []Entry{dir("a"), file("a/b"), file("a-b")}, "sorts before"},
		{"duplicate", 1, []Entry{file("a"), file("a")}, "duplicate"},
		{"dot dot", 1, []Entry{file("../x")}, "unsafe path"},
		{"absolute", 1, []Entry{file("/abs")}, "unsafe path"},
		{"dot dot inside", 1, []Entry{dir("a"), file("a/../b")}, "unsafe path"},
		{"empty path", 1, []Entry{file("")}, "unsafe path"},
		{"NUL", 1, []Entry{file("a\x00b")}, "unsafe path"},
		{"short hash", 1, []Entry{with(file("a"), func(e *Entry) { e.Hash = "abc" })}, "hash"},
		{"upper hash", 1, []Entry{with(file("a"), func(e *Entry) { e.Hash = strings.ToUpper(h) })}, "hash"},
		{"non hex hash", 1, []Entry{with(file("a"), func(e *Entry) { e.Hash = strings.Repeat("zz", 32) })}, "hash"},
		{"no hash", 1, []Entry{with(file("a"), func(e *Entry) { e.Hash = "" })}, "hash"},
		{"setuid", 1, []Entry{with(file("a"), func(e *Entry) { e.Mode = 0o4755 })}, "mode"},
		{"setgid dir", 1, []Entry{with(dir("a"), func(e *Entry) { e.Mode = 0o2755 })}, "mode"},
		{"sticky", 1, []Entry{with(dir("a"), func(e *Entry) { e.Mode = 0o1777 })}, "mode"},
		{"missing parent", 1, []Entry{file("a/b")}, "parent"},
		{"parent is a file", 1, []Entry{file("a"), file("a/b")}, "parent"},
		{"parent is a symlink", 1, []Entry{{Path: "a", Kind: KindSymlink, Target: "/etc"}, file("a/b")}, "parent"},
		{"negative size", 1, []Entry{with(file("a"), func(e *Entry) { e.Size = -1 })}, "size"},
		{"unknown kind", 1, []Entry{{Path: "a", Kind: "fifo"}}, "kind"},
		{"dir with hash", 1, []Entry{with(dir("a"), func(e *Entry) { e.Hash = h })}, "dir has no"},
		{"file with target", 1, []Entry{with(file("a"), func(e *Entry) { e.Target = "x" })}, "target"},
		{"symlink without target", 1, []Entry{{Path: "a", Kind: KindSymlink}}, "target"},
		{"symlink with mode", 1, []Entry{{Path: "a", Kind: KindSymlink, Mode: 0o777, Target: "x"}}, "mode"},
		{"symlink target NUL", 1, []Entry{{Path: "a", Kind: KindSymlink, Target: "x\x00"}}, "NUL"},
		{"chunks on a dir", 1, []Entry{with(dir("a"), func(e *Entry) { e.Chunks = chunkedFile("a").Chunks })}, "dir has no"},
		{"chunks on a symlink", 1, []Entry{{Path: "a", Kind: KindSymlink, Target: "x", Chunks: chunkedFile("a").Chunks}}, "symlink has no"},
		{"chunks on a small file", 1, []Entry{with(file("a"), func(e *Entry) { e.Chunks = []Chunk{{Size: 3, Hash: h}} })}, "below the chunk threshold"},
		{"chunks on a file one byte short of the threshold", 1, []Entry{with(file("a"), func(e *Entry) {
			e.Size = ChunkThreshold - 1
			e.Chunks = slices.Repeat([]Chunk{{Size: ChunkMaxSize, Hash: h}}, 4)
			e.Chunks[3].Size--
		})}, "below the chunk threshold"},
		{"chunk sizes short of the size", 1, []Entry{with(chunkedFile("a"), func(e *Entry) { e.Size++ })}, "add up to"},
		{"chunk sizes beyond the size", 1, []Entry{with(chunkedFile("a"), func(e *Entry) { e.Size-- })}, "add up to more than"},
		{"zero chunk size", 1, []Entry{with(chunkedFile("a"), func(e *Entry) { e.Chunks[4].Size = 0 })}, "chunk 4: size 0"},
		{"negative chunk size", 1, []Entry{with(chunkedFile("a"), func(e *Entry) { e.Chunks[0].Size = -ChunkMaxSize })}, "chunk 0: size -"},
		{"chunk above the maximum", 1, []Entry{with(chunkedFile("a"), func(e *Entry) {
			e.Chunks[0].Size++
			e.Chunks[4].Size--
		})}, "outside 1.."},
		{"inner chunk below the minimum", 1, []Entry{with(chunkedFile("a"), func(e *Entry) {
			e.Chunks[3].Size = ChunkMinSize - 1
			e.Chunks[4].Size += ChunkMaxSize - (ChunkMinSize - 1)
		})}, "below the minimum"},
		{"too many chunks", 1, []Entry{with(chunkedFile("a"), func(e *Entry) {
			e.Chunks = slices.Repeat([]Chunk{{Size: 1, Hash: h}}, int(e.Size/ChunkMinSize)+2)
		})}, "more than"},
		{"short chunk hash", 1, []Entry{with(chunkedFile("a"), func(e *Entry) { e.Chunks[2].Hash = "abc" })}, "chunk 2: hash"},
		{"upper chunk hash", 1, []Entry{with(chunkedFile("a"), func(e *Entry) { e.Chunks[1].Hash = strings.ToUpper(h) })}, "chunk 1: hash"},
		{"empty chunk hash", 1, []Entry{with(chunkedFile("a"), func(e *Entry) { e.Chunks[0].Hash = "" })}, "chunk 0: hash"},
		{"duplicate chunked file", 1, []Entry{chunkedFile("a"), chunkedFile("a")}, "duplicate"},
		{"hardlink target missing", 1, []Entry{file("a"), hardlink("c", "b")}, "is not an entry"},
		{"hardlink target after it", 1, []Entry{hardlink("a", "b"), file("b")}, "does not sort before"},
		{"hardlink to itself", 1, []Entry{hardlink("a", "a")}, "does not sort before"},
		{"hardlink target is a dir", 1, []Entry{dir("a"), hardlink("b", "a")}, "is a dir, not a file"},
		{"hardlink target is a symlink", 1, []Entry{{Path: "a", Kind: KindSymlink, Target: "x"}, hardlink("b", "a")}, "is a symlink, not a file"},
		{"hardlink target is a hardlink", 1, []Entry{file("a"), hardlink("b", "a"), hardlink("c", "b")}, "is a hardlink, not a file"},
		{"hardlink target is a removed path", 1, []Entry{dir("a"), hardlink("a/b", "a/a")}, "is not an entry"},
		{"hardlink without target", 1, []Entry{file("a"), hardlink("b", "")}, "hardlink target: unsafe path"},
		{"hardlink target dot dot", 1, []Entry{file("a"), hardlink("b", "../a")}, "hardlink target: unsafe path"},
		{"hardlink target absolute", 1, []Entry{file("a"), hardlink("b", "/a")}, "hardlink target: unsafe path"},
		{"hardlink target not clean", 1, []Entry{file("a"), hardlink("b", "./a")}, "hardlink target: unsafe path"},
		{"hardlink target NUL", 1, []Entry{file("a"), hardlink("b", "a\x00")}, "hardlink target: unsafe path"},
		{"hardlink with mode", 1, []Entry{file("a"), with(hardlink("b", "a"), func(e *Entry) { e.Mode = 0o644 })}, "hardlink has no"},
		{"hardlink with size", 1, []Entry{file("a"), with(hardlink("b", "a"), func(e *Entry) { e.Size = 3 })}, "hardlink has no"},
		{"hardlink with mtime", 1, []Entry{file("a"), with(hardlink("b", "a"), func(e *Entry) { e.MTime = 9 })}, "hardlink has no"},
		{"hardlink with hash", 1, []Entry{file("a"), with(hardlink("b", "a"), func(e *Entry) { e.Hash = h })}, "hardlink has no"},
		{"hardlink with chunks", 1, []Entry{chunkedFile("a"), with(hardlink("b", "a"), func(e *Entry) { e.Chunks = chunkedFile("b").Chunks })}, "hardlink has no"},
		{"format 0", 0, nil, "format"},
		{"format 2", 2, nil, "format"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := &Manifest{Format: tt.format, Entries: tt.entries}
			err := m.Validate()
			if !errors.Is(err, ErrInvalidManifest) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Validate error %v, want ErrInvalidManifest mentioning %q", err, tt.wantErr)
			}
			var js bytes.Buffer
			if err := Encode(&js, m); err != nil {
				t.Fatal(err)
			}
			got, err := Decode(&js)
			if got != nil || !errors.Is(err, ErrInvalidManifest) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Decode = %v, %v; want ErrInvalidManifest mentioning %q", got, err, tt.wantErr)
			}
		})
	}
}

func TestDecodeRefusesBadJSON(t *testing.T) {
	tests := []struct{ name, in string }{
		{"empty", ""},
		{"null", "null"},
		{"not json", "manifest"},
		{"array", "[]"},
		{"unknown field", `{"format":1,"entries":[],"extra":1}`},
		{"unknown entry field", `{"format":1,"entries":[{"path":"a","kind":"dir","mode":493,"uid":0}]}`},
		{"trailing data", `{"format":1,"entries":[]} {}`},
		{"trailing garbage", `{"format":1,"entries":[]}x`},
		{"truncated", `{"format":1,"entries":[{"path":"a"`},
		{"mode too big for uint32", `{"format":1,"entries":[{"path":"a","kind":"dir","mode":4294967296}]}`},
		{"negative mode", `{"format":1,"entries":[{"path":"a","kind":"dir","mode":-1}]}`},
		{"escape path", `{"format":1,"entries":[{"path":"../escape","kind":"dir","mode":493}]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Decode(strings.NewReader(tt.in))
			if m != nil || !errors.Is(err, ErrInvalidManifest) {
				t.Fatalf("Decode = %v, %v; want ErrInvalidManifest", m, err)
			}
		})
	}
	// An empty tree is a valid manifest.
	m, err := Decode(strings.NewReader(`{"format":1,"entries":[]}` + "\n"))
	if err != nil || m.Entries == nil || len(m.Entries) != 0 {
		t.Fatalf("empty manifest: %v, %v", m, err)
	}
}

// TestDecodeReadError: a reader that fails (a lost connection mid-object)
// says nothing of the manifest: its error is returned, not
// ErrInvalidManifest, so a caller retries instead of refusing the version.
func TestDecodeReadError(t *testing.T) {
	var js bytes.Buffer
	if err := Encode(&js, goldenManifest()); err != nil {
		t.Fatal(err)
	}
	lost := errors.New("nats: timeout")
	for _, cut := range []int{0, js.Len() / 2, js.Len()} {
		r := io.MultiReader(bytes.NewReader(js.Bytes()[:cut]), iotest.ErrReader(lost))
		m, err := Decode(r)
		if m != nil || !errors.Is(err, lost) || errors.Is(err, ErrInvalidManifest) {
			t.Errorf("cut at %d: Decode = %v, %v; want the read error, not ErrInvalidManifest", cut, m, err)
		}
	}
}

func TestDecodeSizeLimit(t *testing.T) {
	m := goldenManifest()
	var js bytes.Buffer
	if err := Encode(&js, m); err != nil {
		t.Fatal(err)
	}
	if _, err := decode(bytes.NewReader(js.Bytes()), int64(js.Len())); err != nil {
		t.Fatalf("at the limit: %v", err)
	}
	_, err := decode(bytes.NewReader(js.Bytes()), int64(js.Len())-10)
	if !errors.Is(err, ErrInvalidManifest) || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("over the limit: %v", err)
	}
	// Trailing whitespace past the limit is still too large.
	padded := append(bytes.TrimSpace(js.Bytes()), strings.Repeat(" ", 100)...)
	_, err = decode(bytes.NewReader(padded), int64(len(padded))-1)
	if !errors.Is(err, ErrInvalidManifest) {
		t.Fatalf("padding over the limit: %v", err)
	}
}

func TestScanRefusesUnsupportedFiles(t *testing.T) {
	tests := []struct {
		name string
		make func(t *testing.T, p string) error
	}{
		{"fifo", func(_ *testing.T, p string) error { return syscall.Mkfifo(p, 0o644) }},
		{"socket", func(t *testing.T, p string) error {
			l, err := (&net.ListenConfig{}).Listen(context.Background(), "unix", p)
			if err != nil {
				return err
			}
			t.Cleanup(func() { l.Close() })
			return nil
		}},
		{"setuid", func(_ *testing.T, p string) error {
			if err := os.WriteFile(p, []byte("x"), 0o755); err != nil {
				return err
			}
			return os.Chmod(p, 0o755|fs.ModeSetuid)
		}},
		{"setgid", func(_ *testing.T, p string) error {
			if err := os.WriteFile(p, []byte("x"), 0o755); err != nil {
				return err
			}
			return os.Chmod(p, 0o755|fs.ModeSetgid)
		}},
		{"sticky dir", func(_ *testing.T, p string) error {
			if err := os.Mkdir(p, 0o777); err != nil {
				return err
			}
			return os.Chmod(p, 0o777|fs.ModeSticky)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := tt.make(t, filepath.Join(dir, "sub", "odd")); err != nil {
				t.Fatal(err)
			}
			info, err := os.Lstat(filepath.Join(dir, "sub", "odd"))
			if err != nil {
				t.Fatal(err)
			}
			if tt.name == "setgid" && info.Mode()&fs.ModeSetgid == 0 {
				t.Skip("filesystem dropped the set-gid bit")
			}
			_, err = Scan(context.Background(), dir)
			if !errors.Is(err, ErrUnsupportedFile) || !strings.Contains(err.Error(), "sub/odd") {
				t.Fatalf("Scan error %v, want ErrUnsupportedFile naming sub/odd", err)
			}
		})
	}
}

func TestScanErrors(t *testing.T) {
	if _, err := Scan(context.Background(), filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Fatal("scan of a missing dir succeeded")
	}
	f := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(f, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Scan(context.Background(), f); err == nil {
		t.Fatal("scan of a file succeeded")
	}
	dir := t.TempDir()
	writeSample(t, dir)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Scan(ctx, dir); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled scan: %v", err)
	}
}

// cancelOnRead cancels a context on its first read, as a verify
// pre-empted while it reads a large file.
type cancelOnRead struct {
	r      io.Reader
	cancel context.CancelFunc
}

func (c cancelOnRead) Read(p []byte) (int, error) {
	c.cancel()
	return c.r.Read(p)
}

// TestHashingStopsWithItsContext: a file being hashed, chunked or not, is
// read no further once the scan's context ends.
func TestHashingStopsWithItsContext(t *testing.T) {
	const size = 64 << 20
	for _, chunk := range []bool{false, true} {
		ctx, cancel := context.WithCancel(t.Context())
		_, n, _, err := hashContent(ctx, cancelOnRead{r: io.LimitReader(zeroReader{}, size), cancel: cancel}, size, chunk)
		if !errors.Is(err, context.Canceled) || n >= size {
			t.Errorf("chunk %v: read %d of %d bytes, %v; want to stop early with context.Canceled", chunk, n, size, err)
		}
	}
}

// zeroReader reads as an endless run of zero bytes.
type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

func TestHashReader(t *testing.T) {
	// BLAKE3 of the empty input, from the reference test vectors.
	h, n, err := HashReader(strings.NewReader(""))
	if err != nil || n != 0 || h != "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262" {
		t.Fatalf("HashReader(\"\") = %s, %d, %v", h, n, err)
	}
	big := bytes.Repeat([]byte("0123456789"), 100_000)
	h1, n, err := HashReader(bytes.NewReader(big))
	if err != nil || n != int64(len(big)) {
		t.Fatal(n, err)
	}
	h2, _, _ := HashReader(struct{ r *bytes.Reader }{bytes.NewReader(big)}.r)
	if h1 != h2 {
		t.Fatal("hash depends on the reader")
	}
}

func BenchmarkScan(b *testing.B) {
	dir := b.TempDir()
	content := bytes.Repeat([]byte("pulpdist "), 4096) // 36 KiB
	var total int64
	for d := range 10 {
		sub := filepath.Join(dir, fmt.Sprintf("d%02d", d))
		if err := os.Mkdir(sub, 0o755); err != nil {
			b.Fatal(err)
		}
		for f := range 100 {
			c := append(fmt.Appendf(nil, "%d/%d", d, f), content...)
			if err := os.WriteFile(filepath.Join(sub, fmt.Sprintf("f%03d", f)), c, 0o644); err != nil {
				b.Fatal(err)
			}
			total += int64(len(c))
		}
	}
	b.SetBytes(total)
	b.ResetTimer()
	for b.Loop() {
		if _, err := Scan(context.Background(), dir); err != nil {
			b.Fatal(err)
		}
	}
}

func FuzzDecodeManifest(f *testing.F) {
	var js bytes.Buffer
	if err := Encode(&js, goldenManifest()); err != nil {
		f.Fatal(err)
	}
	f.Add(js.Bytes())
	f.Add([]byte(`{"format":1,"entries":[]}`))
	f.Add([]byte(`{"format":1,"entries":[{"path":"../x","kind":"file","mode":420}]}`))
	f.Add([]byte(`{"format":1,"entries":[{"path":"a","kind":"dir","mode":493},{"path":"a/b","kind":"symlink","mode":0,"target":"/"}]}`))
	f.Add([]byte(`null`))
	hash := strings.Repeat("0a", 32)
	f.Add([]byte(`{"format":1,"entries":[{"path":"a","kind":"file","mode":420,"size":3,"hash":"` + hash + `"},{"path":"b","kind":"hardlink","mode":0,"target":"a"},{"path":"c","kind":"hardlink","mode":0,"target":"a"}]}`))
	f.Add([]byte(`{"format":1,"entries":[{"path":"a","kind":"dir","mode":493},{"path":"a/b","kind":"hardlink","mode":0,"target":"a"}]}`))
	f.Add([]byte(`{"format":1,"entries":[{"path":"a","kind":"file","mode":420,"hash":"` + hash + `"},{"path":"b","kind":"hardlink","mode":0,"target":"a"},{"path":"c","kind":"hardlink","mode":0,"target":"b"}]}`))
	f.Add([]byte(`{"format":1,"entries":[{"path":"a","kind":"hardlink","mode":0,"target":"b"},{"path":"b","kind":"file","mode":420,"hash":"` + hash + `"}]}`))
	f.Add([]byte(`{"format":1,"entries":[{"path":"a","kind":"file","mode":420,"hash":"` + hash + `"},{"path":"b","kind":"hardlink","mode":420,"size":3,"hash":"` + hash + `","target":"../a"}]}`))
	js.Reset()
	if err := Encode(&js, &Manifest{Format: FormatVersion, Entries: []Entry{chunkedFile("big")}}); err != nil {
		f.Fatal(err)
	}
	f.Add(js.Bytes())
	f.Add([]byte(`{"format":1,"entries":[{"path":"a","kind":"file","mode":420,"size":4194304,"hash":"` + strings.Repeat("0a", 32) + `","chunks":[{},{"size":1}]}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Decode(bytes.NewReader(data))
		if err != nil {
			if m != nil || !errors.Is(err, ErrInvalidManifest) {
				t.Fatalf("Decode = %v, %v", m, err)
			}
			return
		}
		// Whatever decodes is valid, round-trips, and has a stable root.
		if err := m.Validate(); err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		if err := Encode(&out, m); err != nil {
			t.Fatal(err)
		}
		back, err := Decode(&out)
		if err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		if back.Root() != m.Root() {
			t.Fatal("root changed through Encode/Decode")
		}
		if !reflect.DeepEqual(back, m) {
			t.Fatal("manifest changed through Encode/Decode")
		}
		for _, e := range m.Entries {
			if ValidatePath(e.Path) != nil {
				t.Fatalf("unsafe path %q accepted", e.Path)
			}
		}
	})
}

// FuzzValidatePath: every path ValidatePath accepts is relative, clean, made
// of real names and free of NUL, so it can never leave the tree.
func FuzzValidatePath(f *testing.F) {
	for _, s := range []string{"a", "a/b", "../x", "/abs", "a/../b", "a//b", "./a", "a/", "a\x00b", "", ".", "..", "a/./b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		if ValidatePath(p) != nil {
			return
		}
		if p == "" || strings.HasPrefix(p, "/") || strings.ContainsRune(p, 0) || path.Clean(p) != p {
			t.Fatalf("accepted %q", p)
		}
		for _, c := range strings.Split(p, "/") {
			if c == "" || c == "." || c == ".." {
				t.Fatalf("accepted %q with component %q", p, c)
			}
		}
	})
}
