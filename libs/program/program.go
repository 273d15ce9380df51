// Package program is the common shape of every pulpdist main: read the
// configuration from flags and PULPDIST_* variables, build the logger, stop
// on SIGINT/SIGTERM, run, and turn the outcome into an exit code.
package program

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/pprof"
	"sync"
	"syscall"

	"github.com/pulpdist/pulpdist/libs/config"
	"github.com/pulpdist/pulpdist/libs/telemetry"
)

// Version is the version of the programs, as their traces say
// (service.version); set at build time with
// -ldflags "-X github.com/pulpdist/pulpdist/libs/program.Version=…".
var Version = "dev"

// Config is what a program's configuration struct provides.
type Config interface {
	Bind(s *config.Set)
	Logging() (format, level string)
}

// Main parses args and the environment into cfg, then calls run with a
// context cancelled on SIGINT or SIGTERM. It returns the exit code: 0 on a
// clean stop, 2 for bad configuration, 1 for any other failure.
func Main(name string, args []string, stderr io.Writer, cfg Config, run func(ctx context.Context, log *slog.Logger) error) int {
	set := config.New(name, os.LookupEnv)
	cfg.Bind(set)
	set.FlagSet().SetOutput(stderr)
	if err := set.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 2
	}
	format, level := cfg.Logging()
	log, err := telemetry.NewLogger(stderr, format, level)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 2
	}
	log = log.With("service", name)
	if path := os.Getenv(CPUProfileEnv); path != "" {
		done, err := CPUProfile(path)
		if err != nil {
			fmt.Fprintf(stderr, "%s: %v\n", name, err)
			return 2
		}
		defer done()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	stopTracing, err := telemetry.SetupTracing(ctx, "pulpdist-"+name, Version, log)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 2
	}
	defer func() { _ = stopTracing() }() // it logs what it could not export
	if err := run(ctx, log); err != nil {
		log.Error("stopped with error", "err", err)
		return 1
	}
	log.Info("stopped")
	return 0
}

// CPUProfileEnv names a file that receives a CPU profile (go tool pprof
// format) of the span between two SIGUSR1 signals, or between the first and
// the program's end: a benchmark profiles the part it measures.
const CPUProfileEnv = "PULPDIST_CPU_PROFILE"

// profiler is the state of the CPU profile of this process.
type profiler struct {
	mu    sync.Mutex
	f     *os.File
	state int // profileWaiting, profileRunning, profileWritten
}

const (
	profileWaiting = iota
	profileRunning
	profileWritten
)

// toggle starts the profile, or stops and writes it.
func (p *profiler) toggle() {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch p.state {
	case profileWaiting:
		if err := pprof.StartCPUProfile(p.f); err == nil {
			p.state = profileRunning
		}
	case profileRunning:
		pprof.StopCPUProfile()
		p.state = profileWritten
	}
}

// stop ends the profile for good.
func (p *profiler) stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.state == profileRunning {
		pprof.StopCPUProfile()
	}
	p.state = profileWritten
}

// current is the process's profiler, nil without PULPDIST_CPU_PROFILE.
var current *profiler

// CPUProfile profiles this process into path between two SIGUSR1 signals
// (or the first and done), as Main does with PULPDIST_CPU_PROFILE; done
// stops it. For programs that do not run through Main (natsprof).
func CPUProfile(path string) (done func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", CPUProfileEnv, err)
	}
	p := &profiler{f: f}
	current = p
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGUSR1)
	go func() {
		for range sig {
			p.toggle()
		}
	}()
	return func() {
		signal.Stop(sig)
		close(sig)
		p.stop()
		_ = f.Close() // written by now; a close error has no one to tell
	}, nil
}
