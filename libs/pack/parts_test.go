package pack

import (
	"slices"
	"testing"
)

func TestParts(t *testing.T) {
	from, _ := build(t, map[string][]byte{
		"a":     []byte("alpha"),
		"b":     []byte("bravo"),
		"dir/c": []byte("charlie"),
	})
	to, _ := build(t, map[string][]byte{
		"a":       []byte("alpha"),   // unchanged
		"renamed": []byte("bravo"),   // known content under a new name
		"x":       []byte("x-ray"),   // new
		"y/one":   []byte("twice"),   // new, twice: once in the parts
		"y/two":   []byte("twice"),   // (path order: y/one first)
		"z":       []byte("charlie"), // known content, moved
	})
	want := []Part{
		{Hash: hashOf(t, []byte("x-ray")), Size: 5},
		{Hash: hashOf(t, []byte("twice")), Size: 5},
	}
	if got := Parts(from, to); !slices.Equal(got, want) {
		t.Fatalf("Parts(from, to) = %v, want %v", got, want)
	}
	full := Parts(nil, to)
	if len(full) != 5 {
		t.Fatalf("Parts(nil, to) has %d parts, want the 5 distinct contents: %v", len(full), full)
	}
	h := Header{Format: FormatVersion, Tree: "t", To: to.Root(), Manifest: to, Parts: full}
	if err := h.Validate(); err != nil {
		t.Fatalf("a full pack's parts do not validate: %v", err)
	}
	if got := Parts(to, to); len(got) != 0 {
		t.Fatalf("Parts(to, to) = %v, want none", got)
	}
}
