// Command siteagent runs the pulpdist agent of one site against an external
// NATS server.
package main

import (
	"context"
	"log/slog"
	"os"

	"github.com/pulpdist/pulpdist/libs/program"
	"github.com/pulpdist/pulpdist/services/siteagent"
)

func main() {
	var cfg siteagent.Config
	os.Exit(program.Main("siteagent", os.Args[1:], os.Stderr, &cfg, func(ctx context.Context, log *slog.Logger) error {
		svc, err := siteagent.New(ctx, cfg, log)
		if err != nil {
			return err
		}
		return svc.Run(ctx)
	}))
}
