package events

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/pulpdist/pulpdist/libs/bus"
	"github.com/pulpdist/pulpdist/libs/pgtest"
	"github.com/pulpdist/pulpdist/services/inventory/internal/catalog"
	"github.com/pulpdist/pulpdist/services/inventory/internal/store"
)

// TestRecordIntoStore runs events through the real catalog and both
// stores: each delivered twice is recorded once, unknown trees become one
// problem each, and agents' events move their site's heartbeat to when
// the bus stored them.
func TestRecordIntoStore(t *testing.T) {
	for _, db := range []struct {
		name string
		url  func(t *testing.T) string
	}{
		{"postgres", func(t *testing.T) string { return pgtest.NewDatabase(t) }},
		{"sqlite", func(t *testing.T) string { return "sqlite://" + filepath.Join(t.TempDir(), "inventory.db") }},
	} {
		t.Run(db.name, func(t *testing.T) { testRecordIntoStore(t, db.url(t)) })
	}
}

func testRecordIntoStore(t *testing.T, url string) {
	ctx := context.Background()
	st, err := store.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Error(err)
		}
	})
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, s := range []string{"origin", "paris"} {
		if err := st.CreateSite(ctx, catalog.Site{Name: s, CreatedAt: t0}); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.CreateTree(ctx, catalog.Tree{Name: "docs", OriginSite: "origin", Source: "/srv/docs", Keep: 2, CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	cat := catalog.New(st, nil, slog.New(slog.DiscardHandler))

	a, b := strings.Repeat("a", 64), strings.Repeat("b", 64)
	// The senders write sent in their events; the bus stores them a
	// second later.
	sent := t0.Add(time.Hour - time.Second)
	events := []struct {
		id, source, typ string
		data            any
	}{
		{"snap-ghost", "/pulpdist/siteagent/origin", TypeSnapshotPublished,
			bus.Snapshot{V: bus.MessageVersion, Tree: "ghost", Site: "origin", Root: a, PublishedAt: t0}},
		{"ready-ghost", "/pulpdist/deltacache/dc-1", TypeDeltaReady,
			bus.DeltaReady{V: bus.MessageVersion, Tree: "ghost", To: a, Pack: "ghost/none/" + a, Size: 1}},
		{"computed", "/pulpdist/deltacache/dc-1", TypeDeltaComputed,
			bus.DeltaComputed{Tree: "docs", From: a, To: b, Pack: "docs/a/b", Size: 77, Instance: "dc-1", DurationMS: 12}},
		{"ready", "/pulpdist/deltacache/dc-1", TypeDeltaReady,
			bus.DeltaReady{V: bus.MessageVersion, Tree: "docs", From: a, To: b, Pack: "docs/a/b", Size: 77, Computed: true}},
		{"finished", "/pulpdist/siteagent/paris", TypeSyncFinished,
			bus.SyncFinished{RunID: "run-1", Site: "paris", Tree: "docs", Kind: bus.CommandApply, From: a, To: b,
				Result: bus.ResultCompleted, Files: 3, Bytes: 30, DurationMS: 1000, FinishedAt: t0.Add(time.Hour)}},
	}
	for range 2 { // every event is delivered twice
		for _, e := range events {
			ev := event.New()
			ev.SetID(e.id)
			ev.SetSource(e.source)
			ev.SetType(e.typ)
			ev.SetTime(sent)
			if err := ev.SetData("application/json", e.data); err != nil {
				t.Fatal(err)
			}
			body, err := ev.MarshalJSON()
			if err != nil {
				t.Fatal(err)
			}
			if err := Handle(ctx, cat, Reports{}, body, t0.Add(time.Hour)); err != nil {
				t.Fatalf("%s: %v", e.id, err)
			}
		}
	}

	problemPage, err := cat.Problems(ctx, catalog.ProblemFilter{})
	if err != nil {
		t.Fatal(err)
	}
	problems := problemPage.Items
	if len(problems) != 2 || problems[0].Reason == "" {
		t.Fatalf("problems = %+v, want the two ghost events once each", problems)
	}
	for _, p := range problems {
		if !strings.Contains(p.Reason, "tree not found") || (p.EventID != "snap-ghost" && p.EventID != "ready-ghost") {
			t.Errorf("problem = %+v", p)
		}
	}
	deltaPage, err := cat.Deltas(ctx, catalog.DeltaFilter{Tree: "docs"})
	if err != nil {
		t.Fatal(err)
	}
	deltas := deltaPage.Items
	if len(deltas) != 1 || deltas[0].ComputedBy != "dc-1" || deltas[0].Size != 77 || deltas[0].TimesServed != 1 ||
		deltas[0].ComputedAt == nil || !deltas[0].ComputedAt.Equal(sent) {
		t.Fatalf("deltas = %+v", deltas)
	}
	runs, err := cat.Runs(ctx, catalog.RunFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 1 || runs[0].Result != "COMPLETED" || runs[0].Bytes != 30 {
		t.Fatalf("runs = %+v", runs)
	}
	// A run of no known kind is refused for good and recorded nowhere
	// (its kind would be a label of pulpdist_sync_results_total).
	for _, kind := range []bus.CommandKind{"", "bogus", "Apply"} {
		ev := event.New()
		ev.SetID("kind-" + string(kind))
		ev.SetSource("/pulpdist/siteagent/paris")
		ev.SetType(TypeSyncFinished)
		ev.SetTime(t0.Add(time.Hour))
		if err := ev.SetData("application/json", bus.SyncFinished{RunID: "run-" + string(kind), Site: "paris", Tree: "docs", Kind: kind,
			To: b, Result: bus.ResultCompleted, FinishedAt: t0.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
		body, err := ev.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		if err := Handle(ctx, cat, Reports{}, body, t0.Add(time.Hour)); !bus.IsPermanent(err) || !strings.Contains(err.Error(), "kind") {
			t.Errorf("kind %q: %v, want a permanent error about the kind", kind, err)
		}
	}
	if runs, err := cat.Runs(ctx, catalog.RunFilter{}); err != nil || len(runs) != 1 {
		t.Fatalf("runs after bad kinds = %+v, %v", runs, err)
	}
	paris, err := cat.Site(ctx, "paris")
	if err != nil {
		t.Fatal(err)
	}
	if paris.LastHeartbeat == nil || !paris.LastHeartbeat.Equal(t0.Add(time.Hour)) {
		t.Fatalf("heartbeat of paris = %v", paris.LastHeartbeat)
	}

	// The heartbeat is when the bus stored the event: an agent whose
	// clock runs a day ahead, or a day behind, moves it to that time all
	// the same.
	for i, clock := range []time.Duration{24 * time.Hour, -24 * time.Hour} {
		storedAt := t0.Add(time.Duration(i+2) * time.Hour)
		ev := event.New()
		ev.SetID(fmt.Sprintf("clock-%d", i))
		ev.SetSource("/pulpdist/siteagent/paris")
		ev.SetType("org.pulpdist.agent.announced.v1")
		ev.SetTime(storedAt.Add(clock))
		body, err := ev.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		if err := Handle(ctx, cat, Reports{}, body, storedAt); err != nil {
			t.Fatal(err)
		}
		if paris, err = cat.Site(ctx, "paris"); err != nil {
			t.Fatal(err)
		}
		if paris.LastHeartbeat == nil || !paris.LastHeartbeat.Equal(storedAt) {
			t.Fatalf("heartbeat after an event stored at %s from a clock %s off = %v, want the stored time", storedAt, clock, paris.LastHeartbeat)
		}
	}
}

// TestAgentReasonsAreChecked: an agent.online or agent.offline whose
// reason is empty, longer than 256 bytes or holds control characters is
// refused as permanent (the consumer dead-letters it), and changes
// nothing: not the agent's state, not even the site's heartbeat, though
// it was stored later than anything heard before.
func TestAgentReasonsAreChecked(t *testing.T) {
	for _, db := range []struct {
		name string
		url  func(t *testing.T) string
	}{
		{"postgres", func(t *testing.T) string { return pgtest.NewDatabase(t) }},
		{"sqlite", func(t *testing.T) string { return "sqlite://" + filepath.Join(t.TempDir(), "inventory.db") }},
	} {
		t.Run(db.name, func(t *testing.T) { testAgentReasonsAreChecked(t, db.url(t)) })
	}
}

func testAgentReasonsAreChecked(t *testing.T, url string) {
	ctx := context.Background()
	st, err := store.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Error(err)
		}
	})
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	if err := st.CreateSite(ctx, catalog.Site{Name: "paris", CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	cat := catalog.New(st, nil, slog.New(slog.DiscardHandler))
	agentEvent := func(id, typ string, data any) []byte {
		t.Helper()
		ev := event.New()
		ev.SetID(id)
		ev.SetSource(SiteAgentSource + "paris")
		ev.SetType(typ)
		ev.SetTime(t0)
		if err := ev.SetData("application/json", data); err != nil {
			t.Fatal(err)
		}
		body, err := ev.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		return body
	}
	if err := Handle(ctx, cat, Reports{}, agentEvent("started", TypeAgentOnline, bus.AgentOnline{Site: "paris", Reason: bus.AgentStarted, Since: t0}), t0); err != nil {
		t.Fatal(err)
	}
	statuses := func() []catalog.AgentStatus {
		t.Helper()
		sts, err := st.AgentStatuses(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return sts
	}
	if sts := statuses(); len(sts) != 1 || sts[0].State != catalog.AgentStateOnline || sts[0].LastHeartbeat == nil || !sts[0].LastHeartbeat.Equal(t0) {
		t.Fatalf("agent statuses after agent.online = %+v", sts)
	}

	for i, reason := range []string{"", strings.Repeat("x", 257), "stopped\n", "stopped\x1b[2J", "\x00", "\x7f"} {
		for _, tc := range []struct {
			typ  string
			data any
		}{
			{TypeAgentOffline, bus.AgentOffline{Site: "paris", Reason: reason, Since: t0}},
			{TypeAgentOnline, bus.AgentOnline{Site: "paris", Reason: reason, Since: t0}},
		} {
			before := statuses()
			id := fmt.Sprintf("bad-%d", i)
			err := Handle(ctx, cat, Reports{}, agentEvent(id, tc.typ, tc.data), t0.Add(time.Duration(i+1)*time.Hour))
			if !bus.IsPermanent(err) || !errors.Is(err, catalog.ErrInvalid) {
				t.Errorf("%s with reason %q: %v, want refused as invalid, for good", tc.typ, reason, err)
			}
			if after := statuses(); !reflect.DeepEqual(after, before) {
				t.Errorf("%s with reason %q changed the agent: %+v, was %+v", tc.typ, reason, after, before)
			}
		}
	}
	// The longest reason allowed is taken.
	long := strings.Repeat("x", 256)
	at := t0.Add(time.Minute)
	if err := Handle(ctx, cat, Reports{}, agentEvent("long", TypeAgentOffline, bus.AgentOffline{Site: "paris", Reason: long, Since: at}), at); err != nil {
		t.Fatalf("agent.offline with a reason of 256 bytes: %v", err)
	}
	if after := statuses(); len(after) != 1 || after[0].State != catalog.AgentStateOffline || after[0].Reason != long || after[0].LastHeartbeat == nil || !after[0].LastHeartbeat.Equal(at) {
		t.Fatalf("agent statuses after agent.offline = %+v", after)
	}
}
