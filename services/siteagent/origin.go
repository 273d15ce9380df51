package siteagent

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/zeebo/blake3"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/sync/errgroup"

	"github.com/pulpdist/pulpdist/libs/bus"
	"github.com/pulpdist/pulpdist/libs/telemetry"
	"github.com/pulpdist/pulpdist/libs/tree"
)

// ErrChanged means a file changed between the scan and its upload.
var ErrChanged = errors.New("file changed during scan")

// uploadWorkers bounds concurrent blob uploads.
const uploadWorkers = 4

// snapshot scans the source of a tree at its origin and publishes it,
// following the tree's type (bus.TreeVersioned, bus.TreeSnapshot), its
// protected paths and its deletion guard, reporting how far it is to
// prog.
func (s *Service) snapshot(ctx context.Context, cmd bus.SyncCommand, prog *progress) (_ outcome, err error) {
	ctx, end := telemetry.StartSpan(ctx, "siteagent", "snapshot", trace.WithAttributes(attribute.String("pulpdist.site", cmd.Site), attribute.String("pulpdist.tree", cmd.Tree)))
	defer func() { end(err) }()
	prog.enter(bus.PhaseScan, 0, 0)
	// From here on cmd.Source is the local directory the version is made
	// of: the source itself, a replica's served version or an import.
	dir, err := s.sourceDir(ctx, cmd)
	if err != nil {
		return outcome{}, err
	}
	cmd.Source = dir
	protect, err := tree.NewProtector(cmd.ProtectedPaths)
	if err != nil {
		return outcome{}, bus.Permanent(fmt.Errorf("tree %s: %w", cmd.Tree, err))
	}
	prev, err := bus.GetSiteVersion(ctx, s.layout.Sites, s.cfg.Site, cmd.Tree)
	if err != nil {
		return outcome{}, err
	}
	if cmd.Type == bus.TreeSnapshot {
		if err := checkFinished(cmd.Source); err != nil {
			return notPublished(prev, err)
		}
	}
	m, err := s.scan(ctx, cmd)
	if err != nil {
		return outcome{}, err
	}
	if cmd.Type == bus.TreeSnapshot {
		// The build may have restarted while we scanned.
		if err := checkFinished(cmd.Source); err != nil {
			return notPublished(prev, err)
		}
	}
	// The served version's manifest: what the guard and protected paths
	// compare with, and contents known to be stored (a version is
	// published only once all its contents are).
	var old *tree.Manifest
	if prev != "" {
		switch old, err = s.servedManifest(ctx, cmd.Tree, prev); {
		case errors.Is(err, jetstream.ErrObjectNotFound):
			old = nil
		case err != nil:
			return outcome{}, err
		}
	}
	if prev != "" && (protect != nil || cmd.MaxDeletions > 0) {
		if old == nil && !cmd.ConfirmDeletions {
			return outcome{}, bus.Permanent(fmt.Errorf("the manifest of the served version %s is gone: protected paths and the deletion guard cannot be applied (sync with confirm_deletions to publish anyway): %w", prev, jetstream.ErrObjectNotFound))
		}
		// Without the old manifest there is nothing to compare with, and
		// the operator said go.
		var kept []string
		if m, kept, err = tree.KeepProtected(old, m, protect); err != nil {
			return outcome{}, bus.Permanent(fmt.Errorf("tree %s: %w", cmd.Tree, err))
		}
		if len(kept) > 0 {
			s.log.Info("protected paths kept", "tree", cmd.Tree, "kept", len(kept), "first", kept[0])
		}
		if old != nil {
			if out, tripped, err := s.guard(ctx, cmd, prev, old, m); tripped || err != nil {
				return out, err
			}
		}
	}
	root := m.Root()
	files, nbytes, err := s.upload(ctx, cmd.Source, m, old, prog)
	if err != nil {
		return outcome{}, err
	}
	if err := s.putManifest(ctx, cmd.Tree, root, m); err != nil {
		return outcome{}, err
	}
	if err := bus.PutSiteVersion(ctx, s.layout.Sites, s.cfg.Site, cmd.Tree, root); err != nil {
		return outcome{}, err
	}
	s.served.Store(cmd.Tree, servedVersion{root: root, m: m})
	allFiles, allBytes := m.Totals()
	snap := bus.Snapshot{
		V: bus.MessageVersion, TriggerID: cmd.TriggerID, Tree: cmd.Tree, Site: s.cfg.Site, Root: root,
		Files: allFiles, Bytes: allBytes, PublishedAt: time.Now().UTC(),
	}
	if err := s.events.PublishKeyed(ctx, bus.EntitySnapshot, bus.ActionPublished, bus.About{Tree: cmd.Tree, Site: cmd.Site}, cmd.RunID, snap); err != nil {
		return outcome{}, err
	}
	if err := bus.Publish(ctx, s.js, bus.SnapshotSubject(cmd.Tree), "snapshot/"+cmd.RunID, snap); err != nil {
		return outcome{}, err
	}
	res := bus.ResultCompleted
	if prev == root {
		res = bus.ResultUpToDate
	}
	return outcome{result: res, to: root, files: files, bytes: nbytes}, nil
}

// notPublished is the outcome of a snapshot tree whose source is not
// finished: nothing is published and the sites keep what they have, so
// the run is UP_TO_DATE, with the reason.
func notPublished(prev string, why error) (outcome, error) {
	if !errors.Is(why, errNotFinished) {
		return outcome{}, why
	}
	return outcome{result: bus.ResultUpToDate, to: prev, err: "not published: " + why.Error()}, nil
}

// scan makes the manifest of the tree's source: all of it, with the stat
// cache and the tree's filters; for a versioned tree, the newest versions
// and the latest link.
func (s *Service) scan(ctx context.Context, cmd bus.SyncCommand) (*tree.Manifest, error) {
	rules := cmd.Filters
	filter, err := tree.ParseFilter(rules)
	if err != nil {
		return nil, bus.Permanent(fmt.Errorf("filters of %s: %w", cmd.Tree, err))
	}
	var versions []string
	if cmd.Type == bus.TreeVersioned {
		if versions, err = versionDirs(cmd.Source, filter); err != nil {
			return nil, bus.Permanent(err)
		}
		if filter, err = tree.ParseFilter(append(versionedRules(versions, cmd.SyncLatest), rules...)); err != nil {
			return nil, bus.Permanent(fmt.Errorf("filters of %s: %w", cmd.Tree, err))
		}
	}
	// The stat cache lets a re-scan skip hashing files that did not change.
	cachePath := filepath.Join(cacheDir(s.cfg.DataDir), cmd.Tree+".statcache")
	cache, err := tree.LoadStatCache(cachePath)
	if err != nil {
		s.log.Warn("stat cache unreadable, hashing everything", "tree", cmd.Tree, "err", err)
	}
	m, err := tree.ScanWith(ctx, cmd.Source, tree.ScanOptions{Cache: cache, Filter: filter})
	if err != nil {
		if errors.Is(err, tree.ErrUnsupportedFile) || errors.Is(err, tree.ErrUnsafePath) || errors.Is(err, fs.ErrNotExist) {
			return nil, bus.Permanent(fmt.Errorf("scan %s: %w", cmd.Source, err))
		}
		return nil, fmt.Errorf("scan %s: %w", cmd.Source, err)
	}
	if err := cache.Save(cachePath); err != nil {
		s.log.Warn("stat cache not saved", "tree", cmd.Tree, "err", err)
	}
	if cmd.Type == bus.TreeVersioned {
		if m, err = withLatest(m, versions); err != nil {
			return nil, bus.Permanent(fmt.Errorf("tree %s: %w", cmd.Tree, err))
		}
	}
	return m, nil
}

// guard stops a snapshot that deletes more entries of old than the
// tree's max_deletions, unless the trigger confirmed it: the run is
// PARTIAL, nothing is published and a guard.tripped event says what.
func (s *Service) guard(ctx context.Context, cmd bus.SyncCommand, prev string, old, m *tree.Manifest) (outcome, bool, error) {
	if cmd.MaxDeletions <= 0 {
		return outcome{}, false, nil
	}
	gone := tree.Deleted(old, m)
	if int64(len(gone)) <= cmd.MaxDeletions {
		return outcome{}, false, nil
	}
	if cmd.ConfirmDeletions {
		s.log.Warn("deletions over the limit confirmed", "tree", cmd.Tree, "deletions", len(gone), "limit", cmd.MaxDeletions)
		return outcome{}, false, nil
	}
	ev := bus.GuardTripped{
		RunID: cmd.RunID, TriggerID: cmd.TriggerID, Site: s.cfg.Site, Tree: cmd.Tree, From: prev, Root: m.Root(),
		Deletions: int64(len(gone)), Limit: cmd.MaxDeletions, Sample: gone[:min(len(gone), bus.MaxGuardSample)],
	}
	if err := s.events.PublishKeyed(ctx, bus.EntityGuard, bus.ActionTripped, bus.About{Tree: cmd.Tree, Site: cmd.Site}, cmd.RunID, ev); err != nil {
		return outcome{}, true, err
	}
	s.log.Warn("deletion guard tripped", "tree", cmd.Tree, "deletions", len(gone), "limit", cmd.MaxDeletions, "first", gone[0])
	return outcome{
		result: bus.ResultPartial, to: prev,
		err: fmt.Sprintf("deletion guard: the new version deletes %d entries (first %q), more than max_deletions %d; not published (sync with confirm_deletions to publish it)",
			len(gone), gone[0], cmd.MaxDeletions),
	}, true, nil
}

// servedVersion is the version an origin published last of a tree, with
// its root (computing it again hashes the whole manifest).
type servedVersion struct {
	root string
	m    *tree.Manifest
}

// servedManifest is the manifest of the version root this origin serves
// of the tree: the one it published last, kept in memory, or else read
// from the manifests store.
func (s *Service) servedManifest(ctx context.Context, treeName, root string) (*tree.Manifest, error) {
	if v, ok := s.served.Load(treeName); ok && v.(servedVersion).root == root {
		return v.(servedVersion).m, nil
	}
	return s.publishedManifest(ctx, treeName, root)
}

// publishedManifest reads the manifest of a version of the tree from the
// manifests store.
func (s *Service) publishedManifest(ctx context.Context, treeName, root string) (*tree.Manifest, error) {
	name := bus.ManifestObject(treeName, root)
	r, err := s.layout.Manifests.Get(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("get manifest %s: %w", name, err)
	}
	defer r.Close()
	m, err := tree.Decode(r)
	if err != nil {
		return nil, fmt.Errorf("manifest %s: %w", name, err)
	}
	return m, nil
}

// ErrSourceNotAllowed refuses a source outside the site's source roots.
var ErrSourceNotAllowed = errors.New("source not allowed")

// allowedSource checks that source, with symbolic links resolved, lies
// under one of the configured source roots (when there are any).
func (s *Service) allowedSource(source string) error {
	roots := s.cfg.sourceRoots()
	if len(roots) == 0 {
		return nil
	}
	real, err := filepath.EvalSymlinks(source)
	if err != nil {
		return fmt.Errorf("source %s: %w", source, err)
	}
	for _, r := range roots {
		rr, err := filepath.EvalSymlinks(r)
		if err != nil {
			continue // a root that does not exist holds no source
		}
		if rel, err := filepath.Rel(rr, real); err == nil && rel != ".." && !strings.HasPrefix(rel, "../") {
			return nil
		}
	}
	return fmt.Errorf("%w: %s is not under %s (PULPDIST_SOURCE_ROOTS)", ErrSourceNotAllowed, source, strings.Join(roots, ", "))
}

// upload puts every file content the blob store lacks, named by its hash
// (a large file's chunks, each by its own), and returns how many files and
// bytes it sent. Contents of stored (the
// served version's manifest, or nil) are not even looked up: a version is
// published only once the store holds all its contents, and contents are
// never removed from it. So an unchanged tree costs no request at all.
// prog counts the contents stored.
func (s *Service) upload(ctx context.Context, dir string, m, stored *tree.Manifest, prog *progress) (files, nbytes int64, err error) {
	src, err := os.OpenRoot(dir)
	if err != nil {
		return 0, 0, fmt.Errorf("open source %s: %w", dir, err)
	}
	defer src.Close()
	seen := map[string]bool{}
	if stored != nil {
		for _, e := range stored.Entries {
			if e.Kind == tree.KindFile {
				seen[e.Hash] = true
			}
		}
	}
	type sent struct{ n int64 }
	results := make([]sent, len(m.Entries))
	var mu sync.Mutex
	chunks := map[string]bool{} // chunks one of the workers took on
	claim := func(hash string) bool {
		mu.Lock()
		defer mu.Unlock()
		if chunks[hash] {
			return false
		}
		chunks[hash] = true
		return true
	}
	// The contents to look at, each once: the upload's totals.
	var todo []int
	var todoBytes int64
	for i, e := range m.Entries {
		if e.Kind != tree.KindFile || seen[e.Hash] {
			continue
		}
		seen[e.Hash] = true
		todo = append(todo, i)
		todoBytes += e.Size
	}
	prog.enter(bus.PhaseUpload, todoBytes, int64(len(todo)))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(uploadWorkers)
	for _, i := range todo {
		e := m.Entries[i]
		g.Go(func() error {
			var n int64
			var err error
			if len(e.Chunks) > 0 {
				n, err = s.uploadChunks(gctx, src, e, claim)
			} else {
				n, err = s.uploadOne(gctx, src, e)
			}
			results[i] = sent{n}
			if err == nil && n > 0 {
				prog.add(1, n)
			}
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return 0, 0, err
	}
	for _, r := range results {
		if r.n > 0 {
			files++
			nbytes += r.n
		}
	}
	return files, nbytes, nil
}

// uploadOne stores one file's content unless the store has it; it returns
// the bytes sent (0 when already stored).
func (s *Service) uploadOne(ctx context.Context, src *os.Root, e tree.Entry) (int64, error) {
	if stored, err := has(ctx, s.layout.Blobs, "blob", e.Hash); err != nil || stored {
		return 0, err
	}
	f, err := src.Open(filepath.FromSlash(e.Path))
	if err != nil {
		return 0, fmt.Errorf("upload %s: %w", e.Path, err)
	}
	defer f.Close()
	return s.putBlob(ctx, e.Hash, f, e.Size, e.Path)
}

// uploadChunks stores the chunks of a large file the store lacks, each
// named by its hash, and not the whole content: a large file edited in
// places costs the chunks it changed (docs/adr/0008-chunked-content-store.md).
// claim says whether this call is the one to store a chunk, so that the
// same chunk is sent once. It returns the bytes sent.
func (s *Service) uploadChunks(ctx context.Context, src *os.Root, e tree.Entry, claim func(hash string) bool) (int64, error) {
	var f *os.File
	defer func() {
		if f != nil {
			_ = f.Close() // read only
		}
	}()
	var sent int64
	offs := e.ChunkOffsets()
	for i, c := range e.Chunks {
		if !claim(c.Hash) {
			continue
		}
		if stored, err := has(ctx, s.layout.Blobs, "blob", c.Hash); err != nil {
			return sent, err
		} else if stored {
			continue
		}
		if f == nil {
			var err error
			if f, err = src.Open(filepath.FromSlash(e.Path)); err != nil {
				return sent, fmt.Errorf("upload %s: %w", e.Path, err)
			}
		}
		n, err := s.putBlob(ctx, c.Hash, io.NewSectionReader(f, offs[i], c.Size), c.Size, e.Path)
		sent += n
		if err != nil {
			return sent, err
		}
	}
	return sent, nil
}

// has reports whether store holds an object named name (what: its kind,
// for the error).
func has(ctx context.Context, store jetstream.ObjectStore, what, name string) (bool, error) {
	_, err := store.GetInfo(ctx, name)
	if err == nil {
		return true, nil
	}
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return false, nil
	}
	return false, fmt.Errorf("look up %s %s: %w", what, name, err)
}

// putBlob stores what r gives under hash, the BLAKE3 of size bytes read
// from the file at path, and returns the bytes sent. Bytes that do not
// hash to it (the file changed since the scan) are ErrChanged. A content
// of one chunk is read and checked first, then stored with
// bus.PutSmallObject (the store was found to lack it); a larger one is
// streamed to the store and checked as it goes.
func (s *Service) putBlob(ctx context.Context, hash string, r io.Reader, size int64, path string) (int64, error) {
	if size <= bus.ObjectChunkSize {
		data, err := io.ReadAll(io.LimitReader(r, size+1)) // one byte more shows a longer file
		if err != nil {
			return 0, fmt.Errorf("upload %s: %w", path, err)
		}
		if got := blake3.Sum256(data); int64(len(data)) != size || hex.EncodeToString(got[:]) != hash {
			return 0, fmt.Errorf("upload %s: %w", path, ErrChanged)
		}
		if _, err := bus.PutSmallObject(ctx, s.js, bus.BucketBlobs, bus.ObjectMeta(hash, nil), data); err != nil {
			return 0, fmt.Errorf("upload %s: %w", path, err)
		}
		return size, nil
	}
	h := blake3.New()
	info, err := s.layout.Blobs.Put(ctx, bus.ObjectMeta(hash, nil), io.TeeReader(r, h))
	if err != nil {
		return 0, fmt.Errorf("upload %s: %w", path, err)
	}
	if got := fmt.Sprintf("%x", h.Sum(nil)); got != hash || int64(info.Size) != size {
		// What we stored under the hash is not that content. Remove it —
		// unless another origin has meanwhile stored the right content
		// there (the store's digest is then not that of our bytes, which
		// Put recorded in info).
		if now, err := s.layout.Blobs.GetInfo(ctx, hash); err == nil && now.Digest == info.Digest {
			if derr := s.layout.Blobs.Delete(context.WithoutCancel(ctx), hash); derr != nil {
				return 0, fmt.Errorf("upload %s: %w; and removing it: %w", path, ErrChanged, derr)
			}
		}
		return 0, fmt.Errorf("upload %s: %w", path, ErrChanged)
	}
	return int64(info.Size), nil
}

func (s *Service) putManifest(ctx context.Context, treeName, root string, m *tree.Manifest) error {
	name := bus.ManifestObject(treeName, root)
	if stored, err := has(ctx, s.layout.Manifests, "manifest", name); err != nil || stored {
		return err
	}
	var buf bytes.Buffer
	if err := tree.Encode(&buf, m); err != nil {
		return fmt.Errorf("encode manifest %s: %w", name, err)
	}
	if _, err := s.layout.Manifests.Put(ctx, bus.ObjectMeta(name, nil), &buf); err != nil {
		return fmt.Errorf("store manifest %s: %w", name, err)
	}
	return nil
}
