package pack

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/pulpdist/pulpdist/libs/tree"
)

// withHardlinks returns m with hardlink entries added (path → leader),
// sorted.
func withHardlinks(t *testing.T, m *tree.Manifest, links map[string]string) *tree.Manifest {
	t.Helper()
	out := &tree.Manifest{Format: m.Format, Entries: slices.Clone(m.Entries)}
	for p, leader := range links {
		out.Entries = append(out.Entries, tree.Entry{Path: p, Kind: tree.KindHardlink, Target: leader})
	}
	slices.SortFunc(out.Entries, func(a, b tree.Entry) int { return strings.Compare(a.Path, b.Path) })
	if err := out.Validate(); err != nil {
		t.Fatal(err)
	}
	return out
}

// setOf returns the paths of the header's Set with their kinds.
func setOf(t *testing.T, data []byte) []string {
	t.Helper()
	_, h := headerOf(t, data)
	var out []string
	for _, e := range h.Set {
		out = append(out, e.Path+":"+string(e.Kind)+"@"+e.Target)
	}
	return out
}

// headerOf reads the header of a pack.
func headerOf(t *testing.T, data []byte) (*Reader, Header) {
	t.Helper()
	r, err := NewReader(bytes.NewReader(data), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return r, r.Header()
}

// Hardlink entries carry no content: a pack holds one part per content,
// whatever the groups, and a delta that only moves paths into or out of a
// group carries none.
func TestPackHardlinks(t *testing.T) {
	files, s := build(t, map[string][]byte{
		"data/a": []byte("alpha"),
		"data/b": []byte("bravo"),
		"data/c": []byte("alpha"),
		"big":    randomBytes(9, 5<<20),
	})
	// data/a leads data/x and z; big leads data/big-link.
	v1 := withHardlinks(t, files, map[string]string{"data/x": "data/a", "z": "data/a", "data/big-link": "big"})

	full, res := buildPack(t, nil, v1, s)
	got := checkApplies(t, full, nil, v1, s)
	if res.Parts != 3 || len(got) != 3 {
		t.Fatalf("%d parts written, %d read, want 3 (one per content)", res.Parts, len(got))
	}
	_, h := headerOf(t, full)
	for _, e := range h.Set {
		if e.Kind == tree.KindHardlink && (e.Hash != "" || e.Size != 0 || e.Mode != 0 || e.Target == "") {
			t.Fatalf("hardlink in set: %+v", e)
		}
	}

	// v2: data/x leaves the group as a file of the same content; data/c
	// joins it; z now links to a leader of other content.
	v2 := withHardlinks(t, &tree.Manifest{Format: tree.FormatVersion, Entries: slices.DeleteFunc(slices.Clone(files.Entries), func(e tree.Entry) bool {
		return e.Path == "data/c"
	})}, map[string]string{"data/c": "data/a", "z": "data/b", "data/big-link": "big"})
	x := files.Entries[slices.IndexFunc(files.Entries, func(e tree.Entry) bool { return e.Path == "data/a" })]
	x.Path = "data/x"
	v2.Entries = append(v2.Entries, x)
	slices.SortFunc(v2.Entries, func(a, b tree.Entry) int { return strings.Compare(a.Path, b.Path) })
	if err := v2.Validate(); err != nil {
		t.Fatal(err)
	}
	delta, res := buildPack(t, v1, v2, s)
	checkApplies(t, delta, v1, v2, s)
	if res.Parts != 0 || res.Segments != 0 {
		t.Fatalf("a delta of groups only carries %d parts, %d segments", res.Parts, res.Segments)
	}
	want := []string{"data/c:hardlink@data/a", "data/x:file@", "z:hardlink@data/b"}
	if got := setOf(t, delta); !slices.Equal(got, want) {
		t.Fatalf("set %v, want %v", got, want)
	}
	// And back.
	back, _ := buildPack(t, v2, v1, s)
	checkApplies(t, back, v2, v1, s)
}

func TestHardlinkHeaderChecks(t *testing.T) {
	good, from, _ := header(t) // from: a, b; to: a, c
	h40 := strings.Repeat("ab", 32)
	link := func(p, leader string) tree.Entry { return tree.Entry{Path: p, Kind: tree.KindHardlink, Target: leader} }
	tests := []struct {
		name   string
		change func(h *Header)
		// inValidate: Header.Validate refuses it on its own; else only
		// Target, which sees the whole target manifest.
		inValidate bool
	}{
		{"hardlink with a hash", func(h *Header) {
			e := link("d", "a")
			e.Hash = h40
			h.Set = append(h.Set, e)
		}, true},
		{"hardlink with a mode", func(h *Header) {
			e := link("d", "a")
			e.Mode = 0o644
			h.Set = append(h.Set, e)
		}, true},
		{"unsafe hardlink target", func(h *Header) { h.Set = append(h.Set, link("d", "../a")) }, true},
		{"hardlink to a removed path", func(h *Header) { h.Set = append(h.Set, link("d", "b")) }, false},
		{"hardlink to a missing path", func(h *Header) { h.Set = append(h.Set, link("d", "bb")) }, false},
		{"hardlink to a later path", func(h *Header) {
			h.Set = append(h.Set, link("d", "e"), tree.Entry{Path: "e", Kind: tree.KindFile, Mode: 0o644, Hash: h40})
		}, false},
		{"hardlink to a hardlink", func(h *Header) { h.Set = append(h.Set, link("d", "a"), link("e", "d")) }, false},
		{"part for a hardlink only", func(h *Header) {
			h.Set = append(h.Set, link("d", "a"))
			h.Parts = append(h.Parts, Part{Hash: h40, Size: 0})
		}, true},
	}
	if _, err := good.Target(from, Limits{}); err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := copyHeader(t, good)
			tt.change(&h)
			err := h.Validate()
			if tt.inValidate {
				if !errors.Is(err, ErrFormat) {
					t.Fatalf("Validate: %v, want ErrFormat", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Validate: %v", err)
			}
			if _, err := h.Target(from, Limits{}); !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), "hardlink target") {
				t.Fatalf("Target: %v, want ErrFormat about the hardlink target", err)
			}
		})
	}
}
