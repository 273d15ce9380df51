package tree

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"runtime"
	"slices"
	"strings"

	"golang.org/x/sync/errgroup"
)

// Scan walks the directory dir and returns its manifest. dir itself may be
// a symbolic link to a directory (such as a replica's "current"); inside the
// tree symbolic links are recorded, never followed. The root directory is not
// an entry. Files are hashed in parallel by at most GOMAXPROCS workers.
// Devices, sockets, fifos and entries with set-uid, set-gid or sticky bits
// give an error wrapping ErrUnsupportedFile that names the path. A file that
// changes size while it is hashed is an error.
func Scan(ctx context.Context, dir string) (*Manifest, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("scan %s: %w", dir, err)
	}
	defer root.Close()

	m := &Manifest{Format: FormatVersion, Entries: []Entry{}}
	err = fs.WalkDir(root.FS(), ".", func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if p == "." {
			return nil
		}
		e, err := scanEntry(root, p)
		if err != nil {
			return err
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
		if m.Entries[i].Kind != KindFile {
			continue
		}
		e := &m.Entries[i] // each worker owns one entry
		g.Go(func() error { return hashFile(gctx, root, e) })
	}
	if err := g.Wait(); err != nil {
		return nil, fmt.Errorf("scan %s: %w", dir, err)
	}
	return m, nil
}

// scanEntry describes the entry at p from its lstat information; files get
// their size, mtime and hash later from hashFile.
func scanEntry(root *os.Root, p string) (Entry, error) {
	if err := ValidatePath(p); err != nil {
		return Entry{}, err
	}
	info, err := root.Lstat(p)
	if err != nil {
		return Entry{}, err
	}
	mode := info.Mode()
	if mode&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky) != 0 {
		return Entry{}, fmt.Errorf("%w: %s has set-uid, set-gid or sticky bits (%s)", ErrUnsupportedFile, p, mode)
	}
	switch {
	case mode.IsRegular():
		return Entry{Path: p, Kind: KindFile, Mode: uint32(mode.Perm())}, nil
	case mode.IsDir():
		return Entry{Path: p, Kind: KindDir, Mode: uint32(mode.Perm())}, nil
	case mode&fs.ModeSymlink != 0:
		target, err := root.Readlink(p)
		if err != nil {
			return Entry{}, err
		}
		return Entry{Path: p, Kind: KindSymlink, Target: target}, nil
	default:
		return Entry{}, fmt.Errorf("%w: %s is a %s", ErrUnsupportedFile, p, kindName(mode))
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
func hashFile(ctx context.Context, root *os.Root, e *Entry) error {
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
	e.Mode = uint32(info.Mode().Perm())
	e.Size = n
	e.MTime = info.ModTime().UnixNano()
	e.Hash = hash
	return nil
}
