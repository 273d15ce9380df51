// Command scheduler runs the pulpdist scheduler alone, against an external
// NATS server and inventory.
package main

import (
	"context"
	"log/slog"
	"os"

	"github.com/pulpdist/pulpdist/libs/program"
	"github.com/pulpdist/pulpdist/services/scheduler"
)

func main() {
	var cfg scheduler.Config
	os.Exit(program.Main("scheduler", os.Args[1:], os.Stderr, &cfg, func(ctx context.Context, log *slog.Logger) error {
		svc, err := scheduler.New(ctx, cfg, log)
		if err != nil {
			return err
		}
		return svc.Run(ctx)
	}))
}
