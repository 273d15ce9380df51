package tree

import (
	"context"
	"fmt"
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
// tree symbolic links are recorded, never followed. The root directory is not
// an entry. Files are hashed in parallel by at most GOMAXPROCS workers.
// Devices, sockets, fifos and entries with set-uid, set-gid or sticky bits
// give an error wrapping ErrUnsupportedFile that names the path. A file that
// changes size while it is hashed is an error. Scan is ScanWith without a
// cache or a filter.
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

	now func() time.Time // the scan start; time.Now unless a test sets it
}

// ScanWith is Scan with a stat cache and a filter. With a cache, a file
// whose device, inode, size, mtime, ctime and mode equal the cached ones is
// not read: its hash comes from the cache (see StatCache for which files
// are remembered). With a filter, entries it excludes are absent from the
// manifest and excluded directories are not walked, so an included path
// below an excluded directory is not reached, as in rsync; the parent of
// every recorded entry is therefore recorded too.
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

	m = &Manifest{Format: FormatVersion, Entries: []Entry{}}
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
		if e.Kind == KindFile && o.Cache != nil {
			k, ok := statKeyOf(info)
			if hash, hit := o.Cache.lookup(p, k, ok); hit {
				e.Size = info.Size()
				e.MTime = info.ModTime().UnixNano()
				e.Hash = hash
			}
		}
		m.Entries = append(m.Entries, e)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("scan %s: %w", dir, err)
	}
	// WalkDir sorts by name within a directory; manifests sort by full path
	// ("a-b" < "a/b").
	slices.SortFunc(m.Entries, func(a, b Entry) int { return strings.Compare(a.Path, b.Path) })

	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(runtime.GOMAXPROCS(0))
	for i := range m.Entries {
		if m.Entries[i].Kind != KindFile || m.Entries[i].Hash != "" {
			continue // not a file, or its hash came from the cache
		}
		e := &m.Entries[i] // each worker owns one entry
		g.Go(func() error { return hashFile(gctx, root, e, o.Cache, start) })
	}
	if err := g.Wait(); err != nil {
		return nil, fmt.Errorf("scan %s: %w", dir, err)
	}
	return m, nil
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

// hashFile fills in the size, mtime, mode and hash of the file entry e,
// taking them from the opened file so that they describe the bytes hashed.
// With a cache, the hash is remembered if the file's stat fields are the
// same after hashing as before and old enough (StatCache.store).
func hashFile(ctx context.Context, root *os.Root, e *Entry, cache *StatCache, start time.Time) error {
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
	bufSize := min(info.Size()+1, 256<<10)
	hash, n, err := hashWith(f, make([]byte, bufSize))
	if err != nil {
		return fmt.Errorf("%s: %w", e.Path, err)
	}
	if n != info.Size() {
		return fmt.Errorf("%s: size changed during the scan (%d bytes, read %d)", e.Path, info.Size(), n)
	}
	if cache != nil {
		if k, ok := statKeyOf(info); ok {
			after, err := f.Stat()
			if err != nil {
				return err
			}
			if k2, ok := statKeyOf(after); ok && k2 == k {
				cache.store(e.Path, k, hash, start)
			}
		}
	}
	e.Mode = uint32(info.Mode().Perm())
	e.Size = n
	e.MTime = info.ModTime().UnixNano()
	e.Hash = hash
	return nil
}
