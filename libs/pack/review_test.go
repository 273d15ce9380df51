package pack

import (
	"bytes"
	"errors"
	"io"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/pulpdist/pulpdist/libs/tree"
)

// TestSizeSumsDoNotOverflow feeds headers whose op lengths, segment sizes
// or dictionary lengths add up past int64 and wrap around to the declared
// totals: they must be refused, never read. Unchecked, ops that wrap make
// a part reader yield more bytes than the part's size, outside every
// limit on part and pack size.
func TestSizeSumsDoNotOverflow(t *testing.T) {
	t.Run("ops and segments", func(t *testing.T) {
		h, _ := fullHeader(t, map[string][]byte{"a": []byte("x")})
		// 1 + 2×MaxInt64 + 2 is 1 modulo 2⁶⁴, the part's size; four
		// segments of 2⁶² and one of 1 are 1 as well.
		h.Parts[0].Ops = []Op{{N: 1}, {N: math.MaxInt64}, {N: math.MaxInt64}, {N: 2}}
		h.Segments = []Segment{{Size: 1 << 62}, {Size: 1 << 62}, {Size: 1 << 62}, {Size: 1 << 62}, {Size: 1}}
		data := rawPack(t, h, [][]byte{compress(t, make([]byte, 2<<20))})
		r, err := NewReader(bytes.NewReader(data), Limits{})
		if err == nil {
			defer r.Close()
			if _, err := r.Target(nil, nil); err != nil {
				t.Fatal(err)
			}
			_, pr, err := r.Next()
			if err != nil {
				t.Fatal(err)
			}
			n, _ := io.Copy(io.Discard, pr)
			t.Fatalf("NewReader accepted ops that overflow; the part of %d bytes yielded %d", h.Parts[0].Size, n)
		}
		if !errors.Is(err, ErrFormat) {
			t.Fatalf("NewReader: %v, want ErrFormat", err)
		}
	})
	good, _, _ := header(t)
	h40 := strings.Repeat("ab", 32)
	tests := []struct {
		name   string
		change func(h *Header)
	}{
		{"ops", func(h *Header) {
			// Literal bytes and part size both wrap back to the size.
			h.Parts[0].Ops = []Op{{N: h.Parts[0].Size}, {N: math.MaxInt64}, {N: math.MaxInt64}, {N: 2}}
		}},
		{"segments", func(h *Header) {
			// The literal stream is the parts' size plus 2⁶⁴.
			h.Segments = append(h.Segments, Segment{Size: 1 << 62}, Segment{Size: 1 << 62}, Segment{Size: 1 << 62}, Segment{Size: 1 << 62})
		}},
		{"dictionary", func(h *Header) {
			h.Segments[0].Dict = []Range{{Hash: h40, Len: 1}, {Hash: h40, Len: math.MaxInt64}, {Hash: h40, Len: math.MaxInt64}, {Hash: h40, Len: 1}}
		}},
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

// withSet returns the manifest base minus remove with set laid over it,
// as Target computes it, without its checks.
func withSet(base *tree.Manifest, set []tree.Entry, remove []string) *tree.Manifest {
	out := &tree.Manifest{Format: tree.FormatVersion}
	for _, e := range base.Entries {
		if !slices.Contains(remove, e.Path) && !slices.ContainsFunc(set, func(s tree.Entry) bool { return s.Path == e.Path }) {
			out.Entries = append(out.Entries, e)
		}
	}
	out.Entries = append(out.Entries, set...)
	slices.SortFunc(out.Entries, func(a, b tree.Entry) int { return strings.Compare(a.Path, b.Path) })
	return out
}

// TestTargetRefusesContentOfAnotherSize checks that Validate or Target refuses a file
// entry whose size is not the size of the content its hash names, in the
// base or in the pack. A site builds such a file from that content, so the
// declared sizes, which MaxTotal bounds, would say nothing of what is
// written: a thousand entries of size 0 naming a large base file make a
// site copy it a thousand times before the final scan refuses the tree.
func TestTargetRefusesContentOfAnotherSize(t *testing.T) {
	good, from, _ := header(t)
	var bravo, charlie tree.Entry
	for _, e := range from.Entries {
		if e.Path == "b" {
			bravo = e
		}
	}
	for _, e := range good.Set {
		if e.Path == "c" {
			charlie = e
		}
	}
	tests := []struct {
		name string
		like tree.Entry
	}{
		{"base content", bravo},
		{"part content", charlie},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := copyHeader(t, good)
			// "0" sorts before "c", so the part still matches the
			// size of the last set entry with its hash.
			e := tt.like
			e.Path, e.Size = "0", 0
			h.Set = append([]tree.Entry{e}, h.Set...)
			h.To = withSet(from, h.Set, h.Remove).Root()
			err := h.Validate()
			if err == nil {
				_, err = h.Target(from, Limits{})
			}
			if !errors.Is(err, ErrFormat) {
				t.Fatalf("Validate and Target: %v, want ErrFormat", err)
			}
		})
	}
}

// frameWithWindow compresses content as a zstd frame without a content
// size, against dict if it is not nil, and rewrites its header to declare
// a window of 1 KiB << exp bytes.
func frameWithWindow(t *testing.T, content, dict []byte, exp byte) []byte {
	t.Helper()
	opts := []zstd.EOption{zstd.WithEncoderConcurrency(1), zstd.WithSingleSegment(false)}
	if dict != nil {
		opts = append(opts, zstd.WithEncoderDictRaw(0, dict))
	}
	var buf bytes.Buffer
	enc, err := zstd.NewWriter(&buf, opts...)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := enc.Write(content); err != nil {
		t.Fatal(err)
	}
	if err := enc.Close(); err != nil {
		t.Fatal(err)
	}
	frame := buf.Bytes()
	var hdr zstd.Header
	if err := hdr.Decode(frame); err != nil {
		t.Fatal(err)
	}
	if hdr.SingleSegment || hdr.HasFCS || hdr.DictionaryID != 0 {
		t.Fatalf("frame header %+v, want a window descriptor only", hdr)
	}
	// Magic, frame header descriptor, then the window descriptor:
	// exponent in the top five bits, mantissa 0.
	frame[5] = exp << 3
	if err := hdr.Decode(frame); err != nil || hdr.WindowSize != 1<<(10+uint(exp)) {
		t.Fatalf("patched frame header %+v, %v", hdr, err)
	}
	return frame
}

// TestDeclaredWindowAboveTheLimit checks that a frame declaring a window
// larger than its segment's size (plus its dictionary) needs is refused
// before the decoder allocates it, with a dictionary or without.
func TestDeclaredWindowAboveTheLimit(t *testing.T) {
	content := []byte("a small segment whose frame declares a large window")
	t.Run("plain", func(t *testing.T) {
		h, _ := fullHeader(t, map[string][]byte{"a": content})
		good := rawPack(t, h, [][]byte{frameWithWindow(t, content, nil, 0)})
		if _, _, err := readAll(good, Limits{}, nil, nil); err != nil {
			t.Fatalf("a window within the limit: %v", err)
		}
		data := rawPack(t, h, [][]byte{frameWithWindow(t, content, nil, 12)})
		if _, _, err := readAll(data, Limits{}, nil, nil); !errors.Is(err, ErrTooLarge) || !errors.Is(err, ErrFormat) {
			t.Fatalf("error %v, want ErrFormat and ErrTooLarge", err)
		}
	})
	t.Run("dictionary", func(t *testing.T) {
		dict := text(3, 4<<10)
		from, s := build(t, map[string][]byte{"d": dict})
		to, s2 := build(t, map[string][]byte{"d": dict, "a": content})
		s[hashOf(t, content)] = s2[hashOf(t, content)]
		set, remove := Diff(from, to)
		h := Header{Format: FormatVersion, Tree: "demo", From: from.Root(), To: to.Root(), Set: set, Remove: remove,
			Segments: []Segment{{Size: int64(len(content)), Dict: []Range{{Hash: hashOf(t, dict), Len: int64(len(dict))}}}},
			Parts:    []Part{{Hash: hashOf(t, content), Size: int64(len(content))}},
		}
		good := rawPack(t, h, [][]byte{frameWithWindow(t, content, dict, 3)})
		if _, _, err := readAll(good, Limits{}, from, s); err != nil {
			t.Fatalf("a window within the limit: %v", err)
		}
		data := rawPack(t, h, [][]byte{frameWithWindow(t, content, dict, 14)})
		if _, _, err := readAll(data, Limits{}, from, s); !errors.Is(err, ErrTooLarge) || !errors.Is(err, ErrFormat) {
			t.Fatalf("error %v, want ErrFormat and ErrTooLarge", err)
		}
	})
}

func TestHeaderInflationIsBounded(t *testing.T) {
	// A header of 8 MiB of tiny ops compresses to a few KB: refused
	// before the JSON decoder sees it.
	js := []byte(`{"format":2,"tree":"t","from":"","to":"` + strings.Repeat("ab", 32) + `","set":[],"remove":[],"segments":[],"parts":[{"hash":"x","size":1,"ops":[`)
	js = append(js, bytes.Repeat([]byte(`{"n":1},`), 1<<20)...)
	js = append(js, []byte(`{"n":1}]}]}`)...)
	data := rawPackJSON(t, js, nil)
	if len(data) > 100<<10 {
		t.Fatalf("test pack of %d bytes", len(data))
	}
	_, err := NewReader(bytes.NewReader(data), Limits{})
	if !errors.Is(err, ErrTooLarge) || !errors.Is(err, ErrFormat) {
		t.Fatalf("NewReader: %v, want ErrFormat and ErrTooLarge", err)
	}
}
