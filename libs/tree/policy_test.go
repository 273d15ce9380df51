package tree

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestProtected(t *testing.T) {
	p, err := NewProtector([]string{"/local/", "*.conf", "/keep/this"})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		path string
		dir  bool
		want bool
	}{
		{"local", true, true},
		{"local/a/b.txt", false, true}, // below a protected directory
		{"local", false, false},        // "/local/" names directories only
		{"x/local/a", false, false},    // anchored
		{"etc/app.conf", false, true},
		{"keep/this", false, true},
		{"keep/that", false, false},
		{"keep", true, false},
		{"other.txt", false, false},
	} {
		if got := p.Protected(c.path, c.dir); got != c.want {
			t.Errorf("Protected(%q, dir=%v) = %v, want %v", c.path, c.dir, got, c.want)
		}
	}
	var none *Protector
	if none.Protected("anything", false) {
		t.Error("a nil Protector protects")
	}
	if _, err := NewProtector([]string{"[z-a]"}); err == nil {
		t.Error("a bad pattern compiled")
	}
	if _, err := NewProtector([]string{""}); err == nil {
		t.Error("an empty pattern compiled")
	}
}

func scanOf(t *testing.T, files map[string]string) *Manifest {
	t.Helper()
	dir := t.TempDir()
	for p, body := range files {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	m, err := Scan(t.Context(), dir)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestDeleted(t *testing.T) {
	prev := scanOf(t, map[string]string{"a": "1", "b/c": "2", "b/d": "3", "e": "4"})
	next := scanOf(t, map[string]string{"a": "1", "b/d": "changed", "f": "5"})
	if got, want := Deleted(prev, next), []string{"b/c", "e"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Deleted = %q, want %q", got, want)
	}
	if got := Deleted(next, next); len(got) != 0 {
		t.Errorf("Deleted of a manifest from itself = %q", got)
	}
}

func TestKeepProtected(t *testing.T) {
	prev := scanOf(t, map[string]string{
		"app/bin":           "binary",
		"local/site/a.txt":  "site-only",
		"local/site/b.txt":  "site-only too",
		"etc/deep/app.conf": "conf",
		"etc/other":         "x",
		"gone":              "y",
		"clash/x.conf":      "clash",
	})
	next := scanOf(t, map[string]string{
		"app/bin":  "binary v2",
		"local/n":  "new in local", // local/ still there, local/site/ gone
		"new.txt":  "new",
		"clash":    "now a file", // a file where a protected file's parent was
		"etc/keep": "keep",
	})
	p, err := NewProtector([]string{"/local/", "*.conf"})
	if err != nil {
		t.Fatal(err)
	}
	out, kept, err := KeepProtected(prev, next, p)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"etc/deep/app.conf", "local/site", "local/site/a.txt", "local/site/b.txt"}; !reflect.DeepEqual(kept, want) {
		t.Errorf("kept %q, want %q", kept, want)
	}
	if got, want := entryPaths(out), []string{
		"app", "app/bin", "clash", "etc", "etc/deep", "etc/deep/app.conf", "etc/keep",
		"local", "local/n", "local/site", "local/site/a.txt", "local/site/b.txt", "new.txt",
	}; !reflect.DeepEqual(got, want) {
		t.Errorf("entries %q, want %q", got, want)
	}
	if err := out.Validate(); err != nil {
		t.Fatal(err)
	}
	if len(next.Entries) != 8 {
		t.Errorf("next was modified: %d entries", len(next.Entries))
	}
	if out.Root() == next.Root() {
		t.Error("the kept entries do not change the root")
	}
	// Nothing to keep: next itself.
	same, kept, err := KeepProtected(next, next, p)
	if err != nil || same != next || kept != nil {
		t.Errorf("KeepProtected(next, next) = %p %q %v, want next itself", same, kept, err)
	}
	if same, _, _ := KeepProtected(prev, next, nil); same != next {
		t.Error("no protector changed the manifest")
	}
}

func TestKeepProtectedHardlink(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "a", []byte("shared"))
	link(t, dir, "a", "keep.lnk")
	prev, err := Scan(t.Context(), dir)
	if err != nil {
		t.Fatal(err)
	}
	next := scanOf(t, map[string]string{"b": "other"})
	p, err := NewProtector([]string{"*.lnk"})
	if err != nil {
		t.Fatal(err)
	}
	out, kept, err := KeepProtected(prev, next, p)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(kept, []string{"keep.lnk"}) {
		t.Fatalf("kept %q", kept)
	}
	for _, e := range out.Entries {
		if e.Path == "keep.lnk" && (e.Kind != KindFile || e.Hash != hashOf(t, "shared")) {
			t.Errorf("kept hard link is %+v, want a file with its leader's content", e)
		}
	}
}
