// Package inventory is pulpdist's source of truth: the sites, the trees,
// who subscribes to what, the versions the origins published and the runs
// that moved sites between them. It is the only owner of its database
// (PostgreSQL or SQLite), serves the REST API under /api/v1, announces what
// it creates on the bus, turns POST …/sync into a trigger for the
// scheduler, and records the sync and snapshot events the other services
// publish.
package inventory

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"golang.org/x/sync/errgroup"

	"github.com/pulpdist/pulpdist/libs/bus"
	"github.com/pulpdist/pulpdist/libs/config"
	"github.com/pulpdist/pulpdist/libs/control"
	"github.com/pulpdist/pulpdist/libs/health"
	"github.com/pulpdist/pulpdist/libs/httpserve"
	"github.com/pulpdist/pulpdist/libs/metrics"
	"github.com/pulpdist/pulpdist/libs/program"
	"github.com/pulpdist/pulpdist/libs/telemetry"
	"github.com/pulpdist/pulpdist/services/inventory/internal/catalog"
	"github.com/pulpdist/pulpdist/services/inventory/internal/dashboard"
	"github.com/pulpdist/pulpdist/services/inventory/internal/events"
	"github.com/pulpdist/pulpdist/services/inventory/internal/httpapi"
	"github.com/pulpdist/pulpdist/services/inventory/internal/store"
)

// EventSource is the CloudEvents source of the inventory's events.
const EventSource = "/pulpdist/inventory"

// DefaultKeyRepublish is how often the inventory publishes the trusted
// signing keys again, repairing a failed publication or a bucket changed
// by someone else.
const DefaultKeyRepublish = time.Minute

// DefaultAlarmInterval is how often freshness alarms are checked.
const DefaultAlarmInterval = time.Minute

// MinAgentOfflineAfter bounds Config.AgentOfflineAfter: below a second,
// an agent's heartbeats could not keep up.
const MinAgentOfflineAfter = time.Second

// Config is the inventory's configuration.
type Config struct {
	NATSURL string
	// DatabaseURL is postgres://…, postgresql://… or sqlite://<path>.
	DatabaseURL string
	HTTPAddr    string
	LogFormat   string
	LogLevel    string
	// ExtraProbes are not read from the environment: `pulpdist dev` runs
	// every service in one process and adds the others' readiness to this
	// service's /readyz.
	ExtraProbes []*health.Probe
	// Metrics, when set, is the registry the inventory's metrics go to
	// and that /metrics serves (`pulpdist dev`: every service's); not
	// read from the environment. Without it the inventory makes its own.
	Metrics *prometheus.Registry
	// KeyRepublish is how often the trusted signing keys are published
	// again (0: DefaultKeyRepublish); not read from the environment.
	KeyRepublish time.Duration
	// AlarmInterval is how often freshness alarms are raised and cleared
	// (alarm.raised, alarm.cleared), and silent agents reported offline;
	// 0 is DefaultAlarmInterval.
	AlarmInterval time.Duration
	// AgentOfflineAfter is how long a site's agent may be silent, not
	// even sending heartbeats, before the inventory reports it offline
	// (agent.offline); 0 is catalog.DefaultAgentOfflineAfter.
	AgentOfflineAfter time.Duration
	// AdminToken, when set, is accepted as an admin bearer token: the
	// bootstrap token that makes the first stored tokens (docs/operations.md).
	AdminToken string
	// Migrate applies pending database migrations at start; without it
	// the inventory refuses to start on a schema that is not current.
	Migrate bool
	// AcceptUnsignedReports applies site-agents' events that carry no
	// signature, as reports of the site their source names. By default
	// (false) they are kept as problems: only an agent holding its site's
	// agent token reports for the site (docs/adr/0004-signed-agent-reports.md).
	AcceptUnsignedReports bool
	// EventsMaxAge and EventsMaxMB bound the retained events stream
	// (PULPDIST_EVENTS): how long a tool that was down can replay what it
	// missed. 0 is bus.EventRetention (30 days) and no size bound. The
	// inventory sets them at every start; other services keep them.
	EventsMaxAge time.Duration
	EventsMaxMB  int
}

// Bind registers the configuration's flags and environment variables.
func (c *Config) Bind(s *config.Set) {
	s.String(&c.NATSURL, "nats-url", "PULPDIST_NATS_URL", "nats://127.0.0.1:4222", "NATS server URL")
	s.String(&c.DatabaseURL, "database-url", "PULPDIST_DATABASE_URL", "sqlite://pulpdist-inventory.db",
		"database: postgres://…, postgresql://… or sqlite://<path>")
	s.String(&c.HTTPAddr, "http-addr", "PULPDIST_HTTP_ADDR", "127.0.0.1:7400", "address of the REST API, /healthz and /readyz (port 0: any free port)")
	s.String(&c.LogFormat, "log-format", "PULPDIST_LOG_FORMAT", "text", "log format: text or json")
	s.String(&c.LogLevel, "log-level", "PULPDIST_LOG_LEVEL", "info", "log level: debug, info, warn, error")
	s.Bool(&c.Migrate, "migrate", "PULPDIST_MIGRATE", false, "apply pending database migrations at start (without it, a schema that is not current stops the inventory)")
	s.Bool(&c.AcceptUnsignedReports, "accept-unsigned-reports", "PULPDIST_ACCEPT_UNSIGNED_REPORTS", false,
		"also apply site-agents' events that are not signed with an agent token, believing the site their source names (for agents not yet given PULPDIST_AGENT_TOKEN; signed ones are checked all the same)")
	s.Duration(&c.AlarmInterval, "alarm-interval", "PULPDIST_ALARM_INTERVAL", DefaultAlarmInterval, "how often freshness alarms are raised and cleared (alarm.raised, alarm.cleared events) and silent agents reported offline")
	s.Duration(&c.AgentOfflineAfter, "agent-offline-after", "PULPDIST_AGENT_OFFLINE_AFTER", catalog.DefaultAgentOfflineAfter, "how long a site's agent may be silent before it is reported offline (agent.offline); several of the agents' PULPDIST_HEARTBEAT_INTERVAL")
	s.String(&c.AdminToken, "admin-token", "PULPDIST_ADMIN_TOKEN", "", "bootstrap admin bearer token, at least 32 printable characters (prefer the env var: flags show in ps)")
	s.Duration(&c.EventsMaxAge, "events-max-age", "PULPDIST_EVENTS_MAX_AGE", bus.EventRetention, "how long events stay replayable in the PULPDIST_EVENTS stream")
	s.Int(&c.EventsMaxMB, "events-max-mb", "PULPDIST_EVENTS_MAX_MB", 0, "the most MiB the PULPDIST_EVENTS stream keeps, the oldest events removed first (0: no size bound)")
}

// EventLimits are the events stream's limits the configuration asks for.
func (c Config) EventLimits() bus.EventLimits {
	l := bus.EventLimits{MaxAge: c.EventsMaxAge, MaxBytes: int64(c.EventsMaxMB) << 20}
	if l.MaxAge == 0 {
		l.MaxAge = bus.EventRetention
	}
	return l
}

// Logging returns the log format and level.
func (c *Config) Logging() (format, level string) { return c.LogFormat, c.LogLevel }

// Validate checks the configuration, reporting every problem at once.
func (c Config) Validate() error {
	var errs []error
	if c.NATSURL == "" {
		errs = append(errs, errors.New("nats url required"))
	}
	if _, _, err := store.ParseURL(c.DatabaseURL); err != nil {
		errs = append(errs, fmt.Errorf("database url: %w", err))
	}
	if _, _, err := net.SplitHostPort(c.HTTPAddr); err != nil {
		errs = append(errs, fmt.Errorf("http addr %q: want host:port: %w", c.HTTPAddr, err))
	}
	if _, err := telemetry.NewLogger(nil, c.LogFormat, c.LogLevel); err != nil {
		errs = append(errs, err)
	}
	for i, p := range c.ExtraProbes {
		if p == nil {
			errs = append(errs, fmt.Errorf("extra probe %d is nil", i))
		}
	}
	if err := httpapi.ValidateAdminToken(c.AdminToken); err != nil {
		errs = append(errs, err)
	}
	if c.AlarmInterval < 0 {
		errs = append(errs, fmt.Errorf("alarm interval %s is negative", c.AlarmInterval))
	}
	if c.AgentOfflineAfter < 0 || c.AgentOfflineAfter > 0 && c.AgentOfflineAfter < MinAgentOfflineAfter {
		errs = append(errs, fmt.Errorf("agent offline after %s: want %s or more (0: %s)", c.AgentOfflineAfter, MinAgentOfflineAfter, catalog.DefaultAgentOfflineAfter))
	}
	if c.KeyRepublish < 0 {
		errs = append(errs, fmt.Errorf("key republish interval %s is negative", c.KeyRepublish))
	}
	if c.EventsMaxAge < 0 || c.EventsMaxAge > 0 && c.EventsMaxAge < time.Hour {
		errs = append(errs, fmt.Errorf("events max age %s: want an hour or more (0: %s)", c.EventsMaxAge, bus.EventRetention))
	}
	if c.EventsMaxMB < 0 || c.EventsMaxMB > 1<<30 {
		errs = append(errs, fmt.Errorf("events max MiB %d: want 0 (no bound) to %d", c.EventsMaxMB, 1<<30))
	}
	return errors.Join(errs...)
}

// Service is an inventory ready to run: connected, migrated and bound.
type Service struct {
	js       jetstream.JetStream
	log      *slog.Logger
	nc       *nats.Conn
	store    *store.Store
	consumer jetstream.Consumer
	// stream is the events stream the consumer reads.
	stream   jetstream.Stream
	catalog  *catalog.Service
	http     *httpserve.Server
	probe    *health.Probe
	close    sync.Once
	closeErr error

	// republish is how often the trusted signing keys are published again.
	republish time.Duration
	// alarms is how often freshness alarms are checked, and silent agents;
	// offlineAfter is how long an agent may be silent.
	alarms       time.Duration
	offlineAfter time.Duration
	// reports says how site-agents' events are authenticated.
	reports events.Reports
	// instance names this instance on the bus (control.DefaultInstance).
	instance string
	// announce publishes the events the inventory states itself rather
	// than through the outbox: a dead letter of its consumer.
	announce *bus.Events
}

// New connects to NATS and declares the streams, opens and migrates the
// database and binds the HTTP listener. Run (or Close) releases them.
func New(ctx context.Context, cfg Config, log *slog.Logger) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("inventory config: %w", err)
	}
	nc, js, err := bus.Connect(ctx, cfg.NATSURL, "pulpdist-inventory", log)
	if err != nil {
		return nil, err
	}
	s := &Service{log: log, nc: nc, probe: health.NewProbe("inventory"), republish: cfg.KeyRepublish,
		alarms:       cmp.Or(cfg.AlarmInterval, DefaultAlarmInterval),
		offlineAfter: cmp.Or(cfg.AgentOfflineAfter, catalog.DefaultAgentOfflineAfter),
		reports:      events.Reports{RequireSigned: !cfg.AcceptUnsignedReports}, instance: control.DefaultInstance()}
	if s.republish == 0 {
		s.republish = DefaultKeyRepublish
	}
	if err := s.build(ctx, cfg, js); err != nil {
		return nil, errors.Join(err, s.Close())
	}
	return s, nil
}

func (s *Service) build(ctx context.Context, cfg Config, js jetstream.JetStream) error {
	s.js = js
	s.probe.SetCheck(s.nc.IsConnected)
	layout, err := bus.Ensure(ctx, js, bus.WithEventLimits(cfg.EventLimits()))
	if err != nil {
		return err
	}
	if s.consumer, err = js.CreateOrUpdateConsumer(ctx, bus.StreamEvents, bus.ConsumerConfig(events.Durable, events.Filter)); err != nil {
		return fmt.Errorf("consumer %s: %w", events.Durable, err)
	}
	if s.stream, err = js.Stream(ctx, bus.StreamEvents); err != nil {
		return fmt.Errorf("stream %s: %w", bus.StreamEvents, err)
	}
	if s.store, err = store.OpenWith(ctx, cfg.DatabaseURL, cfg.Migrate); err != nil {
		return err
	}
	s.announce = bus.NewEvents(js, EventSource)
	s.store.UseEncoder(encoder{events: s.announce}.encode)
	s.catalog = catalog.New(s.store, &notifier{keys: layout.SigningKeys}, s.log)
	s.catalog.UseManifests(manifestStore{store: layout.Manifests})
	// The bucket is brought in line with the database before anything
	// else: site-agents trust what it holds.
	if err := s.catalog.PublishSigningKeys(ctx); err != nil {
		return err
	}
	reg := metrics.Or(cfg.Metrics)
	if err := s.registerMetrics(reg); err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	mux := http.NewServeMux()
	health.Register(mux, append([]*health.Probe{s.probe}, cfg.ExtraProbes...)...)
	metrics.Register(mux, reg)
	httpapi.Register(mux, httpapi.MakeEndpoints(s.catalog), httpapi.NewAuth(s.catalog, cfg.AdminToken, s.log), s.log)
	mux.Handle("GET /{$}", dashboard.Handler())
	// Counted inside the span: the ServeMux sets the route on the request
	// the tracing hands on.
	counted, err := metrics.HTTP(reg, "inventory", mux)
	if err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	if s.http, err = httpserve.Listen(ctx, cfg.HTTPAddr, traced(counted)); err != nil {
		return err
	}
	return nil
}

// registerMetrics registers the inventory's metrics in reg.
func (s *Service) registerMetrics(reg *prometheus.Registry) error {
	rec, err := newRecordedMetrics(reg)
	if err != nil {
		return err
	}
	s.catalog.OnRecorded(rec.recorded)
	if err := metrics.BuildInfo(reg, "inventory", program.Version); err != nil {
		return err
	}
	for _, c := range []prometheus.Collector{newStanding(s.catalog), metrics.Consumers("inventory", []jetstream.Consumer{s.consumer})} {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

// traced makes every request of the REST API a server span named by its
// route ("POST /api/v1/trees/{name}/sync"), continuing the trace of an
// incoming W3C traceparent header: what the request changes, and the
// events and trigger it sends through the outbox, are in that trace.
// Health probes and the dashboard are not traced.
func traced(h http.Handler) http.Handler {
	return otelhttp.NewHandler(h, "inventory",
		otelhttp.WithPropagators(telemetry.Propagator),
		otelhttp.WithFilter(func(r *http.Request) bool { return strings.HasPrefix(r.URL.Path, "/api/") }))
}

// URL is the base URL of the bound REST API, http://host:port.
func (s *Service) URL() string { return s.http.URL() }

// Probe is the inventory's own readiness.
func (s *Service) Probe() *health.Probe { return s.probe }

// Run serves the REST API, records events and answers its status requests
// on the bus until ctx ends, then shuts down: HTTP first, then the
// consumer, then the status requests, then NATS is drained and the
// database closed.
func (s *Service) Run(ctx context.Context) error {
	ctl, err := control.Start(ctx, s.nc, s.control(), s.log)
	if err != nil {
		return errors.Join(err, s.Close())
	}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return s.http.Serve(gctx) })
	g.Go(func() error {
		return bus.Consume(gctx, s.consumer, s.log.With("consumer", events.Durable), events.Handler(s.catalog, s.reports), bus.WithDeadLetter(s.js, s.announce))
	})
	g.Go(func() error { s.republishKeys(gctx); return nil })
	g.Go(func() error { s.relayOutbox(gctx); return nil })
	g.Go(func() error { s.checkAlarms(gctx); return nil })
	s.probe.SetReady(true)
	s.log.Info("inventory ready", "url", s.URL())
	err = g.Wait()
	s.probe.SetReady(false)
	// Before the drain: micro's hooks on the connection are taken off,
	// and no request is taken while the connection drains.
	stopErr := ctl.Stop()
	return errors.Join(err, stopErr, s.Close())
}

// every calls f every interval until ctx ends.
func every(ctx context.Context, interval time.Duration, f func(context.Context)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			f(ctx)
		}
	}
}

// republishKeys publishes the trusted signing keys every s.republish until
// ctx ends. A failure is logged: the next round, or the next change,
// publishes them again.
func (s *Service) republishKeys(ctx context.Context) {
	every(ctx, s.republish, func(ctx context.Context) {
		if err := s.catalog.PublishSigningKeys(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("signing keys not republished", "err", err)
		}
	})
}

// checkAlarms raises and clears freshness alarms every s.alarms until ctx
// ends (catalog.CheckAlarms), and reports silent agents (checkAgents). A
// failure is logged; the next round tries again.
func (s *Service) checkAlarms(ctx context.Context) {
	every(ctx, s.alarms, func(ctx context.Context) {
		raised, cleared, err := s.catalog.CheckAlarms(ctx)
		if err != nil && ctx.Err() == nil {
			s.log.Warn("freshness alarms not checked", "err", err)
		}
		if raised+cleared > 0 {
			s.log.Info("freshness alarms", "raised", raised, "cleared", cleared)
		}
		s.checkAgents(ctx)
	})
}

// checkAgents reports offline the agents silent for longer than
// s.offlineAfter (catalog.CheckAgents), measured up to the time the
// inventory has handled the events stream to (heardUntil): a heartbeat
// still waiting in the stream or in hand, after a restart of the
// inventory or in a burst of events, is not silence; and events that
// never stop coming, a busy fan-out's sync.progress, do not stop the
// check either. An inventory too far behind does not check (see
// silenceKnown).
func (s *Service) checkAgents(ctx context.Context) {
	heard, now, err := heardUntil(ctx, s.stream, s.consumer)
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("agents not checked: how far the events are handled is unknown", "err", err)
		}
		return
	}
	if !silenceKnown(heard, now, s.offlineAfter) {
		s.log.Warn("agents not checked: the events are handled too far behind, heartbeats may have expired unseen",
			"behind", now.Sub(heard), "heartbeats_kept", bus.AgentHeartbeatTTL)
		return
	}
	lost, err := s.catalog.CheckAgents(ctx, heard, s.offlineAfter)
	if err != nil && ctx.Err() == nil {
		s.log.Warn("agents not checked", "err", err)
	}
	if lost > 0 {
		s.log.Info("agents silent, reported offline", "agents", lost, "after", s.offlineAfter, "heard_until", heard)
	}
}

// heardUntil is the time up to which the consumer c has handled stream,
// on the NATS server's clock, as the agents' heartbeats are: every event
// stored before it has been handled (acknowledged, or refused), and now,
// the server's time. The events not handled yet, those waiting and those
// delivered but not acknowledged (in hand, prefetched, or waiting for a
// retry), all come after the consumer's ack floor, so the first event
// stored after the floor bounds it, whether the backlog is one event or
// thousands. With none, every event stored so far is handled: heard is
// now. The stream is asked even when the consumer's state counts nothing
// pending: an event stored a moment before may not be counted yet.
func heardUntil(ctx context.Context, stream jetstream.Stream, c jetstream.Consumer) (heard, now time.Time, err error) {
	info, err := c.Info(ctx)
	if err != nil {
		return time.Time{}, time.Time{}, err
	}
	now = info.TimeStamp
	if now.IsZero() {
		now = time.Now() // a server too old to say; the inventory's clock is the next best
	}
	// The next event at or after the floor's successor on the consumer's
	// subjects, so that one removed (an expired heartbeat, a purge) does
	// not hide the ones after it.
	first, err := stream.GetMsg(ctx, info.AckFloor.Stream+1, jetstream.WithGetMsgSubject(cmp.Or(info.Config.FilterSubject, ">")))
	switch {
	case errors.Is(err, jetstream.ErrMsgNotFound):
		// Nothing stored after the floor, even now: every event stored
		// when the state was read is handled.
		return now, now, nil
	case err != nil:
		return time.Time{}, time.Time{}, fmt.Errorf("first event not handled: %w", err)
	}
	return first.Time, now, nil
}

// silenceKnown says whether an agent's silence up to heard, at now, can
// be told from heartbeats lost unseen. The stream keeps a heartbeat
// bus.AgentHeartbeatTTL: one that waited longer, the inventory behind or
// away, is gone without being handled, and the agent that sent it would
// look silent. Within TTL-after of now, every heartbeat sent in the last
// after before heard is still there, so it has been handled. Caught up
// (heard is now), the heartbeats still kept are all handled, and an agent
// alive has sent one of them.
func silenceKnown(heard, now time.Time, after time.Duration) bool {
	return !heard.Before(now) || now.Sub(heard) < bus.AgentHeartbeatTTL-after
}

// Close releases what New acquired, for a service that will not Run. It
// is safe to call more than once.
func (s *Service) Close() error {
	s.close.Do(func() {
		var errs []error
		if err := bus.Drain(s.nc); err != nil {
			errs = append(errs, err)
		}
		if s.store != nil {
			if err := s.store.Close(); err != nil {
				errs = append(errs, fmt.Errorf("close database: %w", err))
			}
		}
		s.closeErr = errors.Join(errs...)
	})
	return s.closeErr
}

// notifier mirrors the trusted signing keys into the bucket site-agents
// watch.
type notifier struct {
	keys jetstream.KeyValue
}

// TrustSigningKeys mirrors keys into the signing-keys bucket that every
// site-agent watches.
func (n *notifier) TrustSigningKeys(ctx context.Context, keys []catalog.SigningKey) error {
	pems := make([][]byte, len(keys))
	for i, k := range keys {
		pems[i] = []byte(k.PublicKey)
	}
	return bus.MirrorSigningKeys(ctx, n.keys, pems)
}
