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
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pulpdist/pulpdist/libs/bus"
	"github.com/pulpdist/pulpdist/libs/config"
	"github.com/pulpdist/pulpdist/libs/control"
	"github.com/pulpdist/pulpdist/libs/daemon"
	"github.com/pulpdist/pulpdist/libs/health"
	"github.com/pulpdist/pulpdist/libs/inventoryapi"
	"github.com/pulpdist/pulpdist/services/scheduler/internal/cron"
	"github.com/pulpdist/pulpdist/services/scheduler/internal/dispatch"
)

// Config is the scheduler's configuration.
type Config struct {
	daemon.Options
	InventoryURL string
	// InventoryToken is the bearer token the scheduler reads the
	// inventory API with; the viewer role is enough.
	InventoryToken string
	// InventoryTokenFile names a file holding InventoryToken (what
	// `pulpdist token provision --viewer scheduler` writes); one of the
	// two.
	InventoryTokenFile string
	RefreshInterval    time.Duration
	TickInterval       time.Duration
}

// Bind registers the configuration's flags and environment variables.
func (c *Config) Bind(s *config.Set) {
	c.Options.Bind(s, "127.0.0.1:7401")
	s.String(&c.InventoryURL, "inventory-url", "PULPDIST_INVENTORY_URL", "http://127.0.0.1:7400", "inventory REST base URL")
	s.String(&c.InventoryToken, "inventory-token", "PULPDIST_INVENTORY_TOKEN", "", "bearer token for the inventory API, role viewer or above (prefer the env var: flags show in ps)")
	s.String(&c.InventoryTokenFile, "inventory-token-file", "PULPDIST_INVENTORY_TOKEN_FILE", "", "file holding that token instead (pulpdist token provision --viewer scheduler writes one)")
	s.Duration(&c.RefreshInterval, "schedule-refresh", "PULPDIST_SCHEDULE_REFRESH", 30*time.Second, "how often the tree schedules are re-read")
	s.Duration(&c.TickInterval, "schedule-tick", "", time.Second, "how often schedules are checked")
}

// Validate checks the configuration.
func (c Config) Validate() error {
	errs := []error{c.Options.Validate()}
	if c.InventoryURL == "" {
		errs = append(errs, errors.New("inventory url required"))
	}
	switch tok, err := c.inventoryToken(); {
	case err != nil:
		errs = append(errs, err)
	case tok == "":
		errs = append(errs, errors.New("inventory token required (a viewer token: pulpdist token create --role viewer), in PULPDIST_INVENTORY_TOKEN or PULPDIST_INVENTORY_TOKEN_FILE"))
	case strings.ContainsFunc(tok, func(r rune) bool { return r <= ' ' || r >= 0x7f }):
		errs = append(errs, errors.New("inventory token: want printable ASCII without spaces"))
	}
	if c.RefreshInterval <= 0 || c.TickInterval <= 0 {
		errs = append(errs, errors.New("schedule intervals must be positive"))
	}
	return errors.Join(errs...)
}

// inventoryToken is the token configured, read from InventoryTokenFile
// when that is set.
func (c Config) inventoryToken() (string, error) {
	return config.SecretOrFile("inventory token (PULPDIST_INVENTORY_TOKEN or PULPDIST_INVENTORY_TOKEN_FILE)", c.InventoryToken, c.InventoryTokenFile)
}

// Service is a scheduler connected to the bus.
type Service struct {
	cfg   Config
	d     *daemon.Daemon
	inv   dispatch.Inventory
	out   *sender
	scans *bus.Scans
	disp  *dispatch.Dispatcher
	cron  *cron.Cron
	log   *slog.Logger
	// events announce what the scheduler's consumers give up on.
	events *bus.Events
	// instance names this instance on the bus (control.DefaultInstance).
	instance string
}

// New connects to NATS, declares the streams and binds the health server.
func New(ctx context.Context, cfg Config, log *slog.Logger) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("scheduler config: %w", err)
	}
	tok, err := cfg.inventoryToken() // read by Validate too, but the file may have gone since
	if err != nil {
		return nil, fmt.Errorf("scheduler config: %w", err)
	}
	d, err := daemon.New(ctx, "scheduler", cfg.Options, log)
	if err != nil {
		return nil, err
	}
	inv := inventoryapi.NewClient(cfg.InventoryURL, &http.Client{Timeout: 30 * time.Second}).WithToken(tok)
	m, err := newSchedMetrics(d.Metrics)
	if err != nil {
		d.Close()
		return nil, fmt.Errorf("metrics: %w", err)
	}
	out := &sender{js: d.JS, events: bus.NewEvents(d.JS, "/pulpdist/scheduler"), metrics: m}
	scans := bus.NewScans(d.Layout.Scans)
	return &Service{
		cfg: cfg, d: d, inv: inv, out: out, scans: scans, log: log, events: out.events,
		disp:     dispatch.New(inv, &versions{kv: d.Layout.Sites}, out, log).CoalesceWith(scans),
		cron:     cron.New(inv, out, cfg.RefreshInterval, log),
		instance: control.DefaultInstance(),
	}, nil
}

// Probe is the scheduler's readiness.
func (s *Service) Probe() *health.Probe { return s.d.Probe }

// Run consumes triggers, snapshots and ready deltas, fires schedules and
// answers its requests (status, trigger) until ctx ends.
func (s *Service) Run(ctx context.Context) error {
	return s.d.Run(ctx, s.control(), s.events, []daemon.Consumer{
		{Stream: bus.StreamTriggers, Config: bus.ConsumerConfig("scheduler-triggers", "pulpdist.trigger.>"), Handle: decoded(s.disp.Trigger)},
		{Stream: bus.StreamSnapshots, Config: bus.ConsumerConfig("scheduler-snapshots", "pulpdist.snapshot.>"), Handle: decoded(s.disp.Snapshot)},
		{Stream: bus.StreamDeltaReady, Config: bus.ConsumerConfig("scheduler-deltas", "pulpdist.delta.ready.>"), Handle: decoded(s.disp.DeltaReady)},
		{Stream: bus.StreamEvents, Config: rolloutConsumer(), Handle: s.runFinished},
	}, func(ctx context.Context) error { return s.cron.Run(ctx, s.cfg.TickInterval) })
}

// RolloutConsumer is the durable consumer of sync.finished events that
// moves staged rollouts on.
const RolloutConsumer = "scheduler-rollout"

// rolloutConsumer follows the runs that finish from when it is first
// made: the history of the events stream is not replanned.
func rolloutConsumer() jetstream.ConsumerConfig {
	cc := bus.ConsumerConfig(RolloutConsumer, bus.EventFilter(bus.EntitySync, bus.ActionFinished))
	cc.DeliverPolicy = jetstream.DeliverNewPolicy
	return cc
}

// runFinished hands a finished run to the rollout; an event that does not
// decode is not the scheduler's business (the inventory keeps it as a
// problem).
func (s *Service) runFinished(ctx context.Context, m jetstream.Msg) error {
	_, fin, err := bus.DecodeEvent[bus.SyncFinished](m.Data())
	if err != nil {
		return bus.Permanent(err) // acked, not retried; the inventory keeps it as a problem
	}
	return s.disp.RunFinished(ctx, fin)
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
	js      jetstream.JetStream
	events  *bus.Events
	metrics *schedMetrics
}

func (s *sender) Command(ctx context.Context, c bus.SyncCommand) error {
	stored, err := bus.PublishStored(ctx, s.js, bus.CommandSubject(c), c.RunID, c)
	if stored {
		s.metrics.command(c)
	}
	return err
}

func (s *sender) RequestDelta(ctx context.Context, r bus.DeltaRequest, msgID string) error {
	stored, err := bus.PublishStored(ctx, s.js, bus.DeltaRequestSubject(r.Tree), msgID, r)
	if stored {
		s.metrics.deltas.WithLabelValues(r.Tree).Inc()
	}
	return err
}

func (s *sender) Event(ctx context.Context, entity, action string, about bus.About, key string, data any) error {
	return s.events.PublishKeyed(ctx, entity, action, about, key, data)
}

func (s *sender) Trigger(ctx context.Context, t bus.Trigger) error {
	stored, err := bus.PublishStored(ctx, s.js, bus.TriggerSubject(t.Tree), t.TriggerID, t)
	if err != nil {
		return err
	}
	if stored {
		s.metrics.triggers.WithLabelValues(t.Tree, t.Reason).Inc()
	}
	if err := s.events.PublishKeyed(ctx, bus.EntitySync, bus.ActionRequested, bus.About{Tree: t.Tree}, t.TriggerID,
		bus.SyncRequested{TriggerID: t.TriggerID, Tree: t.Tree, Reason: t.Reason}); err != nil {
		return fmt.Errorf("%w: %w", errTriggerQueued, err)
	}
	return nil
}

// errTriggerQueued marks a trigger stored on its stream whose
// sync.requested event was not: the sync will run. Publishing again with
// the same trigger id stores neither twice.
var errTriggerQueued = errors.New("trigger queued, its sync.requested event not published")

// versions reads site versions from the sites bucket.
type versions struct{ kv jetstream.KeyValue }

func (v *versions) SiteVersion(ctx context.Context, site, tree string) (string, error) {
	return bus.GetSiteVersion(ctx, v.kv, site, tree)
}
