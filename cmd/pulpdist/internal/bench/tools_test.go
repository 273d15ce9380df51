package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// needTools returns the absolute path of each program, failing the
// benchmark if one is missing: a comparison without its baseline means
// nothing.
func needTools(b *testing.B, names ...string) map[string]string {
	b.Helper()
	out := make(map[string]string, len(names))
	for _, n := range names {
		p, err := exec.LookPath(n)
		if err != nil {
			b.Fatalf("%s is needed for the comparison benchmarks (apt-get install zstd rsync): %v", n, err)
		}
		out[n] = p
	}
	return out
}

// run runs a program in dir ("" for the current one) and returns its
// standard output and how long it ran; a failure includes its stderr.
func run(ctx context.Context, dir, prog string, args ...string) ([]byte, time.Duration, error) {
	cmd := exec.CommandContext(ctx, prog, args...)
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	took := time.Since(start)
	if err != nil {
		return nil, took, fmt.Errorf("%s %s: %w: %s", filepath.Base(prog), strings.Join(args, " "), err, lastLines(stderr.String(), 5))
	}
	return stdout.Bytes(), took, nil
}

// lastLines returns the last n lines of s.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// buildCLI builds the pulpdist command from the workspace into dir: the
// benchmarks drive packing and applying through the binary, as a user
// would, so that they follow the pack library as it changes.
func buildCLI(b *testing.B, goTool, dir string) string {
	b.Helper()
	bin := filepath.Join(dir, "pulpdist")
	if _, _, err := run(b.Context(), "", goTool, "build", "-o", bin, "github.com/pulpdist/pulpdist/cmd/pulpdist"); err != nil {
		b.Fatalf("build the pulpdist command: %v", err)
	}
	return bin
}

// rsyncBytes updates dest (a copy of the old tree) to src over a remote
// shell transport that runs the far side locally, so that rsync uses its
// delta algorithm and compression as it would over ssh, and returns the
// bytes that crossed the transport in both directions.
func rsyncBytes(ctx context.Context, rsync, work, src, dest string) (int64, string, error) {
	rsh := filepath.Join(work, "rsh")
	// rsync runs "RSH HOST rsync --server ...": drop the host, run the rest.
	if err := os.WriteFile(rsh, []byte("#!/bin/sh\nshift\nexec \"$@\"\n"), 0o755); err != nil {
		return 0, "", err
	}
	out, _, err := run(ctx, "", rsync, "-az", "--delete", "--stats", "--no-whole-file", "--debug=NSTR",
		"-e", rsh, src+"/", "x:"+dest+"/")
	if err != nil {
		return 0, "", err
	}
	sent, err := statsField(out, "Total bytes sent:")
	if err != nil {
		return 0, "", err
	}
	recv, err := statsField(out, "Total bytes received:")
	if err != nil {
		return 0, "", err
	}
	return sent + recv, negotiated(out), nil
}

// statsField returns the number after label in rsync's --stats output
// ("Total bytes sent: 1,234").
func statsField(out []byte, label string) (int64, error) {
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		rest, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), label)
		if !ok {
			continue
		}
		n, err := strconv.ParseInt(strings.ReplaceAll(strings.TrimSpace(rest), ",", ""), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("rsync --stats: %q: %w", sc.Text(), err)
		}
		return n, nil
	}
	return 0, fmt.Errorf("rsync --stats: no %q line in %q", label, lastLines(string(out), 20))
}

// negotiated returns the compression rsync chose (--debug=NSTR prints
// "Client negotiated compress: zstd (level 3)"), or "" if it did not say.
func negotiated(out []byte) string {
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "Client negotiated compress:"); ok {
			return strings.TrimSpace(rest)
		}
	}
	return ""
}

func TestStatsField(t *testing.T) {
	out := []byte("Number of files: 3\nTotal bytes sent: 1,234,567\nTotal bytes received: 89\n")
	if n, err := statsField(out, "Total bytes sent:"); err != nil || n != 1234567 {
		t.Errorf("sent = %d, %v", n, err)
	}
	if n, err := statsField(out, "Total bytes received:"); err != nil || n != 89 {
		t.Errorf("received = %d, %v", n, err)
	}
	if _, err := statsField(out, "Total transferred file size:"); err == nil {
		t.Error("missing field accepted")
	}
	if _, err := statsField([]byte("Total bytes sent: lots\n"), "Total bytes sent:"); err == nil {
		t.Error("non-numeric field accepted")
	}
	if got := negotiated([]byte("x\nClient negotiated compress: zstd (level 3)\n")); got != "zstd (level 3)" {
		t.Errorf("negotiated = %q", got)
	}
}
