package bench

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/zeebo/blake3"

	"github.com/pulpdist/pulpdist/libs/poll"
	"github.com/pulpdist/pulpdist/libs/tree"
)

// seed is the corpus seed: every run measures the same trees.
const seed = 1

// categories are the top-level directories of the corpus, one per kind
// of change (corpus.go).
var categories = []string{"src", "logs", "bin", "assets", "images", "links"}

// corpus is a generated pair of trees and what is known about them.
type corpus struct {
	scale    Scale
	work     string // scratch directory for copies, packs and sites
	a, b     string
	ma, mb   *tree.Manifest
	written  time.Time // when the last file was written
	changed  []string  // entries of B that A lacks or has otherwise, in path order
	bytesA   int64
	bytesB   int64
	filesB   int
	bytesChg int64
	dirB     map[string]int64 // bytes of B by top-level directory
	dirChg   map[string]int64 // bytes of B's new or changed entries, likewise
}

// result holds every figure of one run.
type result struct {
	packFormat              int
	pack, floor, rsync      int64
	packTime                time.Duration
	rsyncCompress           string
	floorParts              int
	packByDir, floorByDir   map[string]int64
	scanCold, scanWarm, sha time.Duration
	blake3GBs, sha256GBs    float64
	applyTime, cpTime       time.Duration
}

// BenchmarkTreeEngine measures pulpdist's delta size, scan speed, hashing
// and apply time on a generated pair of trees (PULPDIST_BENCH_SCALE) against
// zstd's patch floor, rsync, SHA-256 and cp. Run it with -benchtime=1x
// (make bench does); PULPDIST_BENCH_OUT names a file for the markdown
// table. docs/benchmarks.md explains every figure.
func BenchmarkTreeEngine(b *testing.B) {
	sc, err := ParseScale(os.Getenv("PULPDIST_BENCH_SCALE"))
	if err != nil {
		b.Fatal(err)
	}
	tools := needTools(b, "zstd", "rsync", "cp", "go")
	work := b.TempDir()
	bin := buildCLI(b, tools["go"], work)
	c := newCorpus(b, sc, work)

	var res result
	for b.Loop() {
		res = measure(b, c, bin, tools)
	}

	ratio := func(x, y float64) float64 { return x / y }
	b.ReportMetric(ratio(float64(res.pack), float64(res.floor)), "pack/floor")
	b.ReportMetric(ratio(float64(res.pack), float64(res.rsync)), "pack/rsync")
	b.ReportMetric(float64(res.pack)/1e6, "pack-MB")
	b.ReportMetric(float64(c.filesB)/res.scanCold.Seconds(), "scan-files/s")
	b.ReportMetric(float64(c.bytesB)/1e6/res.scanCold.Seconds(), "scan-MB/s")
	b.ReportMetric(ratio(res.sha.Seconds(), res.scanCold.Seconds()), "scan/sha256")
	b.ReportMetric(ratio(res.scanCold.Seconds(), res.scanWarm.Seconds()), "warm/cold")
	b.ReportMetric(res.blake3GBs, "blake3-GB/s")
	b.ReportMetric(ratio(res.blake3GBs, res.sha256GBs), "blake3/sha256")
	b.ReportMetric(ratio(res.applyTime.Seconds(), res.cpTime.Seconds()), "apply/cp")

	table := report(c, res)
	b.Log("\n" + table)
	if out := os.Getenv("PULPDIST_BENCH_OUT"); out != "" {
		if err := os.WriteFile(out, []byte(table), 0o644); err != nil {
			b.Fatal(err)
		}
	}
}

// newCorpus generates the trees of scale sc below work and scans them.
func newCorpus(b *testing.B, sc Scale, work string) *corpus {
	b.Helper()
	c := &corpus{scale: sc, work: work, a: filepath.Join(work, "a"), b: filepath.Join(work, "b"),
		dirB: make(map[string]int64), dirChg: make(map[string]int64)}
	if err := Generate(b.Context(), c.a, c.b, sc, seed); err != nil {
		b.Fatal(err)
	}
	c.written = time.Now()
	var err error
	if c.ma, err = tree.Scan(b.Context(), c.a); err != nil {
		b.Fatal(err)
	}
	if c.mb, err = tree.Scan(b.Context(), c.b); err != nil {
		b.Fatal(err)
	}
	inA := make(map[string]tree.Entry, len(c.ma.Entries))
	for _, e := range c.ma.Entries {
		inA[e.Path] = e
		c.bytesA += e.Size
	}
	for _, e := range c.mb.Entries {
		c.bytesB += e.Size
		c.dirB[topDir(e.Path)] += e.Size
		if e.Kind == tree.KindFile {
			c.filesB++
		}
		old, ok := inA[e.Path]
		if e.Kind != tree.KindDir && (!ok || !sameEntry(old, e)) {
			c.changed = append(c.changed, e.Path)
			c.bytesChg += e.Size
			c.dirChg[topDir(e.Path)] += e.Size
		}
	}
	return c
}

// sameEntry reports whether two entries at one path describe the same
// file or link: what a copy of the changed files may leave alone.
func sameEntry(x, y tree.Entry) bool {
	return x.Kind == y.Kind && x.Mode == y.Mode && x.Hash == y.Hash && x.MTime == y.MTime && x.Target == y.Target
}

// measure takes every figure once.
func measure(b *testing.B, c *corpus, bin string, tools map[string]string) result {
	ctx := b.Context()
	res := result{packByDir: make(map[string]int64)}
	fail := func(what string, err error) {
		b.Helper()
		if err != nil {
			b.Fatalf("%s: %v", what, err)
		}
	}

	// Delta size: the pack from A to B, and per category.
	delta := filepath.Join(c.work, "delta.pack")
	var err error
	res.pack, res.packTime, err = pack(ctx, bin, c.a, c.b, delta)
	fail("pack", err)
	res.packFormat, err = packFormat(delta)
	fail("pack", err)
	for _, d := range categories {
		out := filepath.Join(c.work, "part.pack")
		res.packByDir[d], _, err = pack(ctx, bin, filepath.Join(c.a, d), filepath.Join(c.b, d), out)
		fail("pack "+d, err)
		fail("pack "+d, os.Remove(out))
	}
	fl, err := zstdFloor(ctx, tools["zstd"], c.work, c.a, c.b, c.ma, c.mb)
	fail("floor", err)
	res.floor, res.floorByDir, res.floorParts = fl.total, fl.byDir, fl.parts

	// rsync: update a copy of A to B.
	dest := filepath.Join(c.work, "rsync-dest")
	_, _, err = run(ctx, "", tools["cp"], "-a", c.a, dest)
	fail("copy A", err)
	res.rsync, res.rsyncCompress, err = rsyncBytes(ctx, tools["rsync"], c.work, c.b, dest)
	fail("rsync", err)
	sameTree(b, dest, c.mb, "rsync's copy")
	fail("remove rsync copy", os.RemoveAll(dest))

	// Apply: a site holding A applies the delta; cp -a copies the changed
	// entries of B into a copy of A.
	site := filepath.Join(c.work, "site")
	full := filepath.Join(c.work, "full.pack")
	_, _, err = pack(ctx, bin, "", c.a, full)
	fail("full pack", err)
	_, _, err = run(ctx, "", bin, "apply", full, "--root", site)
	fail("apply full pack", err)
	fail("remove full pack", os.Remove(full))
	out, took, err := run(ctx, "", bin, "apply", delta, "--root", site)
	fail("apply", err)
	if !bytes.Contains(out, []byte("serving "+c.mb.Root())) {
		b.Fatalf("apply: %q, want serving %s", out, c.mb.Root())
	}
	res.applyTime = took
	fail("remove site", os.RemoveAll(site))
	res.cpTime = cpChanged(b, c, tools["cp"])

	// Scans of B: pulpdist cold (no stat cache) and warm, single-threaded
	// SHA-256 of the same files. Best of three: the files are in the page
	// cache after the steps above.
	res.sha = bestOf(b, 3, func() error { return sha256Files(c.b, c.mb) })
	res.scanCold = bestOf(b, 3, func() error {
		m, err := tree.Scan(ctx, c.b)
		if err == nil && m.Root() != c.mb.Root() {
			err = errors.New("cold scan gave another root")
		}
		return err
	})
	// The stat cache remembers only files older than RacyWindow.
	poll.Until(b, time.Minute, func() error {
		if age := time.Since(c.written); age <= tree.RacyWindow+100*time.Millisecond {
			return fmt.Errorf("files written %s ago are too recent for the stat cache", age)
		}
		return nil
	})
	cache := tree.NewStatCache()
	_, err = tree.ScanWith(ctx, c.b, tree.ScanOptions{Cache: cache})
	fail("prime the stat cache", err)
	res.scanWarm = bestOf(b, 3, func() error {
		m, err := tree.ScanWith(ctx, c.b, tree.ScanOptions{Cache: cache})
		if err != nil {
			return err
		}
		if hits, misses := cache.Stats(); hits != int64(c.filesB) || misses != 0 || m.Root() != c.mb.Root() {
			return fmt.Errorf("warm scan: %d hits, %d misses for %d files", hits, misses, c.filesB)
		}
		return nil
	})

	res.blake3GBs, res.sha256GBs = hashSpeeds()
	return res
}

// pack runs `pulpdist pack [--from from] to -o out` and returns the
// pack's size and how long packing took.
func pack(ctx context.Context, bin, from, to, out string) (int64, time.Duration, error) {
	args := []string{"pack", to, "-o", out, "--tree", "bench"}
	if from != "" {
		args = append(args, "--from", from)
	}
	_, took, err := run(ctx, "", bin, args...)
	if err != nil {
		return 0, 0, err
	}
	info, err := os.Stat(out)
	if err != nil {
		return 0, 0, err
	}
	return info.Size(), took, nil
}

// packFormat returns the format version byte of a pack file (offset 4,
// after the magic "PDPK").
func packFormat(path string) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	var head [5]byte
	if _, err := io.ReadFull(f, head[:]); err != nil {
		return 0, fmt.Errorf("pack %s: %w", path, err)
	}
	if string(head[:4]) != "PDPK" {
		return 0, fmt.Errorf("pack %s: magic %q", path, head[:4])
	}
	return int(head[4]), nil
}

// sameTree fails the benchmark unless dir scans to the manifest want.
func sameTree(b *testing.B, dir string, want *tree.Manifest, what string) {
	b.Helper()
	got, err := tree.Scan(b.Context(), dir)
	if err != nil {
		b.Fatalf("%s: %v", what, err)
	}
	if got.Root() != want.Root() {
		b.Fatalf("%s is not B: root %s, want %s", what, got.Root(), want.Root())
	}
}

// cpChanged copies A with cp -a (not timed), then times `cp -a --parents`
// of B's changed entries into the copy (one cp per 64 KiB of arguments),
// and checks that the copy, less the entries B removed, is B.
func cpChanged(b *testing.B, c *corpus, cp string) time.Duration {
	b.Helper()
	dest := filepath.Join(c.work, "cp-dest")
	if _, _, err := run(b.Context(), "", cp, "-a", c.a, dest); err != nil {
		b.Fatal(err)
	}
	var took time.Duration
	for batch := range batches(c.changed, 64*kib) {
		args := append(append([]string{"-a", "--parents"}, batch...), dest)
		_, t, err := run(b.Context(), c.b, cp, args...)
		if err != nil {
			b.Fatal(err)
		}
		took += t
	}
	inB := make(map[string]bool, len(c.mb.Entries))
	for _, e := range c.mb.Entries {
		inB[e.Path] = true
	}
	for _, e := range c.ma.Entries {
		if !inB[e.Path] {
			if err := os.RemoveAll(filepath.Join(dest, filepath.FromSlash(e.Path))); err != nil {
				b.Fatal(err)
			}
		}
	}
	sameTree(b, dest, c.mb, "the cp -a copy")
	if err := os.RemoveAll(dest); err != nil {
		b.Fatal(err)
	}
	return took
}

// batches yields paths in groups of at most limit bytes of arguments.
func batches(paths []string, limit int) func(func([]string) bool) {
	return func(yield func([]string) bool) {
		var cur []string
		n := 0
		for _, p := range paths {
			if n+len(p) > limit && len(cur) > 0 {
				if !yield(cur) {
					return
				}
				cur, n = nil, 0
			}
			cur = append(cur, p)
			n += len(p) + 1
		}
		if len(cur) > 0 {
			yield(cur)
		}
	}
}

// sha256Files reads every file of m below dir in path order, one at a
// time, through SHA-256: what `sha256sum` of the tree costs.
func sha256Files(dir string, m *tree.Manifest) error {
	buf := make([]byte, 256*kib)
	h := sha256.New()
	for _, e := range m.Entries {
		if e.Kind != tree.KindFile {
			continue
		}
		f, err := os.Open(filepath.Join(dir, filepath.FromSlash(e.Path)))
		if err != nil {
			return err
		}
		h.Reset()
		_, err = io.CopyBuffer(h, f, buf)
		f.Close()
		if err != nil {
			return err
		}
		h.Sum(buf[:0])
	}
	return nil
}

// bestOf runs f n times and returns its shortest run.
func bestOf(b *testing.B, n int, f func() error) time.Duration {
	b.Helper()
	best := time.Duration(-1)
	for range n {
		start := time.Now()
		if err := f(); err != nil {
			b.Fatal(err)
		}
		if t := time.Since(start); best < 0 || t < best {
			best = t
		}
	}
	return best
}

// hashSpeeds returns the in-memory speed of BLAKE3 (the module libs/tree
// uses) and of crypto/sha256 in GB/s, each hashing a 64 MiB buffer for
// at least a second on one goroutine.
func hashSpeeds() (blake3GBs, sha256GBs float64) {
	r := rand.New(rand.NewPCG(seed, 2))
	buf := randomBytes(r, 64*mib)
	speed := func(sum func([]byte)) float64 {
		start := time.Now()
		n := 0
		for time.Since(start) < time.Second {
			sum(buf)
			n++
		}
		return float64(n*len(buf)) / 1e9 / time.Since(start).Seconds()
	}
	blake3GBs = speed(func(p []byte) { blake3.Sum256(p) })
	sha256GBs = speed(func(p []byte) { sha256.Sum256(p) })
	return blake3GBs, sha256GBs
}

// report renders the results as the markdown of docs/benchmarks.md.
func report(c *corpus, r result) string {
	var s strings.Builder
	mb := func(n int64) string {
		if n < 1e6 {
			return fmt.Sprintf("%.1f kB", float64(n)/1e3)
		}
		return fmt.Sprintf("%.2f MB", float64(n)/1e6)
	}
	secs := func(d time.Duration) string { return fmt.Sprintf("%.2f s", d.Seconds()) }
	fmt.Fprintf(&s, "Run %s, scale %s (seed %d), pack format %d, %s, GOMAXPROCS %d, %s/%s.\n\n",
		time.Now().UTC().Format("2006-01-02"), c.scale.Name, seed, r.packFormat, runtime.Version(),
		runtime.GOMAXPROCS(0), runtime.GOOS, runtime.GOARCH)
	fmt.Fprintf(&s, "Corpus: A %d entries, %s; B %d entries (%d files), %s; %d entries of B new or changed (%s), %d contents not in A.\n\n",
		len(c.ma.Entries), mb(c.bytesA), len(c.mb.Entries), c.filesB, mb(c.bytesB), len(c.changed), mb(c.bytesChg), r.floorParts)
	s.WriteString("| figure | pulpdist | baseline | ratio |\n|---|---|---|---|\n")
	fmt.Fprintf(&s, "| delta A→B, bytes | pack %s (packed in %s) | floor %s | pack/floor %.3f |\n", mb(r.pack), secs(r.packTime), mb(r.floor), float64(r.pack)/float64(r.floor))
	fmt.Fprintf(&s, "| delta A→B, bytes | pack %s | rsync -z (%s) %s | pack/rsync %.3f |\n", mb(r.pack), r.rsyncCompress, mb(r.rsync), float64(r.pack)/float64(r.rsync))
	fmt.Fprintf(&s, "| cold scan of B (no stat cache) | %.0f files/s, %.0f MB/s | SHA-256, 1 thread: %.0f MB/s | scan/sha256 %.2f |\n",
		float64(c.filesB)/r.scanCold.Seconds(), float64(c.bytesB)/1e6/r.scanCold.Seconds(), float64(c.bytesB)/1e6/r.sha.Seconds(), r.sha.Seconds()/r.scanCold.Seconds())
	fmt.Fprintf(&s, "| warm scan of B (stat cache) | %.0f files/s (%s) | cold scan %s | warm/cold %.1f |\n",
		float64(c.filesB)/r.scanWarm.Seconds(), secs(r.scanWarm), secs(r.scanCold), r.scanCold.Seconds()/r.scanWarm.Seconds())
	fmt.Fprintf(&s, "| hashing in memory, 1 thread | BLAKE3 %.2f GB/s | SHA-256 %.2f GB/s | blake3/sha256 %.2f |\n", r.blake3GBs, r.sha256GBs, r.blake3GBs/r.sha256GBs)
	fmt.Fprintf(&s, "| apply A→B on a site at A | %s | cp -a of the changed entries %s | apply/cp %.2f |\n\n", secs(r.applyTime), secs(r.cpTime), r.applyTime.Seconds()/r.cpTime.Seconds())
	s.WriteString("| directory | B | new or changed in B | pack of the directory | floor | pack/floor |\n|---|---|---|---|---|---|\n")
	for _, d := range categories {
		ratio := "—"
		if r.floorByDir[d] > 0 {
			ratio = fmt.Sprintf("%.2f", float64(r.packByDir[d])/float64(r.floorByDir[d]))
		}
		fmt.Fprintf(&s, "| %s/ | %s | %s | %s | %s | %s |\n", d, mb(c.dirB[d]), mb(c.dirChg[d]), mb(r.packByDir[d]), mb(r.floorByDir[d]), ratio)
	}
	return s.String()
}
