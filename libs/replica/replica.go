// Package replica keeps one tree at one site on disk and switches it from
// version to version atomically.
//
// Layout under the replica directory:
//
//	versions/<root>/       complete trees, one per held version
//	manifests/<root>.json  the manifest of each held version
//	current -> versions/<root>  relative symlink to the served version
//	staging/               work area; emptied by Open
//
// Readers use CurrentPath (or resolve the symlink once and keep the
// resolved directory for a consistent view). A version is built beside the
// served one, verified, made durable, and only then does `current` move, by
// renaming a new symlink over it, so that a reader sees either the old tree
// or the new one, never a mix, and a crash at any point leaves a served tree.
// One process at a time may use a replica directory.
package replica

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/pulpdist/pulpdist/libs/tree"
)

// Names inside the replica directory.
const (
	versionsDir  = "versions"
	manifestsDir = "manifests"
	stagingDir   = "staging"
	currentLink  = "current"
	currentTmp   = "current.tmp"
)

// Sentinel errors; returned errors wrap them.
var (
	// ErrBaseMismatch marks a pack whose From is not the current version.
	ErrBaseMismatch = errors.New("pack base is not the current version")
	// ErrVerify marks a built or served tree whose scanned root is not
	// its manifest's.
	ErrVerify = errors.New("tree does not match its manifest")
	// ErrMissingContent marks a file whose content is neither in the pack
	// nor in the base version. It comes wrapped together with
	// pack.ErrFormat.
	ErrMissingContent = errors.New("missing content")
)

// Stats counts what Apply did.
type Stats struct {
	// FilesWritten counts file entries whose content was written: from
	// the pack, or copied from the base version or from another file of
	// the target with the same content.
	FilesWritten int64
	// FilesLinked counts file entries hard-linked to the unchanged file
	// of the base version (same content, mode and mtime).
	FilesLinked int64
	// HardLinks counts hardlink entries created: links to their group's
	// file within the new version.
	HardLinks int64
	// BytesWritten is the content written to disk.
	BytesWritten int64
}

// Replica is one tree at one site on disk. Its methods are safe for
// concurrent use; Apply calls run one at a time.
type Replica struct {
	dir  string
	keep int
	mu   sync.Mutex // serialises Apply and prune
	log  *slog.Logger
	hook func(step string)
	// fsyncEach makes Apply fsync each written file and directory even
	// where one syncfs would do (syncTree): the path of systems without
	// syncfs, kept under test on Linux.
	fsyncEach bool
}

// Open opens the replica in dir, creating the layout if needed, and
// recovers from a crashed run: it empties staging/, removes a stale
// current.tmp, and removes versions without a manifest and manifests without
// a version (never the current one). It never prunes complete versions.
// keep is the number of previous versions Apply holds besides the current
// one; values below 1 mean 1.
func Open(dir string, keep int) (*Replica, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("open replica %s: %w", dir, err)
	}
	r := &Replica{dir: abs, keep: max(keep, 1), log: slog.Default()}
	for _, d := range []string{abs, r.path(versionsDir), r.path(manifestsDir), r.path(stagingDir)} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("open replica %s: %w", abs, err)
		}
	}
	if err := r.cleanup(); err != nil {
		return nil, fmt.Errorf("open replica %s: recover: %w", abs, err)
	}
	return r, nil
}

// SetLogger sets where the replica logs what it cannot return as an error
// (a failed prune after a successful switch). The default is slog.Default().
func (r *Replica) SetLogger(l *slog.Logger) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.log = l
}

// SetStepHook sets a function that Apply calls just before each step that
// changes the filesystem: every directory, symlink, file and hard link
// created, every chmod, chtimes and fsync, each MiB of a file written after
// the first, the rename of the built tree into versions/, the manifest
// write, the creation of current.tmp, the rename over `current`, and each
// removal when pruning. step is a short description ("write data/big",
// "rename current"). The hook may be called from several goroutines at
// once and must not call the Replica. It exists so that tests can stop a
// process at every step (crash_test.go); a nil hook, the default, turns it
// off.
func (r *Replica) SetStepHook(hook func(step string)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.hook = hook
}

// step reports a step to the hook, if one is set. Callers hold r.mu.
func (r *Replica) step(format string, args ...any) {
	if r.hook != nil {
		r.hook(fmt.Sprintf(format, args...))
	}
}

// path joins names under the replica directory.
func (r *Replica) path(names ...string) string {
	return filepath.Join(append([]string{r.dir}, names...)...)
}

// cleanup removes what a crashed Apply may have left.
func (r *Replica) cleanup() error {
	entries, err := os.ReadDir(r.path(stagingDir))
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := removeAll(r.path(stagingDir, e.Name())); err != nil {
			return err
		}
	}
	if err := os.Remove(r.path(currentTmp)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	cur, err := r.Current()
	if err != nil {
		return err
	}
	if cur != "" {
		if _, err := os.Stat(r.path(versionsDir, cur)); err != nil {
			return fmt.Errorf("current version: %w", err)
		}
	}
	versions, err := r.versions()
	if err != nil {
		return err
	}
	manifests, err := os.ReadDir(r.path(manifestsDir))
	if err != nil {
		return err
	}
	held := make(map[string]bool)
	for _, m := range manifests {
		name := m.Name()
		root, ok := strings.CutSuffix(name, ".json")
		switch {
		case ok && tree.IsHash(root):
			held[root] = true
			if root != cur && !slices.Contains(versions, root) {
				if err := os.Remove(r.path(manifestsDir, name)); err != nil {
					return err
				}
			}
		case strings.HasPrefix(name, ".") && strings.Contains(name, ".tmp"):
			// A manifest write that never got renamed into place.
			if err := os.Remove(r.path(manifestsDir, name)); err != nil {
				return err
			}
		}
	}
	for _, v := range versions {
		if v != cur && !held[v] {
			if err := removeAll(r.path(versionsDir, v)); err != nil {
				return err
			}
		}
	}
	// No pruning here: Open is also how a restarted agent reads what it
	// holds, possibly with another keep than the tree's; old versions are
	// pruned after each Apply, with the tree's own keep.
	return nil
}

// versions lists the roots under versions/.
func (r *Replica) versions() ([]string, error) {
	entries, err := os.ReadDir(r.path(versionsDir))
	if err != nil {
		return nil, err
	}
	var roots []string
	for _, e := range entries {
		if e.IsDir() && tree.IsHash(e.Name()) {
			roots = append(roots, e.Name())
		}
	}
	return roots, nil
}

// CurrentPath returns <dir>/current, the path that serves the current
// version.
func (r *Replica) CurrentPath() string { return r.path(currentLink) }

// Current returns the root of the version `current` serves, or "" if none.
func (r *Replica) Current() (string, error) {
	target, err := os.Readlink(r.path(currentLink))
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read current: %w", err)
	}
	root, ok := strings.CutPrefix(target, versionsDir+"/")
	if !ok || !tree.IsHash(root) {
		return "", fmt.Errorf("read current: unexpected link target %q", target)
	}
	return root, nil
}

// Verify checks the replica in dir without changing anything (no
// recovery, no lock, so it may run beside a process applying a pack): the
// version `current` names must have a stored manifest whose root is that
// name, and its tree, scanned, must be exactly that manifest (ErrVerify,
// naming the first path that differs). It returns the served root.
func Verify(ctx context.Context, dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("verify %s: %w", dir, err)
	}
	r := &Replica{dir: abs}
	cur, err := r.Current()
	if err != nil {
		return "", fmt.Errorf("verify %s: %w", abs, err)
	}
	if cur == "" {
		return "", fmt.Errorf("verify %s: no current version", abs)
	}
	want, err := r.Manifest(cur)
	if err != nil {
		return "", fmt.Errorf("verify %s: %w", abs, err)
	}
	// The version directory, not `current`, which an Apply may switch
	// while the scan runs.
	if err := verify(ctx, r.path(versionsDir, cur), want); err != nil {
		return "", fmt.Errorf("verify %s: version %s: %w", abs, cur, err)
	}
	return cur, nil
}

// Held reads the replica in dir without changing anything (as Verify: no
// recovery, no lock): the version `current` serves ("" for none), and
// every complete version held, current included (a directory under
// versions/ with its manifest), sorted.
func Held(dir string) (current string, versions []string, err error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", nil, fmt.Errorf("held versions %s: %w", dir, err)
	}
	r := &Replica{dir: abs}
	if current, err = r.Current(); err != nil {
		return "", nil, fmt.Errorf("held versions %s: %w", abs, err)
	}
	roots, err := r.versions()
	if err != nil {
		return "", nil, fmt.Errorf("held versions %s: %w", abs, err)
	}
	versions = []string{}
	for _, root := range roots {
		if _, err := os.Stat(r.path(manifestsDir, root+".json")); err == nil {
			versions = append(versions, root)
		}
	}
	slices.Sort(versions)
	return current, versions, nil
}

// Manifest returns the stored manifest of a held version, checked against
// its root.
func (r *Replica) Manifest(root string) (*tree.Manifest, error) {
	if !tree.IsHash(root) {
		return nil, fmt.Errorf("manifest %q: not a root", root)
	}
	f, err := os.Open(r.path(manifestsDir, root+".json"))
	if err != nil {
		return nil, fmt.Errorf("manifest %s: %w", root, err)
	}
	defer f.Close()
	m, err := tree.Decode(f)
	if err != nil {
		return nil, fmt.Errorf("manifest %s: %w", root, err)
	}
	if got := m.Root(); got != root {
		return nil, fmt.Errorf("manifest %s: stored manifest has root %s", root, got)
	}
	return m, nil
}

// removeAll removes p and everything below it, first making directories
// writable if a read-only one is in the way.
func removeAll(p string) error {
	err := os.RemoveAll(p)
	if err == nil {
		return nil
	}
	// Walking does not follow symlinks; Chmod is only called on entries
	// seen as directories.
	_ = filepath.WalkDir(p, func(q string, d fs.DirEntry, err error) error { // best effort; RemoveAll below reports
		if err == nil && d.IsDir() {
			_ = os.Chmod(q, 0o700) // best effort; RemoveAll below reports
		}
		return nil
	})
	if err := os.RemoveAll(p); err != nil {
		return fmt.Errorf("remove %s: %w", p, err)
	}
	return nil
}
