// Package control puts a pulpdist service on the request-reply side of the
// bus as a NATS micro service (github.com/nats-io/nats.go/micro): named
// pulpdist-<service>, with the program's version, a description and
// metadata (instance, site), so that `nats micro ls`, `nats micro info`
// and the $SRV.PING, $SRV.INFO and $SRV.STATS requests find every running
// instance with its endpoints and their counts. Every service answers
// status; some add operations (the scheduler's trigger, a site-agent's
// verify).
//
// A request is one JSON object, decoded strictly (unknown fields are
// refused) and validated before anything is done; an error is answered
// with a code chosen in one place (Code). A request's trace context (its
// traceparent header) is continued by the handler's span.
package control

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/pulpdist/pulpdist/libs/bus"
	"github.com/pulpdist/pulpdist/libs/program"
	"github.com/pulpdist/pulpdist/libs/telemetry"
)

// Config describes one instance of a service.
type Config struct {
	// Service is the service's name (bus.ServiceScheduler …); the micro
	// service is "pulpdist-" + Service.
	Service string
	// Instance names this instance (metadata "instance"); DefaultInstance
	// when empty.
	Instance string
	// Description says what the service does (`nats micro info`).
	Description string
	// Metadata is added to the service's own (the site of an agent).
	Metadata map[string]string
	// PerInstance puts the endpoints on bus.InstanceSubject(Service,
	// Instance, …), for a service whose instances each hold their own
	// state (a site's trees, one delta-cache's builds). Otherwise they are
	// on bus.ServiceSubject(Service, …), and the instances share the
	// requests in a queue group.
	PerInstance bool
	// Ready is the readiness status reports; nil is always ready.
	Ready func() bool
	// Status returns the service's status: common, with what the service
	// is doing (bus.SchedulerStatus …). Nil answers common alone.
	Status func(ctx context.Context, common bus.ServiceStatus) (any, error)
	// Endpoints are the service's operations besides status.
	Endpoints []Endpoint
}

// name is the micro service's name: pulpdist-<service>.
func (c Config) name() string { return "pulpdist-" + c.Service }

// subject is the subject of the endpoint named endpoint.
func (c Config) subject(endpoint string) string {
	if c.PerInstance {
		return bus.InstanceSubject(c.Service, c.instance(), endpoint)
	}
	return bus.ServiceSubject(c.Service, endpoint)
}

func (c Config) instance() string { return cmp.Or(c.Instance, DefaultInstance()) }

// DefaultInstance names an instance of a service that has no name of its
// own: <host>-<pid>.
func DefaultInstance() string {
	host, _ := os.Hostname() // a name only; an empty one is replaced
	return fmt.Sprintf("%s-%d", cmp.Or(host, "localhost"), os.Getpid())
}

// DefaultTimeout bounds the handling of one request unless the endpoint
// says otherwise (Endpoint.WithTimeout).
const DefaultTimeout = 30 * time.Second

// Endpoint is one request-reply operation of a service.
type Endpoint struct {
	name        string
	description string
	timeout     time.Duration
	// concurrency, when above 0, has requests handled off the
	// subscription's goroutine, that many at most at a time.
	concurrency int
	// prepare decodes and validates a request, and returns what handles it.
	prepare func(data []byte) (handle, error)
}

// handle handles one decoded request.
type handle func(ctx context.Context) (any, error)

// Handle makes the endpoint name, whose requests decode as Req: one JSON
// object of Req's fields, nothing after it (an empty body, unknown fields
// and a request Req.Validate refuses are ErrInvalid). fn's reply is
// answered as JSON; its error as Code says.
func Handle[Req interface{ Validate() error }, Reply any](name, description string, fn func(context.Context, Req) (Reply, error)) Endpoint {
	return Endpoint{name: name, description: description, prepare: func(data []byte) (handle, error) {
		var req Req
		if err := decode(data, &req, false); err != nil {
			return nil, err
		}
		if err := req.Validate(); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
		}
		return func(ctx context.Context) (any, error) { return fn(ctx, req) }, nil
	}}
}

// WithTimeout returns e bounding the handling of one request by d instead
// of DefaultTimeout (a requester should wait as long). The time counts
// from the request's arrival.
func (e Endpoint) WithTimeout(d time.Duration) Endpoint {
	e.timeout = d
	return e
}

// WithConcurrency returns e handling each request in a goroutine of its
// own, at most n at a time, for an operation that takes long (a verify
// reading a tree). Otherwise micro handles an endpoint's requests one at
// a time on its subscription's goroutine, so each waits for those before
// it, and is handled even if its requester gave up meanwhile. A request
// arriving while n are being handled is answered ErrBusy at once; one that
// does not decode or validate is answered as such at once too. $SRV.STATS
// counts the requests handled so, but not their errors or time.
func (e Endpoint) WithConcurrency(n int) Endpoint {
	e.concurrency = n
	return e
}

// decode unmarshals one JSON object into v strictly: no unknown field,
// nothing after it; an empty body only when allowEmpty.
func decode(data []byte, v any, allowEmpty bool) error {
	if len(bytes.TrimSpace(data)) == 0 {
		if allowEmpty {
			return nil
		}
		return fmt.Errorf("%w: empty body, want a JSON object", ErrInvalid)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: data after the JSON object", ErrInvalid)
	}
	return nil
}

// Service is a service answering on the bus.
type Service struct {
	svc micro.Service
	cfg Config
	nc  *nats.Conn
	// background is the context of the requests handled off the
	// subscriptions' goroutines (Endpoint.WithConcurrency); Stop cancels
	// it, then waits for them (inflight).
	background context.Context
	cancel     context.CancelFunc
	mu         sync.Mutex
	stopped    bool // guarded by mu; no request is handled off the subscriptions then
	inflight   sync.WaitGroup
}

// Start registers the service on nc, and returns once the server knows
// its endpoints; it answers their requests until Stop. The handling of a
// request is cancelled with ctx, or by Stop for those handled off the
// subscriptions (Endpoint.WithConcurrency). nc's closed and error
// handlers must be set before (micro chains them), not after.
func Start(ctx context.Context, nc *nats.Conn, cfg Config, log *slog.Logger) (*Service, error) {
	if err := bus.ValidateName("service", cfg.Service); err != nil {
		return nil, err
	}
	cfg.Instance = cfg.instance()
	started := time.Now().UTC()
	meta := maps.Clone(cfg.Metadata)
	if meta == nil {
		meta = map[string]string{}
	}
	meta["instance"] = cfg.Instance
	svc, err := micro.AddService(nc, micro.Config{
		Name:        cfg.name(),
		Version:     SemVer(program.Version),
		Description: cfg.Description,
		Metadata:    meta,
		QueueGroup:  cfg.name(),
	})
	if err != nil {
		return nil, fmt.Errorf("register %s with micro: %w", cfg.name(), err)
	}
	background, cancel := context.WithCancel(ctx)
	s := &Service{svc: svc, cfg: cfg, nc: nc, background: background, cancel: cancel}
	status := Endpoint{name: bus.EndpointStatus, description: "what the instance is doing: readiness, version, uptime and its work",
		prepare: func(data []byte) (handle, error) {
			if err := decode(data, &struct{}{}, true); err != nil {
				return nil, err
			}
			return func(ctx context.Context) (any, error) {
				common := bus.ServiceStatus{
					Service: cfg.Service, Instance: cfg.Instance, Version: program.Version, Ready: cfg.Ready == nil || cfg.Ready(),
					StartedAt: started, UptimeSeconds: int64(time.Since(started) / time.Second),
				}
				if cfg.Status == nil {
					return common, nil
				}
				return cfg.Status(ctx, common)
			}, nil
		}}
	log = log.With("micro", cfg.name())
	for _, e := range append([]Endpoint{status}, cfg.Endpoints...) {
		subject := cfg.subject(e.name)
		if err := svc.AddEndpoint(e.name, s.handler(ctx, e, subject, log), micro.WithEndpointSubject(subject),
			micro.WithEndpointMetadata(map[string]string{"description": e.description})); err != nil {
			return nil, errors.Join(fmt.Errorf("endpoint %s: %w", subject, err), s.Stop())
		}
	}
	// Once Start returns, the server knows every endpoint: a request sent
	// then from any connection is answered.
	if err := nc.Flush(); err != nil {
		return nil, errors.Join(fmt.Errorf("register %s: %w", cfg.name(), err), s.Stop())
	}
	return s, nil
}

// Stop stops answering: the endpoints' subscriptions are drained and the
// service no longer answers $SRV requests. The requests being handled off
// the subscriptions are cancelled, and answered before Stop returns. Call
// it before draining or closing the connection.
func (s *Service) Stop() error {
	err := s.svc.Stop()
	s.mu.Lock()
	s.stopped = true
	s.mu.Unlock()
	s.cancel()
	s.inflight.Wait()
	if err != nil {
		return fmt.Errorf("stop %s: %w", s.cfg.name(), err)
	}
	return nil
}

// handler handles each request of e on subject within the request's
// trace, then answers its reply, or its error with Code: on the
// subscription's goroutine, or off it when e says so (slots).
func (s *Service) handler(ctx context.Context, e Endpoint, subject string, log *slog.Logger) micro.Handler {
	var slots chan struct{}
	if e.concurrency > 0 {
		slots = make(chan struct{}, e.concurrency)
		ctx = s.background
	}
	return micro.HandlerFunc(func(req micro.Request) {
		// The request's time counts from its arrival.
		rctx, cancel := context.WithTimeout(bus.ExtractTrace(ctx, nats.Header(req.Headers())), cmp.Or(e.timeout, DefaultTimeout))
		rctx, end := telemetry.StartSpan(rctx, "libs/control", "request "+subject, trace.WithSpanKind(trace.SpanKindServer),
			trace.WithAttributes(attribute.String("messaging.system", "nats"), attribute.String("messaging.destination.name", subject),
				attribute.String("pulpdist.service", s.cfg.Service), attribute.String("pulpdist.endpoint", e.name)))
		h, err := safely(func() (handle, error) { return e.prepare(req.Data()) })
		if err == nil && slots != nil {
			if err = s.detach(slots, e); err == nil {
				go func() {
					defer s.inflight.Done()
					defer func() { <-slots }()
					defer cancel()
					reply, err := run(rctx, h)
					end(err)
					// Not through req: micro reads its state once this
					// handler has returned.
					s.answer(detached{nc: s.nc, reply: req.Reply()}, subject, reply, err, log)
				}()
				return
			}
		}
		defer cancel()
		var reply any
		if err == nil {
			reply, err = run(rctx, h)
		}
		end(err)
		s.answer(req, subject, reply, err, log)
	})
}

// detach takes one of slots for a request of e handled off the
// subscription, unless all are taken or the service is stopping.
func (s *Service) detach(slots chan struct{}, e Endpoint) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return fmt.Errorf("%s: the service is stopping: %w", e.name, ErrUnavailable)
	}
	select {
	case slots <- struct{}{}:
		s.inflight.Add(1)
		return nil
	default:
		return fmt.Errorf("%s handles %d request(s) at a time, and that many are in progress; ask again once one ends: %w", e.name, cap(slots), ErrBusy)
	}
}

// run handles a request unless its context has ended already (its time
// is up, the service is stopping): nobody may wait for the answer.
func run(ctx context.Context, h handle) (any, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("not started: %w", err)
	}
	return safely(func() (any, error) { return h(ctx) })
}

// responder answers a request.
type responder interface {
	Respond(data []byte, opts ...micro.RespondOpt) error
	Error(code, description string, data []byte, opts ...micro.RespondOpt) error
}

// answer sends reply, or err with its code, to the requester.
func (s *Service) answer(req responder, subject string, reply any, err error, log *slog.Logger) {
	if err != nil {
		code := Code(err)
		if code == CodeInternal || code == CodeUnavailable {
			log.Warn("request failed", "subject", subject, "code", code, "err", err)
		} else {
			log.Debug("request refused", "subject", subject, "code", code, "err", err)
		}
		body, _ := json.Marshal(bus.ControlError{Code: code, Description: err.Error()}) // a plain struct always encodes
		if rerr := req.Error(code, oneLine(err.Error()), body); rerr != nil {
			log.Warn("error reply not sent", "subject", subject, "err", rerr)
		}
		return
	}
	body, err := json.Marshal(reply)
	if err == nil {
		err = req.Respond(body)
	}
	if err != nil {
		log.Warn("reply not sent", "subject", subject, "err", err)
	}
}

// detached answers a request on its reply subject, as micro's Request
// does, from outside the subscription's goroutine.
type detached struct {
	nc    *nats.Conn
	reply string
}

func (d detached) Respond(data []byte, _ ...micro.RespondOpt) error {
	return d.nc.Publish(d.reply, data)
}

func (d detached) Error(code, description string, data []byte, _ ...micro.RespondOpt) error {
	return d.nc.PublishMsg(&nats.Msg{Subject: d.reply, Data: data, Header: nats.Header{
		micro.ErrorHeader: []string{description}, micro.ErrorCodeHeader: []string{code},
	}})
}

// safely runs f, turning a panic into an error: a bug in one request
// must not stop the process.
func safely[T any](f func() (T, error)) (v T, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("handler panic: %v", r)
		}
	}()
	return f()
}

// oneLine makes s fit a header value: no line breaks.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// semverRE is semver.org's regular expression, which micro checks a
// service's version against.
var semverRE = regexp.MustCompile(`^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$`)

// SemVer is v as micro takes a version: v itself (without a leading "v")
// when it is a semantic version, otherwise v as the build metadata of
// 0.0.0 ("dev" → "0.0.0+dev", a commit hash → "0.0.0+<hash>"), with the
// characters semver does not allow there made '-'. The status endpoint
// reports v as it is.
func SemVer(v string) string {
	if t := strings.TrimPrefix(v, "v"); semverRE.MatchString(t) {
		return t
	}
	var b strings.Builder
	for _, part := range strings.FieldsFunc(v, func(r rune) bool { return r == '.' || r == '+' }) {
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(strings.Map(func(r rune) rune {
			if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' {
				return r
			}
			return '-'
		}, part))
	}
	if b.Len() == 0 {
		return "0.0.0"
	}
	return "0.0.0+" + b.String()
}
