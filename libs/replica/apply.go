package replica

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/pulpdist/pulpdist/libs/ctxio"
	"github.com/pulpdist/pulpdist/libs/pack"
	"github.com/pulpdist/pulpdist/libs/tree"
)

// inode is one file of the target on disk: a file entry (paths[0]) and
// the hardlink entries of its group, linked to it. Distinct file entries
// are distinct inodes even when their content, mode and mtime agree, so
// that the built tree has exactly the hard links of the manifest.
type inode struct {
	hash  string
	size  int64
	mode  uint32
	mtime int64
	paths []string // manifest order; paths[0] is the file entry, the others its hardlinks
	// Where the content comes from; exactly one is set.
	linkBase string // path of a base file with the same hash, mode, mtime, linked to no other inode
	copyBase string // path in the base version with the same hash
	fromPack bool   // the first inode of its hash in the pack; others copy from it
}

// plan decides where every file of the target comes from.
type plan struct {
	inodes []*inode
	// byPart lists, for each part hash, the inodes built from it: the
	// first is written from the pack, the others copied from the first.
	byPart map[string][]*inode
}

// makePlan makes one inode per file entry of the target, with the
// hardlink entries of its group, and finds its content: a hard link to a
// base file when hash, mode and mtime match (an unchanged file), else the
// pack, else a copy of a base file with the same content. A file found
// nowhere is an error.
//
// A base file is linked into at most one inode: two file entries linked to
// one base inode would be one hard link group in the new version. Base
// files with the same hash, mode and mtime are handed out in order, one
// per inode; sameInode(a, b) reports whether the base paths a and b are
// one inode on disk, which a version built before hardlink groups were
// recorded may have (its identical files were linked together), so that
// such a path is skipped rather than linked twice.
func makePlan(h pack.Header, target, base *tree.Manifest, sameInode func(a, b string) bool) (*plan, error) {
	type key struct {
		hash  string
		mode  uint32
		mtime int64
	}
	inBase := make(map[key][]string)
	baseByHash := make(map[string]string)
	if base != nil {
		for _, e := range base.Entries {
			if e.Kind != tree.KindFile {
				continue
			}
			k := key{e.Hash, e.Mode, e.MTime}
			inBase[k] = append(inBase[k], e.Path)
			if _, ok := baseByHash[e.Hash]; !ok {
				baseByHash[e.Hash] = e.Path
			}
		}
	}
	used := make(map[key]int) // how many of inBase[k] were handed out or skipped
	linkable := func(k key) string {
		for paths := inBase[k]; used[k] < len(paths); {
			p := paths[used[k]]
			used[k]++
			if p == paths[0] || !sameInode(paths[0], p) {
				return p
			}
		}
		return ""
	}
	inPack := make(map[string]bool, len(h.Parts))
	for _, p := range h.Parts {
		inPack[p.Hash] = true
	}
	p := &plan{byPart: make(map[string][]*inode)}
	leaders := make(map[string]*inode)
	for _, e := range target.Entries {
		if e.Kind == tree.KindHardlink {
			// A validated manifest has the leader, a file, before it.
			in, ok := leaders[e.Target]
			if !ok {
				return nil, fmt.Errorf("%w: hardlink %q: leader %q is no file before it", pack.ErrFormat, e.Path, e.Target)
			}
			in.paths = append(in.paths, e.Path)
			continue
		}
		if e.Kind != tree.KindFile {
			continue
		}
		k := key{e.Hash, e.Mode, e.MTime}
		in := &inode{hash: e.Hash, size: e.Size, mode: e.Mode, mtime: e.MTime, paths: []string{e.Path}}
		if lb := linkable(k); lb != "" {
			in.linkBase = lb
		} else {
			switch {
			case inPack[e.Hash]:
				in.fromPack = true
				p.byPart[e.Hash] = append(p.byPart[e.Hash], in)
			case baseByHash[e.Hash] != "":
				in.copyBase = baseByHash[e.Hash]
			default:
				return nil, fmt.Errorf("%w: %w: file %q (hash %s) is neither in the pack nor in base %q",
					ErrMissingContent, pack.ErrFormat, e.Path, e.Hash, h.From)
			}
		}
		leaders[e.Path] = in
		p.inodes = append(p.inodes, in)
	}
	return p, nil
}

// Apply builds the version header.To from the pack and switches `current`
// to it. If header.From is not "" it must be the current version
// (ErrBaseMismatch). The tree is built in staging/<to>.<random>/ through an
// os.Root, so that no write escapes it: directories first, symlinks created
// and never followed, unchanged files (same hash, mode and mtime as a base
// file) hard-linked from versions/<from>, other files written from the pack
// or copied (each content read from the pack once, then copied for other
// files with the same content); file modes and mtimes are set from the
// manifest, then every hardlink entry is linked to its group's file,
// directory modes last, deepest first. The built tree has exactly the hard
// links of the manifest: one inode per file entry and its hardlinks, none
// shared by two file entries, even of the same content (see makePlan). The
// staging tree is then scanned and its root compared to header.To
// (ErrVerify), synced to disk, renamed to versions/<to>, its manifest
// written (temp + rename), and `current` switched by renaming a new symlink
// over it. Finally versions beyond keep are pruned (never the
// current one); a prune failure is logged and retried by the next Apply.
//
// If To is already current, Apply returns zero Stats without reading the
// pack or touching anything. On any error `current` and versions/ are as
// before and staging/ holds nothing of this call.
func (r *Replica) Apply(ctx context.Context, pr *pack.Reader) (Stats, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	h := pr.Header()
	cur, err := r.Current()
	if err != nil {
		return Stats{}, fmt.Errorf("apply %s: %w", h.To, err)
	}
	if h.To == cur {
		return Stats{}, nil
	}
	if h.From != "" && h.From != cur {
		return Stats{}, fmt.Errorf("apply %s: %w: pack from %s, current is %q", h.To, ErrBaseMismatch, h.From, cur)
	}
	var base *tree.Manifest
	if h.From != "" {
		if base, err = r.Manifest(h.From); err != nil {
			return Stats{}, fmt.Errorf("apply %s: base: %w", h.To, err)
		}
	}
	baseFiles, err := openBase(r.path(versionsDir, h.From), base)
	if err != nil {
		return Stats{}, fmt.Errorf("apply %s: %w", h.To, err)
	}
	defer baseFiles.close()
	target, err := pr.Target(base, baseFiles.open)
	if err != nil {
		return Stats{}, fmt.Errorf("apply %s: %w", h.To, err)
	}
	p, err := makePlan(h, target, base, baseFiles.sameInode)
	if err != nil {
		return Stats{}, fmt.Errorf("apply %s: %w", h.To, err)
	}

	r.step("create staging")
	staging, err := os.MkdirTemp(r.path(stagingDir), h.To+".")
	if err != nil {
		return Stats{}, fmt.Errorf("apply %s: create staging: %w", h.To, err)
	}
	installed := false
	defer func() {
		if !installed {
			// The error being returned matters more than a failed
			// cleanup, which Open retries.
			_ = removeAll(staging) // see above
		}
	}()
	st, err := r.build(ctx, pr, h, target, p, staging)
	if err != nil {
		return Stats{}, fmt.Errorf("apply %s: build: %w", h.To, err)
	}
	if err := verify(ctx, staging, target); err != nil {
		return Stats{}, fmt.Errorf("apply %s: %w", h.To, err)
	}
	if err := r.syncTree(ctx, staging, target, p); err != nil {
		return Stats{}, fmt.Errorf("apply %s: sync: %w", h.To, err)
	}
	if err := r.install(staging, h.To, target); err != nil {
		return Stats{}, fmt.Errorf("apply %s: %w", h.To, err)
	}
	installed = true
	if err := r.prune(h.To, cur); err != nil {
		r.log.Warn("prune old versions", "dir", r.dir, "version", h.To, "error", err)
	}
	return st, nil
}

// build creates the target tree under staging from the plan and the pack.
func (r *Replica) build(ctx context.Context, pr *pack.Reader, h pack.Header, target *tree.Manifest, p *plan, staging string) (Stats, error) {
	var st Stats
	sr, err := os.OpenRoot(staging)
	if err != nil {
		return st, err
	}
	defer sr.Close()
	rr, err := os.OpenRoot(r.dir)
	if err != nil {
		return st, err
	}
	defer rr.Close()
	stagingRel := filepath.Join(stagingDir, filepath.Base(staging))
	baseRel := filepath.Join(versionsDir, h.From)

	for _, e := range target.Entries {
		if err := ctx.Err(); err != nil {
			return st, err
		}
		// Validate checked every path; checking again here keeps the
		// guarantee local to the code that writes.
		if err := tree.ValidatePath(e.Path); err != nil {
			return st, err
		}
		switch e.Kind {
		case tree.KindDir:
			// Owner-writable while it fills; its mode is set at the end.
			r.step("mkdir %s", e.Path)
			if err := sr.Mkdir(e.Path, 0o700); err != nil {
				return st, fmt.Errorf("mkdir: %w", err)
			}
		case tree.KindSymlink:
			r.step("symlink %s", e.Path)
			if err := sr.Symlink(e.Target, e.Path); err != nil {
				return st, fmt.Errorf("symlink: %w", err)
			}
		}
	}

	// Files whose content is already on disk.
	for _, in := range p.inodes {
		if err := ctx.Err(); err != nil {
			return st, err
		}
		switch {
		case in.linkBase != "":
			r.step("link %s", in.paths[0])
			err := rr.Link(filepath.Join(baseRel, in.linkBase), filepath.Join(stagingRel, in.paths[0]))
			if err == nil {
				st.FilesLinked++
				break
			}
			if !errors.Is(err, syscall.EMLINK) {
				return st, fmt.Errorf("link unchanged file: %w", err)
			}
			// The inode has as many links as the filesystem allows: copy,
			// and set mode and mtime like any written file.
			in.copyBase, in.linkBase = in.linkBase, ""
			fallthrough
		case in.copyBase != "":
			r.step("copy %s", in.paths[0])
			n, err := copyFile(ctx, rr, filepath.Join(baseRel, in.copyBase), sr, in.paths[0], r.step)
			if err != nil {
				return st, fmt.Errorf("copy from base: %w", err)
			}
			st.FilesWritten++
			st.BytesWritten += n
		}
	}

	// Files whose content is in the pack.
	for {
		part, content, err := pr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return st, fmt.Errorf("read pack: %w", err)
		}
		inodes := p.byPart[part.Hash]
		if len(inodes) == 0 {
			continue // every file with this content is linked from the base
		}
		r.step("write %s", inodes[0].paths[0])
		n, err := writeFile(ctx, sr, inodes[0].paths[0], content, r.step)
		if err != nil {
			return st, fmt.Errorf("write part %s: %w", part.Hash, err)
		}
		st.FilesWritten++
		st.BytesWritten += n
		for _, in := range inodes[1:] {
			// Same content, another file entry: a copy, not a link.
			r.step("copy %s", in.paths[0])
			n, err := copyFile(ctx, sr, inodes[0].paths[0], sr, in.paths[0], r.step)
			if err != nil {
				return st, fmt.Errorf("copy part %s: %w", part.Hash, err)
			}
			st.FilesWritten++
			st.BytesWritten += n
		}
		delete(p.byPart, part.Hash)
	}
	if len(p.byPart) > 0 {
		// Cannot happen with a validated header: the parts listed are the
		// parts the reader returns.
		missing := slices.Sorted(maps.Keys(p.byPart))
		return st, fmt.Errorf("%w: %w: the pack ended without part %s for %q",
			ErrMissingContent, pack.ErrFormat, missing[0], p.byPart[missing[0]][0].paths[0])
	}

	// Modes and mtimes, then the hardlinks of each group, from its file.
	// A base link shares its inode with a held version and already has
	// both; a hard link never changes them.
	for _, in := range p.inodes {
		if in.linkBase == "" {
			if err := setMeta(sr, in.paths[0], in, r.step); err != nil {
				return st, err
			}
		}
		for _, member := range in.paths[1:] {
			if err := ctx.Err(); err != nil {
				return st, err
			}
			if err := tree.ValidatePath(member); err != nil {
				return st, err
			}
			r.step("link %s", member)
			if err := sr.Link(in.paths[0], member); err != nil {
				// A copy would be another inode, not the group the
				// manifest holds: EMLINK is an error too.
				return st, fmt.Errorf("hardlink %s to %s: %w", member, in.paths[0], err)
			}
			st.HardLinks++
		}
	}

	// Directory modes last, children before parents.
	for _, e := range slices.Backward(target.Entries) {
		if e.Kind == tree.KindDir {
			r.step("chmod %s/", e.Path)
			if err := sr.Chmod(e.Path, fs.FileMode(e.Mode)); err != nil {
				return st, err
			}
		}
	}
	r.step("chmod staging")
	if err := os.Chmod(staging, 0o755); err != nil {
		return st, err
	}
	return st, nil
}

// setMeta sets the mode and mtime of the file name to those of in,
// reporting each to step.
func setMeta(root *os.Root, name string, in *inode, step func(string, ...any)) error {
	step("chmod %s", name)
	if err := root.Chmod(name, fs.FileMode(in.mode)); err != nil {
		return err
	}
	t := time.Unix(0, in.mtime)
	step("chtimes %s", name)
	return root.Chtimes(name, t, t)
}

// writeFile creates name in root with the content of r, reporting each MiB
// after the first to step.
func writeFile(ctx context.Context, root *os.Root, name string, r io.Reader, step func(string, ...any)) (int64, error) {
	f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(&stepWriter{w: f, name: name, step: step}, ctxio.Reader(ctx, r))
	if err != nil {
		f.Close()
		return n, err
	}
	if err := f.Close(); err != nil {
		return n, err
	}
	return n, nil
}

// copyFile copies the file src of srcRoot to the new file dst of dstRoot.
func copyFile(ctx context.Context, srcRoot *os.Root, src string, dstRoot *os.Root, dst string, step func(string, ...any)) (int64, error) {
	in, err := srcRoot.Open(src)
	if err != nil {
		return 0, err
	}
	defer in.Close()
	return writeFile(ctx, dstRoot, dst, in, step)
}

// stepWriter reports to step each time the bytes written to w cross a MiB
// boundary, before writing on.
type stepWriter struct {
	w    io.Writer
	name string
	step func(string, ...any)
	n    int64
}

func (s *stepWriter) Write(p []byte) (int, error) {
	if s.n > 0 && s.n>>20 != (s.n+int64(len(p)))>>20 {
		s.step("write %s at %d MiB", s.name, (s.n+int64(len(p)))>>20)
	}
	n, err := s.w.Write(p)
	s.n += int64(n)
	return n, err
}

// verify scans the built tree and compares it to the target manifest.
func verify(ctx context.Context, dir string, want *tree.Manifest) error {
	got, err := tree.ScanWith(ctx, dir, tree.ScanOptions{NoChunks: true})
	if err != nil {
		return fmt.Errorf("%w: scan: %w", ErrVerify, err)
	}
	if got.Root() == want.Root() {
		return nil
	}
	return fmt.Errorf("%w: root %s, want %s (%s)", ErrVerify, got.Root(), want.Root(), firstDifference(got, want))
}

// firstDifference describes the first path where two manifests differ.
func firstDifference(got, want *tree.Manifest) string {
	for i := range max(len(got.Entries), len(want.Entries)) {
		switch {
		case i >= len(got.Entries):
			return fmt.Sprintf("%q is missing", want.Entries[i].Path)
		case i >= len(want.Entries):
			return fmt.Sprintf("%q is unexpected", got.Entries[i].Path)
		}
		g, w := got.Entries[i], want.Entries[i]
		switch {
		case g.Path < w.Path:
			return fmt.Sprintf("%q is unexpected", g.Path)
		case g.Path > w.Path:
			return fmt.Sprintf("%q is missing", w.Path)
		case !g.Equivalent(&w):
			return fmt.Sprintf("%q is %s, want %s", g.Path, describe(g), describe(w))
		}
	}
	return "no entry differs"
}

// describe spells an entry for an error message.
func describe(e tree.Entry) string {
	switch e.Kind {
	case tree.KindFile:
		return fmt.Sprintf("a file (mode %04o, %d bytes, mtime %d, hash %.12s)", e.Mode, e.Size, e.MTime, e.Hash)
	case tree.KindSymlink:
		return fmt.Sprintf("a symlink to %q", e.Target)
	case tree.KindHardlink:
		return fmt.Sprintf("a hard link of %q", e.Target)
	default:
		return fmt.Sprintf("a %s (mode %04o)", e.Kind, e.Mode)
	}
}

// syncTree makes the staged version durable before it is installed: one
// syncfs of its filesystem where there is one (syncFS), else an fsync of
// each file written for this version (linked base files are durable
// already) and of every directory, in parallel.
func (r *Replica) syncTree(ctx context.Context, dir string, m *tree.Manifest, p *plan) error {
	if !r.fsyncEach {
		r.step("sync filesystem")
		if done, err := syncFS(dir); done || err != nil {
			return err
		}
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(runtime.GOMAXPROCS(0))
	syncOne := func(name string) {
		g.Go(func() error {
			if err := gctx.Err(); err != nil {
				return err
			}
			f, err := root.Open(name)
			if err != nil {
				return err
			}
			defer f.Close()
			r.step("fsync %s", name)
			if err := f.Sync(); err != nil {
				return fmt.Errorf("fsync %s: %w", name, err)
			}
			return nil
		})
	}
	for _, in := range p.inodes {
		// Hardlinks share their file's inode: its fsync and their
		// directory's cover them.
		if in.linkBase == "" {
			syncOne(in.paths[0])
		}
	}
	for _, e := range m.Entries {
		if e.Kind == tree.KindDir {
			syncOne(e.Path)
		}
	}
	syncOne(".")
	return g.Wait()
}

// install renames the verified staging tree to versions/<to>, writes its
// manifest and switches `current` to it. On error it undoes what it did.
func (r *Replica) install(staging, to string, m *tree.Manifest) (err error) {
	final := r.path(versionsDir, to)
	// A held (not current) copy of the same version is replaced by the
	// fresh, verified one: move it aside first, put it back on error.
	aside := ""
	if _, statErr := os.Lstat(final); statErr == nil {
		aside = r.path(stagingDir, to+".old."+randomSuffix())
		r.step("move held %s aside", to)
		if err := os.Rename(final, aside); err != nil {
			return fmt.Errorf("move held copy aside: %w", err)
		}
	}
	renamed, manifestWritten := false, false
	defer func() {
		if err == nil {
			if aside != "" {
				r.step("remove held %s", to)
				_ = removeAll(aside) // leftovers in staging/ are removed by Open
			}
			return
		}
		if manifestWritten && aside == "" {
			_ = os.Remove(r.path(manifestsDir, to+".json")) // best effort undo; Open removes orphans
		}
		if renamed {
			_ = os.Rename(final, staging) // best effort undo; the caller removes staging
		}
		if aside != "" {
			_ = os.Rename(aside, final) // best effort undo
		}
	}()
	r.step("rename staging to versions/%s", to)
	if err := os.Rename(staging, final); err != nil {
		return fmt.Errorf("rename staging to %s: %w", final, err)
	}
	renamed = true
	r.step("fsync versions")
	if err := syncDir(r.path(versionsDir)); err != nil {
		return err
	}
	if err := r.writeManifest(to, m); err != nil {
		return err
	}
	manifestWritten = true
	if err := r.switchCurrent(to); err != nil {
		return err
	}
	return nil
}

// writeManifest writes manifests/<root>.json atomically.
func (r *Replica) writeManifest(root string, m *tree.Manifest) error {
	dir := r.path(manifestsDir)
	r.step("create manifest %s temp", root)
	f, err := os.CreateTemp(dir, "."+root+".json.tmp*")
	if err != nil {
		return fmt.Errorf("write manifest: %w", err)
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			f.Close()
			_ = os.Remove(tmp) // best effort; Open removes leftovers
		}
	}()
	if err := tree.Encode(f, m); err != nil {
		return fmt.Errorf("write manifest: %w", err)
	}
	r.step("fsync manifest %s temp", root)
	if err := f.Sync(); err != nil {
		return fmt.Errorf("write manifest: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write manifest: %w", err)
	}
	r.step("rename manifest %s", root)
	if err := os.Rename(tmp, filepath.Join(dir, root+".json")); err != nil {
		return fmt.Errorf("write manifest: %w", err)
	}
	ok = true
	r.step("fsync manifests")
	return syncDir(dir)
}

// switchCurrent points `current` at versions/<root> atomically: a new
// symlink renamed over the old one.
func (r *Replica) switchCurrent(root string) error {
	tmp := r.path(currentTmp)
	r.step("remove stale current.tmp")
	if err := os.Remove(tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("switch current: %w", err)
	}
	r.step("symlink current.tmp")
	if err := os.Symlink(versionsDir+"/"+root, tmp); err != nil {
		return fmt.Errorf("switch current: %w", err)
	}
	r.step("rename current")
	if err := os.Rename(tmp, r.path(currentLink)); err != nil {
		_ = os.Remove(tmp) // best effort; Open removes leftovers
		return fmt.Errorf("switch current: %w", err)
	}
	r.step("fsync replica dir")
	return syncDir(r.dir)
}

// syncDir fsyncs a directory so that renames in it are durable.
func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("fsync %s: %w", dir, err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", dir, err)
	}
	return nil
}

// prune removes held versions beyond keep, never current. previous (the
// version current served before, if any) is kept first, then the most
// recently installed ones by manifest time.
func (r *Replica) prune(current, previous string) error {
	roots, err := r.versions()
	if err != nil {
		return err
	}
	type held struct {
		root string
		at   time.Time
	}
	var old []held
	for _, v := range roots {
		if v == current {
			continue
		}
		var at time.Time
		if info, err := os.Stat(r.path(manifestsDir, v+".json")); err == nil {
			at = info.ModTime()
		}
		old = append(old, held{v, at})
	}
	slices.SortFunc(old, func(a, b held) int {
		switch {
		case a.root == previous:
			return -1
		case b.root == previous:
			return 1
		}
		return cmp.Or(b.at.Compare(a.at), cmp.Compare(a.root, b.root))
	})
	var errs []error
	for _, h := range old[min(r.keep, len(old)):] {
		// Rename out of versions/ first so that the version disappears at
		// once; the slow removal happens in staging/.
		trash := r.path(stagingDir, h.root+".prune."+randomSuffix())
		r.step("prune rename %s", h.root)
		if err := os.Rename(r.path(versionsDir, h.root), trash); err != nil {
			errs = append(errs, err)
			continue
		}
		r.step("prune manifest %s", h.root)
		if err := os.Remove(r.path(manifestsDir, h.root+".json")); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
		r.step("prune remove %s", h.root)
		if err := removeAll(trash); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// randomSuffix returns 8 random hex characters for unique work names.
func randomSuffix() string {
	var b [4]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never returns an error
	return hex.EncodeToString(b[:])
}

// baseFiles opens the files of the base version by content hash, through
// an os.Root so that no path of the manifest can lead outside it.
type baseFiles struct {
	root   *os.Root
	byHash map[string]string
}

// openBase prepares reads from the version in dir whose manifest is m;
// with a nil m (an empty base) it opens nothing.
func openBase(dir string, m *tree.Manifest) (*baseFiles, error) {
	b := &baseFiles{byHash: map[string]string{}}
	if m == nil {
		return b, nil
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("base: %w", err)
	}
	b.root = root
	for _, e := range m.Entries {
		if e.Kind == tree.KindFile {
			if _, ok := b.byHash[e.Hash]; !ok {
				b.byHash[e.Hash] = e.Path
			}
		}
	}
	return b, nil
}

// sameInode reports whether the base files x and y are one inode (hard
// links of each other); when either cannot be read it says they are, so
// that the caller copies rather than links.
func (b *baseFiles) sameInode(x, y string) bool {
	if b.root == nil {
		return true
	}
	xi, err := b.root.Lstat(filepath.FromSlash(x))
	if err != nil {
		return true
	}
	yi, err := b.root.Lstat(filepath.FromSlash(y))
	if err != nil {
		return true
	}
	return os.SameFile(xi, yi)
}

// open returns a file of the base with the content hash.
func (b *baseFiles) open(hash string) (pack.ReaderAtCloser, error) {
	p, ok := b.byHash[hash]
	if !ok || b.root == nil {
		return nil, fmt.Errorf("%w: no file with content %s in the base", ErrMissingContent, hash)
	}
	return b.root.Open(filepath.FromSlash(p))
}

func (b *baseFiles) close() {
	if b.root != nil {
		_ = b.root.Close() // read-only
	}
}
