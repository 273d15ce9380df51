package pack

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"path"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/pulpdist/pulpdist/libs/tree"
)

// store is content by hash, as a delta-cache would hold it.
type store map[string][]byte

func (s store) open(_ context.Context, hash string) (io.ReadCloser, error) {
	b, ok := s[hash]
	if !ok {
		return nil, fmt.Errorf("no content %s", hash)
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

// base opens content for a Reader, as a site holds its base version.
func (s store) base(hash string) (ReaderAtCloser, error) {
	b, ok := s[hash]
	if !ok {
		return nil, fmt.Errorf("no content %s", hash)
	}
	return nopCloser{bytes.NewReader(b)}, nil
}

type nopCloser struct{ *bytes.Reader }

func (nopCloser) Close() error { return nil }

func hashOf(t testing.TB, b []byte) string {
	t.Helper()
	h, _, err := tree.HashReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// build returns the manifest of files (path → content, parent dirs added,
// chunks for large files) and their content store.
func build(t testing.TB, files map[string][]byte) (*tree.Manifest, store) {
	t.Helper()
	m := &tree.Manifest{Format: tree.FormatVersion}
	s := store{}
	dirs := map[string]bool{}
	for p, c := range files {
		h, _, chunks, err := tree.HashChunks(bytes.NewReader(c))
		if err != nil {
			t.Fatal(err)
		}
		if len(c) < tree.ChunkThreshold {
			chunks = nil
		}
		s[h] = c
		m.Entries = append(m.Entries, tree.Entry{Path: p, Kind: tree.KindFile, Mode: 0o644, Size: int64(len(c)), MTime: 1e18, Hash: h, Chunks: chunks})
		for d := path.Dir(p); d != "."; d = path.Dir(d) {
			if !dirs[d] {
				dirs[d] = true
				m.Entries = append(m.Entries, tree.Entry{Path: d, Kind: tree.KindDir, Mode: 0o755})
			}
		}
	}
	slices.SortFunc(m.Entries, func(a, b tree.Entry) int { return strings.Compare(a.Path, b.Path) })
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}
	return m, s
}

func randomBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// text returns n bytes of code-like text.
func text(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed))
	words := []string{"func", "return", "if", "err", "nil", "for", "range", "value", "count", "name", "tree", "site", "(", ")", "{", "}", ":=", "\n\t", "\n"}
	var b bytes.Buffer
	for b.Len() < n {
		b.WriteString(words[r.IntN(len(words))])
		b.WriteByte(' ')
	}
	return b.Bytes()[:n]
}

func sampleFiles() map[string][]byte {
	return map[string][]byte{
		"empty":          {},
		"small.txt":      []byte("hello pack"),
		"dir/random.bin": randomBytes(1, 3<<20+17), // incompressible
		"dir/zeros":      make([]byte, 5<<20),      // compressible, chunked
		"dir/sub/copy":   []byte("hello pack"),     // same content: one part
	}
}

func buildPack(t testing.TB, from, to *tree.Manifest, s store) ([]byte, Result) {
	t.Helper()
	return buildPackWith(t, from, to, s, EffortBest)
}

// buildPackWith is buildPack at an effort.
func buildPackWith(t testing.TB, from, to *tree.Manifest, s store, effort Effort) ([]byte, Result) {
	t.Helper()
	var buf bytes.Buffer
	res, err := Build(context.Background(), &buf, Options{Tree: "demo", From: from, To: to, TempDir: t.TempDir(), Effort: effort}, s.open)
	if err != nil {
		t.Fatal(err)
	}
	if res.Bytes != int64(buf.Len()) {
		t.Fatalf("Build says %d bytes, wrote %d", res.Bytes, buf.Len())
	}
	return buf.Bytes(), res
}

// readAll reads the pack against base (nil for none) and returns the
// target and every part's content; the error is the first one met, nil
// only if the pack ended cleanly.
func readAll(data []byte, lim Limits, base *tree.Manifest, s store) (*tree.Manifest, map[string][]byte, error) {
	r, err := NewReader(bytes.NewReader(data), lim)
	if err != nil {
		return nil, nil, err
	}
	defer r.Close()
	var open func(string) (ReaderAtCloser, error)
	if base != nil {
		open = s.base
	}
	m, err := r.Target(base, open)
	if err != nil {
		return nil, nil, err
	}
	got := map[string][]byte{}
	for {
		p, pr, err := r.Next()
		if errors.Is(err, io.EOF) {
			return m, got, nil
		}
		if err != nil {
			return m, got, err
		}
		b, err := io.ReadAll(pr)
		if err != nil {
			return m, got, err
		}
		got[p.Hash] = b
	}
}

// checkApplies reads the pack against from and checks that the target is
// to and that the parts with the base give every file's content.
func checkApplies(t *testing.T, data []byte, from, to *tree.Manifest, s store) map[string][]byte {
	t.Helper()
	m, got, err := readAll(data, Limits{}, from, s)
	if err != nil {
		t.Fatal(err)
	}
	if m.Root() != to.Root() {
		t.Fatalf("target root %s, want %s", m.Root(), to.Root())
	}
	have := map[string]bool{}
	if from != nil {
		for _, e := range from.Entries {
			have[e.Hash] = true
		}
	}
	for _, e := range to.Entries {
		if e.Kind != tree.KindFile || have[e.Hash] {
			continue
		}
		c, ok := got[e.Hash]
		if !ok {
			t.Fatalf("no part for %s", e.Path)
		}
		if !bytes.Equal(c, s[e.Hash]) {
			t.Fatalf("part for %s has other content", e.Path)
		}
	}
	return got
}

func TestFullPackRoundTrip(t *testing.T) {
	m, s := build(t, sampleFiles())
	data, res := buildPack(t, nil, m, s)
	got := checkApplies(t, data, nil, m, s)
	if len(got) != 4 || res.Parts != 4 {
		t.Fatalf("%d parts read, %d written, want 4 (one per distinct content)", len(got), res.Parts)
	}
	if res.CopiedBytes != 0 {
		t.Fatalf("a full pack copies %d bytes from a base", res.CopiedBytes)
	}
	if len(data) > 3<<20+100<<10 {
		t.Fatalf("pack of %d bytes: zeros not compressed", len(data))
	}
}

// pairs returns a base and a target tree with every kind of change.
func pairs(t *testing.T) (from, to *tree.Manifest, s store) {
	t.Helper()
	big := randomBytes(3, 9<<20)
	bigNew := slices.Clone(big)
	copy(bigNew[1<<20:], "an edit in the first MiB")
	bigNew = slices.Concat(bigNew[:6<<20], []byte("inserted bytes shift the rest"), bigNew[6<<20:])
	src := text(4, 40<<10)
	srcNew := slices.Concat(src[:20<<10], []byte("\n// a new comment line\n"), src[20<<10:])
	log := text(5, 100<<10)
	oldFiles := map[string][]byte{
		"big.img":         big,
		"src/main.go":     src,
		"logs/app.log":    log,
		"old/moved.txt":   text(6, 5000),
		"gone.txt":        []byte("deleted"),
		"same.txt":        []byte("unchanged"),
		"lib/helper.go":   text(7, 8000),
		"lib/unrelated.c": text(8, 3000),
	}
	newFiles := map[string][]byte{
		"big.img":         bigNew,
		"src/main.go":     srcNew,
		"logs/app.log":    slices.Concat(log, text(9, 2000)),
		"new/moved.txt":   text(6, 5000), // renamed: content in base
		"same.txt":        []byte("unchanged"),
		"lib/helper.go":   text(7, 8000),
		"lib/unrelated.c": text(8, 3000),
		"fresh.txt":       text(10, 20000),
	}
	from, s1 := build(t, oldFiles)
	to, s2 := build(t, newFiles)
	for k, v := range s2 {
		s1[k] = v
	}
	// A mode change and a symlink.
	for i := range to.Entries {
		if to.Entries[i].Path == "lib/helper.go" {
			to.Entries[i].Mode = 0o755
		}
	}
	to.Entries = append(to.Entries, tree.Entry{Path: "link", Kind: tree.KindSymlink, Target: "same.txt"})
	slices.SortFunc(to.Entries, func(a, b tree.Entry) int { return strings.Compare(a.Path, b.Path) })
	return from, to, s1
}

func TestDeltaPack(t *testing.T) {
	from, to, s := pairs(t)
	data, res := buildPack(t, from, to, s)
	checkApplies(t, data, from, to, s)

	r, err := NewReader(bytes.NewReader(data), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	h := r.Header()
	var setPaths []string
	for _, e := range h.Set {
		setPaths = append(setPaths, e.Path)
	}
	wantSet := []string{"big.img", "fresh.txt", "lib/helper.go", "link", "logs/app.log", "new", "new/moved.txt", "src/main.go"}
	if !slices.Equal(setPaths, wantSet) {
		t.Fatalf("set %v, want %v", setPaths, wantSet)
	}
	if want := []string{"gone.txt", "old", "old/moved.txt"}; !slices.Equal(h.Remove, want) {
		t.Fatalf("remove %v, want %v", h.Remove, want)
	}
	// Parts: big.img, fresh.txt, app.log, main.go; the moved file and
	// the mode change carry no content.
	if len(h.Parts) != 4 {
		t.Fatalf("%d parts, want 4: %+v", len(h.Parts), h.Parts)
	}
	var bigPart Part
	for _, p := range h.Parts {
		if p.Size > 8<<20 {
			bigPart = p
		}
	}
	copied := int64(0)
	for _, op := range bigPart.Ops {
		if op.Hash != "" {
			copied += op.N
		}
	}
	if copied < 7<<20 {
		t.Fatalf("big.img copies %d bytes from its base, want most of 9 MiB; ops %+v", copied, bigPart.Ops)
	}
	dicts := 0
	for _, seg := range h.Segments {
		if len(seg.Dict) > 0 {
			dicts++
		}
	}
	if dicts == 0 {
		t.Fatalf("no segment compressed against the base: %+v", h.Segments)
	}
	// Two small edits in 9 MiB of random bytes, an edited source file,
	// an appended log and 20 KB of new text: a few KB of edits and about
	// 10 KB of compressed text, far from the 9 MiB the big file weighs.
	if len(data) > 200<<10 {
		t.Fatalf("delta pack of %d bytes (result %+v)", len(data), res)
	}
}

func TestPatchBeatsPlainCompression(t *testing.T) {
	old := text(11, 2<<20)
	edited := slices.Clone(old)
	for i := 0; i < len(edited); i += 100 << 10 {
		copy(edited[i:], "EDIT")
	}
	from, s1 := build(t, map[string][]byte{"f.txt": old})
	to, s2 := build(t, map[string][]byte{"f.txt": edited})
	for k, v := range s2 {
		s1[k] = v
	}
	delta, _ := buildPack(t, from, to, s1)
	full, _ := buildPack(t, nil, to, s1)
	checkApplies(t, delta, from, to, s1)
	if len(delta)*20 > len(full) {
		t.Fatalf("patch pack %d bytes, full pack %d: want at least 20× smaller", len(delta), len(full))
	}
}

// TestEfforts builds the same delta at every effort: each applies, each
// compresses edited files against their old versions, and each keeps its
// shared segments within the group budget.
func TestEfforts(t *testing.T) {
	// Thirty text files of 100 KiB, each with a few edits: 3 MiB of
	// changed small files, several groups at every effort.
	oldFiles, newFiles := map[string][]byte{}, map[string][]byte{}
	for i := range 30 {
		old := text(uint64(100+i), 100<<10)
		edited := slices.Clone(old)
		for off := 0; off < len(edited); off += 30 << 10 {
			copy(edited[off:], fmt.Sprintf("EDIT %d", off))
		}
		name := fmt.Sprintf("src/f%02d.txt", i)
		oldFiles[name], newFiles[name] = old, edited
	}
	from, s1 := build(t, oldFiles)
	to, s2 := build(t, newFiles)
	for k, v := range s2 {
		s1[k] = v
	}
	full, _ := buildPackWith(t, nil, to, s1, EffortFast)
	sizes := map[Effort]int{}
	for _, e := range []Effort{EffortBest, EffortDefault, EffortFast} {
		t.Run(e.String(), func(t *testing.T) {
			data, res := buildPackWith(t, from, to, s1, e)
			checkApplies(t, data, from, to, s1)
			sizes[e] = len(data)
			if len(data)*20 > len(full) {
				t.Fatalf("delta of %d bytes, full pack %d: not compressed against the base", len(data), len(full))
			}
			r, err := NewReader(bytes.NewReader(data), Limits{})
			if err != nil {
				t.Fatal(err)
			}
			segs := r.Header().Segments
			if len(segs) != res.Segments {
				t.Fatalf("%d segments in the header, Build says %d", len(segs), res.Segments)
			}
			for _, seg := range segs {
				var dict int64
				for _, d := range seg.Dict {
					dict += d.Len
				}
				if seg.Size > groupSize || dict > groupSize {
					t.Fatalf("segment of %d bytes with a %d-byte dictionary, over the group of %d", seg.Size, dict, groupSize)
				}
			}
			if min := int((30*100<<10)/groupSize) + 1; len(segs) < min {
				t.Fatalf("%d segments for 3 MiB of small files, want at least %d", len(segs), min)
			}
		})
	}
	if sizes[EffortBest] > sizes[EffortFast] {
		t.Fatalf("best effort %d bytes, fast %d", sizes[EffortBest], sizes[EffortFast])
	}
}

// TestRefine: below the best effort, Options.Refine is asked about every
// segment with a dictionary, with its sizes, and the segments it picks are
// encoded again at the best level, never to a larger pack.
func TestRefine(t *testing.T) {
	from, to, s := pairs(t)
	build := func(refine func(content, compressed int64) bool) ([]byte, Result) {
		var buf bytes.Buffer
		res, err := Build(context.Background(), &buf, Options{Tree: "demo", From: from, To: to, TempDir: t.TempDir(), Effort: EffortDefault, Refine: refine}, s.open)
		if err != nil {
			t.Fatal(err)
		}
		checkApplies(t, buf.Bytes(), from, to, s)
		return buf.Bytes(), res
	}
	plain, plainRes := build(nil)
	var asked []int64
	never, neverRes := build(func(content, compressed int64) bool {
		if compressed <= 0 || compressed > content+1024 {
			t.Errorf("asked about %d bytes compressed to %d", content, compressed)
		}
		asked = append(asked, content)
		return false
	})
	if !bytes.Equal(never, plain) || neverRes.Refined != 0 || plainRes.Refined != 0 {
		t.Fatalf("a Refine that says no changed the pack (%d → %d bytes, %d refined)", len(plain), len(never), neverRes.Refined)
	}
	r, err := NewReader(bytes.NewReader(plain), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	var dicted []int64
	for _, seg := range r.Header().Segments {
		if len(seg.Dict) > 0 {
			dicted = append(dicted, seg.Size)
		}
	}
	if len(dicted) == 0 || !slices.Equal(asked, dicted) {
		t.Fatalf("Refine asked about segments of %v bytes, the pack's segments with a dictionary are %v", asked, dicted)
	}
	always, alwaysRes := build(func(int64, int64) bool { return true })
	if alwaysRes.Refined != len(dicted) {
		t.Fatalf("%d segments refined, want %d", alwaysRes.Refined, len(dicted))
	}
	if len(always) > len(plain) {
		t.Fatalf("refined pack %d bytes, unrefined %d", len(always), len(plain))
	}
	// The best effort has nothing to refine.
	var bestAsked int
	if _, err := Build(context.Background(), io.Discard, Options{Tree: "demo", From: from, To: to, TempDir: t.TempDir(),
		Refine: func(int64, int64) bool { bestAsked++; return true }}, s.open); err != nil {
		t.Fatal(err)
	}
	if bestAsked != 0 {
		t.Fatalf("Refine asked %d times at the best effort", bestAsked)
	}
}

func TestEmptyDelta(t *testing.T) {
	m, s := build(t, map[string][]byte{"a": []byte("x")})
	m2 := &tree.Manifest{Format: tree.FormatVersion, Entries: slices.Clone(m.Entries)}
	m2.Entries[0].Mode = 0o600
	data, res := buildPack(t, m, m2, s)
	if res.Parts != 0 || res.Segments != 0 {
		t.Fatalf("a mode change carries %d parts, %d segments", res.Parts, res.Segments)
	}
	checkApplies(t, data, m, m2, s)
}

func TestBuildRefusesWrongContent(t *testing.T) {
	m, s := build(t, map[string][]byte{"a": []byte("right content"), "big": randomBytes(1, 5<<20)})
	for _, e := range m.Entries {
		t.Run(e.Path, func(t *testing.T) {
			bad := store{}
			for k, v := range s {
				bad[k] = v
			}
			for _, tamper := range []func([]byte) []byte{
				func(b []byte) []byte { c := slices.Clone(b); c[0] ^= 1; return c },
				func(b []byte) []byte { return append(slices.Clone(b), 'x') },
				func(b []byte) []byte { return b[:len(b)-1] },
			} {
				bad[e.Hash] = tamper(s[e.Hash])
				_, err := Build(context.Background(), io.Discard, Options{Tree: "demo", To: m, TempDir: t.TempDir()}, bad.open)
				if !errors.Is(err, ErrHashMismatch) {
					t.Fatalf("Build with tampered content: %v, want ErrHashMismatch", err)
				}
			}
		})
	}
	if _, err := Build(context.Background(), io.Discard, Options{Tree: "demo"}, s.open); !errors.Is(err, ErrFormat) {
		t.Fatalf("Build without a target: %v", err)
	}
	if _, err := Build(context.Background(), io.Discard, Options{Tree: "", To: m, TempDir: t.TempDir()}, s.open); !errors.Is(err, ErrFormat) {
		t.Fatalf("Build without a tree name: %v", err)
	}
}

// copyHeader returns a deep copy of h, made through JSON.
func copyHeader(t *testing.T, h Header) Header {
	t.Helper()
	js, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	var out Header
	if err := json.Unmarshal(js, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// header is a small valid delta header for validation tests.
func header(t *testing.T) (Header, *tree.Manifest, store) {
	t.Helper()
	from, s := build(t, map[string][]byte{"a": []byte("alpha"), "b": []byte("bravo")})
	to, s2 := build(t, map[string][]byte{"a": []byte("alpha"), "c": []byte("charlie")})
	for k, v := range s2 {
		s[k] = v
	}
	data, _ := buildPack(t, from, to, s)
	r, err := NewReader(bytes.NewReader(data), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	return r.Header(), from, s
}

func TestHeaderValidate(t *testing.T) {
	good, _, _ := header(t)
	h40 := strings.Repeat("ab", 32)
	tests := []struct {
		name   string
		change func(h *Header)
	}{
		{"format", func(h *Header) { h.Format = 1 }},
		{"no tree", func(h *Header) { h.Tree = "" }},
		{"long tree", func(h *Header) { h.Tree = strings.Repeat("t", 1025) }},
		{"bad from", func(h *Header) { h.From = "zz" }},
		{"bad to", func(h *Header) { h.To = "" }},
		{"unsorted set", func(h *Header) { h.Set = append(h.Set, h.Set[0]) }},
		{"unsafe set path", func(h *Header) { h.Set[0].Path = "../c" }},
		{"chunks in set", func(h *Header) { h.Set[0].Chunks = []tree.Chunk{{Size: 7, Hash: h40}} }},
		{"unsafe remove", func(h *Header) { h.Remove = []string{"/etc"} }},
		{"unsorted remove", func(h *Header) { h.Remove = []string{"b", "a"} }},
		{"remove from empty", func(h *Header) { h.From = "" }},
		{"part not in set", func(h *Header) { h.Parts[0].Hash = h40 }},
		{"part size", func(h *Header) { h.Parts[0].Size++ }},
		{"duplicate part", func(h *Header) { h.Parts = append(h.Parts, h.Parts[0]) }},
		{"segment size", func(h *Header) { h.Segments[0].Size++ }},
		{"empty segment", func(h *Header) { h.Segments = append(h.Segments, Segment{}) }},
		{"ops sum", func(h *Header) { h.Parts[0].Ops = []Op{{N: 1}} }},
		{"zero op", func(h *Header) { h.Parts[0].Ops = []Op{{N: 0}, {N: h.Parts[0].Size}} }},
		{"literal offset", func(h *Header) { h.Parts[0].Ops = []Op{{N: h.Parts[0].Size, Off: 3}} }},
		{"bad copy hash", func(h *Header) { h.Parts[0].Ops = []Op{{N: h.Parts[0].Size, Hash: "nothex"}} }},
		{"negative copy offset", func(h *Header) { h.Parts[0].Ops = []Op{{N: h.Parts[0].Size, Hash: h40, Off: -1}} }},
		{"bad dict range", func(h *Header) { h.Segments[0].Dict = []Range{{Hash: h40, Len: 0}} }},
		{"dict too large", func(h *Header) { h.Segments[0].Dict = []Range{{Hash: h40, Len: MaxDict + 1}} }},
		{"copy from the empty tree", func(h *Header) {
			h.From, h.Remove = "", nil
			h.Parts[0].Ops = []Op{{N: h.Parts[0].Size, Hash: h40}}
		}},
	}
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := copyHeader(t, good)
			tt.change(&h)
			if err := h.Validate(); !errors.Is(err, ErrFormat) {
				t.Fatalf("Validate: %v, want ErrFormat", err)
			}
		})
	}
}

func TestTargetChecksTheBase(t *testing.T) {
	good, from, _ := header(t)
	other, _ := build(t, map[string][]byte{"a": []byte("alpha")})
	h40 := strings.Repeat("cd", 32)
	bHash := from.Entries[1].Hash
	tests := []struct {
		name   string
		base   *tree.Manifest
		change func(h *Header)
		want   error
	}{
		{"other base", other, nil, ErrBase},
		{"no base", nil, nil, ErrBase},
		{"remove missing", from, func(h *Header) { h.Remove = []string{"b", "zz"} }, ErrBase},
		{"remove before", from, func(h *Header) { h.Remove = []string{"0", "b"} }, ErrBase},
		{"wrong to", from, func(h *Header) { h.To = h40 }, ErrBase},
		{"set and removed", from, func(h *Header) { h.Remove = []string{"b", "c"} }, ErrBase},
		{"copy from unknown", from, func(h *Header) { h.Parts[0].Ops = []Op{{N: h.Parts[0].Size, Hash: h40}} }, ErrBase},
		{"copy past the end", from, func(h *Header) {
			h.Parts[0].Ops = []Op{{N: h.Parts[0].Size, Hash: bHash, Off: 3}}
		}, ErrBase},
		{"dict past the end", from, func(h *Header) { h.Segments[0].Dict = []Range{{Hash: bHash, Off: 1, Len: 5}} }, ErrBase},
		{"orphan", from, func(h *Header) {
			h.Set = append(h.Set, tree.Entry{Path: "nodir/x", Kind: tree.KindSymlink, Target: "a"})
		}, ErrFormat},
	}
	if _, err := good.Target(from, Limits{}); err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := copyHeader(t, good)
			if tt.change != nil {
				tt.change(&h)
			}
			_, err := h.Target(tt.base, Limits{})
			if !errors.Is(err, tt.want) {
				t.Fatalf("Target: %v, want %v", err, tt.want)
			}
		})
	}
	if _, err := good.Target(from, Limits{MaxTotal: 4}); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Target above MaxTotal: %v", err)
	}
}

// rawPack assembles a pack without any checks: header h as compressed
// JSON, then each segment's compressed bytes chunked by chunkBytes.
func rawPack(t testing.TB, h Header, segments [][]byte) []byte {
	t.Helper()
	js, err := json.Marshal(&h)
	if err != nil {
		t.Fatal(err)
	}
	return rawPackJSON(t, js, segments)
}

func rawPackJSON(t testing.TB, js []byte, segments [][]byte) []byte {
	hdr := compress(t, js)
	out := []byte(Magic)
	out = append(out, FormatVersion)
	out = binary.BigEndian.AppendUint64(out, uint64(len(hdr)))
	out = append(out, hdr...)
	for _, p := range segments {
		out = append(out, chunkBytes(p)...)
	}
	return out
}

// chunkBytes frames compressed bytes as one segment: one chunk, terminator.
func chunkBytes(compressed []byte) []byte {
	var out []byte
	if len(compressed) > 0 {
		out = binary.BigEndian.AppendUint32(out, uint32(len(compressed)))
		out = append(out, compressed...)
	}
	return binary.BigEndian.AppendUint32(out, 0)
}

func compress(t testing.TB, b []byte) []byte {
	t.Helper()
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	return enc.EncodeAll(b, nil)
}

// fullHeader is the header of a full pack of files, one plain segment per
// part, for hand-made streams.
func fullHeader(t testing.TB, files map[string][]byte) (Header, store) {
	m, s := build(t, files)
	set, _ := Diff(nil, m)
	h := Header{Format: FormatVersion, Tree: "demo", To: m.Root(), Set: set, Remove: []string{}}
	for _, e := range m.Entries {
		if e.Kind == tree.KindFile && !slices.ContainsFunc(h.Parts, func(p Part) bool { return p.Hash == e.Hash }) {
			h.Parts = append(h.Parts, Part{Hash: e.Hash, Size: e.Size})
			if e.Size > 0 {
				h.Segments = append(h.Segments, Segment{Size: e.Size})
			}
		}
	}
	return h, s
}

func TestReaderRefusesBadStreams(t *testing.T) {
	m, s := build(t, map[string][]byte{"a": []byte("0123456789"), "b": randomBytes(7, 200_000)})
	good, _ := buildPack(t, nil, m, s)
	patch := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	hdrLen := int(binary.BigEndian.Uint64(good[5:13]))
	tests := []struct {
		name string
		data []byte
		want error
	}{
		{"empty", nil, ErrFormat},
		{"bad magic", patch(func(b []byte) []byte { b[0] = 'X'; return b }), ErrFormat},
		{"old version", patch(func(b []byte) []byte { b[4] = 1; return b }), ErrFormat},
		{"future version", patch(func(b []byte) []byte { b[4] = 9; return b }), ErrFormat},
		{"zero header", patch(func(b []byte) []byte { binary.BigEndian.PutUint64(b[5:], 0); return b }), ErrFormat},
		{"huge header length", patch(func(b []byte) []byte { binary.BigEndian.PutUint64(b[5:], 1<<62); return b }), ErrTooLarge},
		{"header not zstd", patch(func(b []byte) []byte { b[13] ^= 0xff; return b }), ErrFormat},
		{"truncated header", good[:13+hdrLen/2], ErrFormat},
		{"header not json", rawPackJSON(t, []byte("not json"), nil), ErrFormat},
		{"unknown field", rawPackJSON(t, []byte(`{"format":2,"bogus":1}`), nil), ErrFormat},
		{"trailing json", rawPackJSON(t, []byte(`{"format":2} {}`), nil), ErrFormat},
		{"truncated body", good[:len(good)-10], ErrFormat},
		{"trailing data", append(bytes.Clone(good), 0), ErrFormat},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := readAll(tt.data, Limits{}, nil, s)
			if !errors.Is(err, tt.want) {
				t.Fatalf("error %v, want %v", err, tt.want)
			}
		})
	}
	t.Run("corrupt body", func(t *testing.T) {
		_, _, err := readAll(patch(func(b []byte) []byte { b[len(b)-100] ^= 0xff; return b }), Limits{}, nil, s)
		if !errors.Is(err, ErrFormat) && !errors.Is(err, ErrHashMismatch) {
			t.Fatalf("error %v", err)
		}
	})
	t.Run("part above limit", func(t *testing.T) {
		_, _, err := readAll(good, Limits{MaxPartSize: 1000}, nil, s)
		if !errors.Is(err, ErrTooLarge) {
			t.Fatalf("error %v", err)
		}
	})
	t.Run("total above limit", func(t *testing.T) {
		_, _, err := readAll(good, Limits{MaxTotal: 100_000}, nil, s)
		if !errors.Is(err, ErrTooLarge) {
			t.Fatalf("error %v", err)
		}
	})
	t.Run("header above limit", func(t *testing.T) {
		_, _, err := readAll(good, Limits{MaxHeader: 50}, nil, s)
		if !errors.Is(err, ErrTooLarge) {
			t.Fatalf("error %v", err)
		}
	})
	t.Run("next before target", func(t *testing.T) {
		r, err := NewReader(bytes.NewReader(good), Limits{})
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := r.Next(); err == nil {
			t.Fatal("Next before Target succeeded")
		}
	})
}

func TestReaderDetectsWrongContent(t *testing.T) {
	h, _ := fullHeader(t, map[string][]byte{"a": []byte("the right content")})
	data := rawPack(t, h, [][]byte{compress(t, []byte("the wrong content"))})
	_, _, err := readAll(data, Limits{}, nil, nil)
	if !errors.Is(err, ErrHashMismatch) {
		t.Fatalf("error %v, want ErrHashMismatch", err)
	}
	short := rawPack(t, h, [][]byte{compress(t, []byte("short"))})
	if _, _, err := readAll(short, Limits{}, nil, nil); !errors.Is(err, ErrFormat) {
		t.Fatalf("short segment: %v, want ErrFormat", err)
	}
}

func TestZstdBomb(t *testing.T) {
	const declared = 10
	const actual = 10 << 20
	zeros := make([]byte, actual)
	smallWindow := func(t *testing.T) []byte {
		// A frame whose window fits the declared size: it passes the
		// window check and must be stopped by the byte count.
		var buf bytes.Buffer
		enc, err := zstd.NewWriter(&buf, zstd.WithEncoderConcurrency(1), zstd.WithWindowSize(zstd.MinWindowSize))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := enc.Write(zeros); err != nil {
			t.Fatal(err)
		}
		if err := enc.Close(); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	tests := []struct {
		name string
		bomb func(t *testing.T) []byte
	}{
		{"large window", func(t *testing.T) []byte { return compress(t, zeros) }},
		{"small window", smallWindow},
	}
	h, _ := fullHeader(t, map[string][]byte{"bomb": zeros[:declared]})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bomb := tt.bomb(t)
			if len(bomb) > 1<<20 {
				t.Fatalf("bomb compresses to %d bytes", len(bomb))
			}
			data := rawPack(t, h, [][]byte{bomb})
			r, err := NewReader(bytes.NewReader(data), Limits{})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := r.Target(nil, nil); err != nil {
				t.Fatal(err)
			}
			_, pr, err := r.Next()
			if err != nil {
				t.Fatal(err)
			}
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			n, err := io.Copy(io.Discard, pr)
			runtime.ReadMemStats(&after)
			if !errors.Is(err, ErrTooLarge) {
				t.Fatalf("error %v, want ErrTooLarge", err)
			}
			if n > declared {
				t.Fatalf("read %d bytes of a %d-byte part", n, declared)
			}
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 1<<20 {
				t.Fatalf("allocated %d bytes reading a bomb of %d", alloc, actual)
			}
			if _, _, err := r.Next(); !errors.Is(err, ErrTooLarge) {
				t.Fatalf("Next after the bomb: %v, want the sticky ErrTooLarge", err)
			}
		})
	}
}

func TestRatioLimit(t *testing.T) {
	zeros := make([]byte, 8<<20)
	h, s := fullHeader(t, map[string][]byte{"zeros": zeros})
	data, _ := buildPack(t, nil, mustTarget(t, h), s)
	if _, _, err := readAll(data, Limits{}, nil, s); err != nil {
		t.Fatalf("default limits refuse zeros: %v", err)
	}
	_, _, err := readAll(data, Limits{MaxRatio: 2}, nil, s)
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("ratio 2: %v, want ErrTooLarge", err)
	}
}

func mustTarget(t *testing.T, h Header) *tree.Manifest {
	t.Helper()
	m, err := h.Target(nil, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestCompressedSizeLimit(t *testing.T) {
	h, _ := fullHeader(t, map[string][]byte{"a": []byte("x")})
	data := rawPack(t, h, [][]byte{make([]byte, 1<<20)})
	_, _, err := readAll(data, Limits{}, nil, nil)
	if !errors.Is(err, ErrTooLarge) || !errors.Is(err, ErrFormat) {
		t.Fatalf("error %v, want ErrFormat and ErrTooLarge", err)
	}
}

func TestNextFinishesUnreadParts(t *testing.T) {
	m, s := build(t, sampleFiles())
	data, _ := buildPack(t, nil, m, s)
	r, err := NewReader(bytes.NewReader(data), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Target(nil, nil); err != nil {
		t.Fatal(err)
	}
	n := 0
	for {
		_, _, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	if n != 4 {
		t.Fatalf("%d parts", n)
	}
}

func BenchmarkBuild(b *testing.B) {
	m, s := benchTree(b)
	_, total := m.Totals()
	b.SetBytes(total)
	for b.Loop() {
		if _, err := Build(context.Background(), io.Discard, Options{Tree: "demo", To: m, TempDir: b.TempDir()}, s.open); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRead(b *testing.B) {
	m, s := benchTree(b)
	data, _ := buildPack(b, nil, m, s)
	_, total := m.Totals()
	b.SetBytes(total)
	for b.Loop() {
		if _, _, err := readAll(data, Limits{}, nil, s); err != nil {
			b.Fatal(err)
		}
	}
}

// benchTree is 32 files of 1 MiB, half random, half text-like.
func benchTree(b *testing.B) (*tree.Manifest, store) {
	files := map[string][]byte{}
	for i := range 32 {
		if i%2 == 0 {
			files[fmt.Sprintf("r%02d", i)] = randomBytes(uint64(i), 1<<20)
		} else {
			files[fmt.Sprintf("t%02d", i)] = text(uint64(i), 1<<20)
		}
	}
	return build(b, files)
}

func FuzzPackReader(f *testing.F) {
	from, s := build(f, map[string][]byte{"a": []byte("alpha"), "d/b": text(1, 3000), "e": nil})
	to, s2 := build(f, map[string][]byte{"a": []byte("alpha"), "d/b": text(2, 3000), "f": []byte("new")})
	for k, v := range s2 {
		s[k] = v
	}
	full, _ := buildPack(f, nil, from, s)
	delta, _ := buildPack(f, from, to, s)
	for _, good := range [][]byte{full, delta} {
		f.Add(good)
		f.Add(good[:len(good)/2])
	}
	f.Add([]byte(Magic))
	f.Add(rawPackJSON(f, []byte(`{"format":2}`), nil))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := NewReader(bytes.NewReader(data), Limits{MaxHeader: 1 << 20, MaxPartSize: 1 << 20})
		if err != nil {
			if !errors.Is(err, ErrFormat) {
				t.Fatalf("NewReader error %v does not wrap ErrFormat", err)
			}
			return
		}
		defer r.Close()
		h := r.Header()
		var base *tree.Manifest
		var open func(string) (ReaderAtCloser, error)
		if h.From != "" {
			base, open = from, s.base
		}
		m, err := r.Target(base, open)
		if err != nil {
			return
		}
		if m.Root() != h.To {
			t.Fatal("Target returned a manifest whose root is not To")
		}
		for range len(h.Parts) + 1 {
			p, pr, err := r.Next()
			if err != nil {
				return
			}
			b, err := io.ReadAll(pr)
			if err != nil {
				return
			}
			if int64(len(b)) != p.Size || hashOf(t, b) != p.Hash {
				t.Fatalf("part %s verified with wrong content", p.Hash)
			}
		}
		t.Fatal("Next did not end")
	})
}

// TestEncodersReusedAcrossBuilds: encoders come from pools shared by every
// Build, so nothing of one build may leak into the next: the same pair
// gives the same bytes after other builds, after a build that failed in
// the middle of a segment, and at every effort.
func TestEncodersReusedAcrossBuilds(t *testing.T) {
	from, to, s := pairs(t)
	first, _ := buildPackWith(t, from, to, s, EffortDefault)
	otherTo, other := build(t, map[string][]byte{"a.txt": text(20, 300<<10), "b.txt": text(21, 200<<10)})
	for _, effort := range []Effort{EffortBest, EffortDefault, EffortFast} {
		buildPackWith(t, nil, otherTo, other, effort) // no base
	}
	buildPackWith(t, to, from, s, EffortFast) // the other way
	// A build that stops at a content of the wrong size, mid-segment.
	bad := store{}
	for k, v := range s {
		bad[k] = v
	}
	for _, e := range to.Entries {
		if e.Kind == tree.KindFile && e.Size > 0 {
			bad[e.Hash] = s[e.Hash][:e.Size-1]
		}
	}
	if _, err := Build(context.Background(), io.Discard, Options{Tree: "demo", From: from, To: to, TempDir: t.TempDir()}, bad.open); !errors.Is(err, ErrHashMismatch) {
		t.Fatalf("Build with short contents: %v, want ErrHashMismatch", err)
	}
	again, _ := buildPackWith(t, from, to, s, EffortDefault)
	if !bytes.Equal(first, again) {
		t.Fatalf("the same pair built again after other builds: %d bytes, first %d", len(again), len(first))
	}
}
