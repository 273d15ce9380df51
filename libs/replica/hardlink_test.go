//go:build linux

package replica

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/pulpdist/pulpdist/libs/tree"
)

// linkTree writes files (path → content, mode 0644, the fixed mtime) under
// a new directory named name, then hard-links each key of links to its
// value (new path → existing path).
func linkTree(t *testing.T, name string, files map[string][]byte, links map[string]string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), name)
	writeFiles(t, dir, files)
	for p, old := range links {
		mustDo(t, os.MkdirAll(filepath.Dir(filepath.Join(dir, p)), 0o755))
		mustDo(t, os.Link(filepath.Join(dir, old), filepath.Join(dir, p)))
	}
	return dir
}

// assertInodes checks that the paths under dir of each set share one inode
// and that no two sets share one.
func assertInodes(t *testing.T, dir string, sets ...[]string) {
	t.Helper()
	var firsts []os.FileInfo
	for _, set := range sets {
		var first os.FileInfo
		for _, p := range set {
			info, err := os.Lstat(filepath.Join(dir, p))
			mustDo(t, err)
			if first == nil {
				first = info
				for i, other := range firsts {
					if os.SameFile(first, other) {
						t.Errorf("%s shares an inode with %s", p, sets[i][0])
					}
				}
				firsts = append(firsts, first)
				continue
			}
			if !os.SameFile(first, info) {
				t.Errorf("%s is not a hard link of %s", p, set[0])
			}
		}
	}
}

// kindOf returns the kind and target of the entry of m at p.
func kindOf(t *testing.T, m *tree.Manifest, p string) string {
	t.Helper()
	for _, e := range m.Entries {
		if e.Path == p {
			if e.Kind == tree.KindHardlink {
				return "hardlink>" + e.Target
			}
			return string(e.Kind)
		}
	}
	t.Fatalf("no entry %q", p)
	return ""
}

func TestApplyReproducesHardlinkGroups(t *testing.T) {
	// Two groups and a separate file with one content, a group with its
	// own content whose leader sorts first but was not created first, and
	// two separate identical files.
	src := linkTree(t, "src", map[string][]byte{
		"x/a1":     []byte("shared content"),
		"x/b1":     []byte("shared content"),
		"x/c":      []byte("shared content"),
		"z/late":   []byte("a group of three"),
		"twin-1":   []byte("twins"),
		"twin-2":   []byte("twins"),
		"big/file": randomBytes(3, 200_000),
	}, map[string]string{
		"x/a2":       "x/a1",
		"y/b2":       "x/b1",
		"b-early":    "z/late",
		"big/linked": "big/file",
		"z/later":    "z/late",
	})
	full, m := packBytes(t, src, nil)
	if got := kindOf(t, m, "z/late"); got != "hardlink>b-early" {
		t.Fatalf("z/late is %s in the manifest, want a hardlink to b-early", got)
	}
	r, err := Open(t.TempDir(), 1)
	mustDo(t, err)
	st, err := r.Apply(context.Background(), reader(t, full))
	mustDo(t, err)
	assertServes(t, r, m)
	assertInodes(t, r.CurrentPath(),
		[]string{"x/a1", "x/a2"}, []string{"x/b1", "y/b2"}, []string{"x/c"},
		[]string{"b-early", "z/late", "z/later"}, []string{"twin-1"}, []string{"twin-2"},
		[]string{"big/file", "big/linked"})
	// Seven file entries, four contents from the pack, three copies;
	// five hardlink entries.
	if st.FilesWritten != 7 || st.FilesLinked != 0 || st.HardLinks != 5 {
		t.Fatalf("stats %+v", st)
	}
	if root, err := Verify(context.Background(), r.dir); err != nil || root != m.Root() {
		t.Fatalf("Verify = %s, %v", root, err)
	}
}

func TestApplySplitsAndJoinsHardlinkGroups(t *testing.T) {
	ctx := context.Background()
	files := map[string][]byte{
		"g/a":   []byte("group"),
		"g/b":   []byte("group"),
		"s1":    []byte("same"),
		"s2":    []byte("same"),
		"plain": []byte("plain"),
	}
	// v1: g/a, g/b and h one group; s1 and s2 separate.
	src1 := linkTree(t, "v1", map[string][]byte{"g/a": files["g/a"], "s1": files["s1"], "s2": files["s2"], "plain": files["plain"]},
		map[string]string{"g/b": "g/a", "h": "g/a"})
	// v2: g/b leaves the group as a file of the same content, mode and
	// mtime; s1 and s2 become a group.
	src2 := linkTree(t, "v2", map[string][]byte{"g/a": files["g/a"], "g/b": files["g/b"], "s1": files["s1"], "plain": files["plain"]},
		map[string]string{"h": "g/a", "s2": "s1"})
	full, m1 := packBytes(t, src1, nil)
	delta, m2 := packBytes(t, src2, m1)
	back, _ := packBytes(t, src1, m2)
	if m1.Root() == m2.Root() {
		t.Fatal("the trees have one root")
	}

	r, err := Open(t.TempDir(), 1)
	mustDo(t, err)
	_, err = r.Apply(ctx, reader(t, full))
	mustDo(t, err)
	assertServes(t, r, m1)
	v1dir := r.path(versionsDir, m1.Root())
	assertInodes(t, v1dir, []string{"g/a", "g/b", "h"}, []string{"s1"}, []string{"s2"}, []string{"plain"})

	st, err := r.Apply(ctx, reader(t, delta))
	mustDo(t, err)
	assertServes(t, r, m2)
	v2dir := r.path(versionsDir, m2.Root())
	assertInodes(t, v2dir, []string{"g/a", "h"}, []string{"g/b"}, []string{"s1", "s2"}, []string{"plain"})
	// g/a, s1 and plain are linked from v1, each to its own base file;
	// g/b had the group's inode in v1, which g/a took: it is a copy.
	if st.FilesLinked != 3 || st.FilesWritten != 1 || st.HardLinks != 2 {
		t.Fatalf("split and join stats %+v", st)
	}
	assertInodes(t, r.dir, []string{"versions/" + m1.Root() + "/g/a", "versions/" + m2.Root() + "/g/a"})
	// The held version is unchanged: links from the new version into its
	// inodes are outside its tree.
	if got := scan(t, v1dir).Root(); got != m1.Root() {
		t.Fatalf("v1 changed: root %s", got)
	}

	// And back: g/b rejoins the group, s2 leaves it.
	st, err = r.Apply(ctx, reader(t, back))
	mustDo(t, err)
	assertServes(t, r, m1)
	assertInodes(t, r.CurrentPath(), []string{"g/a", "g/b", "h"}, []string{"s1"}, []string{"s2"}, []string{"plain"})
	if st.FilesLinked != 3 || st.FilesWritten != 1 || st.HardLinks != 2 {
		t.Fatalf("back stats %+v", st)
	}
	if got := scan(t, v2dir).Root(); got != m2.Root() {
		t.Fatalf("v2 changed: root %s", got)
	}
}

// A version built before hardlink groups were recorded has its identical
// files linked together; a new version must not link two of its files to
// that one inode.
func TestApplyLinksNoBaseInodeTwice(t *testing.T) {
	ctx := context.Background()
	src1 := linkTree(t, "v1", map[string][]byte{"s1": []byte("same"), "s2": []byte("same"), "s3": []byte("same")}, nil)
	src2 := linkTree(t, "v2", map[string][]byte{"s1": []byte("same"), "s2": []byte("same"), "s3": []byte("same"), "new": []byte("new")}, nil)
	full, m1 := packBytes(t, src1, nil)
	delta, m2 := packBytes(t, src2, m1)
	r, err := Open(t.TempDir(), 1)
	mustDo(t, err)
	_, err = r.Apply(ctx, reader(t, full))
	mustDo(t, err)
	// What the older Apply built: s2 a hard link of s1 (s3 a copy).
	v1dir := r.path(versionsDir, m1.Root())
	mustDo(t, os.Remove(filepath.Join(v1dir, "s2")))
	mustDo(t, os.Link(filepath.Join(v1dir, "s1"), filepath.Join(v1dir, "s2")))

	st, err := r.Apply(ctx, reader(t, delta))
	mustDo(t, err)
	assertServes(t, r, m2)
	assertInodes(t, r.CurrentPath(), []string{"s1"}, []string{"s2"}, []string{"s3"}, []string{"new"})
	// s1 and s3 linked; s2, whose base file is s1's inode, copied.
	if st.FilesLinked != 2 || st.FilesWritten != 2 {
		t.Fatalf("stats %+v", st)
	}
}
