package tree

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/zeebo/blake3"
)

// pseudoRandom returns n bytes of the BLAKE3 output stream keyed by seed:
// incompressible, and reproducible by any BLAKE3 implementation.
func pseudoRandom(t testing.TB, seed string, n int) []byte {
	t.Helper()
	h := blake3.New()
	_, _ = h.WriteString(seed) // a hash never fails
	b := make([]byte, n)
	if _, err := io.ReadFull(h.Digest(), b); err != nil {
		t.Fatal(err)
	}
	return b
}

// jitterReader returns reads of pseudo-random sizes from 1 to max bytes.
type jitterReader struct {
	r   io.Reader
	rnd *rand.Rand
	max int
}

func (j *jitterReader) Read(p []byte) (int, error) {
	n := 1 + j.rnd.IntN(j.max)
	if len(p) > n {
		p = p[:n]
	}
	return j.r.Read(p)
}

// hashChunksOf runs HashChunks over r and fails the test on an error.
func hashChunksOf(t testing.TB, r io.Reader) (string, int64, []Chunk) {
	t.Helper()
	h, n, chunks, err := HashChunks(r)
	if err != nil {
		t.Fatal(err)
	}
	return h, n, chunks
}

// checkChunksCover checks that chunks are valid for data and that each
// hash is the hash of the bytes at its offset.
func checkChunksCover(t testing.TB, data []byte, chunks []Chunk) {
	t.Helper()
	if err := validateChunks(int64(len(data)), chunks); err != nil {
		t.Fatal(err)
	}
	e := Entry{Chunks: chunks}
	for i, off := range e.ChunkOffsets() {
		sum := blake3.Sum256(data[off : off+chunks[i].Size])
		if chunks[i].Hash != hex.EncodeToString(sum[:]) {
			t.Fatalf("chunk %d at %d: hash is not the hash of its bytes", i, off)
		}
	}
}

func TestHashChunksIgnoresReadSizes(t *testing.T) {
	data := pseudoRandom(t, "read sizes", 6<<20+12345)
	wantHash, wantN, want := hashChunksOf(t, bytes.NewReader(data))
	if fileHash, _, _ := HashReader(bytes.NewReader(data)); wantHash != fileHash || wantN != int64(len(data)) {
		t.Fatalf("hash %s, %d bytes; want %s, %d", wantHash, wantN, fileHash, len(data))
	}
	if len(want) < 10 {
		t.Fatalf("only %d chunks for %d bytes", len(want), len(data))
	}
	checkChunksCover(t, data, want)

	readers := map[string]func() io.Reader{
		"half":     func() io.Reader { return iotest.HalfReader(bytes.NewReader(data)) },
		"data+EOF": func() io.Reader { return iotest.DataErrReader(bytes.NewReader(data)) },
		"jitter 1..300k": func() io.Reader {
			return &jitterReader{r: bytes.NewReader(data), rnd: rand.New(rand.NewPCG(1, 2)), max: 300 << 10}
		},
		"jitter 1..100": func() io.Reader {
			return &jitterReader{r: bytes.NewReader(data), rnd: rand.New(rand.NewPCG(3, 4)), max: 100}
		},
	}
	for name, r := range readers {
		t.Run(name, func(t *testing.T) {
			h, n, got := hashChunksOf(t, r())
			if h != wantHash || n != wantN || !slices.Equal(got, want) {
				t.Fatalf("%d chunks, hash %s; want %d chunks, %s", len(got), h, len(want), wantHash)
			}
		})
	}
	// One byte at a time, on a prefix (a full run is slow under -race): the
	// chunks that end well before the prefix's end are the same.
	prefix := data[:3<<20]
	_, _, got := hashChunksOf(t, iotest.OneByteReader(bytes.NewReader(prefix)))
	_, _, direct := hashChunksOf(t, bytes.NewReader(prefix))
	if !slices.Equal(got, direct) {
		t.Fatal("one-byte reads give other chunks")
	}
	var off int64
	for i := 0; off+want[i].Size <= int64(len(prefix))-ChunkMaxSize; i++ {
		if got[i] != want[i] {
			t.Fatalf("chunk %d of the prefix differs from the whole input's", i)
		}
		off += want[i].Size
	}
}

func TestHashChunksEdgeCases(t *testing.T) {
	if h, n, chunks := hashChunksOf(t, strings.NewReader("")); n != 0 || chunks != nil || h != hashOf(t, "") {
		t.Fatalf("empty input: %s, %d, %v", h, n, chunks)
	}
	// Repetitive input never matches the mask: every chunk is ChunkMaxSize.
	zeros := make([]byte, 3*ChunkMaxSize+5)
	_, _, chunks := hashChunksOf(t, bytes.NewReader(zeros))
	want := []int64{ChunkMaxSize, ChunkMaxSize, ChunkMaxSize, 5}
	var got []int64
	for _, c := range chunks {
		got = append(got, c.Size)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("chunk sizes of zeros %v, want %v", got, want)
	}
	// A read error stops hashing and is returned.
	boom := errors.New("disk on fire")
	r := io.MultiReader(bytes.NewReader(zeros), iotest.ErrReader(boom))
	if _, _, _, err := HashChunks(r); !errors.Is(err, boom) {
		t.Fatalf("read error: %v", err)
	}
}

// TestChunksGolden pins the chunks of a fixed input: a change means the
// chunker (library version, algorithm or sizes) cuts elsewhere, which is a
// format change (docs/adr/0002-content-defined-chunks.md).
func TestChunksGolden(t *testing.T) {
	const seed = "pulpdist chunk golden"
	data := pseudoRandom(t, seed, 5<<20)
	_, _, chunks := hashChunksOf(t, bytes.NewReader(data))
	var got bytes.Buffer
	fmt.Fprintf(&got, "# %s min=%d avg=%d max=%d: size and BLAKE3 of each chunk of the first %d bytes of the BLAKE3 output of %q\n",
		ChunkAlgorithm, ChunkMinSize, ChunkAvgSize, ChunkMaxSize, len(data), seed)
	for _, c := range chunks {
		fmt.Fprintf(&got, "%d %s\n", c.Size, c.Hash)
	}
	path := filepath.Join("testdata", "golden.chunks.txt")
	if *update {
		if err := os.WriteFile(path, got.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create)", err)
	}
	if !bytes.Equal(got.Bytes(), want) {
		t.Fatalf("chunks changed:\n got %s\nwant %s", got.Bytes(), want)
	}
}

// writeFile writes data to dir/name with a fixed old mtime.
func writeFile(t testing.TB, dir, name string, data []byte) {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	mtime := time.Unix(1_700_000_000, 0)
	if err := os.Chtimes(p, mtime, mtime); err != nil {
		t.Fatal(err)
	}
}

func TestScanChunksLargeFiles(t *testing.T) {
	dir := t.TempDir()
	big := pseudoRandom(t, "scan", 9<<20)
	files := map[string][]byte{
		"below":   big[:ChunkThreshold-1],
		"at":      big[:ChunkThreshold],
		"big":     big,
		"small":   []byte("small"),
		"zero":    nil,
		"similar": append(bytes.Clone(big[:ChunkThreshold]), 'x'),
	}
	for name, data := range files {
		writeFile(t, dir, name, data)
	}
	first := scan(t, dir)
	second := scan(t, dir)
	if !reflect.DeepEqual(first, second) {
		t.Fatal("two scans differ")
	}
	for _, e := range first.Entries {
		data := files[e.Path]
		if int64(len(data)) < ChunkThreshold {
			if e.Chunks != nil {
				t.Errorf("%s (%d bytes) has chunks", e.Path, len(data))
			}
			continue
		}
		if len(e.Chunks) < 2 {
			t.Fatalf("%s (%d bytes) has %d chunks", e.Path, len(data), len(e.Chunks))
		}
		checkChunksCover(t, data, e.Chunks)
		if _, _, want := hashChunksOf(t, bytes.NewReader(data)); !slices.Equal(e.Chunks, want) {
			t.Errorf("%s: scan and HashChunks disagree", e.Path)
		}
	}
}

// sharedChunks counts the chunks of b whose hash is also a chunk of a, and
// the bytes they cover.
func sharedChunks(a, b []Chunk) (n int, bytes int64) {
	have := make(map[string]bool, len(a))
	for _, c := range a {
		have[c.Hash] = true
	}
	for _, c := range b {
		if have[c.Hash] {
			n++
			bytes += c.Size
		}
	}
	return n, bytes
}

func TestChunksSurviveEdits(t *testing.T) {
	orig := pseudoRandom(t, "edits", 8<<20)
	mid := len(orig) / 2
	edits := map[string][]byte{
		"byte changed":                append(append(bytes.Clone(orig[:mid]), orig[mid]^0xff), orig[mid+1:]...),
		"byte inserted":               append(append(bytes.Clone(orig[:mid]), 0x42), orig[mid:]...),
		"byte deleted":                append(bytes.Clone(orig[:mid]), orig[mid+1:]...),
		"4 KiB inserted at the start": append(pseudoRandom(t, "prefix", 4096), orig...),
	}
	dir := t.TempDir()
	writeFile(t, dir, "orig", orig)
	for name, data := range edits {
		writeFile(t, dir, name, data)
	}
	m := scan(t, dir)
	before := m.Entries[entryIndex(t, m, "orig")].Chunks
	for name, data := range edits {
		t.Run(name, func(t *testing.T) {
			after := m.Entries[entryIndex(t, m, name)].Chunks
			n, nbytes := sharedChunks(before, after)
			// The edit changes the chunk it falls in and at most the next
			// one or two; everything else is found again.
			if n == len(after) || n < len(after)-3 {
				t.Fatalf("%d of %d chunks shared", n, len(after))
			}
			if nbytes < int64(len(data))-3*ChunkMaxSize {
				t.Fatalf("only %d of %d bytes in shared chunks", nbytes, len(data))
			}
		})
	}
}

func TestChunkOffsets(t *testing.T) {
	e := Entry{Chunks: []Chunk{{Size: 10}, {Size: 5}, {Size: 7}}}
	if got := e.ChunkOffsets(); !slices.Equal(got, []int64{0, 10, 15}) {
		t.Fatalf("offsets %v", got)
	}
	if got := (&Entry{}).ChunkOffsets(); got != nil {
		t.Fatalf("no chunks: %v", got)
	}
}

// chunkedFile is a valid file entry of ChunkThreshold+1 bytes with five
// chunks, the last one byte long.
func chunkedFile(p string) Entry {
	var chunks []Chunk
	for i := range 4 {
		chunks = append(chunks, Chunk{Size: ChunkMaxSize, Hash: strings.Repeat(fmt.Sprintf("%02x", i), 32)})
	}
	chunks = append(chunks, Chunk{Size: 1, Hash: strings.Repeat("ee", 32)})
	return Entry{Path: p, Kind: KindFile, Mode: 0o644, Size: ChunkThreshold + 1, MTime: 7, Hash: strings.Repeat("cd", 32), Chunks: chunks}
}

func TestValidateAcceptsChunks(t *testing.T) {
	ok := []Entry{
		chunkedFile("chunked"),
		{Path: "large without chunks", Kind: KindFile, Size: 1 << 40, Hash: strings.Repeat("ab", 32)},
		{Path: "minimum chunks", Kind: KindFile, Size: ChunkThreshold, Hash: strings.Repeat("ab", 32),
			Chunks: slices.Repeat([]Chunk{{Size: ChunkMinSize, Hash: strings.Repeat("ab", 32)}}, ChunkThreshold/ChunkMinSize)},
	}
	m := &Manifest{Format: FormatVersion, Entries: ok}
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestRootIgnoresChunks(t *testing.T) {
	with := &Manifest{Format: FormatVersion, Entries: []Entry{chunkedFile("f")}}
	without := &Manifest{Format: FormatVersion, Entries: []Entry{chunkedFile("f")}}
	without.Entries[0].Chunks = nil
	if with.Root() != without.Root() {
		t.Fatal("chunks change the root")
	}
	if !with.Entries[0].Equivalent(&without.Entries[0]) {
		t.Fatal("Equivalent sees the chunks")
	}
	other := chunkedFile("f")
	other.MTime++
	if with.Entries[0].Equivalent(&other) {
		t.Fatal("Equivalent misses an mtime change")
	}
}

func TestChunksJSONRoundTrip(t *testing.T) {
	m := &Manifest{Format: FormatVersion, Entries: []Entry{
		chunkedFile("a"),
		{Path: "b", Kind: KindFile, Mode: 0o600, Size: 3, Hash: strings.Repeat("ab", 32)},
		{Path: "c", Kind: KindDir, Mode: 0o755},
	}}
	var js bytes.Buffer
	if err := Encode(&js, m); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(js.String(), `"chunks":`); n != 1 {
		t.Fatalf("%d chunk lists in %s", n, js.String())
	}
	if !strings.Contains(js.String(), `"chunks":[{"size":1048576,"hash":"0000`) {
		t.Fatalf("chunk spelling: %s", js.String())
	}
	back, err := Decode(&js)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, m) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", back.Entries, m.Entries)
	}
	// A scanned manifest with chunks round-trips too.
	dir := t.TempDir()
	writeFile(t, dir, "big", pseudoRandom(t, "json", 5<<20))
	scanned := scan(t, dir)
	js.Reset()
	if err := Encode(&js, scanned); err != nil {
		t.Fatal(err)
	}
	if back, err := Decode(&js); err != nil || !reflect.DeepEqual(back, scanned) {
		t.Fatalf("scanned round trip: %v", err)
	}
	// An empty or null list decodes as no chunks.
	for _, list := range []string{`[]`, `null`} {
		in := `{"format":1,"entries":[{"path":"a","kind":"file","mode":420,"size":5,"hash":"` + strings.Repeat("ab", 32) + `","chunks":` + list + `}]}`
		got, err := Decode(strings.NewReader(in))
		if err != nil || got.Entries[0].Chunks != nil {
			t.Fatalf("chunks %s: %v, %v", list, got, err)
		}
	}
}

func TestWireEntryMatchesEntry(t *testing.T) {
	fields := func(typ reflect.Type) []string {
		var out []string
		for i := range typ.NumField() {
			f := typ.Field(i)
			tag, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			under := f.Type
			if under.Kind() == reflect.Slice {
				under = reflect.SliceOf(under.Elem()) // chunkList is []Chunk
			}
			out = append(out, f.Name+" "+tag+" "+under.String())
		}
		return out
	}
	if e, w := fields(reflect.TypeFor[Entry]()), fields(reflect.TypeFor[wireEntry]()); !slices.Equal(e, w) {
		t.Fatalf("wireEntry differs from Entry:\n%v\n%v", w, e)
	}
}

func TestDecodeRefusesBadChunks(t *testing.T) {
	h := strings.Repeat("ab", 32)
	entry := func(chunks string) string {
		return `{"format":1,"entries":[{"path":"a","kind":"file","mode":420,"size":5000000,"hash":"` + h + `","chunks":` + chunks + `}]}`
	}
	tests := []struct{ name, in, wantErr string }{
		{"empty object", entry(`[{}]`), "chunk 0: size 0"},
		{"unknown chunk field", entry(`[{"size":1,"hash":"` + h + `","offset":0}]`), "unknown field"},
		{"not an array", entry(`{"size":1}`), "not an array"},
		{"a string", entry(`"abc"`), "chunks"},
		{"size as string", entry(`[{"size":"1","hash":"` + h + `"}]`), "chunk 0"},
		{"negative size", entry(`[{"size":-1,"hash":"` + h + `"}]`), "size -1"},
		{"huge size", entry(`[{"size":9223372036854775807,"hash":"` + h + `"}]`), "outside"},
		{"bad hash in the second chunk", entry(`[{"size":1,"hash":"` + h + `"},{"size":1,"hash":"AB"}]`), "chunk 1: hash"},
		{"sum short", entry(`[{"size":1,"hash":"` + h + `"}]`), "add up to 1"},
		{"repeated format", `{"format":1,"format":1,"entries":[]}`, "repeated field"},
		{"repeated entries", `{"format":1,"entries":[],"entries":[]}`, "repeated field"},
		{"entries not an array", `{"format":1,"entries":{}}`, "not an array"},
		{"format in capitals", `{"Format":1,"entries":[]}`, "unknown field"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Decode(strings.NewReader(tt.in))
			if m != nil || !errors.Is(err, ErrInvalidManifest) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Decode = %v, %v; want ErrInvalidManifest mentioning %q", m, err, tt.wantErr)
			}
		})
	}
}

// allocatedBy returns the bytes allocated while f ran (the package's tests
// do not run in parallel).
func allocatedBy(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestDecodeBoundsMemory feeds Decode lists of empty objects, the cheapest
// JSON for a struct: decoded whole, each 3 bytes would cost an Entry or a
// Chunk (over 100 or 24 bytes, doubled while the slice grows). Decode
// refuses them at the first element instead.
func TestDecodeBoundsMemory(t *testing.T) {
	const n = 2 << 20
	objects := strings.TrimSuffix(strings.Repeat("{},", n), ",")
	h := strings.Repeat("ab", 32)
	inputs := map[string]string{
		"entries": `{"format":1,"entries":[` + objects + `]}`,
		"chunks":  `{"format":1,"entries":[{"path":"a","kind":"file","mode":420,"size":5000000,"hash":"` + h + `","chunks":[` + objects + `]}]}`,
	}
	for name, in := range inputs {
		t.Run(name, func(t *testing.T) {
			var err error
			alloc := allocatedBy(func() { _, err = Decode(strings.NewReader(in)) })
			if !errors.Is(err, ErrInvalidManifest) {
				t.Fatalf("Decode: %v", err)
			}
			if limit := uint64(4 * len(in)); alloc > limit {
				t.Fatalf("Decode of %d bytes allocated %d bytes, more than %d", len(in), alloc, limit)
			}
		})
	}
}

// BenchmarkScanChunked scans a tree holding one 256 MiB file with no stat
// cache: the file is read once, hashed whole and chunked.
func BenchmarkScanChunked(b *testing.B) {
	const size = 256 << 20
	dir := b.TempDir()
	writeFile(b, dir, "big", pseudoRandom(b, "bench", size))
	b.SetBytes(size)
	for b.Loop() {
		m, err := Scan(b.Context(), dir)
		if err != nil {
			b.Fatal(err)
		}
		if len(m.Entries[0].Chunks) < size/ChunkMaxSize {
			b.Fatalf("%d chunks", len(m.Entries[0].Chunks))
		}
	}
}

// BenchmarkScanUnchunked is BenchmarkScanChunked for a file just below
// ChunkThreshold, repeated to the same 256 MiB: the cost of hashing alone.
func BenchmarkScanUnchunked(b *testing.B) {
	const files = 64
	dir := b.TempDir()
	data := pseudoRandom(b, "bench", ChunkThreshold-1)
	for i := range files {
		data[0] = byte(i)
		writeFile(b, dir, fmt.Sprintf("f%02d", i), data)
	}
	b.SetBytes(files * int64(len(data)))
	for b.Loop() {
		if _, err := Scan(b.Context(), dir); err != nil {
			b.Fatal(err)
		}
	}
}
