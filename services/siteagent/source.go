package siteagent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/pulpdist/pulpdist/libs/bus"
)

// sourceDir is the local directory a snapshot command's source stands
// for (bus.ParseSource): the directory itself, checked against the
// site's source roots; this site's served version of another tree; or a
// staging copy of an rsync upstream, brought up to date first.
func (s *Service) sourceDir(ctx context.Context, cmd bus.SyncCommand) (string, error) {
	kind, of, err := bus.ParseSource(cmd.Source)
	if err != nil {
		return "", bus.Permanent(err)
	}
	switch kind {
	case bus.SourceReplica:
		return s.replicaSource(of)
	case bus.SourceRsync:
		return s.importRsync(ctx, cmd)
	}
	if err := s.allowedSource(cmd.Source); err != nil {
		return "", bus.Permanent(err)
	}
	return cmd.Source, nil
}

// replicaSource is the directory of the version of tree this site serves.
// Versions are never changed once made, so the scan sees one version
// whole even while the replica moves on.
func (s *Service) replicaSource(treeName string) (string, error) {
	cur := filepath.Join(treesDir(s.cfg.DataDir), treeName, "current")
	dir, err := filepath.EvalSymlinks(cur)
	if errors.Is(err, fs.ErrNotExist) {
		return "", bus.Permanent(fmt.Errorf("source replica:%s: this site serves no version of %s yet", treeName, treeName))
	}
	if err != nil {
		return "", fmt.Errorf("source replica:%s: %w", treeName, err)
	}
	return dir, nil
}

// importDir holds the staging copies of rsync upstreams, one per tree.
func importDir(data string) string { return filepath.Join(data, "import") }

// maxRsyncStderr bounds what an error quotes of rsync's complaints.
const maxRsyncStderr = 2048

// importRsync brings the staging copy of the tree up to date with its
// rsync:// upstream, through the tree's filters, and returns it. The
// system rsync does the transfer (rsync's own delta algorithm over the
// upstream's link); special files are skipped and set-uid, set-gid and
// sticky bits dropped, as a version cannot hold them.
func (s *Service) importRsync(ctx context.Context, cmd bus.SyncCommand) (string, error) {
	bin, err := exec.LookPath("rsync")
	if err != nil {
		return "", bus.Permanent(fmt.Errorf("source %s: rsync is not installed on this site (Debian: apt-get install rsync): %w", cmd.Source, err))
	}
	staging := filepath.Join(importDir(s.cfg.DataDir), cmd.Tree)
	if err := os.MkdirAll(staging, 0o755); err != nil {
		return "", fmt.Errorf("source %s: %w", cmd.Source, err)
	}
	args := []string{"-rlpt", "--delete", "--delete-excluded", "--chmod=u-s,g-s,o-t", "--no-motd", "--modify-window=-1", "--timeout=600", "--contimeout=60"}
	for _, f := range cmd.Filters {
		args = append(args, "--filter="+f)
	}
	args = append(args, "--", strings.TrimSuffix(cmd.Source, "/")+"/", staging+"/")
	var stderr bytes.Buffer
	c := exec.CommandContext(ctx, bin, args...)
	c.Stderr = &stderr
	err = c.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit) && exit.ExitCode() == 24:
		// Files vanished upstream during the transfer: a live mirror; what
		// is staged is consistent file by file, and the next sync catches up.
		s.log.Warn("rsync: some upstream files vanished during the import", "tree", cmd.Tree, "source", cmd.Source)
	case ctx.Err() != nil:
		return "", ctx.Err()
	case errors.As(err, &exit) && permanentRsync(exit.ExitCode(), stderr.String()):
		return "", bus.Permanent(fmt.Errorf("import %s: rsync %w: %s", cmd.Source, err, tail(stderr.String())))
	default:
		return "", fmt.Errorf("import %s: rsync %w: %s", cmd.Source, err, tail(stderr.String()))
	}
	return staging, nil
}

// permanentRsync says whether an rsync exit code (and its complaint) is
// one a retry cannot fix: a bad option (1), a protocol mismatch (2), an
// unsupported action (4), or the daemon refusing the session (5: unknown
// module, authentication) unless it asks to try again later.
func permanentRsync(code int, stderr string) bool {
	switch code {
	case 1, 2, 4:
		return true
	case 5:
		return !strings.Contains(stderr, "max connections") && !strings.Contains(stderr, "try again")
	}
	return false
}

// tail is the end of s, at most maxRsyncStderr bytes, trimmed.
func tail(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > maxRsyncStderr {
		s = "…" + s[len(s)-maxRsyncStderr:]
	}
	return s
}
