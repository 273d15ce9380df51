// Command benchcompare puts pulpdist and an rsync daemon side by side on
// the same update of the same trees, for several numbers of sites, on this
// machine and in one run (make bench-compare; docs/benchmarks.md).
//
// For each corpus and number of sites N it runs, from scratch:
//
//   - pulpdist: nats-server, the inventory (SQLite), the scheduler, one
//     delta-cache and the origin's site-agent, and N site-agents, every
//     one a separate process. Every site first gets version A; then the
//     origin's source becomes B and a sync is measured until every site
//     serves B, verified byte for byte; then a sync without change.
//   - rsync: an rsync daemon serving B, and N sites holding copies of A
//     that pull from it at once (rsync -a --delete, tool "rsync"; and
//     rsync -az --delete, tool "rsync-z", as over a WAN); then again,
//     unchanged.
//
// Origin CPU is that of nats-server, the delta-cache and the origin agent
// for pulpdist (every CPU second the delta costs is there), and that of the
// daemon and the children it forks for rsync, read from /proc.
//
// Environment: BENCH_QUICK=1 (the tiny generated corpus and two Debian
// packages, N = 1 and 16), BENCH_JSON (default docs/bench/latest.json),
// BENCH_SVG (default docs/bench/compare.svg), BENCH_MD (also write the
// markdown table there), BENCH_SITES ("1,4,16,64"), BENCH_CORPORA
// ("generated,debian"), BENCH_SCALE (the generated corpus's scale; quick:
// tiny, else small), BENCH_WORK (scratch; default a new directory in
// TMPDIR, removed at the end), BENCH_CACHE (downloaded packages; default
// ~/.cache/pulpdist-bench), BENCH_TOOLS ("pulpdist,rsync": which to run),
// BENCH_PROFILE (a directory: the origin side's CPU profile of each
// measured update, one file per program, for go tool pprof),
// BENCH_ONE_RUNS (how many times N = 1 is measured, default 3, quick 1:
// the run with the least origin CPU is the baseline of the ratios),
// BENCH_IDLE_WINDOW (how long pulpdist's origin side is watched doing
// nothing before each update, default 20s, quick 2s, 0 none: its rate
// times the update's wall time is reported as origin_idle_cpu_s).
package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// options are what the environment asks for.
type options struct {
	quick        bool
	sites        []int
	corpora      []string
	scale        string
	jsonPath     string
	svgPath      string
	mdPath       string
	work, cache  string
	keepWork     bool
	debianPkgs   []string
	repo, goTool string
	pulpdist     bool // run pulpdist (BENCH_TOOLS)
	rsync        bool // run the rsync daemon (BENCH_TOOLS)
	profiles     string
	oneRuns      int // how many times N = 1 is measured (BENCH_ONE_RUNS)
	// idleWindow is how long the idle origin side is watched before each
	// pulpdist update (BENCH_IDLE_WINDOW).
	idleWindow time.Duration
}

// measure runs one measurement runs times and keeps the run that cost the
// origin least CPU, with every run's origin CPU in OriginCPURuns. The
// least is the figure the machine disturbed least: the same work on this
// virtual machine costs up to a third more CPU from one run to the next.
// Used for N = 1, the baseline of every "÷ N=1", so that ratio errs on
// the side of too high.
func measure(runs int, run func() (record, error)) (record, error) {
	var best record
	var all []float64
	for i := range max(runs, 1) {
		r, err := run()
		if err != nil {
			return r, err
		}
		all = append(all, r.OriginCPU)
		if i == 0 || r.OriginCPU < best.OriginCPU {
			best = r
		}
	}
	if runs > 1 {
		best.OriginCPURuns = all
	}
	return best, nil
}

func optionsFromEnv() (o options, err error) {
	o = options{
		quick: os.Getenv("BENCH_QUICK") == "1", jsonPath: envOr("BENCH_JSON", "docs/bench/latest.json"),
		svgPath: envOr("BENCH_SVG", "docs/bench/compare.svg"), mdPath: os.Getenv("BENCH_MD"),
		corpora: strings.Split(envOr("BENCH_CORPORA", "generated,debian"), ","), goTool: envOr("GO", "go"),
	}
	o.sites, o.scale, o.debianPkgs = []int{1, 4, 16, 64}, "small", debianFull
	if o.quick {
		o.sites, o.scale, o.debianPkgs = []int{1, 16}, "tiny", debianQuick
	}
	if s := os.Getenv("BENCH_SITES"); s != "" {
		o.sites = nil
		for f := range strings.SplitSeq(s, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n < 1 || n > 999 {
				return o, fmt.Errorf("BENCH_SITES %q: want numbers of sites from 1 to 999, such as 1,4,16", s)
			}
			o.sites = append(o.sites, n)
		}
	}
	o.oneRuns = 3
	if o.quick {
		o.oneRuns = 1
	}
	if s := os.Getenv("BENCH_ONE_RUNS"); s != "" {
		if o.oneRuns, err = strconv.Atoi(s); err != nil || o.oneRuns < 1 || o.oneRuns > 20 {
			return o, fmt.Errorf("BENCH_ONE_RUNS %q: want how many times N = 1 is measured, 1 to 20", s)
		}
	}
	o.idleWindow = 20 * time.Second
	if o.quick {
		o.idleWindow = 2 * time.Second
	}
	if s := os.Getenv("BENCH_IDLE_WINDOW"); s != "" {
		if o.idleWindow, err = time.ParseDuration(s); err != nil || o.idleWindow < 0 || o.idleWindow > 10*time.Minute {
			return o, fmt.Errorf("BENCH_IDLE_WINDOW %q: want a duration from 0 (none) to 10m", s)
		}
	}
	if len(o.sites) == 0 || o.sites[0] != 1 {
		return o, errors.New("BENCH_SITES must start with 1: the ratios are to N = 1")
	}
	o.scale = envOr("BENCH_SCALE", o.scale)
	for t := range strings.SplitSeq(envOr("BENCH_TOOLS", "pulpdist,rsync"), ",") {
		switch strings.TrimSpace(t) {
		case "pulpdist":
			o.pulpdist = true
		case "rsync":
			o.rsync = true
		default:
			return o, fmt.Errorf("BENCH_TOOLS: unknown tool %q (pulpdist, rsync)", t)
		}
	}
	if o.profiles = os.Getenv("BENCH_PROFILE"); o.profiles != "" {
		if o.profiles, err = filepath.Abs(o.profiles); err != nil {
			return o, err
		}
	}
	for _, c := range o.corpora {
		if c != "generated" && c != "debian" {
			return o, fmt.Errorf("BENCH_CORPORA: unknown corpus %q (generated, debian)", c)
		}
	}
	home, _ := os.UserHomeDir()
	o.cache = envOr("BENCH_CACHE", filepath.Join(home, ".cache", "pulpdist-bench"))
	o.work, o.keepWork = os.Getenv("BENCH_WORK"), os.Getenv("BENCH_WORK") != ""
	o.repo, err = os.Getwd()
	return o, err
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func main() {
	log.SetFlags(log.Ltime)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	o, err := optionsFromEnv()
	if err != nil {
		log.Fatal(err)
	}
	if err := run(ctx, o); err != nil {
		log.Fatal(err)
	}
}

// needed are the programs the harness runs, with the Debian package that
// has each.
var needed = map[string]string{"rsync": "rsync", "zstd": "zstd", "cp": "coreutils", "dpkg-deb": "dpkg", "apt-get": "apt"}

// tools finds the programs, installing rsync and zstd from Debian's
// packages when they are missing.
func tools(ctx context.Context) (map[string]string, error) {
	var missing []string
	for prog, pkg := range needed {
		if _, err := exec.LookPath(prog); err != nil {
			missing = append(missing, pkg)
		}
	}
	if len(missing) > 0 {
		log.Printf("installing %s", strings.Join(missing, " "))
		sudo := []string{}
		if os.Geteuid() != 0 {
			sudo = []string{"sudo"}
		}
		for _, args := range [][]string{{"apt-get", "update", "-qq"}, append([]string{"apt-get", "install", "-y", "-qq"}, missing...)} {
			full := append(sudo, args...)
			if _, err := runCmd(ctx, "", full[0], full[1:]...); err != nil {
				return nil, err
			}
		}
	}
	out := map[string]string{}
	for prog := range needed {
		p, err := exec.LookPath(prog)
		if err != nil {
			return nil, err
		}
		out[prog] = p
	}
	return out, nil
}

func run(ctx context.Context, o options) error {
	start := time.Now()
	tl, err := tools(ctx)
	if err != nil {
		return err
	}
	if o.work == "" {
		if o.work, err = os.MkdirTemp("", "pulpdist-bench-compare-"); err != nil {
			return err
		}
	}
	if !o.keepWork {
		defer os.RemoveAll(o.work)
	}
	log.Printf("building the services (work dir %s)", o.work)
	bin, err := buildBinaries(ctx, o.goTool, o.repo, filepath.Join(o.work, "bin"), o.profiles)
	if err != nil {
		return err
	}
	var corpora []*corpus
	for _, name := range o.corpora {
		dir := filepath.Join(o.work, "corpus-"+name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		var c *corpus
		switch name {
		case "generated":
			c, err = generated(ctx, dir, o.scale)
		case "debian":
			c, err = debian(ctx, dir, o.cache, o.debianPkgs)
		}
		if err != nil {
			return err
		}
		if err := c.prepare(ctx, tl["zstd"], o.work); err != nil {
			return fmt.Errorf("corpus %s: %w", name, err)
		}
		_, bytesA := c.ma.Totals()
		filesB, bytesB := c.mb.Totals()
		log.Printf("corpus %s: A %d bytes, B %d files %d bytes, floor %d bytes", c.name, bytesA, filesB, bytesB, c.floor)
		corpora = append(corpora, c)
	}
	var recs []record
	for _, c := range corpora {
		for _, n := range o.sites {
			runs := 1
			if n == 1 {
				runs = o.oneRuns
			}
			if o.pulpdist {
				r, err := measure(runs, func() (record, error) {
					log.Printf("%s, %d sites: pulpdist", c.name, n)
					p, err := runPulpdist(ctx, bin, o.work, c, n, o.idleWindow)
					_ = os.RemoveAll(filepath.Join(o.work, fmt.Sprintf("pulpdist-%s-%d", c.name, n))) // scratch
					return p, err
				})
				if err != nil {
					return fmt.Errorf("pulpdist, %s, %d sites: %w", c.name, n, err)
				}
				recs = append(recs, r)
			}
			for _, z := range []bool{false, true} {
				if !o.rsync {
					break
				}
				r, err := measure(runs, func() (record, error) {
					log.Printf("%s, %d sites: rsync (compress %v)", c.name, n, z)
					r, err := runRsync(ctx, tl["rsync"], o.work, c, n, z)
					if err == nil {
						_ = os.RemoveAll(filepath.Join(o.work, fmt.Sprintf("%s-%s-%d", r.Tool, c.name, n))) // scratch
					}
					return r, err
				})
				if err != nil {
					return fmt.Errorf("rsync, %s, %d sites: %w", c.name, n, err)
				}
				recs = append(recs, r)
			}
		}
	}
	if err := writeJSON(o.jsonPath, recs); err != nil {
		return err
	}
	var md bytes.Buffer
	for _, c := range corpora {
		fmt.Fprintf(&md, "- `%s`: %s; B has %d files; floor %d bytes.\n", c.name, c.detail, len(c.mb.Entries), c.floor)
	}
	md.WriteString("\n")
	table(&md, recs)
	_, _ = os.Stdout.Write(md.Bytes()) // the report; the files below are the record
	if o.mdPath != "" {
		if err := os.WriteFile(o.mdPath, md.Bytes(), 0o644); err != nil {
			return err
		}
	}
	var pic bytes.Buffer
	svg(&pic, recs)
	if err := os.MkdirAll(filepath.Dir(o.svgPath), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(o.svgPath, pic.Bytes(), 0o644); err != nil {
		return err
	}
	log.Printf("done in %s: %s, %s", time.Since(start).Round(time.Second), o.jsonPath, o.svgPath)
	return nil
}
