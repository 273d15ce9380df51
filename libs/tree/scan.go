package tree

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"
)

// Scan walks the directory dir and returns its manifest. dir itself may be
// a symbolic link to a directory (such as a replica's "current"); inside the
// tree symbolic links are recorded, never followed, and paths that share an
// inode are recorded as a hard link group (see ScanWith). The root directory
// is not an entry. Files are hashed in parallel by at most GOMAXPROCS workers, and
// files of at least ChunkThreshold bytes are also split into chunks in the
// same read.
// Devices, sockets, fifos and entries with set-uid, set-gid or sticky bits
// give an error wrapping ErrUnsupportedFile that names the path. A file that
// changes size while it is hashed is an error. Once ctx ends the scan
// stops, within a large file too, with ctx's error. Scan is ScanWith
// without a cache or a filter.
func Scan(ctx context.Context, dir string) (*Manifest, error) {
	return ScanWith(ctx, dir, ScanOptions{})
}

// ScanOptions are the optional parts of ScanWith; the zero value scans
// everything and hashes every file.
type ScanOptions struct {
	// Cache, if not nil, supplies the hash of files whose stat fields are
	// unchanged since an earlier scan and learns the others.
	Cache *StatCache
	// Filter, if not nil, decides which entries are recorded; an excluded
	// directory is not descended into.
	Filter *Filter
	// NoChunks leaves out chunk lists, which are not part of the root:
	// enough for a scan that only compares roots (verification), and
	// cheaper for large files. Files without their chunks are not stored
	// in Cache.
	NoChunks bool

	now func() time.Time // the scan start; time.Now unless a test sets it
}

// ScanWith is Scan with a stat cache and a filter. With a cache, a file
// whose device, inode, size, mtime, ctime and mode equal the cached ones is
// not read: its hash and chunks come from the cache (see StatCache for
// which files are remembered). With a filter, entries it excludes are
// absent from the manifest and excluded directories are not walked, so an
// included path below an excluded directory is not reached, as in rsync;
// the parent of every recorded entry is therefore recorded too.
//
// Files that share an inode (hard links) are one group: the smallest path
// is a file entry, the group's leader, read once; every other path is a
// KindHardlink entry naming it. Only the paths of this scan count: a file
// whose other links are outside dir, or excluded by the filter, is a plain
// file, and when the smallest path is excluded the smallest included one
// leads. Link counts are read on Linux only; elsewhere every path is a
// file.
func ScanWith(ctx context.Context, dir string, o ScanOptions) (m *Manifest, err error) {
	start := time.Now()
	if o.now != nil {
		start = o.now()
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("scan %s: %w", dir, err)
	}
	defer root.Close()
	if c := o.Cache; c != nil {
		if err := c.begin(); err != nil {
			return nil, fmt.Errorf("scan %s: %w", dir, err)
		}
		defer func() { c.end(err == nil) }()
	}

	var found []scanned
	err = fs.WalkDir(root.FS(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if p == "." {
			return nil
		}
		if !o.Filter.Includes(p, d.IsDir()) {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		e, info, err := scanEntry(root, p, d)
		if err != nil {
			return err
		}
		s := scanned{Entry: e}
		if e.Kind == KindFile {
			s.key, s.keyOK = statKeyOf(info)
			s.link, s.linked = linkIDOf(info)
		}
		found = append(found, s)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("scan %s: %w", dir, err)
	}
	// WalkDir sorts by name within a directory; manifests sort by full path
	// ("a-b" < "a/b").
	slices.SortFunc(found, func(a, b scanned) int { return strings.Compare(a.Path, b.Path) })
	groupHardlinks(found)

	m = &Manifest{Format: FormatVersion, Entries: make([]Entry, len(found))}
	for i := range found {
		e := &m.Entries[i]
		*e = found[i].Entry
		if e.Kind == KindFile && o.Cache != nil {
			if ce, hit := o.Cache.lookup(e.Path, found[i].key, found[i].keyOK); hit {
				e.Size = found[i].key.Size
				e.MTime = found[i].key.MTime
				e.Hash = ce.hash
				e.Chunks = slices.Clone(ce.chunks) // the cache keeps its own
			}
		}
	}

	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(runtime.GOMAXPROCS(0))
	for i := range m.Entries {
		if m.Entries[i].Kind != KindFile || m.Entries[i].Hash != "" {
			continue // not a file, or its hash came from the cache
		}
		e := &m.Entries[i] // each worker owns one entry
		g.Go(func() error { return hashFile(gctx, root, e, o.Cache, !o.NoChunks, start) })
	}
	if err := g.Wait(); err != nil {
		return nil, fmt.Errorf("scan %s: %w", dir, err)
	}
	return m, nil
}

// scanned is an entry found by the walk with what its lstat said: the
// stat cache key and, for a file with more than one link, its inode.
type scanned struct {
	Entry
	key    statKey
	keyOK  bool // key was read (Linux)
	link   linkID
	linked bool // link was read and the inode has more than one link
}

// linkID names an inode: the device and inode numbers.
type linkID struct{ dev, ino uint64 }

// groupHardlinks turns the files of found (sorted by path) that share an
// inode with a file before them into hardlink entries naming that file,
// the group's leader: the smallest path of the group. Only the paths found
// count, so a file whose other links are outside the tree, or excluded by
// the filter, stays a file.
func groupHardlinks(found []scanned) {
	var leaders map[linkID]string
	for i := range found {
		s := &found[i]
		if !s.linked {
			continue
		}
		if leaders == nil {
			leaders = make(map[linkID]string)
		}
		leader, ok := leaders[s.link]
		if !ok {
			leaders[s.link] = s.Path
			continue
		}
		s.Entry = Entry{Path: s.Path, Kind: KindHardlink, Target: leader}
		s.keyOK = false
	}
}

// scanEntry describes the entry at p from its lstat information; files get
// their size, mtime and hash later from hashFile or from the stat cache,
// which uses the lstat information returned with the entry. The
// information comes from d: for a directory read through an os.Root, Go
// fills it with fstatat(2) relative to the directory's descriptor while
// reading the directory, so it costs no extra system call and no path
// resolution.
func scanEntry(root *os.Root, p string, d fs.DirEntry) (Entry, fs.FileInfo, error) {
	if err := ValidatePath(p); err != nil {
		return Entry{}, nil, err
	}
	info, err := d.Info()
	if err != nil {
		return Entry{}, nil, err
	}
	mode := info.Mode()
	if mode&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky) != 0 {
		return Entry{}, nil, fmt.Errorf("%w: %s has set-uid, set-gid or sticky bits (%s)", ErrUnsupportedFile, p, mode)
	}
	switch {
	case mode.IsRegular():
		return Entry{Path: p, Kind: KindFile, Mode: uint32(mode.Perm())}, info, nil
	case mode.IsDir():
		return Entry{Path: p, Kind: KindDir, Mode: uint32(mode.Perm())}, info, nil
	case mode&fs.ModeSymlink != 0:
		target, err := root.Readlink(p)
		if err != nil {
			return Entry{}, nil, err
		}
		return Entry{Path: p, Kind: KindSymlink, Target: target}, info, nil
	default:
		return Entry{}, nil, fmt.Errorf("%w: %s is a %s", ErrUnsupportedFile, p, kindName(mode))
	}
}

// kindName names a file type Scan refuses.
func kindName(mode fs.FileMode) string {
	switch {
	case mode&fs.ModeCharDevice != 0:
		return "character device"
	case mode&fs.ModeDevice != 0:
		return "device"
	case mode&fs.ModeNamedPipe != 0:
		return "fifo"
	case mode&fs.ModeSocket != 0:
		return "socket"
	default:
		return "file of type " + mode.Type().String()
	}
}

// hashFile fills in the size, mtime, mode, hash and, for a file of at least
// ChunkThreshold bytes when chunk is set, the chunks of the file entry e, taking them from the
// opened file so that they describe the bytes hashed; the file is read
// once. With a cache, the hash and chunks are remembered if the file's stat
// fields are the same after hashing as before and old enough
// (StatCache.store).
func hashFile(ctx context.Context, root *os.Root, e *Entry, cache *StatCache, chunk bool, start time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	f, err := root.Open(e.Path)
	if err != nil {
		return err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return err
	}
	if !info.Mode().IsRegular() || info.Mode()&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky) != 0 {
		return fmt.Errorf("%w: %s changed to %s during the scan", ErrUnsupportedFile, e.Path, info.Mode())
	}
	big := info.Size() >= ChunkThreshold
	hash, n, chunks, err := hashContent(ctx, f, info.Size(), big && chunk)
	if err != nil {
		return fmt.Errorf("%s: %w", e.Path, err)
	}
	if n != info.Size() {
		return fmt.Errorf("%s: size changed during the scan (%d bytes, read %d)", e.Path, info.Size(), n)
	}
	if cache != nil && (chunk || !big) {
		if k, ok := statKeyOf(info); ok {
			after, err := f.Stat()
			if err != nil {
				return err
			}
			if k2, ok := statKeyOf(after); ok && k2 == k {
				// The cache keeps its own copy of the chunks.
				cache.store(e.Path, k, statEntry{key: k, hash: hash, chunks: slices.Clone(chunks)}, start)
			}
		}
	}
	e.Mode = uint32(info.Mode().Perm())
	e.Size = n
	e.MTime = info.ModTime().UnixNano()
	e.Hash = hash
	e.Chunks = chunks
	return nil
}

// hashContent reads r, a file of size bytes, to its end and returns the
// hash of what it read, how many bytes that was and, when chunk is set,
// its chunks. Reading a large file takes long: it stops within the file
// once ctx ends (a verify that a run of the tree pre-empts, a shutdown).
func hashContent(ctx context.Context, r io.Reader, size int64, chunk bool) (hash string, n int64, chunks []Chunk, err error) {
	r = contextReader{ctx: ctx, r: r}
	if chunk {
		return hashChunksWith(r, make([]byte, 2*ChunkMaxSize), size)
	}
	hash, n, err = hashWith(r, make([]byte, min(size+1, 256<<10)))
	return hash, n, nil, err
}

// contextReader reads r until ctx ends, then fails with ctx's error.
type contextReader struct {
	ctx context.Context
	r   io.Reader
}

func (c contextReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
