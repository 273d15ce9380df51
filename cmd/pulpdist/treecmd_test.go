package main

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pulpdist/pulpdist/libs/pack"
	"github.com/pulpdist/pulpdist/libs/replica"
	"github.com/pulpdist/pulpdist/libs/tree"
)

// runCLI runs the pulpdist command line with args and returns its output.
func runCLI(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	root := newRoot(&out, &out)
	root.SetArgs(args)
	err := root.ExecuteContext(t.Context())
	return out.String(), err
}

// mustCLI is runCLI that fails the test on error.
func mustCLI(t *testing.T, args ...string) string {
	t.Helper()
	out, err := runCLI(t, args...)
	if err != nil {
		t.Fatalf("pulpdist %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// writeTree creates files (path → content) under dir.
func writeTree(t *testing.T, dir string, files map[string][]byte) {
	t.Helper()
	at := time.Unix(1_700_000_000, 0)
	for p, c := range files {
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, c, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(full, at, at); err != nil {
			t.Fatal(err)
		}
	}
}

func noise(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 2))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func scanRoot(t *testing.T, dir string) string {
	t.Helper()
	m, err := tree.Scan(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	return m.Root()
}

// treeVersions writes two versions of a tree: old, and new with a changed,
// an added (large, last in path order), a renamed and a deleted file.
func treeVersions(t *testing.T) (old, new string) {
	t.Helper()
	base := t.TempDir()
	old, new = filepath.Join(base, "old"), filepath.Join(base, "new")
	files := map[string][]byte{
		"README":        []byte("readme\n"),
		"docs/guide":    []byte("guide v1\n"),
		"docs/gone":     []byte("deleted in new\n"),
		"docs/moved":    []byte("renamed in new\n"),
		"data/same.bin": noise(1, 50_000),
	}
	writeTree(t, old, files)
	if err := os.Symlink("docs/guide", filepath.Join(old, "guide")); err != nil {
		t.Fatal(err)
	}
	delete(files, "docs/gone")
	delete(files, "docs/moved")
	files["docs/renamed"] = []byte("renamed in new\n")
	files["docs/guide"] = []byte("guide v2\n")
	files["zz/big.bin"] = noise(2, 200_000)
	writeTree(t, new, files)
	if err := os.Symlink("docs/guide", filepath.Join(new, "guide")); err != nil {
		t.Fatal(err)
	}
	return old, new
}

func TestSnapshot(t *testing.T) {
	old, _ := treeVersions(t)
	want := scanRoot(t, old)
	out := mustCLI(t, "snapshot", old)
	if strings.TrimSpace(out) != want {
		t.Fatalf("snapshot printed %q, want %s", out, want)
	}
	manifest := filepath.Join(t.TempDir(), "m.json")
	mustCLI(t, "snapshot", old, "-o", manifest)
	f, err := os.Open(manifest)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, err := tree.Decode(f)
	if err != nil || m.Root() != want {
		t.Fatalf("written manifest: %v (root %v), want %s", err, m, want)
	}
	if _, err := runCLI(t, "snapshot", filepath.Join(t.TempDir(), "nope")); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Fatalf("snapshot of a missing directory: %v", err)
	}
	if _, err := runCLI(t, "snapshot"); err == nil {
		t.Fatal("snapshot without a directory accepted")
	}
}

func TestPackApplyVerify(t *testing.T) {
	old, new := treeVersions(t)
	work := t.TempDir()
	full, delta := filepath.Join(work, "full.pack"), filepath.Join(work, "delta.pack")
	site := filepath.Join(work, "site")

	out := mustCLI(t, "pack", old, "-o", full, "--tree", "demo")
	if !strings.Contains(out, scanRoot(t, old)) || !strings.Contains(out, "bytes") {
		t.Fatalf("pack output %q names neither the root nor the size", out)
	}
	mustCLI(t, "apply", full, "--root", site)
	if out := mustCLI(t, "verify", "--root", site); !strings.Contains(out, scanRoot(t, old)) {
		t.Fatalf("verify output %q", out)
	}
	if got := scanRoot(t, filepath.Join(site, "current")); got != scanRoot(t, old) {
		t.Fatalf("served %s, want the old version", got)
	}

	mustCLI(t, "pack", "--from", old, new, "-o", delta, "--tree", "demo")
	// The delta carries the changed and new content only: the big file and
	// the new guide, not the unchanged 50 kB file nor the renamed one.
	f, err := os.Open(delta)
	if err != nil {
		t.Fatal(err)
	}
	pr, err := pack.NewReader(f, pack.Limits{})
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	if h := pr.Header(); len(h.Parts) != 2 || h.From != scanRoot(t, old) || h.To != scanRoot(t, new) || h.Tree != "demo" {
		t.Fatalf("delta header: from %s to %s tree %q, %d parts", h.From, h.To, h.Tree, len(h.Parts))
	}
	mustCLI(t, "apply", delta, "--root", site)
	mustCLI(t, "verify", "--root", site)
	if got := scanRoot(t, filepath.Join(site, "current")); got != scanRoot(t, new) {
		t.Fatalf("served %s, want the new version %s", got, scanRoot(t, new))
	}
	// Applying the served version again is a no-op that succeeds.
	mustCLI(t, "apply", delta, "--root", site)

	// The delta on a replica at the wrong base is refused.
	other := filepath.Join(work, "other")
	mustCLI(t, "apply", full, "--root", other)
	if _, err := runCLI(t, "apply", delta, "--root", filepath.Join(work, "empty")); !errors.Is(err, replica.ErrBaseMismatch) {
		t.Fatalf("delta on an empty replica: %v", err)
	}
	mustCLI(t, "apply", delta, "--root", other) // right base: fine

	// Tampering with a served file is found and named.
	served := filepath.Join(site, "current", "docs", "guide")
	if err := os.Chmod(served, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := runCLI(t, "verify", "--root", site); !errors.Is(err, replica.ErrVerify) || !strings.Contains(err.Error(), `"docs/guide"`) {
		t.Fatalf("verify after tampering: %v", err)
	}
}

func TestApplyRefusesCorruptPack(t *testing.T) {
	old, new := treeVersions(t)
	work := t.TempDir()
	full, delta := filepath.Join(work, "full.pack"), filepath.Join(work, "delta.pack")
	site := filepath.Join(work, "site")
	mustCLI(t, "pack", old, "-o", full)
	mustCLI(t, "pack", "--from", old, new, "-o", delta)
	mustCLI(t, "apply", full, "--root", site)

	data, err := os.ReadFile(delta)
	if err != nil {
		t.Fatal(err)
	}
	// zz/big.bin is incompressible and the last part: a byte flipped near
	// the end of the stream corrupts its content.
	data[len(data)-5000] ^= 0xff
	corrupt := filepath.Join(work, "corrupt.pack")
	if err := os.WriteFile(corrupt, data, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = runCLI(t, "apply", corrupt, "--root", site)
	if !errors.Is(err, pack.ErrHashMismatch) && !errors.Is(err, pack.ErrFormat) {
		t.Fatalf("apply of a corrupt pack: %v", err)
	}
	if strings.Contains(err.Error(), "\n") {
		t.Fatalf("error is not one line: %q", err)
	}
	if got := scanRoot(t, filepath.Join(site, "current")); got != scanRoot(t, old) {
		t.Fatalf("served %s after a refused pack, want the old version", got)
	}
	mustCLI(t, "verify", "--root", site)

	// A truncated pack, and a file that is no pack at all.
	if err := os.WriteFile(corrupt, data[:len(data)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := runCLI(t, "apply", corrupt, "--root", site); !errors.Is(err, pack.ErrFormat) {
		t.Fatalf("apply of a truncated pack: %v", err)
	}
	if _, err := runCLI(t, "apply", old+"/README", "--root", site); !errors.Is(err, pack.ErrFormat) {
		t.Fatalf("apply of a text file: %v", err)
	}
	mustCLI(t, "verify", "--root", site)
}

func TestSignedPack(t *testing.T) {
	old, _ := treeVersions(t)
	work := t.TempDir()
	mustCLI(t, "keygen", "-o", filepath.Join(work, "signer"))
	mustCLI(t, "keygen", "-o", filepath.Join(work, "stranger"))
	signed, plain := filepath.Join(work, "signed.pack"), filepath.Join(work, "plain.pack")
	mustCLI(t, "pack", old, "-o", signed, "--key", filepath.Join(work, "signer.key"))
	mustCLI(t, "pack", old, "-o", plain)
	for _, p := range []string{plain, signed} {
		if _, err := runCLI(t, "apply", p, "--root", filepath.Join(work, "site"), "--trusted-keys", filepath.Join(work, "stranger.pub")); !errors.Is(err, pack.ErrSignature) {
			t.Fatalf("apply %s with an untrusted signer: %v", filepath.Base(p), err)
		}
	}
	mustCLI(t, "apply", signed, "--root", filepath.Join(work, "site"), "--trusted-keys", filepath.Join(work, "signer.pub"))
	mustCLI(t, "verify", "--root", filepath.Join(work, "site"))
}

func TestTreeCommandsBadArgs(t *testing.T) {
	old, _ := treeVersions(t)
	work := t.TempDir()
	missing := filepath.Join(work, "missing")
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"pack", old}, "-o FILE is required"},
		{[]string{"pack", missing, "-o", filepath.Join(work, "p")}, "no such file"},
		{[]string{"pack", "--from", missing, old, "-o", filepath.Join(work, "p")}, "no such file"},
		{[]string{"pack", old, "-o", filepath.Join(missing, "p")}, "no such file"},
		{[]string{"pack", old, "-o", filepath.Join(work, "p"), "--key", missing}, "no such file"},
		{[]string{"pack"}, "accepts 1 arg"},
		{[]string{"apply", filepath.Join(work, "p")}, "--root SITE_ROOT is required"},
		{[]string{"apply", missing, "--root", filepath.Join(work, "site")}, "no such file"},
		{[]string{"apply", missing, "--root", filepath.Join(work, "site"), "--trusted-keys", missing}, "no such file"},
		{[]string{"verify"}, "--root SITE_ROOT is required"},
		{[]string{"verify", "--root", missing}, "no current version"},
		{[]string{"verify", "--root", old}, "no current version"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			_, err := runCLI(t, tt.args...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want %q", err, tt.want)
			}
		})
	}
	// A failed pack leaves no file behind.
	entries, err := os.ReadDir(work)
	if err != nil || len(entries) != 0 {
		t.Fatalf("left behind: %v (%v)", entries, err)
	}
}
