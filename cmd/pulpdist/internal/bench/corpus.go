// Package bench writes the synthetic trees of pulpdist's benchmark harness
// (docs/benchmarks.md): a version A of a tree and a version B that differs
// from it the way real trees change between two syncs. The benchmarks in
// this package's test files measure pulpdist's packs, scans and applies on
// them against zstd, rsync and cp.
package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"slices"
	"time"
)

// Scale says how big a corpus Generate writes. The fractions of files that
// change between A and B are the same at every scale.
type Scale struct {
	// Name is the value of PULPDIST_BENCH_SCALE that selects this scale.
	Name string
	// SourceFiles is the number of source code files in A (src/).
	SourceFiles int
	// LogFiles is the number of log files in A (logs/), each up to LogMax bytes.
	LogFiles int
	LogMax   int
	// Binaries is the number of executables in A (bin/), each up to BinaryMax bytes.
	Binaries  int
	BinaryMax int
	// SmallFiles is the number of small files (100 B … 4 KiB) in A (assets/).
	SmallFiles int
	// Large are the sizes of the large files of A (images/).
	Large []int64
	// Symlinks is the number of symbolic links in A (links/).
	Symlinks int
}

const (
	kib = 1 << 10
	mib = 1 << 20
	gib = 1 << 30
)

// Scales are the corpus sizes PULPDIST_BENCH_SCALE selects. "tiny" is for
// tests of the generator itself.
var scales = []Scale{
	{Name: "tiny", SourceFiles: 40, LogFiles: 2, LogMax: 64 * kib, Binaries: 2, BinaryMax: 128 * kib,
		SmallFiles: 60, Large: []int64{1 * mib}, Symlinks: 12},
	{Name: "small", SourceFiles: 800, LogFiles: 12, LogMax: 2 * mib, Binaries: 10, BinaryMax: 6 * mib,
		SmallFiles: 4000, Large: []int64{16 * mib, 32 * mib}, Symlinks: 40},
	// "large" is small's files plus full's multi-GB images: the large-file
	// figures without full's hours of floor computation on 100,000 files.
	{Name: "large", SourceFiles: 800, LogFiles: 12, LogMax: 2 * mib, Binaries: 10, BinaryMax: 6 * mib,
		SmallFiles: 4000, Large: []int64{1 * gib, 2*gib + 512*mib}, Symlinks: 40},
	{Name: "full", SourceFiles: 8000, LogFiles: 30, LogMax: 32 * mib, Binaries: 30, BinaryMax: 48 * mib,
		SmallFiles: 40000, Large: []int64{1 * gib, 2*gib + 512*mib}, Symlinks: 200},
}

// ParseScale returns the scale named s; "" is "small".
func ParseScale(s string) (Scale, error) {
	if s == "" {
		s = "small"
	}
	for _, sc := range scales {
		if sc.Name == s {
			return sc, nil
		}
	}
	return Scale{}, fmt.Errorf("PULPDIST_BENCH_SCALE=%q: want small, large, full or tiny", s)
}

// The times files carry: A's files were last written in the half year
// after baseTime, B's changed files in the month after bTime.
var (
	baseTime = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	bTime    = baseTime.AddDate(0, 7, 0)
)

// Generate writes version A of the corpus into the directory a and version
// B into b, both created (they must not exist). The same scale and seed
// give the same bytes, modes, link targets and modification times, so the
// same manifest roots. What B changes (docs/benchmarks.md): source files
// edited, added, deleted, renamed and renamed with an edit, modes changed;
// logs appended to; binaries rebuilt with scattered changes and shifted
// sections; small files mostly unchanged, some added, edited or deleted;
// large files with scattered edits and an insertion; symbolic links
// retargeted, added and removed.
func Generate(ctx context.Context, a, b string, sc Scale, seed uint64) error {
	if sc.SourceFiles < 1 || sc.LogFiles < 1 || sc.Binaries < 1 || sc.SmallFiles < 1 || len(sc.Large) == 0 ||
		sc.Symlinks < 1 || sc.LogMax < 4*kib || sc.BinaryMax < 64*kib {
		return fmt.Errorf("generate: scale %q too small", sc.Name)
	}
	for _, d := range []string{a, b} {
		if err := os.Mkdir(d, 0o755); err != nil {
			return fmt.Errorf("generate: %w", err)
		}
		if err := os.Chmod(d, 0o755); err != nil {
			return fmt.Errorf("generate: %w", err)
		}
	}
	g := &generator{ctx: ctx, a: a, b: b, sc: sc, seed: seed, code: codeTemplates(seed)}
	for _, step := range []func() error{g.sources, g.logs, g.binaries, g.smallFiles, g.largeFiles, g.symlinks} {
		if err := step(); err != nil {
			return fmt.Errorf("generate: %w", err)
		}
	}
	return nil
}

// generator holds what every step of Generate shares.
type generator struct {
	ctx  context.Context
	a, b string
	sc   Scale
	seed uint64
	code [][]byte // instruction-like byte templates of binaries
}

// rng returns the random source of one item, so that an item's bytes do
// not depend on how many random numbers other items drew.
func (g *generator) rng(kind string, i int) *rand.Rand {
	h := fnv.New64a()
	fmt.Fprintf(h, "%s/%d", kind, i)
	return rand.New(rand.NewPCG(g.seed, h.Sum64()))
}

// stamp returns a modification time after t, within span.
func stamp(r *rand.Rand, t time.Time, span time.Duration) time.Time {
	return t.Add(time.Duration(r.Int64N(int64(span))))
}

// sources writes src/: Go-like source files in packages. In B 15% are
// edited, 2% deleted, 2% moved to another package unchanged, 1% moved and
// edited, 1% change mode, and 2% more are new.
func (g *generator) sources() error {
	n := g.sc.SourceFiles
	pkgs := max(1, n/25)
	for i := range n {
		if err := g.ctx.Err(); err != nil {
			return err
		}
		r := g.rng("src", i)
		t := newText(r)
		pkg := fmt.Sprintf("src/%s%02d", newText(g.rng("pkg", i%pkgs)).word(), i%pkgs)
		p := fmt.Sprintf("%s/%s_%d.go", pkg, t.ident(), i)
		data := t.goFile(40 + r.IntN(600))
		mode := uint32(0o644)
		if r.IntN(30) == 0 {
			mode = 0o755
		}
		mt := stamp(r, baseTime, 180*24*time.Hour)
		if err := writeFile(g.a, p, data, mode, mt); err != nil {
			return err
		}
		bp, bmode, bmt := p, mode, mt
		switch x := pick(r, i, 0, 15, 17, 19, 20); {
		case x < 15:
			data, bmt = t.editSource(data), stamp(r, bTime, 30*24*time.Hour)
		case x < 17:
			continue // deleted in B
		case x < 19:
			bp = fmt.Sprintf("src/moved%02d/%s_%d.go", r.IntN(pkgs), t.ident(), i)
		case x < 20:
			bp = fmt.Sprintf("src/moved%02d/%s_%d.go", r.IntN(pkgs), t.ident(), i)
			data, bmt = t.editSource(data), stamp(r, bTime, 30*24*time.Hour)
		case x < 21:
			bmode ^= 0o111
		}
		if err := writeFile(g.b, bp, data, bmode, bmt); err != nil {
			return err
		}
	}
	for i := range max(1, n/50) {
		r := g.rng("src-new", i)
		t := newText(r)
		p := fmt.Sprintf("src/new%02d/%s_%d.go", i%10, t.ident(), i)
		if err := writeFile(g.b, p, t.goFile(40+r.IntN(600)), 0o644, stamp(r, bTime, 30*24*time.Hour)); err != nil {
			return err
		}
	}
	return nil
}

// logs writes logs/: service logs; in B 80% have grown by 5–25% at the end.
func (g *generator) logs() error {
	for i := range g.sc.LogFiles {
		if err := g.ctx.Err(); err != nil {
			return err
		}
		r := g.rng("log", i)
		t := newText(r)
		p := fmt.Sprintf("logs/%s-%d.log", t.word(), i)
		size := g.sc.LogMax/8 + r.IntN(g.sc.LogMax*7/8)
		at := baseTime.Add(time.Duration(r.Int64N(int64(24 * time.Hour))))
		data, at := t.logLines(size, at)
		if err := writeFile(g.a, p, data, 0o644, at); err != nil {
			return err
		}
		if pick(r, i, 50) >= 20 {
			more, end := t.logLines(size*(5+r.IntN(21))/100, at.Add(bTime.Sub(baseTime)))
			data, at = append(data, more...), end
		}
		if err := writeFile(g.b, p, data, 0o644, at); err != nil {
			return err
		}
	}
	return nil
}

// binaries writes bin/: executable-like files. In B 75% are rebuilt:
// scattered changes of a few bytes, code inserted and removed (which
// shifts every section after it), and a changed string.
func (g *generator) binaries() error {
	for i := range g.sc.Binaries {
		if err := g.ctx.Err(); err != nil {
			return err
		}
		r := g.rng("bin", i)
		t := newText(r)
		p := fmt.Sprintf("bin/%s-%d", t.ident(), i)
		size := g.sc.BinaryMax/8 + r.IntN(g.sc.BinaryMax*7/8)
		data := g.binary(r, t, size)
		mt := stamp(r, baseTime, 180*24*time.Hour)
		if err := writeFile(g.a, p, data, 0o755, mt); err != nil {
			return err
		}
		if pick(r, i, 50) >= 25 {
			var err error
			if data, err = applyEditsBytes(data, g.rebuildEdits(r, t, int64(len(data)))); err != nil {
				return fmt.Errorf("rebuild %s: %w", p, err)
			}
			mt = stamp(r, bTime, 30*24*time.Hour)
		}
		if err := writeFile(g.b, p, data, 0o755, mt); err != nil {
			return err
		}
	}
	return nil
}

// smallFiles writes assets/: small config and text files in nested
// directories. In B 2% are edited, 2% deleted and 3% more are new.
func (g *generator) smallFiles() error {
	for i := range g.sc.SmallFiles {
		if err := g.ctx.Err(); err != nil {
			return err
		}
		r := g.rng("small", i)
		t := newText(r)
		p := fmt.Sprintf("assets/d%02d/d%02d/%s-%d.%s", i%37, i%11, t.word(), i, []string{"json", "txt", "conf"}[i%3])
		data := t.smallFile(i%3, 100+r.IntN(4*kib-100))
		mt := stamp(r, baseTime, 180*24*time.Hour)
		if err := writeFile(g.a, p, data, 0o644, mt); err != nil {
			return err
		}
		switch x := pick(r, i, 0, 2); {
		case x < 2:
			data, mt = t.editSource(data), stamp(r, bTime, 30*24*time.Hour)
		case x < 4:
			continue
		}
		if err := writeFile(g.b, p, data, 0o644, mt); err != nil {
			return err
		}
	}
	for i := range max(1, g.sc.SmallFiles*3/100) {
		r := g.rng("small-new", i)
		t := newText(r)
		p := fmt.Sprintf("assets/new%02d/%s-%d.txt", i%7, t.word(), i)
		if err := writeFile(g.b, p, t.smallFile(1, 100+r.IntN(4*kib-100)), 0o644, stamp(r, bTime, 30*24*time.Hour)); err != nil {
			return err
		}
	}
	return nil
}

// largeFiles writes images/: disk-image-like files of 64 KiB blocks of
// text, code, random bytes and zeros, streamed to disk. In B each has a
// scattered edit every 4 MiB or so and one insertion of 64 KiB … 1 MiB.
func (g *generator) largeFiles() error {
	for i, size := range g.sc.Large {
		r := g.rng("large", i)
		t := newText(r)
		p := fmt.Sprintf("images/disk-%d.img", i)
		mt := stamp(r, baseTime, 180*24*time.Hour)
		err := writeStream(g.a, p, 0o644, mt, func(w io.Writer) error {
			for off := int64(0); off < size; off += 64 * kib {
				if err := g.ctx.Err(); err != nil {
					return err
				}
				if _, err := w.Write(g.imageBlock(r, t, int(min(64*kib, size-off)))); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		edits := scatteredEdits(r, size, max(4, int(size/(4*mib))), 4*kib)
		// The insertion goes where an overwrite starts, so that it never
		// falls inside one.
		ins := g.imageBlock(r, t, 64*kib+r.IntN(960*kib))
		edits = sortEdits(append(edits, edit{off: edits[r.IntN(len(edits))].off, ins: ins}))
		src, err := os.Open(filepath.Join(g.a, filepath.FromSlash(p)))
		if err != nil {
			return err
		}
		err = writeStream(g.b, p, 0o644, stamp(r, bTime, 30*24*time.Hour), func(w io.Writer) error {
			return applyEdits(w, bufio.NewReaderSize(src, mib), edits)
		})
		src.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

// symlinks writes links/: relative symbolic links to files and
// directories of src/, one dangling. In B 10% are retargeted, 10% removed
// and 10% more are new.
func (g *generator) symlinks() error {
	targets, err := listFiles(filepath.Join(g.a, "src"))
	if err != nil {
		return err
	}
	target := func(r *rand.Rand) string {
		f := targets[r.IntN(len(targets))]
		if r.IntN(4) == 0 {
			return "../src/" + path.Dir(f)
		}
		return "../src/" + f
	}
	for i := range g.sc.Symlinks {
		r := g.rng("link", i)
		p := fmt.Sprintf("links/l%03d", i)
		to := target(r)
		if i == 0 {
			to = "../src/missing/none.go"
		}
		if err := writeLink(g.a, p, to); err != nil {
			return err
		}
		switch x := pick(r, i, 50, 0, 15); {
		case x < 10:
			to = target(r)
		case x < 20:
			continue
		}
		if err := writeLink(g.b, p, to); err != nil {
			return err
		}
	}
	for i := range max(1, g.sc.Symlinks/10) {
		r := g.rng("link-new", i)
		if err := writeLink(g.b, fmt.Sprintf("links/new%03d", i), target(r)); err != nil {
			return err
		}
	}
	return nil
}

// pick returns a random percentile, except that item i gets forced[i]:
// so that even the tiniest corpus has a file of each kind of change.
func pick(r *rand.Rand, i int, forced ...int) int {
	x := r.IntN(100)
	if i < len(forced) {
		return forced[i]
	}
	return x
}

// listFiles returns the regular files below dir, slash-separated and
// relative to it, in walk order (sorted).
func listFiles(dir string) ([]string, error) {
	var out []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		out = append(out, filepath.ToSlash(rel))
		return err
	})
	if err == nil && len(out) == 0 {
		err = fmt.Errorf("no files in %s", dir)
	}
	return out, err
}

// mkdirs creates the parent directories of the slash path p below root,
// each with mode 0755 whatever the umask.
func mkdirs(root, p string) error {
	dir := root
	parts := splitDirs(p)
	for _, part := range parts {
		dir = filepath.Join(dir, part)
		err := os.Mkdir(dir, 0o755)
		if errors.Is(err, os.ErrExist) {
			continue
		}
		if err != nil {
			return err
		}
		if err := os.Chmod(dir, 0o755); err != nil {
			return err
		}
	}
	return nil
}

// splitDirs returns the directory components of the slash path p.
func splitDirs(p string) []string {
	var parts []string
	for d := path.Dir(p); d != "."; d = path.Dir(d) {
		parts = append(parts, path.Base(d))
	}
	slices.Reverse(parts)
	return parts
}

// writeFile writes data to the new file p below root with mode and mtime.
func writeFile(root, p string, data []byte, mode uint32, mtime time.Time) error {
	return writeStream(root, p, mode, mtime, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// writeStream creates the new file p below root, fills it with write, and
// sets its mode (whatever the umask) and modification time.
func writeStream(root, p string, mode uint32, mtime time.Time, write func(io.Writer) error) error {
	if err := mkdirs(root, p); err != nil {
		return err
	}
	name := filepath.Join(root, filepath.FromSlash(p))
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, os.FileMode(mode))
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(f, mib)
	err = write(bw)
	if err == nil {
		err = bw.Flush()
	}
	if err == nil {
		err = f.Chmod(os.FileMode(mode))
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	return os.Chtimes(name, mtime, mtime)
}

// writeLink creates the symbolic link p below root pointing to target.
func writeLink(root, p, target string) error {
	if err := mkdirs(root, p); err != nil {
		return err
	}
	return os.Symlink(target, filepath.Join(root, filepath.FromSlash(p)))
}
