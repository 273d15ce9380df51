package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/pulpdist/pulpdist/libs/bus"
	"github.com/pulpdist/pulpdist/services/inventory/internal/catalog"
)

// calls records what Handle passed on, and fails with err; heard holds
// the times of the heartbeats.
type calls struct {
	got   []string
	heard []time.Time
	err   error
}

// stored is when the bus stored the events of these tests: a second
// after the time their senders write in them (bodyFrom).
var stored = time.Date(2026, 1, 2, 3, 4, 6, 0, time.UTC)

func (c *calls) RecordSnapshot(_ context.Context, id string, m bus.Snapshot) error {
	c.got = append(c.got, "snapshot "+id+" "+m.Tree)
	return c.err
}

func (c *calls) RecordSyncStarted(_ context.Context, id string, m bus.SyncStarted) error {
	c.got = append(c.got, "started "+id+" "+m.RunID)
	return c.err
}

func (c *calls) RecordSyncFinished(_ context.Context, id string, m bus.SyncFinished) error {
	c.got = append(c.got, "finished "+id+" "+m.RunID+" "+string(m.Result))
	return c.err
}

func (c *calls) RecordDeltaComputed(_ context.Context, id string, _ time.Time, m bus.DeltaComputed) error {
	c.got = append(c.got, "computed "+id+" "+m.Tree+" "+m.Instance)
	return c.err
}

func (c *calls) RecordDeltaReady(_ context.Context, id string, _ time.Time, m bus.DeltaReady) error {
	c.got = append(c.got, "ready "+id+" "+m.Tree)
	return c.err
}

func (c *calls) RecordDeltaDeleted(_ context.Context, id string, m bus.DeltaDeleted) error {
	c.got = append(c.got, "deleted "+id+" "+m.Tree)
	return c.err
}

func (c *calls) RecordHeartbeat(_ context.Context, site string, at time.Time, p catalog.Presence) error {
	c.heard = append(c.heard, at)
	if p.State != "" {
		c.got = append(c.got, "heartbeat "+site+" "+p.State+" "+p.Reason)
		return nil
	}
	c.got = append(c.got, "heartbeat "+site)
	return nil
}

func (c *calls) RecordProblem(_ context.Context, p catalog.EventProblem) error {
	c.got = append(c.got, "problem "+p.EventID+" "+p.Type)
	return nil
}

func body(t *testing.T, typ string, data any) []byte {
	t.Helper()
	ev := event.New()
	ev.SetID("ev-1")
	ev.SetSource("/test")
	ev.SetType(typ)
	if err := ev.SetData("application/json", data); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestHandleRoutesByType(t *testing.T) {
	for _, tc := range []struct {
		typ  string
		data any
		want string
	}{
		{TypeSnapshotPublished, bus.Snapshot{Tree: "docs"}, "snapshot ev-1 docs"},
		{TypeSyncStarted, bus.SyncStarted{RunID: "r"}, "started ev-1 r"},
		{TypeSyncFinished, bus.SyncFinished{RunID: "r", Result: bus.ResultFailed}, "finished ev-1 r FAILED"},
		{TypeDeltaComputed, bus.DeltaComputed{Tree: "docs", Instance: "dc-1"}, "computed ev-1 docs dc-1"},
		{TypeDeltaReady, bus.DeltaReady{Tree: "docs"}, "ready ev-1 docs"},
		{"org.pulpdist.delta.requested.v1", bus.DeltaRequest{}, ""},
		{bus.EventType(bus.EntityDelta, bus.ActionServed), bus.DeltaServed{Tree: "docs", Site: "paris"}, ""},
		{bus.EventType(bus.EntitySync, bus.ActionProgress), bus.SyncProgress{RunID: "r", Phase: bus.PhaseFetch}, ""},
		{"org.pulpdist.tree.created.v1", map[string]string{"name": "docs"}, ""},
		{bus.EventType(bus.EntityMessage, bus.ActionDeadLettered), bus.DeadLettered{Stream: bus.StreamSync, StreamSequence: 7}, ""},
	} {
		var c calls
		if err := Handle(context.Background(), &c, Reports{}, body(t, tc.typ, tc.data), stored); err != nil {
			t.Errorf("%s: %v", tc.typ, err)
		}
		if got := fmt.Sprint(c.got); (tc.want == "" && len(c.got) != 0) || (tc.want != "" && got != "["+tc.want+"]") {
			t.Errorf("%s: calls %v, want %q", tc.typ, c.got, tc.want)
		}
	}
}

func TestHandleErrorClasses(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name      string
		body      []byte
		err       error
		permanent bool
	}{
		{"not json", []byte("{"), nil, true},
		{"not a cloudevent", []byte(`{"hello":"world"}`), nil, true},
		{"data of the wrong shape", body(t, TypeSyncStarted, []int{1}), nil, true},
		{"invalid", body(t, TypeSyncStarted, bus.SyncStarted{}), fmt.Errorf("%w: bad", catalog.ErrInvalid), true},
		{"database down", body(t, TypeSyncFinished, bus.SyncFinished{}), errors.New("connection refused"), false},
	} {
		err := Handle(ctx, &calls{err: tc.err}, Reports{}, tc.body, stored)
		if err == nil || bus.IsPermanent(err) != tc.permanent {
			t.Errorf("%s: err = %v, permanent %v, want %v", tc.name, err, bus.IsPermanent(err), tc.permanent)
		}
	}
}

// An event about a tree the catalog does not know is kept as a problem
// and acknowledged, not terminated.
func TestHandleUnknownTreeIsAProblem(t *testing.T) {
	for _, typ := range []string{TypeSnapshotPublished, TypeDeltaReady, TypeDeltaComputed} {
		c := calls{err: fmt.Errorf("record: %w", catalog.ErrTreeNotFound)}
		if err := Handle(context.Background(), &c, Reports{}, body(t, typ, map[string]string{"tree": "ghost"}), stored); err != nil {
			t.Fatalf("%s: %v", typ, err)
		}
		if len(c.got) != 2 || c.got[1] != "problem ev-1 "+typ {
			t.Fatalf("%s: calls %v, want the record and a problem", typ, c.got)
		}
	}
}

// Any event from a site-agent is the site's heartbeat, at the time the bus
// stored it; others are not.
func TestHandleHeartbeat(t *testing.T) {
	for _, tc := range []struct {
		source, typ string
		want        []string
	}{
		{"/pulpdist/siteagent/paris", "org.pulpdist.something.new.v1", []string{"heartbeat paris"}},
		{"/pulpdist/siteagent/paris", TypeSyncFinished, []string{"heartbeat paris", "finished ev-1 r COMPLETED"}},
		{"/pulpdist/siteagent/Not_A_Site", "org.pulpdist.something.new.v1", nil},
		{"/pulpdist/scheduler", TypeSyncStarted, []string{"started ev-1 r"}},
		// A site-agent reporting for another site: kept as a problem.
		{"/pulpdist/siteagent/lyon", TypeSyncFinished, []string{"heartbeat lyon", "problem ev-1 " + TypeSyncFinished}},
		{"/pulpdist/siteagent/lyon", TypeSnapshotPublished, []string{"heartbeat lyon", "problem ev-1 " + TypeSnapshotPublished}},
	} {
		b := bodyFrom(t, tc.source, tc.typ, map[string]string{"run_id": "r", "result": "COMPLETED", "site": "paris"})
		var c calls
		if err := Handle(context.Background(), &c, Reports{}, b, stored); err != nil {
			t.Fatalf("%s %s: %v", tc.source, tc.typ, err)
		}
		if fmt.Sprint(c.got) != fmt.Sprint(tc.want) {
			t.Errorf("%s %s: calls %v, want %v", tc.source, tc.typ, c.got, tc.want)
		}
		// The heartbeat is when the bus stored the event, not the time
		// the agent wrote in it.
		for _, at := range c.heard {
			if !at.Equal(stored) {
				t.Errorf("%s %s: heartbeat at %s, want the stored time %s", tc.source, tc.typ, at, stored)
			}
		}
	}
}

func bodyFrom(t *testing.T, source, typ string, data any) []byte {
	t.Helper()
	ev := event.New()
	ev.SetID("ev-1")
	ev.SetSource(source)
	ev.SetType(typ)
	ev.SetTime(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	if err := ev.SetData("application/json", data); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (c *calls) ReportKey(_ context.Context, id string) (string, []byte, error) {
	c.got = append(c.got, "report key "+id)
	return "", nil, catalog.ErrUnauthenticated
}

// An agent's own agent.online and agent.offline say what state it is in;
// its heartbeat, like any event, only that it is alive. What an agent
// says of another site's agent is kept as a problem and changes no state;
// the inventory's own agent events change nothing when they come back.
func TestHandleAgentPresence(t *testing.T) {
	for _, tc := range []struct {
		source, typ string
		data        any
		want        []string
	}{
		{"/pulpdist/siteagent/paris", TypeAgentOnline, bus.AgentOnline{Site: "paris", Reason: bus.AgentStarted}, []string{"heartbeat paris online started"}},
		{"/pulpdist/siteagent/paris", TypeAgentOffline, bus.AgentOffline{Site: "paris", Reason: bus.AgentStopped}, []string{"heartbeat paris offline stopped"}},
		{"/pulpdist/siteagent/paris", TypeAgentHeartbeat, bus.AgentHeartbeat{Site: "paris"}, []string{"heartbeat paris"}},
		{"/pulpdist/siteagent/paris", TypeAgentOffline, bus.AgentOffline{Site: "lyon", Reason: bus.AgentStopped}, []string{"heartbeat paris", "problem ev-1 " + TypeAgentOffline}},
		{"/pulpdist/siteagent/paris", TypeAgentHeartbeat, bus.AgentHeartbeat{Site: "lyon"}, []string{"heartbeat paris", "problem ev-1 " + TypeAgentHeartbeat}},
		{"/pulpdist/inventory", TypeAgentOffline, bus.AgentOffline{Site: "paris", Reason: bus.AgentHeartbeatLost}, nil},
		{"/pulpdist/inventory", TypeAgentOnline, bus.AgentOnline{Site: "paris", Reason: bus.AgentHeartbeatResumed}, nil},
	} {
		var c calls
		if err := Handle(context.Background(), &c, Reports{}, bodyFrom(t, tc.source, tc.typ, tc.data), stored); err != nil {
			t.Fatalf("%s %s %+v: %v", tc.source, tc.typ, tc.data, err)
		}
		if fmt.Sprint(c.got) != fmt.Sprint(tc.want) {
			t.Errorf("%s %s %+v: calls %q, want %q", tc.source, tc.typ, tc.data, c.got, tc.want)
		}
	}
	// An agent.offline whose data does not decode is refused, not taken
	// as a heartbeat.
	var c calls
	err := Handle(context.Background(), &c, Reports{}, bodyFrom(t, "/pulpdist/siteagent/paris", TypeAgentOffline, []int{1}), stored)
	if !bus.IsPermanent(err) || len(c.got) != 0 {
		t.Errorf("agent.offline with bad data: %v, calls %q", err, c.got)
	}
}
