package scheduler

import (
	"encoding/json"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"

	"github.com/pulpdist/pulpdist/libs/bus"
	"github.com/pulpdist/pulpdist/libs/control"
	"github.com/pulpdist/pulpdist/libs/inventoryapi"
	"github.com/pulpdist/pulpdist/services/scheduler/internal/cron"
)

// controlled runs the scheduler's request-reply side on an embedded
// JetStream, against an inventory that knows tree demo (site lyon
// subscribes) and tree nightly (scheduled at 03:00), and returns a client
// connection and the bus.
func controlled(t *testing.T) (*nats.Conn, jetstream.JetStream, *bus.Layout) {
	t.Helper()
	js, layout := startBus(t)
	log := slog.New(slog.DiscardHandler)
	off := false
	inv := &fixedInventory{
		trees: map[string]inventoryapi.Tree{
			"demo":    {Name: "demo", OriginSite: "origin", Source: "/srv/demo"},
			"nightly": {Name: "nightly", OriginSite: "origin", Source: "/srv/nightly", Schedule: "0 3 * * *"},
			"old":     {Name: "old", OriginSite: "origin", Source: "/srv/old", Schedule: "0 3 * * *", Enabled: &off},
		},
		sites: map[string]inventoryapi.Site{"origin": {Name: "origin"}, "lyon": {Name: "lyon"}, "oslo": {Name: "oslo"}},
		subs:  map[string][]inventoryapi.Subscription{"demo": {{Site: "lyon", Tree: "demo"}}},
	}
	out := testSender(t, js)
	out.events = bus.NewEvents(js, "/pulpdist/scheduler")
	s := &Service{inv: inv, out: out, scans: bus.NewScans(layout.Scans), cron: cron.New(inv, out, time.Minute, log), log: log, instance: "test-1"}
	if err := s.cron.Tick(t.Context(), time.Date(2026, 12, 7, 10, 17, 0, 0, time.UTC)); err != nil {
		t.Fatal(err)
	}
	svc, err := control.Start(t.Context(), js.Conn(), s.control(), log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := svc.Stop(); err != nil {
			t.Error(err)
		}
	})
	nc, err := nats.Connect(js.Conn().ConnectedUrl())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc, js, layout
}

// storedTriggers returns every trigger on the triggers stream, with its
// headers.
func storedTriggers(t *testing.T, js jetstream.JetStream) []*jetstream.RawStreamMsg {
	t.Helper()
	st, err := js.Stream(t.Context(), bus.StreamTriggers)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var out []*jetstream.RawStreamMsg
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := st.GetMsg(t.Context(), seq)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

// TestTriggerOverTheBus: a trigger request becomes a manual trigger on the
// triggers stream, with its sync.requested event and the requester's
// trace; one naming sites is scoped to them.
func TestTriggerOverTheBus(t *testing.T) {
	nc, js, _ := controlled(t)
	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	req := nats.NewMsg(bus.ServiceSubject(bus.ServiceScheduler, bus.EndpointTrigger))
	req.Data = []byte(`{"tree":"demo"}`)
	req.Header.Set("traceparent", "00-"+traceID+"-00f067aa0ba902b7-01")
	m, err := nc.RequestMsg(req, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var reply bus.TriggerReply
	if err := json.Unmarshal(m.Data, &reply); err != nil || reply.TriggerID == "" || reply.Tree != "demo" || reply.RunTriggerID != reply.TriggerID {
		t.Fatalf("reply %q %v: %v", m.Data, m.Header, err)
	}
	stored := storedTriggers(t, js)
	if len(stored) != 1 {
		t.Fatalf("%d triggers stored, want 1", len(stored))
	}
	trig, err := bus.Decode[bus.Trigger](stored[0].Data)
	if err != nil {
		t.Fatal(err)
	}
	if trig.TriggerID != reply.TriggerID || trig.Tree != "demo" || trig.Reason != "manual" || len(trig.Sites) != 0 || stored[0].Subject != bus.TriggerSubject("demo") {
		t.Errorf("stored trigger %+v on %s", trig, stored[0].Subject)
	}
	if tp := stored[0].Header.Get("traceparent"); !strings.Contains(tp, traceID) {
		t.Errorf("stored trigger's traceparent %q: want the request's trace %s", tp, traceID)
	}
	events, err := js.Stream(t.Context(), bus.StreamEvents)
	if err != nil {
		t.Fatal(err)
	}
	ev, err := events.GetLastMsgForSubject(t.Context(), bus.EventSubject(bus.EntitySync, bus.ActionRequested, bus.About{Tree: "demo"}))
	if err != nil {
		t.Fatalf("no sync.requested event: %v", err)
	}
	if _, data, err := bus.DecodeEvent[bus.SyncRequested](ev.Data); err != nil || data.TriggerID != reply.TriggerID || data.Reason != "manual" {
		t.Errorf("sync.requested %+v: %v", data, err)
	}

	// Limited to a subscribed site: the runs carry the scoped id.
	m, err = nc.Request(bus.ServiceSubject(bus.ServiceScheduler, bus.EndpointTrigger), []byte(`{"tree":"demo","sites":["lyon"],"confirm_deletions":true}`), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(m.Data, &reply); err != nil || reply.RunTriggerID != reply.TriggerID+"~lyon" || !slices.Equal(reply.Sites, []string{"lyon"}) {
		t.Fatalf("scoped reply %q: %v", m.Data, err)
	}
	stored = storedTriggers(t, js)
	if trig, err = bus.Decode[bus.Trigger](stored[len(stored)-1].Data); err != nil || !slices.Equal(trig.Sites, []string{"lyon"}) || !trig.ConfirmDeletions {
		t.Errorf("scoped trigger %+v: %v", trig, err)
	}
}

// TestBadTriggersChangeNothing: a request that does not decode, names a
// bad or unknown tree or a site that does not subscribe is answered with
// an error, and no trigger is stored.
func TestBadTriggersChangeNothing(t *testing.T) {
	nc, js, _ := controlled(t)
	tooMany := make([]string, bus.MaxTriggerSites+1)
	for i := range tooMany {
		tooMany[i] = `"s` + strings.Repeat("x", i) + `"`
	}
	for _, c := range []struct{ body, code, says string }{
		{`demo`, control.CodeInvalid, "invalid character"},
		{``, control.CodeInvalid, "empty body"},
		{`{"tree":"demo","site":"lyon"}`, control.CodeInvalid, `unknown field "site"`},
		{`{"tree":"Demo"}`, control.CodeInvalid, "invalid name"},
		{`{"tree":""}`, control.CodeInvalid, "invalid name"},
		{`{"tree":"demo","sites":["lyon","lyon"]}`, control.CodeInvalid, "named twice"},
		{`{"tree":"demo","sites":[` + strings.Join(tooMany, ",") + `]}`, control.CodeInvalid, "at most"},
		{`{"tree":"nothing"}`, control.CodeNotFound, `tree "nothing": not found`},
		{`{"tree":"demo","sites":["oslo"]}`, control.CodeNotFound, `site "oslo" does not subscribe to "demo"`},
	} {
		m, err := nc.Request(bus.ServiceSubject(bus.ServiceScheduler, bus.EndpointTrigger), []byte(c.body), 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if code, desc := m.Header.Get(micro.ErrorCodeHeader), m.Header.Get(micro.ErrorHeader); code != c.code || !strings.Contains(desc, c.says) {
			t.Errorf("%s: %s %q, want %s %q", c.body, code, desc, c.code, c.says)
		}
	}
	if n := len(storedTriggers(t, js)); n != 0 {
		t.Errorf("%d triggers stored by bad requests", n)
	}
}

// TestSchedulerStatus: the status lists the trees with their schedules as
// the cron read them, and the scans in flight.
func TestSchedulerStatus(t *testing.T) {
	nc, _, layout := controlled(t)
	if started, _, err := bus.NewScans(layout.Scans).Begin(t.Context(), "demo", "run-1", false); err != nil || !started {
		t.Fatalf("begin scan: %v", err)
	}
	m, err := nc.Request(bus.ServiceSubject(bus.ServiceScheduler, bus.EndpointStatus), nil, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var st bus.SchedulerStatus
	if err := json.Unmarshal(m.Data, &st); err != nil {
		t.Fatalf("status %q: %v", m.Data, err)
	}
	if st.Service != bus.ServiceScheduler || st.Instance != "test-1" || st.TreesReadAt == nil {
		t.Errorf("status %+v", st)
	}
	byTree := map[string]bus.ScheduledTree{}
	for _, tr := range st.Trees {
		byTree[tr.Tree] = tr
	}
	if len(byTree) != 3 || byTree["demo"].NextFire != nil || byTree["old"].NextFire != nil || byTree["old"].Enabled {
		t.Errorf("trees %+v", st.Trees)
	}
	if n := byTree["nightly"].NextFire; n == nil || n.Hour() != 3 || n.Minute() != 0 || !n.After(time.Now()) {
		t.Errorf("nightly next fire %v, want the next 03:00", n)
	}
	if !slices.Equal(st.Scans, []bus.ScanInFlight{{Tree: "demo", Run: "run-1"}}) {
		t.Errorf("scans %+v", st.Scans)
	}
}
