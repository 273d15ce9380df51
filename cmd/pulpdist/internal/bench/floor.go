package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/pulpdist/pulpdist/libs/tree"
)

// zstdArgs are the options of every floor compression: the strongest
// ordinary level with a 2 GiB window, so that matches anywhere in a file
// (or in the old file, with --patch-from) are found.
var zstdArgs = []string{"-q", "-19", "--long=31", "-c"}

// hugeFile is the size above which the floor of a content with an old
// version is its patch alone, at level hugeLevel: zstd -19 runs at about
// 0.5 MB/s here, hours for the multi-GB images, and their patch (a few
// edits in GBs of unchanged bytes) is far below any plain compression of
// them. docs/benchmarks.md says so next to the figures.
const (
	hugeFile  = 256 * mib
	hugeLevel = "-9"
)

// segments says when and how zstdPatch splits a patch: zstd --patch-from
// refuses references over 2 GB ("Can't handle files larger than 2 GB"),
// and --memory, which only raises the decoder's limit, does not lift it.
type segments struct {
	whole  int64 // files (old or new) up to this size are patched whole
	size   int64 // a larger new file is patched in segments of this size
	margin int64 // each against the old file's segment widened by this on each side
}

var bigFiles = segments{whole: 1792 * mib, size: 1 * gib, margin: 64 * mib}

// floor is the smallest delta the benchmarks compare packs to, in bytes,
// in total and by top-level directory.
type floor struct {
	total int64
	byDir map[string]int64
	parts int // distinct contents of B that A does not have
}

// zstdFloor computes the floor of the delta from tree a (manifest ma) to
// tree b (manifest mb): for each distinct content of b that no file of a
// has, the smaller of `zstd -19 --long=31` of it and, for each path of b
// holding it where a has a file, `zstd -19 --long=31 --patch-from` the
// file of a at that path; contents a has cost nothing, and so do
// directories, links, modes and removals. One zstd per CPU runs at a time.
func zstdFloor(ctx context.Context, zstd, work, a, b string, ma, mb *tree.Manifest) (floor, error) {
	inA := make(map[string]tree.Entry, len(ma.Entries))
	have := make(map[string]bool, len(ma.Entries))
	for _, e := range ma.Entries {
		if e.Kind == tree.KindFile {
			inA[e.Path] = e
			have[e.Hash] = true
		}
	}
	type content struct {
		path    string // first path of b holding it: compressed plain
		size    int64
		patches []string // paths where a has a file: compressed against it
		best    int64
	}
	var order []string
	contents := make(map[string]*content)
	for _, e := range mb.Entries {
		if e.Kind != tree.KindFile || have[e.Hash] {
			continue
		}
		c := contents[e.Hash]
		if c == nil {
			c = &content{path: e.Path, size: e.Size, best: -1}
			contents[e.Hash] = c
			order = append(order, e.Hash)
		}
		if old, ok := inA[e.Path]; ok && len(c.patches) < 3 {
			c.patches = append(c.patches, old.Path)
		}
	}

	var mu sync.Mutex
	better := func(c *content, n int64) {
		mu.Lock()
		defer mu.Unlock()
		if c.best < 0 || n < c.best {
			c.best = n
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(runtime.NumCPU())
	for i, h := range order {
		c := contents[h]
		huge := c.size > hugeFile && len(c.patches) > 0
		g.Go(func() error {
			if huge {
				return nil // its patch is the floor (see hugeFile)
			}
			n, err := zstdSize(gctx, zstd, "", "", filepath.Join(b, c.path), nil)
			if err != nil {
				return err
			}
			better(c, n)
			return nil
		})
		for j, p := range c.patches {
			g.Go(func() error {
				n, err := zstdPatch(gctx, zstd, filepath.Join(work, fmt.Sprintf("ref-%d-%d", i, j)),
					filepath.Join(a, p), filepath.Join(b, p), bigFiles)
				if err != nil {
					return err
				}
				better(c, n)
				return nil
			})
		}
	}
	if err := g.Wait(); err != nil {
		return floor{}, fmt.Errorf("floor: %w", err)
	}
	f := floor{byDir: make(map[string]int64), parts: len(order)}
	for _, h := range order {
		c := contents[h]
		f.total += c.best
		f.byDir[topDir(c.path)] += c.best
	}
	return f, nil
}

// zstdSize returns the size of `zstd -19 --long=31 [--patch-from=ref]` of
// the file target, or of in if not nil (target then names it in errors);
// a level other than "" replaces -19.
func zstdSize(ctx context.Context, zstd, level, ref, target string, in io.Reader) (int64, error) {
	args := append([]string(nil), zstdArgs...)
	if level != "" {
		args[1] = level
	}
	if ref != "" {
		args = append(args, "--patch-from="+ref)
	}
	cmd := exec.CommandContext(ctx, zstd, args...)
	if in != nil {
		cmd.Stdin = in
		if s, ok := in.(interface{ Size() int64 }); ok {
			cmd.Args = append(cmd.Args, "--stream-size="+strconv.FormatInt(s.Size(), 10))
		}
		cmd.Args = append(cmd.Args, "-")
	} else {
		cmd.Args = append(cmd.Args, target)
	}
	var out counter
	var stderr tail
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		return 0, fmt.Errorf("zstd %s: %w: %s", target, err, stderr.String())
	}
	return out.n, nil
}

// zstdPatch returns the size of the patch from the file old to the file
// new: one `zstd --patch-from` if both are at most seg.whole bytes, else
// the sum over seg.size segments of new, each compressed against the
// segment of old at the same offset widened by seg.margin on each side
// (written to the temporary file ref): a floor that assumes no content
// moved further than seg.margin, which holds for the corpus.
func zstdPatch(ctx context.Context, zstd, ref, oldPath, newPath string, seg segments) (int64, error) {
	oldInfo, err := os.Stat(oldPath)
	if err != nil {
		return 0, err
	}
	newInfo, err := os.Stat(newPath)
	if err != nil {
		return 0, err
	}
	level := ""
	if newInfo.Size() > hugeFile {
		level = hugeLevel
	}
	if oldInfo.Size() <= seg.whole && newInfo.Size() <= seg.whole {
		return zstdSize(ctx, zstd, level, oldPath, newPath, nil)
	}
	oldFile, err := os.Open(oldPath)
	if err != nil {
		return 0, err
	}
	defer oldFile.Close()
	newFile, err := os.Open(newPath)
	if err != nil {
		return 0, err
	}
	defer newFile.Close()
	defer os.Remove(ref)
	var total int64
	for off := int64(0); off < newInfo.Size(); off += seg.size {
		lo := max(0, off-seg.margin)
		hi := min(oldInfo.Size(), off+seg.size+seg.margin)
		if err := copyRange(ref, oldFile, lo, max(0, hi-lo)); err != nil {
			return 0, err
		}
		part := io.NewSectionReader(newFile, off, min(seg.size, newInfo.Size()-off))
		n, err := zstdSize(ctx, zstd, level, ref, fmt.Sprintf("%s[%d:]", newPath, off), part)
		if err != nil {
			return 0, err
		}
		total += n
	}
	return total, nil
}

// copyRange writes n bytes of src from offset off to the file dst.
func copyRange(dst string, src io.ReaderAt, off, n int64) error {
	f, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, io.NewSectionReader(src, off, n)); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// topDir returns the first component of a slash path: the corpus
// category (src, logs, bin, assets, images, links).
func topDir(p string) string {
	for i := range len(p) {
		if p[i] == '/' {
			return p[:i]
		}
	}
	return p
}

// counter counts the bytes written to it.
type counter struct{ n int64 }

func (c *counter) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return len(p), nil
}

// tail keeps the last 2 KiB written to it (a program's stderr).
type tail struct{ b []byte }

func (t *tail) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > 2*kib {
		t.b = t.b[len(t.b)-2*kib:]
	}
	return len(p), nil
}

func (t *tail) String() string { return string(t.b) }

// Floor is the floor of the delta from tree a (manifest ma) to tree b
// (manifest mb), in bytes: for each content of b that a lacks, the
// smaller of zstd -19 --long=31 of it and of its patch from the file of a
// at the same path (zstd must name the zstd program; work holds scratch
// files).
func Floor(ctx context.Context, zstd, work string, a, b string, ma, mb *tree.Manifest) (int64, error) {
	f, err := zstdFloor(ctx, zstd, work, a, b, ma, mb)
	return f.total, err
}
