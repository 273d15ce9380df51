// Package daemon is the common skeleton of a pulpdist service that works
// off the bus: the options every such service reads (NATS URL, health
// address, logging), the connection with its streams declared, the
// /healthz and /readyz server, its registration as a NATS micro service
// (libs/control), and a Run that keeps the service's parts going until the
// context ends, then drains NATS.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/pulpdist/pulpdist/libs/bus"
	"github.com/pulpdist/pulpdist/libs/config"
	"github.com/pulpdist/pulpdist/libs/control"
	"github.com/pulpdist/pulpdist/libs/health"
	"github.com/pulpdist/pulpdist/libs/httpserve"
	"github.com/pulpdist/pulpdist/libs/metrics"
	"github.com/pulpdist/pulpdist/libs/program"
)

// Options are what every bus service reads.
type Options struct {
	NATSURL string
	// HTTPAddr serves /healthz and /readyz; empty disables the server.
	HTTPAddr  string
	LogFormat string
	LogLevel  string
	// Probe, when set, is the readiness the service reports into (not from
	// flags: `pulpdist dev` shows every service's readiness on one /readyz).
	Probe *health.Probe
	// Metrics, when set, is the registry the service's metrics go to (not
	// from flags: `pulpdist dev` serves every service's metrics on one
	// /metrics). Without it the daemon makes its own.
	Metrics *prometheus.Registry
}

// Bind registers the common flags and environment variables; httpAddr is
// the service's default health address.
func (o *Options) Bind(s *config.Set, httpAddr string) {
	s.String(&o.NATSURL, "nats-url", "PULPDIST_NATS_URL", "nats://127.0.0.1:4222", "NATS server URL")
	s.String(&o.HTTPAddr, "http-addr", "PULPDIST_HTTP_ADDR", httpAddr, "address for /healthz, /readyz and /metrics (empty: none)")
	s.String(&o.LogFormat, "log-format", "PULPDIST_LOG_FORMAT", "text", "log format: text or json")
	s.String(&o.LogLevel, "log-level", "PULPDIST_LOG_LEVEL", "info", "log level: debug, info, warn, error")
}

// Logging returns the log format and level.
func (o *Options) Logging() (format, level string) { return o.LogFormat, o.LogLevel }

// Validate checks the common options.
func (o Options) Validate() error {
	if o.NATSURL == "" {
		return errors.New("nats url required")
	}
	return nil
}

// Daemon is a service connected to the bus, not yet running.
type Daemon struct {
	Name   string
	Log    *slog.Logger
	NC     *nats.Conn
	JS     jetstream.JetStream
	Layout *bus.Layout
	Probe  *health.Probe
	// Metrics is where the service registers its metrics (served on
	// /metrics of the health address).
	Metrics prometheus.Registerer

	http *httpserve.Server
}

// New connects to NATS as pulpdist-<name>, declares the streams, buckets
// and stores, and binds the health and metrics server.
func New(ctx context.Context, name string, o Options, log *slog.Logger) (*Daemon, error) {
	nc, js, err := bus.Connect(ctx, o.NATSURL, "pulpdist-"+name, log)
	if err != nil {
		return nil, err
	}
	layout, err := bus.Ensure(ctx, js)
	if err != nil {
		nc.Close()
		return nil, err
	}
	reg := metrics.Or(o.Metrics)
	d := &Daemon{Name: name, Log: log, NC: nc, JS: js, Layout: layout, Probe: health.Or(o.Probe, name), Metrics: reg}
	d.Probe.SetCheck(nc.IsConnected)
	if err := metrics.BuildInfo(reg, name, program.Version); err != nil {
		nc.Close()
		return nil, fmt.Errorf("metrics: %w", err)
	}
	if o.HTTPAddr != "" {
		mux := http.NewServeMux()
		health.Register(mux, d.Probe)
		metrics.Register(mux, reg)
		if d.http, err = httpserve.Listen(ctx, o.HTTPAddr, mux); err != nil {
			nc.Close()
			return nil, err
		}
	}
	return d, nil
}

// Close releases the connection of a daemon that will not Run.
func (d *Daemon) Close() { d.NC.Close() }

// Consumer is one durable consumer a daemon runs.
type Consumer struct {
	Stream string
	Config jetstream.ConsumerConfig
	Handle bus.Handler
}

// Run creates the consumers, registers the service's request-reply side
// (control.Start: `nats micro ls` lists it; its status reports the probe
// unless svc says otherwise), then runs the consumers, the health server
// and the extra parts until ctx ends or one fails. The probe is ready
// while they run. At the end the service stops answering requests, then
// NATS is drained. A message a consumer gives up on goes to the
// dead-letter stream and is announced with events, the service's own
// publisher (bus.WithDeadLetter).
func (d *Daemon) Run(ctx context.Context, svc control.Config, events *bus.Events, consumers []Consumer, parts ...func(context.Context) error) error {
	defer d.NC.Close()
	conss := make([]jetstream.Consumer, len(consumers))
	for i, c := range consumers {
		var err error
		if conss[i], err = d.JS.CreateOrUpdateConsumer(ctx, c.Stream, c.Config); err != nil {
			return fmt.Errorf("consumer %s: %w", c.Config.Durable, err)
		}
	}
	if err := d.Metrics.Register(metrics.Consumers(d.Name, conss)); err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	if svc.Ready == nil {
		svc.Ready = d.Probe.Ready
	}
	ctl, err := control.Start(ctx, d.NC, svc, d.Log)
	if err != nil {
		return err
	}
	g, gctx := errgroup.WithContext(ctx)
	for i, c := range consumers {
		log := d.Log.With("consumer", c.Config.Durable)
		g.Go(func() error { return bus.Consume(gctx, conss[i], log, c.Handle, bus.WithDeadLetter(d.JS, events)) })
	}
	for _, p := range parts {
		g.Go(func() error { return p(gctx) })
	}
	if d.http != nil {
		g.Go(func() error { return d.http.Serve(gctx) })
	}
	d.Probe.SetReady(true)
	d.Log.Info(d.Name + " ready")
	err = g.Wait()
	d.Probe.SetReady(false)
	// Before the drain: micro's hooks on the connection are taken off,
	// and no request is taken while the connection drains.
	stopErr := ctl.Stop()
	return errors.Join(err, stopErr, bus.Drain(d.NC))
}
