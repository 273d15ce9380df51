package bench

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pulpdist/pulpdist/libs/tree"
)

func TestParseScale(t *testing.T) {
	for _, name := range []string{"tiny", "small", "full"} {
		sc, err := ParseScale(name)
		if err != nil || sc.Name != name {
			t.Errorf("ParseScale(%q) = %q, %v", name, sc.Name, err)
		}
	}
	if sc, err := ParseScale(""); err != nil || sc.Name != "small" {
		t.Errorf(`ParseScale("") = %q, %v; want small`, sc.Name, err)
	}
	for _, bad := range []string{"Small", "huge", " small", "0", "full,small"} {
		_, err := ParseScale(bad)
		if err == nil || !strings.Contains(err.Error(), "PULPDIST_BENCH_SCALE") {
			t.Errorf("ParseScale(%q) = %v, want an error naming PULPDIST_BENCH_SCALE", bad, err)
		}
	}
}

func TestGenerateRefusesBadInput(t *testing.T) {
	dir := t.TempDir()
	tiny, err := ParseScale("tiny")
	if err != nil {
		t.Fatal(err)
	}
	empty := tiny
	empty.Large = nil
	if err := Generate(t.Context(), filepath.Join(dir, "a"), filepath.Join(dir, "b"), empty, 1); err == nil {
		t.Error("scale without large files accepted")
	}
	exists := filepath.Join(dir, "exists")
	if err := os.Mkdir(exists, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := Generate(t.Context(), exists, filepath.Join(dir, "b2"), tiny, 1); err == nil {
		t.Error("existing directory for A accepted")
	}
}

// scanBoth generates the tiny corpus with seed into a fresh directory and
// returns the manifests of A and B.
func scanBoth(t *testing.T, seed uint64) (a, b *tree.Manifest) {
	t.Helper()
	sc, err := ParseScale("tiny")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	da, db := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	if err := Generate(t.Context(), da, db, sc, seed); err != nil {
		t.Fatal(err)
	}
	if a, err = tree.Scan(t.Context(), da); err != nil {
		t.Fatal(err)
	}
	if b, err = tree.Scan(t.Context(), db); err != nil {
		t.Fatal(err)
	}
	return a, b
}

// TestGenerateDeterministic checks that a seed gives the same trees on
// every run, another seed other trees, and that B differs from A in each
// of the ways the benchmarks rely on.
func TestGenerateDeterministic(t *testing.T) {
	a1, b1 := scanBoth(t, 7)
	a2, b2 := scanBoth(t, 7)
	if a1.Root() != a2.Root() || b1.Root() != b2.Root() {
		t.Fatalf("seed 7 gave A %s then %s, B %s then %s", a1.Root(), a2.Root(), b1.Root(), b2.Root())
	}
	a3, _ := scanBoth(t, 8)
	if a3.Root() == a1.Root() {
		t.Fatal("seeds 7 and 8 gave the same A")
	}
	if a1.Root() == b1.Root() {
		t.Fatal("A and B are the same tree")
	}

	inA := make(map[string]tree.Entry)
	hashesA := make(map[string]bool)
	for _, e := range a1.Entries {
		inA[e.Path] = e
		hashesA[e.Hash] = true
	}
	var edited, added, moved, modeOnly, retargeted, links, grownLogs, editedLarge int
	for _, e := range b1.Entries {
		old, ok := inA[e.Path]
		switch {
		case e.Kind == tree.KindSymlink:
			links++
			if ok && old.Target != e.Target {
				retargeted++
			}
		case e.Kind != tree.KindFile:
		case !ok && hashesA[e.Hash]:
			moved++
		case !ok:
			added++
		case old.Hash != e.Hash:
			edited++
			if strings.HasPrefix(e.Path, "logs/") && e.Size > old.Size {
				grownLogs++
			}
			if strings.HasPrefix(e.Path, "images/") {
				editedLarge++
			}
		case old.Mode != e.Mode:
			modeOnly++
		}
	}
	deleted := 0
	for _, e := range a1.Entries {
		if !hasPath(b1, e.Path) {
			deleted++
		}
	}
	for name, n := range map[string]int{"edited": edited, "added": added, "moved unchanged": moved,
		"mode changed": modeOnly, "deleted": deleted, "symlinks": links, "retargeted links": retargeted,
		"grown logs": grownLogs, "edited large files": editedLarge} {
		if n == 0 {
			t.Errorf("no %s files in B", name)
		}
	}
}

func hasPath(m *tree.Manifest, p string) bool {
	for _, e := range m.Entries {
		if e.Path == p {
			return true
		}
	}
	return false
}

func TestApplyEdits(t *testing.T) {
	src := []byte("0123456789")
	edits := sortEdits([]edit{
		{off: 8, del: 2},                    // removal at the end
		{off: 2, del: 2, ins: []byte("ab")}, // overwrite
		{off: 2, ins: []byte("+")},          // insertion before the overwrite
		{off: 3, del: 1, ins: []byte("x")},  // inside the overwrite: dropped
		{off: 5, del: 1, ins: []byte("LONG")},
	})
	got, err := applyEditsBytes(src, edits)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != "01+ab4LONG67" {
		t.Fatalf("got %q", got)
	}
	if _, err := applyEditsBytes(src, []edit{{off: 9, del: 5}}); err == nil {
		t.Fatal("edit past the end accepted")
	}
}
