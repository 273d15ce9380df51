// Package scheduler decides when things happen in pulpdist: it turns manual
// and scheduled triggers into a scan at the tree's origin, a new snapshot
// into delta requests, and a ready delta into commands to every site at its
// base. It holds no state of its own: what it needs it reads from the
// inventory (REST) and the sites bucket (KV), so several instances can share
// its durable consumers.
package scheduler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"

	"github.com/pulpdist/pulpdist/libs/bus"
	"github.com/pulpdist/pulpdist/libs/config"
	"github.com/pulpdist/pulpdist/libs/health"
	"github.com/pulpdist/pulpdist/libs/httpserve"
	"github.com/pulpdist/pulpdist/libs/inventoryapi"
	"github.com/pulpdist/pulpdist/services/scheduler/internal/cron"
	"github.com/pulpdist/pulpdist/services/scheduler/internal/dispatch"
)

// Config is the scheduler's configuration.
type Config struct {
	NATSURL      string
	InventoryURL string
	// HTTPAddr serves /healthz and /readyz; empty disables the server.
	HTTPAddr  string
	LogFormat string
	LogLevel  string
	// Probe, when set, is the readiness the service reports into (not from
	// flags: `pulpdist dev` shows every service's readiness on one /readyz).
	Probe           *health.Probe
	RefreshInterval time.Duration
	TickInterval    time.Duration
}

// Bind registers the configuration's flags and environment variables.
func (c *Config) Bind(s *config.Set) {
	s.String(&c.NATSURL, "nats-url", "PULPDIST_NATS_URL", "nats://127.0.0.1:4222", "NATS server URL")
	s.String(&c.InventoryURL, "inventory-url", "PULPDIST_INVENTORY_URL", "http://127.0.0.1:7400", "inventory REST base URL")
	s.String(&c.HTTPAddr, "http-addr", "PULPDIST_HTTP_ADDR", "127.0.0.1:7401", "address for /healthz and /readyz (empty: none)")
	s.String(&c.LogFormat, "log-format", "PULPDIST_LOG_FORMAT", "text", "log format: text or json")
	s.String(&c.LogLevel, "log-level", "PULPDIST_LOG_LEVEL", "info", "log level: debug, info, warn, error")
	s.Duration(&c.RefreshInterval, "schedule-refresh", "PULPDIST_SCHEDULE_REFRESH", 30*time.Second, "how often the tree schedules are re-read")
	s.Duration(&c.TickInterval, "schedule-tick", "", time.Second, "how often schedules are checked")
}

// Validate checks the configuration.
func (c Config) Validate() error {
	var errs []error
	if c.NATSURL == "" {
		errs = append(errs, errors.New("nats url required"))
	}
	if c.InventoryURL == "" {
		errs = append(errs, errors.New("inventory url required"))
	}
	if c.RefreshInterval <= 0 || c.TickInterval <= 0 {
		errs = append(errs, errors.New("schedule intervals must be positive"))
	}
	return errors.Join(errs...)
}

// Service is a running scheduler.
type Service struct {
	cfg    Config
	log    *slog.Logger
	nc     *nats.Conn
	js     jetstream.JetStream
	layout *bus.Layout
	probe  *health.Probe
	http   *httpserve.Server
	disp   *dispatch.Dispatcher
	cron   *cron.Cron
}

// New connects to NATS, declares the streams and binds the health server.
func New(ctx context.Context, cfg Config, log *slog.Logger) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("scheduler config: %w", err)
	}
	nc, js, err := bus.Connect(ctx, cfg.NATSURL, "pulpdist-scheduler", log)
	if err != nil {
		return nil, err
	}
	layout, err := bus.Ensure(ctx, js)
	if err != nil {
		nc.Close()
		return nil, err
	}
	s := &Service{cfg: cfg, log: log, nc: nc, js: js, layout: layout, probe: health.Or(cfg.Probe, "scheduler")}
	inv := inventoryapi.NewClient(cfg.InventoryURL, &http.Client{Timeout: 30 * time.Second})
	out := &sender{js: js, events: bus.NewEvents(js, "/pulpdist/scheduler")}
	s.disp = dispatch.New(inv, &versions{kv: layout.Sites}, out, log)
	s.cron = cron.New(inv, out, cfg.RefreshInterval, log)
	if cfg.HTTPAddr != "" {
		mux := http.NewServeMux()
		health.Register(mux, s.probe)
		if s.http, err = httpserve.Listen(ctx, cfg.HTTPAddr, mux); err != nil {
			nc.Close()
			return nil, err
		}
	}
	return s, nil
}

// Probe is the scheduler's readiness.
func (s *Service) Probe() *health.Probe { return s.probe }

// Run consumes triggers, snapshots and ready deltas and fires schedules
// until ctx ends.
func (s *Service) Run(ctx context.Context) error {
	defer s.nc.Close()
	type consumer struct {
		stream, durable, filter string
		handle                  bus.Handler
	}
	consumers := []consumer{
		{bus.StreamTriggers, "scheduler-triggers", "pulpdist.trigger.>", decoded(s.disp.Trigger)},
		{bus.StreamSnapshots, "scheduler-snapshots", "pulpdist.snapshot.>", decoded(s.disp.Snapshot)},
		{bus.StreamDeltaReady, "scheduler-deltas", "pulpdist.delta.ready.>", decoded(s.disp.DeltaReady)},
	}
	g, ctx := errgroup.WithContext(ctx)
	for _, c := range consumers {
		cons, err := s.js.CreateOrUpdateConsumer(ctx, c.stream, bus.ConsumerConfig(c.durable, c.filter))
		if err != nil {
			return fmt.Errorf("consumer %s: %w", c.durable, err)
		}
		log := s.log.With("consumer", c.durable)
		g.Go(func() error { return bus.Consume(ctx, cons, log, c.handle) })
	}
	g.Go(func() error { return s.cron.Run(ctx, s.cfg.TickInterval) })
	if s.http != nil {
		g.Go(func() error { return s.http.Serve(ctx) })
	}
	s.probe.SetReady(true)
	s.log.Info("scheduler ready", "inventory", s.cfg.InventoryURL)
	err := g.Wait()
	s.probe.SetReady(false)
	if derr := s.nc.Drain(); derr != nil && !errors.Is(derr, nats.ErrConnectionClosed) {
		err = errors.Join(err, derr)
	}
	return err
}

// decoded adapts a typed handler to a bus handler: a message that does not
// decode or validate is refused for good.
func decoded[T interface{ Validate() error }](h func(context.Context, T) error) bus.Handler {
	return func(ctx context.Context, m jetstream.Msg) error {
		v, err := bus.Decode[T](m.Data())
		if err != nil {
			return bus.Permanent(err)
		}
		return h(ctx, v)
	}
}

// sender publishes the dispatcher's output on JetStream.
type sender struct {
	js     jetstream.JetStream
	events *bus.Events
}

func (s *sender) Command(ctx context.Context, c bus.SyncCommand) error {
	return bus.Publish(ctx, s.js, bus.SyncSubject(c.Site, c.Tree), c.RunID, c)
}

func (s *sender) RequestDelta(ctx context.Context, r bus.DeltaRequest, msgID string) error {
	return bus.Publish(ctx, s.js, bus.DeltaRequestSubject(r.Tree), msgID, r)
}

func (s *sender) Event(ctx context.Context, entity, action, subject, key string, data any) error {
	return s.events.PublishKeyed(ctx, entity, action, subject, key, data)
}

func (s *sender) Trigger(ctx context.Context, t bus.Trigger) error {
	if err := bus.Publish(ctx, s.js, bus.TriggerSubject(t.Tree), t.TriggerID, t); err != nil {
		return err
	}
	return s.events.PublishKeyed(ctx, bus.EntitySync, bus.ActionRequested, t.Tree, t.TriggerID,
		bus.SyncRequested{TriggerID: t.TriggerID, Tree: t.Tree, Reason: t.Reason})
}

// versions reads site versions from the sites bucket.
type versions struct{ kv jetstream.KeyValue }

func (v *versions) SiteVersion(ctx context.Context, site, tree string) (string, error) {
	return bus.GetSiteVersion(ctx, v.kv, site, tree)
}

// Logging returns the log format and level.
func (c *Config) Logging() (format, level string) { return c.LogFormat, c.LogLevel }
