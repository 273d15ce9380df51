// Command inventory runs the pulpdist inventory alone, against an external
// NATS server and database. See the service's README for its configuration.
package main

import (
	"context"
	"log/slog"
	"os"

	"github.com/pulpdist/pulpdist/libs/program"
	"github.com/pulpdist/pulpdist/services/inventory"
)

func main() {
	var cfg inventory.Config
	os.Exit(program.Main("inventory", os.Args[1:], os.Stderr, &cfg, func(ctx context.Context, log *slog.Logger) error {
		svc, err := inventory.New(ctx, cfg, log)
		if err != nil {
			return err
		}
		return svc.Run(ctx)
	}))
}
