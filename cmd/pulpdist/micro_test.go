package main

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/pulpdist/pulpdist/cmd/pulpdist/internal/devstack"
	"github.com/pulpdist/pulpdist/libs/bus"
	"github.com/pulpdist/pulpdist/libs/control"
	"github.com/pulpdist/pulpdist/libs/inventoryapi"
	"github.com/pulpdist/pulpdist/libs/natstest"
	"github.com/pulpdist/pulpdist/libs/poll"
	"github.com/pulpdist/pulpdist/libs/program"
)

// request asks subject over nc, as `nats req` would, and decodes the
// reply into T; a micro error reply fails the test.
func request[T any](t *testing.T, nc *nats.Conn, subject string, body any) T {
	t.Helper()
	var data []byte
	if body != nil {
		var err error
		if data, err = json.Marshal(body); err != nil {
			t.Fatal(err)
		}
	}
	m, err := nc.Request(subject, data, 30*time.Second)
	if err != nil {
		t.Fatalf("%s: %v", subject, err)
	}
	if code := m.Header.Get(micro.ErrorCodeHeader); code != "" {
		t.Fatalf("%s: error %s %s", subject, code, m.Header.Get(micro.ErrorHeader))
	}
	var v T
	if err := json.Unmarshal(m.Data, &v); err != nil {
		t.Fatalf("%s: reply %q: %v", subject, m.Data, err)
	}
	return v
}

// TestServicesOnTheBus runs the whole stack, as `pulpdist dev` does, and
// looks at it as an operator with the nats CLI would: $SRV.PING finds
// every service instance, $SRV.INFO lists each one's endpoints and
// version; a trigger sent to the scheduler over request-reply syncs the
// tree to every site, within the requester's trace; then the agents'
// status and verify, the scheduler's and the inventory's status and the
// endpoints' counts ($SRV.STATS) say so.
func TestServicesOnTheBus(t *testing.T) {
	spans := tracetest.NewSpanRecorder()
	prev := otel.GetTracerProvider()
	otel.SetTracerProvider(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans)))
	t.Cleanup(func() { otel.SetTracerProvider(prev) })

	dir := t.TempDir()
	src := filepath.Join(dir, "origin-tree")
	writeFile(t, src, "README.txt", "hello\n", 0o644)
	writeFile(t, src, "data/a.bin", string(make([]byte, 50_000)), 0o644)
	sites := []string{"origin", "site-a", "site-b"}
	st := startStack(t, devstack.Options{
		DataDir: filepath.Join(dir, "stack"), NATSPort: -1, APIAddr: "127.0.0.1:0", Sites: sites, DeltaCaches: 2,
	})
	ready(t, st.APIURL)
	ctx := t.Context()
	c := inventoryapi.NewClient(st.APIURL, nil).WithToken(st.Token)
	for _, s := range sites {
		if _, err := c.CreateSite(ctx, inventoryapi.Site{Name: s}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.CreateTree(ctx, inventoryapi.Tree{Name: "demo", OriginSite: "origin", Source: src}); err != nil {
		t.Fatal(err)
	}
	for _, s := range sites[1:] {
		if _, err := c.Subscribe(ctx, inventoryapi.Subscription{Site: s, Tree: "demo"}); err != nil {
			t.Fatal(err)
		}
	}
	nc, err := nats.Connect(st.NATSURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)

	// Every instance answers $SRV.PING, with the program's version.
	want := []string{
		"pulpdist-deltacache/dev-1", "pulpdist-deltacache/dev-2", "pulpdist-inventory/", "pulpdist-scheduler/",
		"pulpdist-siteagent/origin", "pulpdist-siteagent/site-a", "pulpdist-siteagent/site-b",
	}
	natstest.Discover(t, nc, micro.PingVerb, "", func(ps []micro.Ping) error {
		var got []string
		for _, p := range ps {
			if p.Version != control.SemVer(program.Version) {
				return fmt.Errorf("%s version %s, want %s", p.Name, p.Version, control.SemVer(program.Version))
			}
			inst := p.Metadata["instance"]
			if p.Name == "pulpdist-inventory" || p.Name == "pulpdist-scheduler" {
				inst = "" // host-pid: the test's own process
			}
			got = append(got, p.Name+"/"+inst)
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			return fmt.Errorf("services %v, want %v", got, want)
		}
		return nil
	})
	// $SRV.INFO gives each one's endpoints.
	endpoints := map[string][]string{}
	natstest.Discover(t, nc, micro.InfoVerb, "", func(is []micro.Info) error {
		clear(endpoints)
		for _, in := range is {
			key := in.Name // one inventory, one scheduler
			switch {
			case in.Metadata["site"] != "":
				key += "/" + in.Metadata["site"]
			case in.Name == "pulpdist-deltacache":
				key += "/" + in.Metadata["instance"]
			}
			for _, e := range in.Endpoints {
				endpoints[key] = append(endpoints[key], e.Subject)
			}
		}
		if len(endpoints) != len(want) {
			return fmt.Errorf("endpoints of %d services, want %d", len(endpoints), len(want))
		}
		return nil
	})
	wantEndpoints := map[string][]string{
		"pulpdist-inventory":        {"pulpdist.svc.inventory.status"},
		"pulpdist-scheduler":        {"pulpdist.svc.scheduler.status", "pulpdist.svc.scheduler.trigger"},
		"pulpdist-deltacache/dev-1": {"pulpdist.svc.deltacache.dev-1.status"},
		"pulpdist-deltacache/dev-2": {"pulpdist.svc.deltacache.dev-2.status"},
		"pulpdist-siteagent/origin": {"pulpdist.svc.siteagent.origin.status", "pulpdist.svc.siteagent.origin.verify"},
		"pulpdist-siteagent/site-a": {"pulpdist.svc.siteagent.site-a.status", "pulpdist.svc.siteagent.site-a.verify"},
		"pulpdist-siteagent/site-b": {"pulpdist.svc.siteagent.site-b.status", "pulpdist.svc.siteagent.site-b.verify"},
	}
	if !reflect.DeepEqual(endpoints, wantEndpoints) {
		t.Errorf("endpoints %v\nwant %v", endpoints, wantEndpoints)
	}

	// A trigger over request-reply, within a trace of the requester's.
	caller, span := otel.Tracer("test").Start(ctx, "operator")
	msg := nats.NewMsg(bus.ServiceSubject(bus.ServiceScheduler, bus.EndpointTrigger))
	msg.Data = []byte(`{"tree":"demo"}`)
	bus.InjectTrace(caller, msg.Header)
	m, err := nc.RequestMsg(msg, 30*time.Second)
	span.End()
	if err != nil {
		t.Fatal(err)
	}
	var trig bus.TriggerReply
	if err := json.Unmarshal(m.Data, &trig); err != nil || trig.TriggerID == "" {
		t.Fatalf("trigger reply %q %v: %v", m.Data, m.Header, err)
	}
	runs := waitRuns(t, c, trig.TriggerID, sites...)
	for _, s := range sites {
		if runs[s].Result != string(bus.ResultCompleted) {
			t.Fatalf("%s: %+v, want COMPLETED", s, runs[s])
		}
	}
	v1 := scan(t, src).Root()
	for _, s := range sites[1:] {
		if got := scan(t, filepath.Join(st.SiteDir(s), "trees", "demo", "current")).Root(); got != v1 {
			t.Fatalf("%s serves %s, want the origin's %s", s, got, v1)
		}
	}
	// The scheduler took the trigger within the operator's trace.
	poll.Until(t, 10*time.Second, func() error {
		for _, s := range spans.Ended() {
			if s.Name() == "process pulpdist.trigger.demo" && s.SpanContext().TraceID() == span.SpanContext().TraceID() {
				return nil
			}
		}
		return fmt.Errorf("no span of the scheduler taking the trigger in trace %s", span.SpanContext().TraceID())
	})

	// The agents say what they hold, and it verifies.
	for _, s := range sites[1:] {
		as := request[bus.AgentStatus](t, nc, bus.InstanceSubject(bus.ServiceSiteAgent, s, bus.EndpointStatus), nil)
		if len(as.Trees) != 1 || as.Trees[0].Tree != "demo" || as.Trees[0].Current != v1 || !as.Ready {
			t.Errorf("status of %s: %+v", s, as)
		}
		vr := request[bus.VerifyReply](t, nc, bus.InstanceSubject(bus.ServiceSiteAgent, s, bus.EndpointVerify), bus.VerifyRequest{Tree: "demo"})
		if !vr.OK || vr.Version != v1 {
			t.Errorf("verify at %s: %+v", s, vr)
		}
	}
	if as := request[bus.AgentStatus](t, nc, bus.InstanceSubject(bus.ServiceSiteAgent, "origin", bus.EndpointStatus), nil); len(as.Trees) != 1 || as.Trees[0].Published != v1 {
		t.Errorf("status of the origin: %+v", as)
	}
	if ss := request[bus.SchedulerStatus](t, nc, bus.ServiceSubject(bus.ServiceScheduler, bus.EndpointStatus), nil); !ss.Ready {
		t.Errorf("scheduler status %+v", ss)
	}
	poll.Until(t, 20*time.Second, func() error { // the inventory records the last run as its event comes
		is := request[bus.InventoryStatus](t, nc, bus.ServiceSubject(bus.ServiceInventory, bus.EndpointStatus), nil)
		if is.Sites != 3 || is.Trees != 1 || is.Subscriptions != 2 || is.Versions != 1 || is.Running != 0 || is.Failing != 0 || is.Behind != 0 {
			return fmt.Errorf("inventory status %+v", is)
		}
		return nil
	})
	for _, s := range []string{"dev-1", "dev-2"} {
		if ds := request[bus.DeltaCacheStatus](t, nc, bus.InstanceSubject(bus.ServiceDeltaCache, s, bus.EndpointStatus), nil); ds.Instance != s || len(ds.Computing) != 0 {
			t.Errorf("delta-cache %s status %+v", s, ds)
		}
	}

	// An unknown tree is refused; $SRV.STATS counts both triggers.
	m, err = nc.Request(bus.ServiceSubject(bus.ServiceScheduler, bus.EndpointTrigger), []byte(`{"tree":"nothing"}`), 30*time.Second)
	if err != nil || m.Header.Get(micro.ErrorCodeHeader) != control.CodeNotFound {
		t.Fatalf("trigger of an unknown tree: %v %v", m, err)
	}
	stats := natstest.Discover(t, nc, micro.StatsVerb, "pulpdist-scheduler", func(ss []micro.Stats) error {
		if len(ss) != 1 {
			return fmt.Errorf("%d schedulers", len(ss))
		}
		return nil
	})[0]
	for _, e := range stats.Endpoints {
		if e.Name == bus.EndpointTrigger && (e.NumRequests != 2 || e.NumErrors != 1) {
			t.Errorf("trigger stats %+v: want 2 requests, 1 error", e)
		}
	}
}
