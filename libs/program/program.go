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
	"syscall"

	"github.com/pulpdist/pulpdist/libs/config"
	"github.com/pulpdist/pulpdist/libs/telemetry"
)

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
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, log); err != nil {
		log.Error("stopped with error", "err", err)
		return 1
	}
	log.Info("stopped")
	return 0
}
