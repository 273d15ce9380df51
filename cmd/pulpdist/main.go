// Command pulpdist is the client of pulpdist for people: `pulpdist dev` runs
// the whole system in one process; the other subcommands talk to the
// inventory's REST API.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRoot(os.Stdout, os.Stderr).ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "pulpdist:", err)
		os.Exit(1)
	}
}
