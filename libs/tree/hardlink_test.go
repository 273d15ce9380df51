//go:build linux

package tree

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// link hard-links old to new, both under dir.
func link(t testing.TB, dir, old, new string) {
	t.Helper()
	if err := os.Link(filepath.Join(dir, old), filepath.Join(dir, new)); err != nil {
		t.Fatal(err)
	}
}

// kinds spells the entries of m as "path:kind" or "path:hardlink>target".
func kinds(m *Manifest) string {
	var b strings.Builder
	for _, e := range m.Entries {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(e.Path + ":" + string(e.Kind))
		if e.Kind == KindHardlink {
			b.WriteString(">" + e.Target)
		}
	}
	return b.String()
}

// writeLinkedSample is writeSample plus a hard link group of three paths
// (sub/b.txt, sub/deep/b2, z-b; the leader sorts first, not walks first)
// and a file with a second link outside the tree.
func writeLinkedSample(t testing.TB) (dir, outside string) {
	t.Helper()
	base := t.TempDir()
	dir = filepath.Join(base, "tree")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	writeSample(t, dir)
	link(t, dir, "sub/b.txt", "z-b")
	link(t, dir, "sub/b.txt", "sub/deep/b2")
	outside = filepath.Join(base, "outside")
	if err := os.Link(filepath.Join(dir, "a-b"), outside); err != nil {
		t.Fatal(err)
	}
	return dir, outside
}

func TestScanRecordsHardlinkGroups(t *testing.T) {
	dir, _ := writeLinkedSample(t)
	m := scan(t, dir)
	// a.txt and copy.txt have the same content, mode and mtime but are two
	// inodes: two files. a-b has a second link outside the tree: a file.
	want := "a-b:file a.txt:file copy.txt:file empty:file emptydir:dir link:symlink sub:dir sub/b.txt:file " +
		"sub/dangling:symlink sub/deep:dir sub/deep/b2:hardlink>sub/b.txt sub/deep/c.sh:file z-b:hardlink>sub/b.txt"
	if got := kinds(m); got != want {
		t.Fatalf("entries:\n got %s\nwant %s", got, want)
	}
	leader := m.Entries[entryIndex(t, m, "sub/b.txt")]
	if leader.Hash != hashOf(t, "bravo") || leader.Size != 5 || leader.Mode != 0o644 {
		t.Fatalf("leader = %+v", leader)
	}
	for _, p := range []string{"z-b", "sub/deep/b2"} {
		if e := m.Entries[entryIndex(t, m, p)]; e.Mode != 0 || e.Size != 0 || e.MTime != 0 || e.Hash != "" || e.Chunks != nil {
			t.Errorf("member %s carries fields: %+v", p, e)
		}
	}
	if files, _ := m.Totals(); files != 6 {
		t.Errorf("Totals counts %d files, want 6 (members are not files)", files)
	}

	// The JSON form round-trips.
	var js bytes.Buffer
	if err := Encode(&js, m); err != nil {
		t.Fatal(err)
	}
	back, err := Decode(&js)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, m) {
		t.Fatal("manifest changed through Encode/Decode")
	}
}

func TestScanHardlinkRootChanges(t *testing.T) {
	dir := t.TempDir()
	writeSample(t, dir)
	separate := scan(t, dir).Root()
	// copy.txt and a.txt agree on content, mode and mtime: only the
	// shared inode tells the trees apart.
	if err := os.Remove(filepath.Join(dir, "copy.txt")); err != nil {
		t.Fatal(err)
	}
	link(t, dir, "a.txt", "copy.txt")
	m := scan(t, dir)
	if e := m.Entries[entryIndex(t, m, "copy.txt")]; e.Kind != KindHardlink || e.Target != "a.txt" {
		t.Fatalf("copy.txt = %+v", e)
	}
	if m.Root() == separate {
		t.Fatal("a hard link group has the root of two separate files")
	}
	// The group from the other side: another leader, another root.
	if err := os.Remove(filepath.Join(dir, "a.txt")); err != nil {
		t.Fatal(err)
	}
	link(t, dir, "copy.txt", "a.txt")
	if got := scan(t, dir).Root(); got != m.Root() {
		t.Fatal("which path was linked first changed the root")
	}
}

func TestScanHardlinkFilter(t *testing.T) {
	dir, _ := writeLinkedSample(t)
	tests := []struct {
		name  string
		rules []string
		want  string // the group's entries
	}{
		{"leader excluded", []string{"- /sub/b.txt"}, "sub/deep/b2:file z-b:hardlink>sub/deep/b2"},
		{"leader's dir excluded", []string{"- /sub/"}, "z-b:file"},
		{"member excluded", []string{"- /z-b"}, "sub/b.txt:file sub/deep/b2:hardlink>sub/b.txt"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := scanFiltered(t, dir, tt.rules)
			group := &Manifest{}
			for _, e := range m.Entries {
				if e.Path == "sub/b.txt" || e.Path == "sub/deep/b2" || e.Path == "z-b" {
					group.Entries = append(group.Entries, e)
				}
			}
			if got := kinds(group); got != tt.want {
				t.Fatalf("group:\n got %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestStatCacheHardlinks(t *testing.T) {
	dir, _ := writeLinkedSample(t)
	files, _ := scan(t, dir).Totals()

	// Members are neither looked up nor hashed nor remembered: the
	// leader stands for the group.
	c := warmCache(t, dir, files)

	// Breaking the group: the former member is a new file (hashed), the
	// leader's ctime moved with its link count (hashed again).
	leader := filepath.Join(dir, "sub/b.txt")
	changeUntilCtimeMoves(t, leader, ctimeOf(t, leader), func() {
		if err := os.Remove(filepath.Join(dir, "z-b")); err != nil {
			t.Fatal(err)
		}
		link(t, dir, "sub/b.txt", "z-b")
	})
	if err := os.Remove(filepath.Join(dir, "z-b")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "z-b"), []byte("bravo"), 0o644); err != nil {
		t.Fatal(err)
	}
	m := scanCached(t, dir, c, later)
	assertStats(t, c, files-1, 2)
	if e := m.Entries[entryIndex(t, m, "z-b")]; e.Kind != KindFile || e.Hash != hashOf(t, "bravo") {
		t.Fatalf("z-b = %+v", e)
	}
}
