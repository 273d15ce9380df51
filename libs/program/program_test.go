package program_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/pulpdist/pulpdist/libs/config"
	"github.com/pulpdist/pulpdist/libs/poll"
	"github.com/pulpdist/pulpdist/libs/program"
)

type cfg struct{}

func (c *cfg) Bind(s *config.Set)              {}
func (c *cfg) Logging() (format, level string) { return "text", "info" }

// TestCPUProfile: with PULPDIST_CPU_PROFILE set, the span between two
// SIGUSR1 is profiled into the file (gzip-compressed pprof), and the
// signal does not end the program.
func TestCPUProfile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cpu.pprof")
	t.Setenv(program.CPUProfileEnv, path)
	var stderr bytes.Buffer
	code := program.Main("test", nil, &stderr, &cfg{}, func(context.Context, *slog.Logger) error {
		for want := 1; want <= 2; want++ {
			if err := syscall.Kill(os.Getpid(), syscall.SIGUSR1); err != nil {
				return err
			}
			poll.Until(t, 10*time.Second, func() error {
				spin()
				if got := program.ProfileState(); got != want {
					return fmt.Errorf("profile state %d, want %d", got, want)
				}
				return nil
			})
		}
		return nil
	})
	if code != 0 {
		t.Fatalf("exit code %d: %s", code, stderr.String())
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	head := make([]byte, 2)
	if _, err := io.ReadFull(f, head); err != nil || head[0] != 0x1f || head[1] != 0x8b {
		t.Fatalf("profile starts with %x (%v), want a gzip stream", head, err)
	}
}

func TestBadProfilePath(t *testing.T) {
	t.Setenv(program.CPUProfileEnv, filepath.Join(t.TempDir(), "missing", "cpu.pprof"))
	var stderr bytes.Buffer
	ran := false
	code := program.Main("test", nil, &stderr, &cfg{}, func(context.Context, *slog.Logger) error { ran = true; return nil })
	if code != 2 || ran || !bytes.Contains(stderr.Bytes(), []byte(program.CPUProfileEnv)) {
		t.Fatalf("exit %d, ran %v, stderr %q: want 2, not run, the variable named", code, ran, stderr.String())
	}
}

var sink uint64

func spin() {
	for i := range uint64(1 << 16) {
		sink += i * i
	}
}
