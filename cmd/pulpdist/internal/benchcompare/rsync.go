package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"
)

// runRsync measures an rsync daemon serving B to sites that hold A, all
// pulling at once (the cron setup pulpdist replaces): rsync -a, or with
// compress rsync -az, as over a WAN.
func runRsync(ctx context.Context, rsync, work string, c *corpus, nsites int, compress bool) (record, error) {
	tool, flags := "rsync", "-a"
	if compress {
		tool, flags = "rsync-z", "-az"
	}
	dir := filepath.Join(work, fmt.Sprintf("%s-%s-%d", tool, c.name, nsites))
	module := filepath.Join(dir, "module")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return record{}, err
	}
	if _, err := runCmd(ctx, "", "cp", "-a", c.b, module); err != nil {
		return record{}, err
	}
	sites := siteNames(nsites)
	for _, s := range sites { // each site holds A (real copies: rsync changes modes in place)
		if _, err := runCmd(ctx, "", "cp", "-a", c.a, filepath.Join(dir, s)); err != nil {
			return record{}, err
		}
	}
	port, err := freePort()
	if err != nil {
		return record{}, err
	}
	conf := filepath.Join(dir, "rsyncd.conf")
	// The daemon keeps the harness's user (as root it would switch to
	// nobody, who cannot read a package's private directories).
	body := fmt.Sprintf("use chroot = no\nmax connections = 0\nuid = %d\ngid = %d\npid file = %s\nlog file = %s\n[bench]\npath = %s\nread only = yes\n",
		os.Getuid(), os.Getgid(), filepath.Join(dir, "rsyncd.pid"), filepath.Join(dir, "rsyncd.log"), module)
	if err := os.WriteFile(conf, []byte(body), 0o644); err != nil {
		return record{}, err
	}
	d, err := start("rsyncd", dir, rsync, nil, "--daemon", "--no-detach", "--config="+conf, "--address=127.0.0.1", fmt.Sprintf("--port=%d", port))
	if err != nil {
		return record{}, err
	}
	defer d.stop()
	if err := dialable(ctx, port); err != nil {
		return record{}, err
	}
	url := fmt.Sprintf("rsync://127.0.0.1:%d/bench/", port)
	pullAll := func() ([]int64, error) {
		got := make([]int64, len(sites))
		g, gctx := errgroup.WithContext(ctx)
		for i, s := range sites {
			g.Go(func() error {
				out, err := runCmd(gctx, "", rsync, flags, "--delete", "--stats", url, filepath.Join(dir, s)+"/")
				if err != nil {
					return err
				}
				got[i], err = statsField(string(out), "Total bytes received")
				return err
			})
		}
		if err := g.Wait(); err != nil {
			return nil, err
		}
		// The daemon's children count once it has reaped them.
		return got, until(ctx, time.Minute, "rsync daemon children reaped", func() error {
			if n := children(d.cmd.Process.Pid); n > 0 {
				return fmt.Errorf("%d children", n)
			}
			return nil
		})
	}
	quiesce(ctx, "update")
	cpu0, err := d.cpu()
	if err != nil {
		return record{}, err
	}
	t0 := time.Now()
	got, err := pullAll()
	if err != nil {
		return record{}, err
	}
	wall := time.Since(t0)
	cpu1, err := d.cpu()
	if err != nil {
		return record{}, err
	}
	var received int64
	for _, n := range got {
		received += n
	}
	for _, s := range sites {
		if err := sameTree(ctx, filepath.Join(dir, s), c.mb); err != nil {
			return record{}, fmt.Errorf("rsync site %s: %w", s, err)
		}
	}
	quiesce(ctx, "poll")
	cpuPoll, err := d.cpu()
	if err != nil {
		return record{}, err
	}
	if _, err := pullAll(); err != nil {
		return record{}, err
	}
	cpu2, err := d.cpu()
	if err != nil {
		return record{}, err
	}
	return record{
		Tool: tool, Corpus: c.name, Sites: nsites, OriginCPU: (cpu1 - cpu0).Seconds(),
		BytesPerSite: received / int64(nsites), FloorBytes: c.floor, Wall: wall.Seconds(), PollCPU: (cpu2 - cpuPoll).Seconds(),
	}, nil
}

// statsField reads a number from rsync --stats output ("Total bytes
// received: 1,234").
func statsField(out, label string) (int64, error) {
	for line := range strings.SplitSeq(out, "\n") {
		rest, ok := strings.CutPrefix(strings.TrimSpace(line), label+":")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			break
		}
		return strconv.ParseInt(strings.ReplaceAll(f[0], ",", ""), 10, 64)
	}
	return 0, errors.New("rsync --stats: no " + label)
}
