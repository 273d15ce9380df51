package inventory_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pulpdist/pulpdist/libs/bus"
	"github.com/pulpdist/pulpdist/libs/natstest"
	"github.com/pulpdist/pulpdist/services/inventory"
	"github.com/pulpdist/pulpdist/services/inventory/internal/events"
)

// agentSays publishes, as the agent of site would, an agent event in
// which the agent writes the time at, and returns when the bus stored it
// (at storage precision): the agent's heartbeat.
func agentSays(t *testing.T, h *harness, site, action string, at time.Time, data any) time.Time {
	t.Helper()
	stored, _ := agentStores(t, h, site, action, at, data)
	return stored
}

// agentStores is agentSays, also returning the event's sequence in the
// stream.
func agentStores(t *testing.T, h *harness, site, action string, at time.Time, data any) (time.Time, uint64) {
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
	ack, err := h.js.Publish(t.Context(), bus.EventSubject(bus.EntityAgent, action, about), body, jetstream.WithMsgID(uuid.NewString()))
	mustOK(t, err)
	st, err := h.js.Stream(t.Context(), bus.StreamEvents)
	mustOK(t, err)
	m, err := st.GetMsg(t.Context(), ack.Sequence)
	mustOK(t, err)
	return m.Time.UTC().Truncate(time.Microsecond), ack.Sequence
}

// TestSilentAgentsAreReportedOffline: the inventory reports offline,
// once, the agent of a site silent for longer than its threshold, with
// when it was last heard from; not again after a restart; online again
// when heard from, at the time the bus stored what it heard, whatever the
// agent's clock says. An agent that said it stopped is not reported, nor
// when it starts again: it said so itself.
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
	lyon := agentSays(t, h, "g-lyon", bus.ActionOnline, now, bus.AgentOnline{Site: "g-lyon", Reason: bus.AgentStarted, Since: now})
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
		!lost.LastSeen.Equal(lyon) || lost.Since.Sub(lyon) < time.Second {
		t.Fatalf("agent.offline %+v about %s, want g-lyon lost a second or more after %s", lost, subject, lyon)
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

	// g-oslo starts again: its own agent.online says so. A heartbeat of
	// g-lyon brings it back, once, at the time the bus stored it, though
	// g-lyon's clock says an hour ago; g-rome's too. The inventory
	// handles them in order, and its announcements leave the outbox in
	// the order it made them: g-rome's comes last.
	back := time.Now().UTC()
	agentSays(t, h, "g-oslo", bus.ActionOnline, back, bus.AgentOnline{Site: "g-oslo", Reason: bus.AgentStarted, Since: back})
	beat := bus.AgentHeartbeat{Site: "g-lyon", StartedAt: now, HeartbeatSeconds: 1}
	heard := agentSays(t, h, "g-lyon", bus.ActionHeartbeat, back.Add(-time.Hour), beat)
	agentSays(t, h, "g-lyon", bus.ActionHeartbeat, back, beat)
	agentSays(t, h, "g-rome", bus.ActionHeartbeat, back.Add(time.Millisecond), bus.AgentHeartbeat{Site: "g-rome", StartedAt: rome, HeartbeatSeconds: 1})
	var resumed []bus.AgentOnline
	for len(resumed) == 0 || resumed[len(resumed)-1].Site != "g-rome" {
		ev, on, err := bus.DecodeEvent[bus.AgentOnline](next(t, online).Data())
		mustOK(t, err)
		if ev.Source() == inventory.EventSource {
			resumed = append(resumed, on)
		}
	}
	if len(resumed) != 2 || resumed[0].Site != "g-lyon" || resumed[0].Reason != bus.AgentHeartbeatResumed || !resumed[0].Since.Equal(heard) {
		t.Fatalf("the inventory's agent.online events %+v, want g-lyon heard again at %s, then g-rome", resumed, heard)
	}
	// g-oslo said it stopped: never reported lost.
	if n := storedEvents(t, h, bus.EventSubject(bus.EntityAgent, bus.ActionOffline, bus.About{Site: "g-oslo"})); n != 1 {
		t.Errorf("%d agent.offline events of g-oslo, want its own alone", n)
	}
}

// TestAgentClocksDoNotMatter: an agent's heartbeat is when the bus stored
// its event, not the time its own clock wrote in it. An agent whose clock
// is an hour behind, sending heartbeats, is never reported offline (nor
// online again at each heartbeat), while a silent one beside it is; the
// site's last_heartbeat and pulpdist_site_last_heartbeat_timestamp_seconds
// say when the bus stored its last event.
func TestAgentClocksDoNotMatter(t *testing.T) {
	h := startWith(t, inventory.Config{NATSURL: natstest.Start(t), DatabaseURL: databases[0].url(t), AcceptUnsignedReports: true,
		AlarmInterval: 20 * time.Millisecond, AgentOfflineAfter: 2 * time.Second})
	for _, s := range []string{"g-late", "g-lyon"} {
		h.send(t, "POST", "/api/v1/sites", `{"name":"`+s+`"}`, nil)
	}
	offline := consumer(t, h.js, bus.StreamEvents, bus.EventFilter(bus.EntityAgent, bus.ActionOffline))
	now := time.Now().UTC()
	agentSays(t, h, "g-lyon", bus.ActionOnline, now, bus.AgentOnline{Site: "g-lyon", Reason: bus.AgentStarted, Since: now})
	late := func() time.Time {
		behind := time.Now().UTC().Add(-time.Hour)
		return agentSays(t, h, "g-late", bus.ActionHeartbeat, behind, bus.AgentHeartbeat{Site: "g-late", StartedAt: behind, HeartbeatSeconds: 1})
	}
	// g-late beats every 100 ms, well within the threshold, until g-lyon,
	// silent, is reported: the
	// inventory checks the agents in the order of their sites' names,
	// g-late first, and its announcements leave in that order.
	heard := late()
	deadline := time.Now().Add(15 * time.Second)
	for {
		m, err := offline.Next(jetstream.FetchMaxWait(100 * time.Millisecond))
		if errors.Is(err, jetstream.ErrNoMessages) || errors.Is(err, nats.ErrTimeout) {
			if time.Now().After(deadline) {
				t.Fatal("g-lyon, silent, not reported offline before the deadline")
			}
			heard = late()
			continue
		}
		mustOK(t, err)
		mustOK(t, m.Ack())
		ev, off, err := bus.DecodeEvent[bus.AgentOffline](m.Data())
		mustOK(t, err)
		if off.Site == "g-late" {
			t.Fatalf("g-late, sending heartbeats with its clock an hour behind, reported offline by %s: %+v", ev.Source(), off)
		}
		if off.Site == "g-lyon" && ev.Source() == inventory.EventSource {
			break
		}
	}
	if n := storedEvents(t, h, bus.EventSubject(bus.EntityAgent, bus.ActionOnline, bus.About{Site: "g-late"})); n != 0 {
		t.Errorf("%d agent.online events of g-late, want none: it never went offline", n)
	}

	eventually(t, "g-late's last heartbeat is when the bus stored it", func() (bool, string) {
		site, err := h.client.Site(t.Context(), "g-late")
		if err != nil || site.LastHeartbeat == nil {
			return false, jsonString(site, err)
		}
		return site.LastHeartbeat.Equal(heard), fmt.Sprintf("last_heartbeat %s, want %s", site.LastHeartbeat, heard)
	})
	code, body := h.do(t, http.MethodGet, "/metrics", "")
	const gauge = `pulpdist_site_last_heartbeat_timestamp_seconds{site="g-late"} `
	i := strings.Index(body, gauge)
	if code != http.StatusOK || i < 0 {
		t.Fatalf("GET /metrics: %d, no %s", code, gauge)
	}
	value, _, _ := strings.Cut(body[i+len(gauge):], "\n")
	seconds, err := strconv.ParseFloat(value, 64)
	mustOK(t, err)
	if want := float64(heard.UnixMilli()) / 1e3; seconds != want {
		t.Errorf("%s%s, want %v (%s)", gauge, value, want, heard)
	}
}

// eventsConsumer is the inventory's own durable consumer on the events
// stream, and the stream.
func eventsConsumer(t *testing.T, h *harness) (jetstream.Consumer, jetstream.Stream) {
	t.Helper()
	c, err := h.js.Consumer(t.Context(), bus.StreamEvents, events.Durable)
	mustOK(t, err)
	st, err := h.js.Stream(t.Context(), bus.StreamEvents)
	mustOK(t, err)
	return c, st
}

// serverTimePast waits until the NATS server's clock is past at.
func serverTimePast(t *testing.T, c jetstream.Consumer, at time.Time) {
	t.Helper()
	eventually(t, "the server's clock past "+at.String(), func() (bool, string) {
		info, err := c.Info(t.Context())
		if err != nil {
			return false, err.Error()
		}
		return info.TimeStamp.After(at), info.TimeStamp.String()
	})
}

// TestSilentAgentsAreReportedThroughABacklog: an agent silent for longer
// than the threshold is reported offline although the inventory's
// consumer never empties, since every event stored before the silence
// grew that long is handled. Here the consumer keeps an event delivered
// and not acknowledged, as a pull consumer's prefetched or retried ones
// are, and a busy fan-out's sync.progress keeps arriving behind it.
func TestSilentAgentsAreReportedThroughABacklog(t *testing.T) {
	cfg := inventory.Config{NATSURL: natstest.Start(t), DatabaseURL: databases[0].url(t), AcceptUnsignedReports: true,
		AlarmInterval: 20 * time.Millisecond, AgentOfflineAfter: time.Second}
	h := startWith(t, cfg)
	h.send(t, "POST", "/api/v1/sites", `{"name":"g-lyon"}`, nil)
	offline := consumer(t, h.js, bus.StreamEvents, bus.EventFilter(bus.EntityAgent, bus.ActionOffline))
	durable, st := eventsConsumer(t, h)
	now := time.Now().UTC()
	lyon := agentSays(t, h, "g-lyon", bus.ActionOnline, now, bus.AgentOnline{Site: "g-lyon", Reason: bus.AgentStarted, Since: now})
	eventually(t, "every event handled", func() (bool, string) {
		if storedEvents(t, h, bus.EventSubject(bus.EntitySite, bus.ActionCreated, bus.About{Site: "g-lyon"})) != 1 {
			return false, "site.created not published yet"
		}
		sinfo, err := st.Info(t.Context())
		mustOK(t, err)
		info, err := durable.Info(t.Context())
		mustOK(t, err)
		return info.AckFloor.Stream >= sinfo.State.LastSeq, fmt.Sprintf("handled up to %d of %d", info.AckFloor.Stream, sinfo.State.LastSeq)
	})

	// The inventory stops before g-lyon has been silent a second; by the
	// time it is back, it has been, and the consumer is never empty
	// again: one sync.progress is held unacknowledged (as the inventory
	// holds the one it works on), more come behind.
	h.stop()
	serverTimePast(t, durable, lyon.Add(cfg.AgentOfflineAfter))
	progress := func() {
		publishFrom(t, h, uuid.NewString(), "/pulpdist/siteagent/g-rome", bus.EntitySync, bus.ActionProgress,
			bus.SyncProgress{RunID: "run-1", Site: "g-rome", Tree: "docs", Kind: bus.CommandApply, Phase: bus.PhaseFetch})
	}
	progress()
	held, err := durable.Next(jetstream.FetchMaxWait(10 * time.Second))
	mustOK(t, err)
	if want := bus.EventSubject(bus.EntitySync, bus.ActionProgress, bus.About{Tree: "docs", Site: "g-rome"}); held.Subject() != want {
		t.Fatalf("the inventory's next event is on %s, want the sync.progress on %s", held.Subject(), want)
	}
	progress()
	progress()
	h = startWith(t, cfg)

	for {
		ev, lost, err := bus.DecodeEvent[bus.AgentOffline](next(t, offline).Data())
		mustOK(t, err)
		if ev.Source() != inventory.EventSource {
			continue
		}
		if lost.Site != "g-lyon" || lost.LastSeen == nil || !lost.LastSeen.Equal(lyon) {
			t.Fatalf("agent.offline %+v, want g-lyon's, last seen at %s", lost, lyon)
		}
		break
	}
	if info, err := durable.Info(t.Context()); err != nil || info.NumAckPending == 0 {
		t.Fatalf("reported with the inventory's consumer emptied: %+v, %v", info, err)
	}
}

// TestHeartbeatsWaitingAreNotSilence: a heartbeat stored but not handled
// yet keeps its agent from being reported offline, however long it
// waits: the inventory measures silence up to the first event it has not
// handled. Here its consumer is paused, as an inventory far behind or
// restarting leaves its backlog.
func TestHeartbeatsWaitingAreNotSilence(t *testing.T) {
	cfg := inventory.Config{NATSURL: natstest.Start(t), DatabaseURL: databases[0].url(t), AcceptUnsignedReports: true,
		AlarmInterval: 20 * time.Millisecond, AgentOfflineAfter: time.Second}
	h := startWith(t, cfg)
	h.send(t, "POST", "/api/v1/sites", `{"name":"g-rome"}`, nil)
	offline := consumer(t, h.js, bus.StreamEvents, bus.EventFilter(bus.EntityAgent, bus.ActionOffline))
	heardAt := func(want time.Time) {
		t.Helper()
		eventually(t, "g-rome heard at "+want.String(), func() (bool, string) {
			site, err := h.client.Site(t.Context(), "g-rome")
			return err == nil && site.LastHeartbeat != nil && site.LastHeartbeat.Equal(want), jsonString(site, err)
		})
	}
	now := time.Now().UTC()
	heardAt(agentSays(t, h, "g-rome", bus.ActionOnline, now, bus.AgentOnline{Site: "g-rome", Reason: bus.AgentStarted, Since: now}))

	// Paused for three times the threshold; the inventory checks every
	// 20 ms meanwhile.
	_, err := h.js.PauseConsumer(t.Context(), bus.StreamEvents, events.Durable, time.Now().Add(3*cfg.AgentOfflineAfter))
	mustOK(t, err)
	beat := agentSays(t, h, "g-rome", bus.ActionHeartbeat, now, bus.AgentHeartbeat{Site: "g-rome", StartedAt: now, HeartbeatSeconds: 1})
	heardAt(beat)
	if waited := time.Since(beat); waited < 2*cfg.AgentOfflineAfter {
		t.Fatalf("g-rome's heartbeat handled %s after it was stored: the pause did not hold it", waited)
	}
	// Once it is handled, g-rome has been silent since for as long as the
	// pause lasted, and may be reported offline, last seen at the
	// heartbeat; never while it waited, last seen before it.
	for range storedEvents(t, h, bus.EventSubject(bus.EntityAgent, bus.ActionOffline, bus.About{Site: "g-rome"})) {
		ev, off, err := bus.DecodeEvent[bus.AgentOffline](next(t, offline).Data())
		mustOK(t, err)
		if ev.Source() == inventory.EventSource && (off.LastSeen == nil || !off.LastSeen.Equal(beat)) {
			t.Errorf("agent.offline %+v while g-rome's heartbeat of %s was waiting", off, beat)
		}
	}
}

// TestBadAgentReasonsAreDeadLettered: an agent.offline or agent.online
// whose reason is empty, too long or holds control characters is refused
// at once, not retried: it goes to the dead-letter stream saying why, and
// does not count as the agent's heartbeat.
func TestBadAgentReasonsAreDeadLettered(t *testing.T) {
	h := start(t, databases[0].url(t))
	h.send(t, "POST", "/api/v1/sites", `{"name":"g-lyon"}`, nil)
	dead := consumer(t, h.js, bus.StreamDead, bus.DeadLetterSubject(bus.StreamEvents))
	now := time.Now().UTC()
	lyon := agentSays(t, h, "g-lyon", bus.ActionOnline, now, bus.AgentOnline{Site: "g-lyon", Reason: bus.AgentStarted, Since: now})
	var refused []uint64
	for _, bad := range []struct {
		action string
		data   any
	}{
		{bus.ActionOffline, bus.AgentOffline{Site: "g-lyon", Since: now}},
		{bus.ActionOffline, bus.AgentOffline{Site: "g-lyon", Reason: strings.Repeat("x", 257), Since: now}},
		{bus.ActionOffline, bus.AgentOffline{Site: "g-lyon", Reason: "stopped\n", Since: now}},
		{bus.ActionOnline, bus.AgentOnline{Site: "g-lyon", Since: now}},
		{bus.ActionOnline, bus.AgentOnline{Site: "g-lyon", Reason: strings.Repeat("x", 257), Since: now}},
		{bus.ActionOnline, bus.AgentOnline{Site: "g-lyon", Reason: "started\x1b[2J", Since: now}},
	} {
		_, seq := agentStores(t, h, "g-lyon", bad.action, now, bad.data)
		refused = append(refused, seq)
		m := next(t, dead)
		subject := bus.EventSubject(bus.EntityAgent, bad.action, bus.About{Site: "g-lyon"})
		if why := m.Headers().Get(bus.HeaderDeadReason); m.Headers().Get(bus.HeaderDeadSubject) != subject ||
			!strings.HasPrefix(why, "refused: ") || !strings.Contains(why, "reason") {
			t.Errorf("agent.%s %+v: dead letter of %s, %q; want one of %s refused for its reason",
				bad.action, bad.data, m.Headers().Get(bus.HeaderDeadSubject), why, subject)
		}
	}
	site, err := h.client.Site(t.Context(), "g-lyon")
	mustOK(t, err)
	if site.LastHeartbeat == nil || !site.LastHeartbeat.Equal(lyon) {
		t.Errorf("g-lyon's last heartbeat %v after the refused events, want %s", site.LastHeartbeat, lyon)
	}
	// The refused events break the events' schemas on purpose: out of
	// the stream, they are not held to them when the test ends.
	st, err := h.js.Stream(t.Context(), bus.StreamEvents)
	mustOK(t, err)
	for _, seq := range refused {
		mustOK(t, st.DeleteMsg(t.Context(), seq))
	}
}
