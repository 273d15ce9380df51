// Command deltacache runs one pulpdist delta-cache instance against an
// external NATS server. Run several: they share the work.
package main

import (
	"context"
	"log/slog"
	"os"

	"github.com/pulpdist/pulpdist/libs/program"
	"github.com/pulpdist/pulpdist/services/deltacache"
)

func main() {
	var cfg deltacache.Config
	os.Exit(program.Main("deltacache", os.Args[1:], os.Stderr, &cfg, func(ctx context.Context, log *slog.Logger) error {
		svc, err := deltacache.New(ctx, cfg, log)
		if err != nil {
			return err
		}
		return svc.Run(ctx)
	}))
}
