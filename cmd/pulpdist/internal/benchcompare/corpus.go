package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"github.com/pulpdist/pulpdist/cmd/pulpdist/internal/bench"
	"github.com/pulpdist/pulpdist/libs/tree"
)

// corpus is one update: tree A becomes tree B.
type corpus struct {
	name   string
	a, b   string
	ma, mb *tree.Manifest
	floor  int64
	detail string // how it was made, for the report
}

// debianQuick and debianFull are the packages of the real-world corpus:
// each is unpacked in the two newest versions the machine's Debian
// sources offer (a point release and its security update, say).
var (
	debianQuick = []string{"libssl3", "openssl"}
	debianFull  = []string{
		"libssl3", "openssl", "libcurl4", "curl", "python3.11", "python3.11-minimal", "libpython3.11-stdlib",
		"libpython3.11-minimal", "perl-modules-5.36", "libperl5.36", "git", "git-man",
	}
)

// generated makes the synthetic corpus of docs/benchmarks.md at a scale.
func generated(ctx context.Context, work, scale string) (*corpus, error) {
	sc, err := bench.ParseScale(scale)
	if err != nil {
		return nil, err
	}
	c := &corpus{name: "generated-" + scale, a: filepath.Join(work, "gen-a"), b: filepath.Join(work, "gen-b"),
		detail: fmt.Sprintf("the generated corpus at scale %s (docs/benchmarks.md, seed 1)", scale)}
	if err := bench.Generate(ctx, c.a, c.b, sc, 1); err != nil {
		return nil, fmt.Errorf("generate: %w", err)
	}
	return c, nil
}

// debian unpacks two consecutive versions of each package into A (the
// older) and B (the newer), the .deb files cached in cache.
func debian(ctx context.Context, work, cache string, pkgs []string) (*corpus, error) {
	c := &corpus{name: "debian", a: filepath.Join(work, "deb-a"), b: filepath.Join(work, "deb-b")}
	var used []string
	for _, dir := range []string{c.a, c.b} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
	}
	for _, p := range pkgs {
		vs, err := versions(ctx, p)
		if err != nil {
			return nil, err
		}
		if len(vs) < 2 {
			return nil, fmt.Errorf("debian corpus: %s has %d version(s) in the apt sources, want 2", p, len(vs))
		}
		old, cur := vs[len(vs)-2], vs[len(vs)-1]
		for dir, v := range map[string]string{c.a: old, c.b: cur} {
			deb, err := download(ctx, cache, p, v)
			if err != nil {
				return nil, err
			}
			if _, err := runCmd(ctx, "", "dpkg-deb", "-x", deb, dir); err != nil {
				return nil, err
			}
		}
		used = append(used, fmt.Sprintf("%s %s→%s", p, old, cur))
	}
	c.detail = "Debian packages unpacked (dpkg-deb -x), older → newer version: " + strings.Join(used, ", ")
	return c, nil
}

// versions lists the versions apt knows of a package, oldest first.
func versions(ctx context.Context, pkg string) ([]string, error) {
	out, err := runCmd(ctx, "", "apt-cache", "madison", pkg)
	if err != nil {
		return nil, err
	}
	var vs []string
	for line := range strings.SplitSeq(string(out), "\n") {
		f := strings.Split(line, "|")
		if len(f) < 3 || strings.TrimSpace(f[0]) != pkg {
			continue
		}
		if v := strings.TrimSpace(f[1]); !slices.Contains(vs, v) {
			vs = append(vs, v)
		}
	}
	var sortErr error
	slices.SortFunc(vs, func(a, b string) int {
		if a == b {
			return 0
		}
		if exec.CommandContext(ctx, "dpkg", "--compare-versions", a, "lt", b).Run() == nil {
			return -1
		}
		if err := exec.CommandContext(ctx, "dpkg", "--compare-versions", a, "gt", b).Run(); err != nil {
			sortErr = fmt.Errorf("dpkg --compare-versions %s %s: %w", a, b, err)
		}
		return 1
	})
	return vs, sortErr
}

// download fetches one version of a package into cache (once).
func download(ctx context.Context, cache, pkg, version string) (string, error) {
	dir := filepath.Join(cache, "debs", pkg, strings.ReplaceAll(version, ":", "%3a"))
	if debs, _ := filepath.Glob(filepath.Join(dir, "*.deb")); len(debs) == 1 {
		return debs[0], nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	if _, err := runCmd(ctx, dir, "apt-get", "download", "-q", pkg+"="+version); err != nil {
		return "", err
	}
	debs, _ := filepath.Glob(filepath.Join(dir, "*.deb"))
	if len(debs) != 1 {
		return "", fmt.Errorf("download %s=%s: %d .deb files in %s", pkg, version, len(debs), dir)
	}
	return debs[0], nil
}

// scan makes the manifests of A and B and the floor of the update.
func (c *corpus) prepare(ctx context.Context, zstd, work string) error {
	var err error
	if c.ma, err = tree.Scan(ctx, c.a); err != nil {
		return err
	}
	if c.mb, err = tree.Scan(ctx, c.b); err != nil {
		return err
	}
	if c.ma.Root() == c.mb.Root() {
		return errors.New("corpus: A and B are the same tree")
	}
	scratch := filepath.Join(work, "floor-"+c.name)
	if err := os.MkdirAll(scratch, 0o755); err != nil {
		return err
	}
	c.floor, err = bench.Floor(ctx, zstd, scratch, c.a, c.b, c.ma, c.mb)
	return err
}
