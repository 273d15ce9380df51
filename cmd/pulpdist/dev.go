package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/pulpdist/pulpdist/cmd/pulpdist/internal/demo"
	"github.com/pulpdist/pulpdist/cmd/pulpdist/internal/devstack"
	"github.com/pulpdist/pulpdist/libs/inventoryapi"
	"github.com/pulpdist/pulpdist/libs/program"
	"github.com/pulpdist/pulpdist/libs/telemetry"
)

// devOptions are the flags of `pulpdist dev`.
type devOptions struct {
	dataDir  string
	apiAddr  string
	natsHost string
	natsPort int
	logLevel string
	noDemo   bool
}

func newDev(stdout, stderr io.Writer) *cobra.Command {
	var o devOptions
	natsPort, err := strconv.Atoi(envOr("PULPDIST_DEV_NATS_PORT", "7422"))
	if err != nil {
		natsPort = -2 // refused by validation below with a clear message
	}
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run the whole system in one process: embedded NATS, SQLite, all services, a demo tree and two sites",
		Long: `Run the whole of pulpdist in one process until Ctrl-C: an embedded NATS
server with JetStream (which outside clients may use), the inventory on
SQLite, the scheduler, a delta-cache and a site-agent for each demo site.
The first lines printed are machine-readable:

  API: http://127.0.0.1:<port>
  Token: <an admin bearer token of the API>
  NATS: nats://127.0.0.1:<port>
  Data: <dir>

The token is kept in <dir>/keys/admin.token (the same on every run); use it
with PULPDIST_TOKEN=<token> for the other subcommands, or open the dashboard
URL printed once everything is ready, which carries it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.natsPort < -1 || o.natsPort == 0 || o.natsPort > 65535 {
				return fmt.Errorf("nats port %d: want 1..65535, or -1 for a random port", o.natsPort)
			}
			return runDev(cmd.Context(), o, stdout, stderr)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.dataDir, "data-dir", envOr("PULPDIST_DEV_DATA_DIR", ".data/dev"), "data directory (env PULPDIST_DEV_DATA_DIR)")
	f.StringVar(&o.apiAddr, "api-addr", envOr("PULPDIST_DEV_API_ADDR", defaultAPI), "API and dashboard address; port 0 picks one (env PULPDIST_DEV_API_ADDR)")
	f.StringVar(&o.natsHost, "nats-host", envOr("PULPDIST_DEV_NATS_HOST", "127.0.0.1"), "embedded NATS listen host (env PULPDIST_DEV_NATS_HOST)")
	f.IntVar(&o.natsPort, "nats-port", natsPort, "embedded NATS port; -1 picks one (env PULPDIST_DEV_NATS_PORT)")
	f.StringVar(&o.logLevel, "log-level", envOr("PULPDIST_LOG_LEVEL", "info"), "log level (env PULPDIST_LOG_LEVEL)")
	f.BoolVar(&o.noDemo, "no-demo", false, "do not create the demo tree and sites")
	return cmd
}

func runDev(ctx context.Context, o devOptions, stdout, stderr io.Writer) error {
	log, err := telemetry.NewLogger(stderr, "text", o.logLevel)
	if err != nil {
		return err
	}
	// Off unless OTEL_EXPORTER_OTLP_ENDPOINT is set: every service of the
	// stack then exports its spans as pulpdist-dev.
	stopTracing, err := telemetry.SetupTracing(ctx, "pulpdist-dev", program.Version, log)
	if err != nil {
		return err
	}
	defer func() { _ = stopTracing() }() // it logs what it could not export
	sites := demo.Sites()
	if o.noDemo {
		sites = nil
	}
	st, err := devstack.New(ctx, devstack.Options{
		DataDir: o.dataDir, NATSHost: o.natsHost, NATSPort: o.natsPort, APIAddr: o.apiAddr,
		Sites: sites, Log: log,
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "API: %s\nToken: %s\nNATS: %s\nData: %s\nMetrics: %s/metrics\n", st.APIURL, st.Token, st.NATSURL, st.DataDir, st.APIURL)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return st.Run(gctx) })
	g.Go(func() error {
		if err := waitReady(gctx, st.APIURL); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "Dashboard: %s/#token=%s\nReady: every service answers; try: curl -H 'Authorization: Bearer %s' %s/api/v1/overview\n",
			st.APIURL, st.Token, st.Token, st.APIURL)
		if o.noDemo {
			return nil
		}
		src, err := demo.WriteTree(st.DataDir)
		if err != nil {
			return err
		}
		c := inventoryapi.NewClient(st.APIURL, &http.Client{Timeout: 30 * time.Second}).WithToken(st.Token)
		if err := demo.Declare(gctx, c, src); err != nil {
			return fmt.Errorf("demo: %w", err)
		}
		if _, err := c.Sync(gctx, demo.Tree); err != nil {
			return fmt.Errorf("demo: %w", err)
		}
		fmt.Fprintf(stdout, "Demo: tree %q at %s mirrored to %v; edit it, then: PULPDIST_TOKEN=%s go run ./cmd/pulpdist sync %s\n", demo.Tree, src, demo.Replicas, st.Token, demo.Tree)
		return nil
	})
	if err := g.Wait(); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// waitReady polls /readyz until it answers 200 or ctx ends.
func waitReady(ctx context.Context, api string) error {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, api+"/readyz", nil)
		if err != nil {
			return err
		}
		if resp, err := http.DefaultClient.Do(req); err == nil {
			_ = resp.Body.Close() // only the status matters
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}
