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

func hashOf(t testing.TB, b []byte) string {
	t.Helper()
	h, _, err := tree.HashReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// build returns the manifest of files (path → content, parent dirs added)
// and their content store.
func build(t testing.TB, files map[string][]byte) (*tree.Manifest, store) {
	t.Helper()
	m := &tree.Manifest{Format: tree.FormatVersion}
	s := store{}
	dirs := map[string]bool{}
	for p, c := range files {
		h := hashOf(t, c)
		s[h] = c
		m.Entries = append(m.Entries, tree.Entry{Path: p, Kind: tree.KindFile, Mode: 0o644, Size: int64(len(c)), MTime: 1e18, Hash: h})
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

// header returns a header carrying every distinct file content of m.
func header(m *tree.Manifest) Header {
	h := Header{Format: FormatVersion, Tree: "demo", To: m.Root(), Manifest: m}
	seen := map[string]bool{}
	for _, e := range m.Entries {
		if e.Kind == tree.KindFile && !seen[e.Hash] {
			seen[e.Hash] = true
			h.Parts = append(h.Parts, Part{Hash: e.Hash, Size: e.Size})
		}
	}
	return h
}

func randomBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func sampleFiles() map[string][]byte {
	return map[string][]byte{
		"empty":          {},
		"small.txt":      []byte("hello pack"),
		"dir/random.bin": randomBytes(1, 3<<20+17), // several chunks, incompressible
		"dir/zeros":      make([]byte, 5<<20),      // compressible
		"dir/sub/copy":   []byte("hello pack"),     // same content: one part
	}
}

func writePack(t testing.TB, h Header, s store) []byte {
	t.Helper()
	var buf bytes.Buffer
	n, err := Write(context.Background(), &buf, h, s.open)
	if err != nil {
		t.Fatal(err)
	}
	if n != int64(buf.Len()) {
		t.Fatalf("Write returned %d, wrote %d", n, buf.Len())
	}
	return buf.Bytes()
}

// readAll reads every part of the pack and returns their contents; the
// error is the first one met, nil only if the pack ended cleanly.
func readAll(data []byte, lim Limits) (Header, map[string][]byte, error) {
	r, err := NewReader(bytes.NewReader(data), lim)
	if err != nil {
		return Header{}, nil, err
	}
	defer r.Close()
	got := map[string][]byte{}
	for {
		p, pr, err := r.Next()
		if errors.Is(err, io.EOF) {
			return r.Header(), got, nil
		}
		if err != nil {
			return r.Header(), got, err
		}
		b, err := io.ReadAll(pr)
		if err != nil {
			return r.Header(), got, err
		}
		got[p.Hash] = b
	}
}

func TestRoundTrip(t *testing.T) {
	m, s := build(t, sampleFiles())
	h := header(m)
	if len(h.Parts) != 4 {
		t.Fatalf("want 4 distinct parts, got %d", len(h.Parts))
	}
	data := writePack(t, h, s)
	if len(data) > 4<<20 {
		t.Errorf("pack of %d bytes: zeros did not compress", len(data))
	}
	gotH, got, err := readAll(data, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if gotH.To != h.To || gotH.Tree != "demo" || gotH.Manifest.Root() != h.To || !slices.Equal(gotH.Parts, h.Parts) {
		t.Fatalf("header changed: %+v", gotH)
	}
	for hash, want := range s {
		if !bytes.Equal(got[hash], want) {
			t.Fatalf("part %s: %d bytes back, want %d", hash, len(got[hash]), len(want))
		}
	}
}

func TestDeltaHeaderAndNoParts(t *testing.T) {
	m, _ := build(t, map[string][]byte{"a": []byte("x")})
	h := Header{Format: FormatVersion, Tree: "t", From: strings.Repeat("1", 64), To: m.Root(), Manifest: m}
	data := writePack(t, h, store{})
	gotH, got, err := readAll(data, Limits{})
	if err != nil || len(got) != 0 || gotH.From != h.From {
		t.Fatalf("got %+v, %v, %v", gotH, got, err)
	}
}

func TestNextSkipsUnreadParts(t *testing.T) {
	m, s := build(t, sampleFiles())
	h := header(m)
	data := writePack(t, h, s)
	r, err := NewReader(bytes.NewReader(data), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ {
		p, pr, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		switch i % 3 {
		case 0: // read nothing
		case 1: // read a little
			if _, err := io.ReadFull(pr, make([]byte, min(p.Size, 3))); err != nil {
				t.Fatal(err)
			}
		case 2:
			b, err := io.ReadAll(pr)
			if err != nil || !bytes.Equal(b, s[p.Hash]) {
				t.Fatalf("part %d: %v", i, err)
			}
		}
		if i%3 != 2 {
			defer func() {
				if _, err := pr.Read(make([]byte, 1)); err == nil {
					t.Error("abandoned part reader still reads")
				}
			}()
		}
	}
}

func TestWriteRefusesWrongContent(t *testing.T) {
	m, s := build(t, map[string][]byte{"a": []byte("0123456789"), "b": []byte("other")})
	h := header(m)
	hashA := hashOf(t, []byte("0123456789"))
	tests := []struct {
		name    string
		content []byte
	}{
		{"same size other bytes", []byte("0123456788")},
		{"shorter", []byte("012345678")},
		{"longer", []byte("0123456789 and more")},
		{"empty", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bad := store{}
			for k, v := range s {
				bad[k] = v
			}
			bad[hashA] = tt.content
			_, err := Write(context.Background(), io.Discard, h, bad.open)
			if !errors.Is(err, ErrHashMismatch) {
				t.Fatalf("Write error %v, want ErrHashMismatch", err)
			}
		})
	}
	_, err := Write(context.Background(), io.Discard, h, store{}.open)
	if err == nil || !strings.Contains(err.Error(), "no content") {
		t.Fatalf("missing content: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Write(ctx, io.Discard, h, s.open); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled Write: %v", err)
	}
}

func TestHeaderValidate(t *testing.T) {
	m, _ := build(t, map[string][]byte{"a": []byte("aaa"), "d/b": []byte("bb")})
	good := header(m)
	other, _ := build(t, map[string][]byte{"z": []byte("zzz")})
	tests := []struct {
		name   string
		change func(h *Header)
		want   string
	}{
		{"format 0", func(h *Header) { h.Format = 0 }, "format"},
		{"format 2", func(h *Header) { h.Format = 2 }, "format"},
		{"no tree", func(h *Header) { h.Tree = "" }, "tree name"},
		{"long tree", func(h *Header) { h.Tree = strings.Repeat("t", 2000) }, "tree name"},
		{"bad from", func(h *Header) { h.From = "abc" }, "from"},
		{"bad to", func(h *Header) { h.To = "../../etc" }, "to"},
		{"to is not root", func(h *Header) { h.To = other.Root() }, "manifest root"},
		{"no manifest", func(h *Header) { h.Manifest = nil }, "no manifest"},
		{"invalid manifest", func(h *Header) {
			bad := *m
			bad.Entries = append([]tree.Entry{{Path: "../x", Kind: tree.KindDir}}, m.Entries...)
			h.Manifest = &bad
		}, "unsafe path"},
		{"unknown part", func(h *Header) { h.Parts = append(h.Parts, Part{Hash: strings.Repeat("e", 64), Size: 1}) }, "no file"},
		{"wrong size", func(h *Header) { h.Parts[0].Size++ }, "size"},
		{"duplicate part", func(h *Header) { h.Parts = append(h.Parts, h.Parts[0]) }, "duplicate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := good
			h.Parts = slices.Clone(good.Parts)
			tt.change(&h)
			err := h.Validate()
			if !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate error %v, want ErrFormat mentioning %q", err, tt.want)
			}
			if _, err := Write(context.Background(), io.Discard, h, store{}.open); !errors.Is(err, ErrFormat) {
				t.Fatalf("Write error %v, want ErrFormat", err)
			}
			// The same header forced onto the wire is refused by NewReader.
			_, err = NewReader(bytes.NewReader(rawPack(t, h, nil)), Limits{})
			if !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("NewReader error %v, want ErrFormat mentioning %q", err, tt.want)
			}
		})
	}
}

// rawPack assembles a pack without any checks: header h as JSON, then
// each part's compressed bytes chunked by chunkBytes.
func rawPack(t testing.TB, h Header, parts [][]byte) []byte {
	t.Helper()
	js, err := json.Marshal(&h)
	if err != nil {
		t.Fatal(err)
	}
	return rawPackJSON(js, parts)
}

func rawPackJSON(js []byte, parts [][]byte) []byte {
	out := []byte(Magic)
	out = append(out, FormatVersion)
	out = binary.BigEndian.AppendUint64(out, uint64(len(js)))
	out = append(out, js...)
	for _, p := range parts {
		out = append(out, chunkBytes(p)...)
	}
	return out
}

// chunkBytes frames compressed bytes as one part: one chunk, terminator.
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

func TestReaderRefusesBadStreams(t *testing.T) {
	m, s := build(t, map[string][]byte{"a": []byte("0123456789"), "b": randomBytes(7, 200_000)})
	h := header(m)
	good := writePack(t, h, s)
	patch := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	hdrLen := int(binary.BigEndian.Uint64(good[5:13]))
	tests := []struct {
		name string
		data []byte
		lim  Limits
		want []error
	}{
		{"empty", nil, Limits{}, []error{ErrFormat}},
		{"wrong magic", patch(func(b []byte) []byte { b[0] = 'X'; return b }), Limits{}, []error{ErrFormat}},
		{"format version 2", patch(func(b []byte) []byte { b[4] = 2; return b }), Limits{}, []error{ErrFormat}},
		{"format version 0", patch(func(b []byte) []byte { b[4] = 0; return b }), Limits{}, []error{ErrFormat}},
		{"zero header length", patch(func(b []byte) []byte { binary.BigEndian.PutUint64(b[5:], 0); return b }), Limits{}, []error{ErrFormat}},
		{"huge header length", patch(func(b []byte) []byte { binary.BigEndian.PutUint64(b[5:], 1<<62); return b }), Limits{}, []error{ErrFormat, ErrTooLarge}},
		{"header over limit", good, Limits{MaxHeader: int64(hdrLen - 1)}, []error{ErrFormat, ErrTooLarge}},
		{"part over limit", good, Limits{MaxPartSize: 100}, []error{ErrFormat, ErrTooLarge}},
		{"header not json", patch(func(b []byte) []byte { b[13] = '['; return b }), Limits{}, []error{ErrFormat}},
		{"trailing data", append(bytes.Clone(good), 0), Limits{}, []error{ErrFormat}},
		{"trailing part", append(bytes.Clone(good), chunkBytes(compress(t, []byte("x")))...), Limits{}, []error{ErrFormat}},
		{"corrupt part content", patch(func(b []byte) []byte {
			// Part b is incompressible, stored as raw zstd blocks: flip a
			// byte in its middle.
			b[len(b)-100_000] ^= 0x55
			return b
		}), Limits{}, []error{ErrHashMismatch}},
		{"huge chunk length", patch(func(b []byte) []byte {
			binary.BigEndian.PutUint32(b[13+hdrLen:], maxChunk+1)
			return b
		}), Limits{}, []error{ErrFormat}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := readAll(tt.data, tt.lim)
			if err == nil {
				t.Fatal("bad pack read without error")
			}
			for _, want := range tt.want {
				if !errors.Is(err, want) {
					t.Fatalf("error %v, want %v", err, want)
				}
			}
		})
	}
	if _, _, err := readAll(good, Limits{}); err != nil {
		t.Fatalf("good pack: %v", err)
	}
}

func TestReaderDetectsWrongContent(t *testing.T) {
	m, s := build(t, map[string][]byte{"a": []byte("0123456789"), "b": []byte("bbbb")})
	h := header(m)
	hashA := hashOf(t, []byte("0123456789"))
	tests := []struct {
		name    string
		content []byte
		want    error
	}{
		{"same size other bytes", []byte("0123456788"), ErrHashMismatch},
		{"shorter", []byte("012345678"), ErrFormat},
		{"longer", []byte("0123456789!"), ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bad := store{hashA: tt.content, hashOf(t, []byte("bbbb")): s[hashOf(t, []byte("bbbb"))]}
			var buf bytes.Buffer
			if _, err := write(context.Background(), &buf, h, bad.open, false); err != nil {
				t.Fatal(err)
			}
			_, got, err := readAll(buf.Bytes(), Limits{})
			if !errors.Is(err, tt.want) {
				t.Fatalf("error %v, want %v", err, tt.want)
			}
			if len(got) != 0 && h.Parts[0].Hash == hashA {
				t.Fatalf("parts after the bad one were returned: %d", len(got))
			}
		})
	}
}

func TestTruncatedPack(t *testing.T) {
	m, s := build(t, map[string][]byte{"a": []byte("alpha"), "b": randomBytes(3, 3000), "c": make([]byte, 4000)})
	data := writePack(t, header(m), s)
	for cut := range len(data) {
		if _, _, err := readAll(data[:cut], Limits{}); err == nil {
			t.Fatalf("pack cut at %d of %d bytes read without error", cut, len(data))
		}
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
	m, _ := build(t, map[string][]byte{"bomb": zeros[:declared]})
	h := header(m)
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

func TestCompressedSizeLimit(t *testing.T) {
	m, _ := build(t, map[string][]byte{"a": nil})
	h := header(m)
	// An empty part followed by 1 MiB of compressed bytes.
	data := rawPack(t, h, [][]byte{make([]byte, 1<<20)})
	_, _, err := readAll(data, Limits{})
	if !errors.Is(err, ErrTooLarge) || !errors.Is(err, ErrFormat) {
		t.Fatalf("error %v, want ErrFormat and ErrTooLarge", err)
	}
}

func BenchmarkWrite(b *testing.B) {
	m, s := benchTree(b)
	h := header(m)
	_, total := m.Totals()
	b.SetBytes(total)
	for b.Loop() {
		if _, err := Write(context.Background(), io.Discard, h, s.open); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRead(b *testing.B) {
	m, s := benchTree(b)
	data := writePack(b, header(m), s)
	_, total := m.Totals()
	b.SetBytes(total)
	for b.Loop() {
		r, err := NewReader(bytes.NewReader(data), Limits{})
		if err != nil {
			b.Fatal(err)
		}
		for {
			_, pr, err := r.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			if _, err := io.Copy(io.Discard, pr); err != nil {
				b.Fatal(err)
			}
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
			files[fmt.Sprintf("t%02d", i)] = bytes.Repeat(fmt.Appendf(nil, "line %d of some text file\n", i), (1<<20)/26)
		}
	}
	return build(b, files)
}

func FuzzPackReader(f *testing.F) {
	m, s := build(f, map[string][]byte{"a": []byte("alpha"), "d/b": []byte("bravo bravo bravo"), "e": nil})
	good := writePack(f, header(m), s)
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add([]byte(Magic))
	f.Add(rawPackJSON([]byte(`{"format":1}`), nil))
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
		if h.Manifest.Root() != h.To {
			t.Fatal("accepted a header whose To is not its root")
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
