package siteagent_test

import (
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pulpdist/pulpdist/libs/bus"
	"github.com/pulpdist/pulpdist/libs/poll"
	"github.com/pulpdist/pulpdist/libs/program"
	"github.com/pulpdist/pulpdist/services/siteagent"
)

// follow collects the data of every event entity.action stored on h's
// bus, from the first, decoded as T; the returned function gives what
// has arrived so far.
func follow[T any](t *testing.T, h *harness, entity, action string) func() []T {
	t.Helper()
	cons, err := h.js.OrderedConsumer(t.Context(), bus.StreamEvents, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{bus.EventFilter(entity, action)},
	})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var got []T
	cc, err := cons.Consume(func(m jetstream.Msg) {
		_, v, err := bus.DecodeEvent[T](m.Data())
		if err != nil {
			t.Errorf("%s.%s event: %v", entity, action, err)
			return
		}
		mu.Lock()
		got = append(got, v)
		mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cc.Stop)
	return func() []T {
		mu.Lock()
		defer mu.Unlock()
		return append([]T(nil), got...)
	}
}

// waitFor waits until seen holds at least n items and returns them.
func waitFor[T any](t *testing.T, what string, n int, seen func() []T) []T {
	t.Helper()
	var got []T
	poll.Until(t, 20*time.Second, func() error {
		if got = seen(); len(got) < n {
			return fmt.Errorf("%d %s, waiting for %d", len(got), what, n)
		}
		return nil
	})
	return got
}

// TestDeltaServedSaysHowThePackCame: every fetched pack is a
// delta.served event of the run, with the bytes that crossed the link
// and the way they were read: direct gets for a pack of a few chunks, a
// consumer for a larger one. A run that needs no pack serves none.
func TestDeltaServedSaysHowThePackCame(t *testing.T) {
	h := start(t, "site-a")
	served := follow[bus.DeltaServed](t, h, bus.EntityDelta, bus.ActionServed)
	var cmds []bus.SyncCommand
	for i, tc := range []struct {
		tree   string
		size   int
		method string
	}{
		{"small", 1 << 20, bus.FetchDirect},
		{"large", 12 << 20, bus.FetchConsumer},
	} {
		name, hash, root := h.storePack(t, tc.tree, randomTree(t, uint64(10+i), tc.size), nil)
		info, err := h.layout.Deltas.GetInfo(t.Context(), name)
		if err != nil {
			t.Fatal(err)
		}
		cmd := bus.SyncCommand{RunID: "r-" + tc.tree, TriggerID: "t", Kind: bus.CommandApply, Site: "site-a", Tree: tc.tree, To: root, Pack: name, PackHash: hash}
		if fin := h.run(t, cmd); fin.Result != bus.ResultCompleted {
			t.Fatalf("apply %s: %+v", tc.tree, fin)
		}
		cmds = append(cmds, cmd)
		got := waitFor(t, "delta.served events", i+1, served)[i]
		want := bus.DeltaServed{RunID: cmd.RunID, TriggerID: "t", Site: "site-a", Tree: tc.tree, To: root, Pack: name,
			Size: int64(info.Size), FetchedBytes: int64(info.Size), Method: tc.method, DurationMS: got.DurationMS}
		if got != want {
			t.Errorf("%s: delta.served\n got %+v\nwant %+v", tc.tree, got, want)
		}
	}
	// Already at the version: nothing fetched, nothing served.
	again := cmds[0]
	again.RunID = "again"
	if fin := h.run(t, again); fin.Result != bus.ResultUpToDate {
		t.Fatalf("apply again: %+v", fin)
	}
	// The run's events were stored before its sync.finished.
	if n := stored(t, h, bus.EventFilter(bus.EntityDelta, bus.ActionServed)); n != 2 {
		t.Errorf("%d delta.served events after an UP_TO_DATE run, want 2: %+v", n, served())
	}
}

// stored counts the events stored on the subjects filter selects.
func stored(t *testing.T, h *harness, filter string) int {
	t.Helper()
	st, err := h.js.Stream(t.Context(), bus.StreamEvents)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(t.Context(), jetstream.WithSubjectFilter(filter))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, c := range info.State.Subjects {
		n += int(c)
	}
	return n
}

// TestSyncProgressIsBounded: a slow fetch (a shaped link) reports its
// progress as it goes, at most once per interval, with bytes that only
// grow towards the pack's size, all before the run's sync.finished; a
// run shorter than the interval reports none.
func TestSyncProgressIsBounded(t *testing.T) {
	const every, size, rate = 250 * time.Millisecond, 3_000_000, 1_500_000
	h := start(t, "site-a", func(c *siteagent.Config) { c.ProgressInterval = every })
	reports := follow[bus.SyncProgress](t, h, bus.EntitySync, bus.ActionProgress)
	name, hash, root := h.storePack(t, "slow", randomTree(t, 20, size), nil)
	info, err := h.layout.Deltas.GetInfo(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	fin := h.run(t, bus.SyncCommand{RunID: "slow", TriggerID: "t", Kind: bus.CommandApply, Site: "site-a", Tree: "slow", To: root,
		Pack: name, PackHash: hash, BandwidthLimit: rate})
	if fin.Result != bus.ResultCompleted {
		t.Fatalf("apply: %+v", fin)
	}
	// Every report was stored before sync.finished: all are in by now.
	n := stored(t, h, bus.EventFilter(bus.EntitySync, bus.ActionProgress))
	got := waitFor(t, "sync.progress events", n, reports)
	// Progress is transient: the stream keeps it an hour, not 30 days.
	if st, err := h.js.Stream(t.Context(), bus.StreamEvents); err != nil {
		t.Fatal(err)
	} else if raw, err := st.GetLastMsgForSubject(t.Context(), bus.EventFilter(bus.EntitySync, bus.ActionProgress)); err != nil {
		t.Fatal(err)
	} else if ttl, err := time.ParseDuration(raw.Header.Get("Nats-TTL")); err != nil || ttl != bus.SyncProgressTTL {
		t.Errorf("progress Nats-TTL %q (%v), want %s", raw.Header.Get("Nats-TTL"), err, bus.SyncProgressTTL)
	}
	if limit := int(time.Duration(fin.DurationMS)*time.Millisecond/every) + 1; len(got) < 3 || len(got) > limit {
		t.Fatalf("%d progress reports of a %d ms run every %s: want 3 to %d", len(got), fin.DurationMS, every, limit)
	}
	var last bus.SyncProgress
	midway := false
	for i, p := range got {
		if p.RunID != "slow" || p.Site != "site-a" || p.Tree != "slow" || p.Kind != bus.CommandApply || p.To != root {
			t.Errorf("report %d is not the run's: %+v", i, p)
		}
		if p.Phase != bus.PhaseFetch && p.Phase != bus.PhaseApply {
			t.Errorf("report %d: phase %q", i, p.Phase)
		}
		if p.BytesTotal != int64(info.Size) || p.BytesDone > p.BytesTotal || p.BytesDone < last.BytesDone || p.ElapsedMS < last.ElapsedMS || p.ElapsedMS > fin.DurationMS {
			t.Errorf("report %d %+v after %+v: want bytes and time growing within the pack's %d bytes and the run's %d ms", i, p, last, info.Size, fin.DurationMS)
		}
		midway = midway || p.Phase == bus.PhaseFetch && p.BytesDone > 0 && p.BytesDone < p.BytesTotal
		last = p
	}
	if !midway {
		t.Errorf("no report caught the fetch midway: %+v", got)
	}

	// The default interval (5 s) is longer than this run: no report.
	quick := start(t, "site-b")
	name, hash, root = quick.storePack(t, "quick", randomTree(t, 21, 64<<10), nil)
	if fin := quick.run(t, bus.SyncCommand{RunID: "quick", TriggerID: "t", Kind: bus.CommandApply, Site: "site-b", Tree: "quick", To: root,
		Pack: name, PackHash: hash}); fin.Result != bus.ResultCompleted || fin.DurationMS >= siteagent.DefaultProgressInterval.Milliseconds() {
		t.Fatalf("quick apply: %+v", fin)
	}
	if n := stored(t, quick, bus.EventFilter(bus.EntitySync, bus.ActionProgress)); n != 0 {
		t.Errorf("a run shorter than the interval reported its progress %d times", n)
	}
}

// TestAgentAnnouncesItsPresence: an agent says when it starts (with the
// trees on disk), that it is alive while idle, and when it stops.
func TestAgentAnnouncesItsPresence(t *testing.T) {
	const every = 150 * time.Millisecond
	withBeat := func(c *siteagent.Config) { c.HeartbeatInterval = every }
	h := start(t, "site-a", withBeat)
	online := follow[bus.AgentOnline](t, h, bus.EntityAgent, bus.ActionOnline)
	beats := follow[bus.AgentHeartbeat](t, h, bus.EntityAgent, bus.ActionHeartbeat)
	offline := follow[bus.AgentOffline](t, h, bus.EntityAgent, bus.ActionOffline)
	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}

	first := waitFor(t, "agent.online events", 1, online)[0]
	if first.Site != "site-a" || first.Reason != bus.AgentStarted || first.Hostname != host || first.Version != program.Version ||
		first.HeartbeatSeconds != 1 || len(first.Trees) != 0 || first.Since.IsZero() {
		t.Errorf("agent.online of an agent with nothing on disk: %+v", first)
	}
	// Idle, it beats.
	for _, b := range waitFor(t, "heartbeats", 3, beats) {
		if b.Site != "site-a" || !b.StartedAt.Equal(first.Since) || b.Running != 0 || b.HeartbeatSeconds != 1 {
			t.Errorf("heartbeat %+v of the agent started at %s", b, first.Since)
		}
	}
	name, hash, root := h.storePack(t, "docs", randomTree(t, 30, 64<<10), nil)
	if fin := h.run(t, bus.SyncCommand{RunID: "r1", TriggerID: "t", Kind: bus.CommandApply, Site: "site-a", Tree: "docs", To: root,
		Pack: name, PackHash: hash}); fin.Result != bus.ResultCompleted {
		t.Fatalf("apply: %+v", fin)
	}

	h.stop()
	off := waitFor(t, "agent.offline events", 1, offline)
	if len(off) != 1 || off[0].Site != "site-a" || off[0].Reason != bus.AgentStopped || off[0].LastSeen != nil || off[0].Since.Before(first.Since) {
		t.Errorf("agent.offline of a clean stop: %+v", off)
	}
	// The stopped agent has said its last word: the heartbeats stored now
	// are all its; the next one is the new agent's.
	n := stored(t, h, bus.EventFilter(bus.EntityAgent, bus.ActionHeartbeat))
	h.startAgent(t, withBeat)
	again := waitFor(t, "agent.online events", 2, online)[1]
	if again.Reason != bus.AgentStarted || !again.Since.After(first.Since) || len(again.Trees) != 1 || again.Trees[0] != (bus.AgentTree{Tree: "docs", Version: root}) {
		t.Errorf("agent.online after a restart with docs on disk: %+v", again)
	}
	if got := waitFor(t, "heartbeats", n+1, beats)[n]; !got.StartedAt.Equal(again.Since) {
		t.Errorf("the restarted agent's heartbeat %+v, want started at %s", got, again.Since)
	}
}
