package replica

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestVerify(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	if _, err := Verify(ctx, dir); err == nil || !strings.Contains(err.Error(), "no current version") {
		t.Fatalf("Verify of an empty directory: %v", err)
	}
	r, err := Open(dir, 1)
	mustDo(t, err)
	data, m := packBytes(t, v1(t), nil)
	_, err = r.Apply(ctx, reader(t, data))
	mustDo(t, err)
	before := snapshot(t, r)
	root, err := Verify(ctx, dir)
	if err != nil || root != m.Root() {
		t.Fatalf("Verify = %s, %v; want %s", root, err, m.Root())
	}
	// Verify only reads: a leftover in staging/ stays.
	leftover := filepath.Join(dir, stagingDir, "in-progress")
	mustDo(t, os.Mkdir(leftover, 0o755))
	served := r.path(versionsDir, m.Root())

	tamper := []struct {
		name string
		do   func(t *testing.T)
		want string
	}{
		{"content", func(t *testing.T) {
			p := filepath.Join(served, "sub/b.txt")
			mustDo(t, os.WriteFile(p, []byte("BRAVO"), 0o644))
			mustDo(t, os.Chtimes(p, mtime, mtime))
		}, `"sub/b.txt" is a file`},
		{"extra file", func(t *testing.T) {
			mustDo(t, os.WriteFile(filepath.Join(served, "sub/zz"), nil, 0o644))
		}, `"sub/zz" is unexpected`},
		{"removed file", func(t *testing.T) {
			mustDo(t, os.Remove(filepath.Join(served, "data/again")))
		}, `"data/again" is missing`},
		{"symlink", func(t *testing.T) {
			mustDo(t, os.Remove(filepath.Join(served, "link")))
			mustDo(t, os.Symlink("elsewhere", filepath.Join(served, "link")))
		}, `"link" is a symlink to "elsewhere", want a symlink to "a.txt"`},
	}
	for _, tt := range tamper {
		t.Run(tt.name, func(t *testing.T) {
			saved := filepath.Join(t.TempDir(), "saved")
			copyTree(t, served, saved)
			t.Cleanup(func() {
				mustDo(t, removeAll(served))
				copyTree(t, saved, served)
			})
			tt.do(t)
			_, err := Verify(ctx, dir)
			if !errors.Is(err, ErrVerify) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Verify after tampering: %v, want %s", err, tt.want)
			}
		})
	}
	if _, err := os.Stat(leftover); err != nil {
		t.Fatalf("Verify touched staging/: %v", err)
	}
	mustDo(t, os.Remove(leftover))
	if after := snapshot(t, r); after != before {
		t.Fatalf("replica changed:\n%s\n%s", before, after)
	}

	mustDo(t, os.Remove(filepath.Join(dir, manifestsDir, m.Root()+".json")))
	if _, err := Verify(ctx, dir); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Verify without a stored manifest: %v", err)
	}
}

// TestHeld: the versions a replica holds are read without changing
// anything; a version directory without its manifest (an apply cut short)
// is not one of them, and stays for Open to remove.
func TestHeld(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	r, err := Open(dir, 2)
	mustDo(t, err)
	if cur, held, err := Held(dir); err != nil || cur != "" || len(held) != 0 {
		t.Fatalf("Held of an empty replica = %q, %v, %v", cur, held, err)
	}
	one := v1(t)
	data, m1 := packBytes(t, one, nil)
	_, err = r.Apply(ctx, reader(t, data))
	mustDo(t, err)
	data, m2 := packBytes(t, v2(t, one), m1)
	_, err = r.Apply(ctx, reader(t, data))
	mustDo(t, err)
	cut := r.path(versionsDir, strings.Repeat("a", 64))
	mustDo(t, os.Mkdir(cut, 0o755))
	before := snapshot(t, r)
	cur, held, err := Held(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{m1.Root(), m2.Root()}
	slices.Sort(want)
	if cur != m2.Root() || !slices.Equal(held, want) {
		t.Errorf("Held = %s, %v; want %s, %v", cur, held, m2.Root(), want)
	}
	if after := snapshot(t, r); after != before {
		t.Errorf("Held changed the replica:\n%s\n%s", before, after)
	}
	if _, _, err := Held(filepath.Join(dir, "nothing")); err == nil {
		t.Error("Held of a missing directory succeeded")
	}
}
