package control_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/pulpdist/pulpdist/libs/bus"
	"github.com/pulpdist/pulpdist/libs/control"
	"github.com/pulpdist/pulpdist/libs/natstest"
	"github.com/pulpdist/pulpdist/libs/program"
)

// echoRequest is the test endpoint's request.
type echoRequest struct {
	Tree string `json:"tree"`
	Fail string `json:"fail,omitempty"`
}

func (r echoRequest) Validate() error { return bus.ValidateName("tree", r.Tree) }

type echoReply struct {
	Tree     string `json:"tree"`
	Instance string `json:"instance"`
	TraceID  string `json:"trace_id"`
}

// echo answers the tree it was asked about, or fails as asked.
func echo(instance string, calls *atomic.Int64) control.Endpoint {
	return control.Handle("echo", "answers the tree", func(ctx context.Context, r echoRequest) (echoReply, error) {
		calls.Add(1)
		switch r.Fail {
		case "missing":
			return echoReply{}, fmt.Errorf("tree %q: %w", r.Tree, control.ErrNotFound)
		case "panic":
			panic("boom")
		case "":
		default:
			return echoReply{}, errors.New("failed\nover two lines")
		}
		return echoReply{Tree: r.Tree, Instance: instance, TraceID: trace.SpanContextFromContext(ctx).TraceID().String()}, nil
	})
}

// connect opens a client connection, closed when the test ends.
func connect(t *testing.T, url string) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// start runs cfg on a connection of its own until the test ends.
func start(t *testing.T, url string, cfg control.Config) *control.Service {
	t.Helper()
	s, err := control.Start(t.Context(), connect(t, url), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Error(err)
		}
	})
	return s
}

// request sends body to subject and returns the reply.
func request(t *testing.T, nc *nats.Conn, subject, body string) *nats.Msg {
	t.Helper()
	m, err := nc.Request(subject, []byte(body), 10*time.Second)
	if err != nil {
		t.Fatalf("request %s: %v", subject, err)
	}
	return m
}

// TestDiscovery registers two instances of a shared service and one of a
// service per instance: $SRV.PING finds the three, $SRV.INFO lists each
// one's endpoints on the subjects bus builds, with the version, the
// description and the metadata.
func TestDiscovery(t *testing.T) {
	url := natstest.Start(t)
	nc := connect(t, url)
	var calls atomic.Int64
	for _, inst := range []string{"s1", "s2"} {
		start(t, url, control.Config{Service: "shared", Instance: inst, Description: "a shared test service", Endpoints: []control.Endpoint{echo(inst, &calls)}})
	}
	start(t, url, control.Config{Service: "own", Instance: "host.example-1", PerInstance: true, Metadata: map[string]string{"site": "lyon"}})

	pings := natstest.Discover(t, nc, micro.PingVerb, "", func(ps []micro.Ping) error {
		var names []string
		for _, p := range ps {
			names = append(names, p.Name+"/"+p.Metadata["instance"])
		}
		slices.Sort(names)
		if want := []string{"pulpdist-own/host.example-1", "pulpdist-shared/s1", "pulpdist-shared/s2"}; !slices.Equal(names, want) {
			return fmt.Errorf("pinged %v, want %v", names, want)
		}
		return nil
	})
	for _, p := range pings {
		if p.Version != control.SemVer(program.Version) || p.Type != micro.PingResponseType {
			t.Errorf("ping %+v: want version %s", p, control.SemVer(program.Version))
		}
	}

	infos := natstest.Discover(t, nc, micro.InfoVerb, "pulpdist-shared", func(is []micro.Info) error {
		if len(is) != 2 {
			return fmt.Errorf("%d instances", len(is))
		}
		return nil
	})
	for _, in := range infos {
		if in.Description != "a shared test service" {
			t.Errorf("description %q", in.Description)
		}
		var got []string
		for _, e := range in.Endpoints {
			got = append(got, e.Name+" "+e.Subject+" "+e.QueueGroup)
			if e.Metadata["description"] == "" {
				t.Errorf("endpoint %s has no description", e.Name)
			}
		}
		want := []string{"status pulpdist.svc.shared.status pulpdist-shared", "echo pulpdist.svc.shared.echo pulpdist-shared"}
		if !slices.Equal(got, want) {
			t.Errorf("endpoints %v, want %v", got, want)
		}
	}
	own := natstest.Discover(t, nc, micro.InfoVerb, "pulpdist-own", func(is []micro.Info) error {
		if len(is) != 1 {
			return fmt.Errorf("%d instances", len(is))
		}
		return nil
	})[0]
	if len(own.Endpoints) != 1 || own.Endpoints[0].Subject != "pulpdist.svc.own.host_example-1.status" || own.Metadata["site"] != "lyon" {
		t.Errorf("per-instance service %+v", own)
	}

	// The shared instances take turns: each request is answered once.
	for range 10 {
		request(t, nc, bus.ServiceSubject("shared", "echo"), `{"tree":"demo"}`)
	}
	if n := calls.Load(); n != 10 {
		t.Errorf("10 requests handled %d times: want once each (queue group)", n)
	}
}

// TestRequests sends good and bad requests to a typed endpoint: good ones
// are answered, bad ones get an error code and description (headers and
// body) and never reach the handler; $SRV.STATS counts both.
func TestRequests(t *testing.T) {
	url := natstest.Start(t)
	nc := connect(t, url)
	var calls atomic.Int64
	start(t, url, control.Config{Service: "svc", Instance: "one", Endpoints: []control.Endpoint{echo("one", &calls)}})
	subject := bus.ServiceSubject("svc", "echo")

	m := request(t, nc, subject, `{"tree":"demo"}`)
	var got echoReply
	if err := json.Unmarshal(m.Data, &got); err != nil || got.Tree != "demo" || got.Instance != "one" || m.Header.Get(micro.ErrorCodeHeader) != "" {
		t.Fatalf("reply %q %v: %v", m.Data, m.Header, err)
	}

	cases := []struct {
		name, body, code, says string
		reaches                bool
	}{
		{"not json", `tree=demo`, control.CodeInvalid, "invalid request", false},
		{"empty", ``, control.CodeInvalid, "empty body", false},
		{"unknown field", `{"tree":"demo","tre":"x"}`, control.CodeInvalid, `unknown field "tre"`, false},
		{"trailing data", `{"tree":"demo"} {}`, control.CodeInvalid, "data after", false},
		{"wrong type", `{"tree":7}`, control.CodeInvalid, "invalid request", false},
		{"bad name", `{"tree":"../etc"}`, control.CodeInvalid, "invalid name", false},
		{"not found", `{"tree":"demo","fail":"missing"}`, control.CodeNotFound, `tree "demo": not found`, true},
		{"failure", `{"tree":"demo","fail":"yes"}`, control.CodeInternal, "failed over two lines", true},
		{"panic", `{"tree":"demo","fail":"panic"}`, control.CodeInternal, "handler panic: boom", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := calls.Load()
			m := request(t, nc, subject, c.body)
			if code := m.Header.Get(micro.ErrorCodeHeader); code != c.code {
				t.Errorf("code %q (%q), want %s", code, m.Header.Get(micro.ErrorHeader), c.code)
			}
			if desc := m.Header.Get(micro.ErrorHeader); !strings.Contains(desc, c.says) {
				t.Errorf("description %q lacks %q", desc, c.says)
			}
			var body bus.ControlError
			if err := json.Unmarshal(m.Data, &body); err != nil || body.Code != c.code || body.Description == "" {
				t.Errorf("error body %q: %v", m.Data, err)
			}
			if reached := calls.Load() != before; reached != c.reaches {
				t.Errorf("handler reached: %v, want %v", reached, c.reaches)
			}
		})
	}

	stats := natstest.Discover(t, nc, micro.StatsVerb, "pulpdist-svc", func(ss []micro.Stats) error {
		if len(ss) != 1 {
			return fmt.Errorf("%d instances", len(ss))
		}
		return nil
	})[0]
	for _, e := range stats.Endpoints {
		if e.Name != "echo" {
			continue
		}
		if e.NumRequests != 1+len(cases) || e.NumErrors != len(cases) || !strings.Contains(e.LastError, "handler panic") {
			t.Errorf("echo stats %+v: want %d requests, %d errors", e, 1+len(cases), len(cases))
		}
		return
	}
	t.Errorf("no stats of echo in %+v", stats)
}

// TestStatus: the status endpoint answers the common part with what the
// service adds, accepts an empty body or {} and refuses anything else.
func TestStatus(t *testing.T) {
	url := natstest.Start(t)
	nc := connect(t, url)
	var ready atomic.Bool
	type detail struct {
		bus.ServiceStatus
		Doing string `json:"doing"`
	}
	start(t, url, control.Config{Service: "svc", Instance: "i-1", PerInstance: true, Ready: ready.Load,
		Status: func(_ context.Context, common bus.ServiceStatus) (any, error) {
			return detail{ServiceStatus: common, Doing: "nothing much"}, nil
		}})
	subject := bus.InstanceSubject("svc", "i-1", bus.EndpointStatus)
	for _, body := range []string{"", "{}", " { } "} {
		var got detail
		if err := json.Unmarshal(request(t, nc, subject, body).Data, &got); err != nil {
			t.Fatal(err)
		}
		if got.Service != "svc" || got.Instance != "i-1" || got.Version != program.Version || got.Ready || got.StartedAt.IsZero() || got.Doing != "nothing much" {
			t.Errorf("status %+v", got)
		}
	}
	ready.Store(true)
	var got detail
	if err := json.Unmarshal(request(t, nc, subject, "").Data, &got); err != nil || !got.Ready {
		t.Errorf("status %+v after ready: %v", got, err)
	}
	if m := request(t, nc, subject, `{"verbose":true}`); m.Header.Get(micro.ErrorCodeHeader) != control.CodeInvalid {
		t.Errorf("status with an unknown field: %q %v", m.Data, m.Header)
	}
}

// TestTraceContinues: a request carrying a traceparent is handled in a
// server span of that trace, child of the requester's span.
func TestTraceContinues(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	before := otel.GetTracerProvider()
	otel.SetTracerProvider(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)))
	defer otel.SetTracerProvider(before)

	url := natstest.Start(t)
	nc := connect(t, url)
	var calls atomic.Int64
	start(t, url, control.Config{Service: "svc", Endpoints: []control.Endpoint{echo("x", &calls)}})

	ctx, span := otel.Tracer("test").Start(t.Context(), "caller")
	msg := nats.NewMsg(bus.ServiceSubject("svc", "echo"))
	msg.Data = []byte(`{"tree":"demo"}`)
	bus.InjectTrace(ctx, msg.Header)
	reply, err := nc.RequestMsg(msg, 10*time.Second)
	span.End()
	if err != nil {
		t.Fatal(err)
	}
	var got echoReply
	if err := json.Unmarshal(reply.Data, &got); err != nil {
		t.Fatal(err)
	}
	want := span.SpanContext().TraceID()
	if got.TraceID != want.String() {
		t.Fatalf("handled in trace %s, want %s", got.TraceID, want)
	}
	var server sdktrace.ReadOnlySpan
	for _, s := range rec.Ended() {
		if s.Name() == "request pulpdist.svc.svc.echo" {
			server = s
		}
	}
	if server == nil || server.SpanKind() != trace.SpanKindServer || server.Parent().SpanID() != span.SpanContext().SpanID() {
		t.Fatalf("server span %v: want a child of the caller's span", server)
	}

	// Without a traceparent the request starts a trace of its own.
	if err := json.Unmarshal(request(t, nc, bus.ServiceSubject("svc", "echo"), `{"tree":"demo"}`).Data, &got); err != nil {
		t.Fatal(err)
	}
	if got.TraceID == want.String() || got.TraceID == (trace.TraceID{}).String() {
		t.Errorf("request without a traceparent handled in trace %s", got.TraceID)
	}
}

// TestStopEndsAnswers: once stopped, the endpoints have no responders and
// the connection's own handlers are back.
func TestStopEndsAnswers(t *testing.T) {
	url := natstest.Start(t)
	nc := connect(t, url)
	own := connect(t, url)
	closed := make(chan struct{})
	own.SetClosedHandler(func(*nats.Conn) { close(closed) })
	s, err := control.Start(t.Context(), own, control.Config{Service: "svc"}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	request(t, nc, bus.ServiceSubject("svc", bus.EndpointStatus), "")
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := own.Flush(); err != nil {
		t.Fatal(err)
	}
	if _, err := nc.Request(bus.ServiceSubject("svc", bus.EndpointStatus), nil, 5*time.Second); !errors.Is(err, nats.ErrNoResponders) {
		t.Fatalf("status after Stop: %v, want no responders", err)
	}
	own.Close()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("the connection's closed handler was not called")
	}
}

func TestConfigIsChecked(t *testing.T) {
	url := natstest.Start(t)
	for _, cfg := range []control.Config{
		{Service: ""},
		{Service: "two.tokens"},
		{Service: "svc", Endpoints: []control.Endpoint{control.Handle("bad name", "", func(context.Context, echoRequest) (echoReply, error) { return echoReply{}, nil })}},
	} {
		if s, err := control.Start(t.Context(), connect(t, url), cfg, slog.New(slog.DiscardHandler)); err == nil {
			_ = s.Stop() // refused or not, nothing must stay registered
			t.Errorf("config %+v accepted", cfg)
		}
	}
}

func TestSemVer(t *testing.T) {
	for v, want := range map[string]string{
		"1.2.3":          "1.2.3",
		"v1.2.3":         "1.2.3",
		"v1.2.3-rc.1":    "1.2.3-rc.1",
		"1.2.3-4-gabcde": "1.2.3-4-gabcde",
		"dev":            "0.0.0+dev",
		"":               "0.0.0",
		"0123abc":        "0.0.0+0123abc",
		"2026.12.06":     "0.0.0+2026.12.06",
		"dirty build/x":  "0.0.0+dirty-build-x",
	} {
		if got := control.SemVer(v); got != want {
			t.Errorf("SemVer(%q) = %q, want %q", v, got, want)
		}
	}
}

func TestCode(t *testing.T) {
	for _, c := range []struct {
		err  error
		want string
	}{
		{fmt.Errorf("x: %w", control.ErrInvalid), control.CodeInvalid},
		{bus.ValidateName("tree", "A"), control.CodeInvalid},
		{bus.ValidateVersion("x", false), control.CodeInvalid},
		{fmt.Errorf("tree: %w", control.ErrNotFound), control.CodeNotFound},
		{fmt.Errorf("tree: %w", control.ErrBusy), control.CodeBusy},
		{fmt.Errorf("inventory: %w", control.ErrUnavailable), control.CodeUnavailable},
		{context.DeadlineExceeded, control.CodeUnavailable},
		{errors.New("disk on fire"), control.CodeInternal},
	} {
		if got := control.Code(c.err); got != c.want {
			t.Errorf("Code(%v) = %s, want %s", c.err, got, c.want)
		}
	}
}

// gate is an endpoint's handler that holds each request until released
// or cancelled, saying when one starts; once released, it holds none.
type gate struct {
	started chan string
	release chan struct{}
}

func newGate() *gate { return &gate{started: make(chan string), release: make(chan struct{})} }

func (g *gate) endpoint(n int) control.Endpoint {
	return control.Handle("slow", "holds each request until released", func(ctx context.Context, r echoRequest) (echoReply, error) {
		select {
		case g.started <- r.Tree:
		case <-g.release:
		case <-ctx.Done():
			return echoReply{}, ctx.Err()
		}
		select {
		case <-g.release:
			return echoReply{Tree: r.Tree}, nil
		case <-ctx.Done():
			return echoReply{}, fmt.Errorf("held: %w", ctx.Err())
		}
	}).WithConcurrency(n)
}

// waitStarted waits for the gate to say a request of tree started.
func (g *gate) waitStarted(t *testing.T, tree string) {
	t.Helper()
	select {
	case got := <-g.started:
		if got != tree {
			t.Fatalf("request of %q started, want %q", got, tree)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("request of %q not started", tree)
	}
}

// requestAsync sends body to subject and returns where its reply (or the
// error of the request) comes.
func requestAsync(nc *nats.Conn, subject, body string) <-chan *nats.Msg {
	out := make(chan *nats.Msg, 1)
	go func() {
		m, err := nc.Request(subject, []byte(body), 20*time.Second)
		if err != nil {
			m = &nats.Msg{Header: nats.Header{micro.ErrorHeader: {err.Error()}}}
		}
		out <- m
	}()
	return out
}

// receive waits for a reply of requestAsync.
func receive(t *testing.T, replies <-chan *nats.Msg) *nats.Msg {
	t.Helper()
	select {
	case m := <-replies:
		return m
	case <-time.After(30 * time.Second):
		t.Fatal("no reply")
		return nil
	}
}

// TestConcurrencyIsBounded: an endpoint handling one request at a time
// off its subscription answers a second request busy at once, instead of
// holding it until the first ends; a request that does not decode is
// still refused as invalid; once the first ends, the next is handled.
func TestConcurrencyIsBounded(t *testing.T) {
	url := natstest.Start(t)
	nc := connect(t, url)
	g := newGate()
	start(t, url, control.Config{Service: "svc", Endpoints: []control.Endpoint{g.endpoint(1)}})
	subject := bus.ServiceSubject("svc", "slow")

	first := requestAsync(nc, subject, `{"tree":"first"}`)
	g.waitStarted(t, "first")
	m := request(t, nc, subject, `{"tree":"second"}`)
	if code := m.Header.Get(micro.ErrorCodeHeader); code != control.CodeBusy || !strings.Contains(m.Header.Get(micro.ErrorHeader), "1 request(s) at a time") {
		t.Errorf("second request while the first is handled: %q %v, want busy", m.Data, m.Header)
	}
	if m := request(t, nc, subject, `{"tree":"Bad"}`); m.Header.Get(micro.ErrorCodeHeader) != control.CodeInvalid {
		t.Errorf("invalid request while the first is handled: %q %v, want invalid", m.Data, m.Header)
	}
	close(g.release)
	var got echoReply
	if m := receive(t, first); json.Unmarshal(m.Data, &got) != nil || got.Tree != "first" {
		t.Fatalf("first request: %q %v", m.Data, m.Header)
	}
	if m := request(t, nc, subject, `{"tree":"third"}`); json.Unmarshal(m.Data, &got) != nil || got.Tree != "third" {
		t.Errorf("request after the first ended: %q %v", m.Data, m.Header)
	}
}

// TestStopCancelsDetachedRequests: Stop cancels the requests being
// handled off the subscription and returns once they are answered.
func TestStopCancelsDetachedRequests(t *testing.T) {
	url := natstest.Start(t)
	nc := connect(t, url)
	g := newGate()
	s, err := control.Start(t.Context(), connect(t, url), control.Config{Service: "svc", Endpoints: []control.Endpoint{g.endpoint(2)}}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	held := requestAsync(nc, bus.ServiceSubject("svc", "slow"), `{"tree":"held"}`)
	g.waitStarted(t, "held")
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-held:
		if m.Header.Get(micro.ErrorCodeHeader) != control.CodeUnavailable || !strings.Contains(m.Header.Get(micro.ErrorHeader), "held: context canceled") {
			t.Errorf("request held when the service stopped: %q %v, want unavailable", m.Data, m.Header)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Stop returned before the held request was answered")
	}
}

// TestEndedRequestIsNotStarted: a request whose context has ended by the
// time it would be handled (here the service's) is answered unavailable
// and never reaches its handler, on the subscription or off it.
func TestEndedRequestIsNotStarted(t *testing.T) {
	url := natstest.Start(t)
	nc := connect(t, url)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	var calls atomic.Int64
	reached := func(context.Context, echoRequest) (echoReply, error) {
		calls.Add(1)
		return echoReply{}, nil
	}
	s, err := control.Start(ctx, connect(t, url), control.Config{Service: "svc", Endpoints: []control.Endpoint{
		control.Handle("inline", "", reached), control.Handle("detached", "", reached).WithConcurrency(1),
	}}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Error(err)
		}
	})
	for _, e := range []string{"inline", "detached"} {
		if m := request(t, nc, bus.ServiceSubject("svc", e), `{"tree":"demo"}`); m.Header.Get(micro.ErrorCodeHeader) != control.CodeUnavailable ||
			!strings.Contains(m.Header.Get(micro.ErrorHeader), "not started") {
			t.Errorf("%s: %q %v, want unavailable, not started", e, m.Data, m.Header)
		}
	}
	if n := calls.Load(); n != 0 {
		t.Errorf("handlers reached %d times", n)
	}
}
