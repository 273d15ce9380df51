package scheduler

import (
	"log/slog"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pulpdist/pulpdist/libs/bus"
	"github.com/pulpdist/pulpdist/libs/inventoryapi"
	"github.com/pulpdist/pulpdist/services/scheduler/internal/dispatch"
)

// triggers reads every trigger in the stream, oldest first.
func triggers(t *testing.T, js jetstream.JetStream) []bus.Trigger {
	t.Helper()
	s, err := js.Stream(t.Context(), bus.StreamTriggers)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var out []bus.Trigger
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := s.GetMsg(t.Context(), seq)
		if err != nil {
			t.Fatal(err)
		}
		tr, err := bus.Decode[bus.Trigger](m.Data)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, tr)
	}
	return out
}

// TestTriggersDuringAScanAreCoalesced: two scheduler instances share the
// scans bucket; while a scan of a tree runs, more triggers (to either
// instance) start no scan, and its end starts exactly one more, which
// carries a confirmation of deletions one of them gave.
func TestTriggersDuringAScanAreCoalesced(t *testing.T) {
	js, layout := startBus(t)
	log := slog.New(slog.DiscardHandler)
	inv := &fixedInventory{
		trees: map[string]inventoryapi.Tree{"demo": {Name: "demo", OriginSite: "origin", Source: "/srv/demo", Keep: 2}},
		sites: map[string]inventoryapi.Site{"origin": {Name: "origin"}},
	}
	out := testSender(t, js)
	one := dispatch.New(inv, &versions{kv: layout.Sites}, out, log).CoalesceWith(bus.NewScans(layout.Scans))
	two := dispatch.New(inv, &versions{kv: layout.Sites}, out, log).CoalesceWith(bus.NewScans(layout.Scans))
	trig := func(d *dispatch.Dispatcher, id string, confirm bool) {
		t.Helper()
		if err := d.Trigger(t.Context(), bus.Trigger{V: 1, TriggerID: id, Tree: "demo", Reason: "manual", ConfirmDeletions: confirm}); err != nil {
			t.Fatal(err)
		}
	}
	trig(one, "t1", false)
	trig(one, "t1", false) // a redelivery of the scan in flight is that scan
	trig(two, "t2", true)
	trig(one, "t3", false)
	cs := commands(t, js)
	if len(cs) != 1 || cs[0].TriggerID != "t1" {
		t.Fatalf("commands %+v, want t1's scan only", cs)
	}
	// Another run's end ends nothing.
	if err := two.RunFinished(t.Context(), bus.SyncFinished{RunID: "other", Tree: "demo", Site: "origin", Kind: bus.CommandSnapshot}); err != nil {
		t.Fatal(err)
	}
	if got := triggers(t, js); len(got) != 0 {
		t.Fatalf("triggers %+v before the scan ended", got)
	}
	fin := bus.SyncFinished{RunID: cs[0].RunID, TriggerID: "t1", Tree: "demo", Site: "origin", Kind: bus.CommandSnapshot, Result: bus.ResultCompleted}
	if err := two.RunFinished(t.Context(), fin); err != nil {
		t.Fatal(err)
	}
	got := triggers(t, js)
	if len(got) != 1 || got[0].Reason != "coalesced" || !got[0].ConfirmDeletions {
		t.Fatalf("after the scan: triggers %+v, want one coalesced follow-up confirming deletions", got)
	}
	// The follow-up scans; nothing came during it: no more.
	trig(one, got[0].TriggerID, got[0].ConfirmDeletions)
	cs = commands(t, js)
	if len(cs) != 2 || !cs[1].ConfirmDeletions {
		t.Fatalf("commands %+v, want the follow-up's scan", cs)
	}
	if err := one.RunFinished(t.Context(), bus.SyncFinished{RunID: cs[1].RunID, Tree: "demo", Site: "origin", Kind: bus.CommandSnapshot}); err != nil {
		t.Fatal(err)
	}
	if again := triggers(t, js); len(again) != 1 {
		t.Fatalf("triggers %+v: a follow-up without triggers during it", again)
	}
	// Nothing in flight: a trigger scans at once.
	trig(two, "t4", false)
	if cs = commands(t, js); len(cs) != 3 || cs[2].TriggerID != "t4" {
		t.Fatalf("commands %+v, want t4's scan", cs)
	}
}

// testSender is the scheduler's sender with events from /test and its
// own metrics.
func testSender(t *testing.T, js jetstream.JetStream) *sender {
	t.Helper()
	m, err := newSchedMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	return &sender{js: js, events: bus.NewEvents(js, "/test"), metrics: m}
}
