package inventory_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/uuid"

	"github.com/pulpdist/pulpdist/libs/bus"
	"github.com/pulpdist/pulpdist/libs/natstest"
	"github.com/pulpdist/pulpdist/services/inventory"
)

// agentSays publishes, as the agent of site would, an agent event with
// the time at.
func agentSays(t *testing.T, h *harness, site, action string, at time.Time, data any) {
	t.Helper()
	ev := event.New()
	ev.SetID(uuid.NewString())
	ev.SetSource("/pulpdist/siteagent/" + site)
	ev.SetType(bus.EventType(bus.EntityAgent, action))
	ev.SetTime(at)
	about := bus.About{Site: site}
	ev.SetSubject(about.Subject())
	mustOK(t, ev.SetData("application/json", data))
	body, err := json.Marshal(ev)
	mustOK(t, err)
	publishRaw(t, h.js, bus.EventSubject(bus.EntityAgent, action, about), body)
}

// TestSilentAgentsAreReportedOffline: the inventory reports offline,
// once, the agent of a site silent for longer than its threshold, with
// when it was last heard from; not again after a restart; online again
// when heard from (not by older news). An agent that said it stopped is
// not reported, nor when it starts again: it said so itself.
func TestSilentAgentsAreReportedOffline(t *testing.T) {
	cfg := inventory.Config{NATSURL: natstest.Start(t), DatabaseURL: databases[0].url(t), AcceptUnsignedReports: true,
		AlarmInterval: 20 * time.Millisecond, AgentOfflineAfter: time.Second}
	h := startWith(t, cfg)
	for _, s := range []string{"g-lyon", "g-oslo", "g-rome"} {
		h.send(t, "POST", "/api/v1/sites", `{"name":"`+s+`"}`, nil)
	}
	offline := consumer(t, h.js, bus.StreamEvents, bus.EventFilter(bus.EntityAgent, bus.ActionOffline))
	online := consumer(t, h.js, bus.StreamEvents, bus.EventFilter(bus.EntityAgent, bus.ActionOnline))
	now := time.Now().UTC()
	agentSays(t, h, "g-lyon", bus.ActionOnline, now, bus.AgentOnline{Site: "g-lyon", Reason: bus.AgentStarted, Since: now})
	agentSays(t, h, "g-oslo", bus.ActionOnline, now, bus.AgentOnline{Site: "g-oslo", Reason: bus.AgentStarted, Since: now})
	agentSays(t, h, "g-oslo", bus.ActionOffline, now.Add(time.Millisecond), bus.AgentOffline{Site: "g-oslo", Reason: bus.AgentStopped, Since: now})

	// The inventory's agent.offline events, skipping the agents' own.
	reported := func() (bus.AgentOffline, string) {
		t.Helper()
		for {
			ev, off, err := bus.DecodeEvent[bus.AgentOffline](next(t, offline).Data())
			mustOK(t, err)
			if ev.Source() == inventory.EventSource {
				return off, ev.Subject()
			}
		}
	}
	lost, subject := reported()
	if lost.Site != "g-lyon" || subject != "site/g-lyon" || lost.Reason != bus.AgentHeartbeatLost || lost.LastSeen == nil ||
		!lost.LastSeen.Equal(now.Truncate(time.Microsecond)) || lost.Since.Sub(now) < time.Second {
		t.Fatalf("agent.offline %+v about %s, want g-lyon lost a second or more after %s", lost, subject, now)
	}

	// A restarted inventory does not report it again: g-rome, heard from
	// after the restart and silent since, is reported by the new
	// inventory, and nothing before it.
	h.stop()
	h = startWith(t, cfg)
	rome := time.Now().UTC()
	agentSays(t, h, "g-rome", bus.ActionHeartbeat, rome, bus.AgentHeartbeat{Site: "g-rome", StartedAt: rome, HeartbeatSeconds: 1})
	if lost, _ := reported(); lost.Site != "g-rome" {
		t.Fatalf("after the restart, agent.offline of %s, want g-rome's alone", lost.Site)
	}

	// g-oslo starts again: its own agent.online says so. Older news of
	// g-lyon does not bring it back; a heartbeat does, once; g-rome's
	// too. The inventory handles them in order, and its announcements
	// leave the outbox in the order it made them: g-rome's comes last.
	back := time.Now().UTC()
	agentSays(t, h, "g-oslo", bus.ActionOnline, back, bus.AgentOnline{Site: "g-oslo", Reason: bus.AgentStarted, Since: back})
	beat := bus.AgentHeartbeat{Site: "g-lyon", StartedAt: now, HeartbeatSeconds: 1}
	agentSays(t, h, "g-lyon", bus.ActionHeartbeat, now.Add(-time.Hour), beat)
	agentSays(t, h, "g-lyon", bus.ActionHeartbeat, back, beat)
	agentSays(t, h, "g-lyon", bus.ActionHeartbeat, back.Add(time.Millisecond), beat)
	agentSays(t, h, "g-rome", bus.ActionHeartbeat, back.Add(2*time.Millisecond), bus.AgentHeartbeat{Site: "g-rome", StartedAt: rome, HeartbeatSeconds: 1})
	var resumed []bus.AgentOnline
	for len(resumed) == 0 || resumed[len(resumed)-1].Site != "g-rome" {
		ev, on, err := bus.DecodeEvent[bus.AgentOnline](next(t, online).Data())
		mustOK(t, err)
		if ev.Source() == inventory.EventSource {
			resumed = append(resumed, on)
		}
	}
	if len(resumed) != 2 || resumed[0].Site != "g-lyon" || resumed[0].Reason != bus.AgentHeartbeatResumed || !resumed[0].Since.Equal(back.Truncate(time.Microsecond)) {
		t.Fatalf("the inventory's agent.online events %+v, want g-lyon heard again at %s, then g-rome", resumed, back)
	}
	// g-oslo said it stopped: never reported lost.
	if n := storedEvents(t, h, bus.EventSubject(bus.EntityAgent, bus.ActionOffline, bus.About{Site: "g-oslo"})); n != 1 {
		t.Errorf("%d agent.offline events of g-oslo, want its own alone", n)
	}
}
