package pack

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/pulpdist/pulpdist/libs/tree"
)

// chunkStore serves contents as pulpdist's content store holds them:
// small contents whole, large ones as chunks (whole too when whole is
// set), and counts the bytes it serves per hash.
type chunkStore struct {
	s      store
	mu     sync.Mutex
	served map[string]int64
}

func newChunkStore(t *testing.T, s store, whole bool, manifests ...*tree.Manifest) *chunkStore {
	t.Helper()
	cs := &chunkStore{s: store{}, served: map[string]int64{}}
	for k, v := range s {
		cs.s[k] = v
	}
	for _, m := range manifests {
		for _, e := range m.Entries {
			if len(e.Chunks) == 0 {
				continue
			}
			content := s[e.Hash]
			for i, off := range e.ChunkOffsets() {
				cs.s[e.Chunks[i].Hash] = content[off : off+e.Chunks[i].Size]
			}
			if !whole {
				delete(cs.s, e.Hash)
			}
		}
	}
	return cs
}

func (cs *chunkStore) open(_ context.Context, hash string) (io.ReadCloser, error) {
	b, ok := cs.s[hash]
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrNotStored, hash)
	}
	cs.mu.Lock()
	cs.served[hash] += int64(len(b))
	cs.mu.Unlock()
	return io.NopCloser(bytes.NewReader(b)), nil
}

func (cs *chunkStore) total() int64 {
	var n int64
	for _, v := range cs.served {
		n += v
	}
	return n
}

// chunkedPairs is pairs with a new large file that has no base.
func chunkedPairs(t *testing.T) (from, to *tree.Manifest, s store) {
	from, to, s = pairs(t)
	fresh, fs := build(t, map[string][]byte{"fresh.img": randomBytes(11, 5<<20)})
	to = &tree.Manifest{Format: tree.FormatVersion, Entries: slices.Concat(to.Entries, fresh.Entries)}
	slices.SortFunc(to.Entries, func(a, b tree.Entry) int { return strings.Compare(a.Path, b.Path) })
	for k, v := range fs {
		s[k] = v
	}
	return from, to, s
}

// TestChunkedSource: from a store holding large contents as chunks, Build
// writes the very pack it writes from whole contents, reading of the large
// files only the chunks it carries and the base bytes around them; a store
// holding them whole (one filled before chunks were stored) gives the same
// pack too.
func TestChunkedSource(t *testing.T) {
	from, to, s := chunkedPairs(t)
	var large int64 // the large contents' bytes, base and target
	for _, m := range []*tree.Manifest{from, to} {
		for _, e := range m.Entries {
			if len(e.Chunks) > 0 {
				large += e.Size
			}
		}
	}
	for _, tc := range []struct {
		effort Effort
		full   bool
	}{{EffortBest, false}, {EffortDefault, false}, {EffortDefault, true}, {EffortFast, false}} {
		effort, full := tc.effort, tc.full
		{
			t.Run(fmt.Sprintf("%s/full=%v", effort, full), func(t *testing.T) {
				base := from
				if full {
					base = nil
				}
				pack := func(src Source, chunked bool) []byte {
					var buf bytes.Buffer
					if _, err := Build(t.Context(), &buf, Options{Tree: "demo", From: base, To: to, TempDir: t.TempDir(), Effort: effort, Chunked: chunked}, src); err != nil {
						t.Fatal(err)
					}
					return buf.Bytes()
				}
				want := pack(s.open, false)
				chunks := newChunkStore(t, s, false, from, to)
				if got := pack(chunks.open, true); !bytes.Equal(got, want) {
					t.Fatalf("from chunks: a pack of %d bytes, from whole contents %d", len(got), len(want))
				}
				checkApplies(t, want, base, to, s)
				if !full && effort != EffortBest && chunks.total() > large/2 {
					t.Errorf("read %d bytes from chunks, for %d bytes of large contents: the unchanged chunks too", chunks.total(), large)
				}
				if effort == EffortBest {
					return // the slowest builds (both encodings of the image); the fallback is the same code at every effort
				}
				wholeOnly := newChunkStore(t, s, true)
				if got := pack(wholeOnly.open, true); !bytes.Equal(got, want) {
					t.Fatalf("from whole contents, chunked source: a pack of %d bytes, want %d", len(got), len(want))
				}
			})
		}
	}
}

// TestChunkedSourceRefusesWrongChunks: a chunk of the wrong bytes, or
// longer or shorter than its manifest says, fails the build; so does a
// large content stored neither whole nor as chunks.
func TestChunkedSourceRefusesWrongChunks(t *testing.T) {
	from, to, s := chunkedPairs(t)
	var big tree.Entry
	for _, e := range to.Entries {
		if e.Path == "big.img" {
			big = e
		}
	}
	// The edited chunks: those the base lacks.
	baseChunks := map[string]bool{}
	for _, e := range from.Entries {
		for _, c := range e.Chunks {
			baseChunks[c.Hash] = true
		}
	}
	var edited string
	for _, c := range big.Chunks {
		if !baseChunks[c.Hash] {
			edited = c.Hash
			break
		}
	}
	if edited == "" {
		t.Fatal("the edited large file shares every chunk with its base")
	}
	for _, tc := range []struct {
		name   string
		tamper func(cs *chunkStore)
	}{
		{"flipped byte", func(cs *chunkStore) { c := slices.Clone(cs.s[edited]); c[0] ^= 1; cs.s[edited] = c }},
		{"longer", func(cs *chunkStore) { cs.s[edited] = append(slices.Clone(cs.s[edited]), 'x') }},
		{"shorter", func(cs *chunkStore) { cs.s[edited] = cs.s[edited][:len(cs.s[edited])-1] }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, effort := range []Effort{EffortBest, EffortDefault} {
				cs := newChunkStore(t, s, false, from, to)
				tc.tamper(cs)
				_, err := Build(t.Context(), io.Discard, Options{Tree: "demo", From: from, To: to, TempDir: t.TempDir(), Effort: effort, Chunked: true}, cs.open)
				if !errors.Is(err, ErrHashMismatch) {
					t.Fatalf("%s: Build = %v, want ErrHashMismatch", effort, err)
				}
			}
		})
	}
	cs := newChunkStore(t, s, false, from, to)
	delete(cs.s, edited)
	_, err := Build(t.Context(), io.Discard, Options{Tree: "demo", From: from, To: to, TempDir: t.TempDir(), Effort: EffortDefault, Chunked: true}, cs.open)
	if !errors.Is(err, ErrNotStored) || !strings.Contains(err.Error(), big.Hash) {
		t.Fatalf("Build without a chunk or the whole content = %v, want ErrNotStored naming %s", err, big.Hash)
	}
}
