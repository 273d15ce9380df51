package scheduler

import (
	"context"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pulpdist/pulpdist/libs/bus"
	"github.com/pulpdist/pulpdist/libs/inventoryapi"
	"github.com/pulpdist/pulpdist/libs/natstest"
	"github.com/pulpdist/pulpdist/services/scheduler/internal/dispatch"
)

// fixedInventory answers from memory what the inventory API would.
type fixedInventory struct {
	trees map[string]inventoryapi.Tree
	sites map[string]inventoryapi.Site
	subs  map[string][]inventoryapi.Subscription
}

func (f *fixedInventory) Tree(_ context.Context, name string) (inventoryapi.Tree, error) {
	t, ok := f.trees[name]
	if !ok {
		return t, &inventoryapi.Problem{Status: http.StatusNotFound}
	}
	return t, nil
}

func (f *fixedInventory) Site(_ context.Context, name string) (inventoryapi.Site, error) {
	s, ok := f.sites[name]
	if !ok {
		return s, &inventoryapi.Problem{Status: http.StatusNotFound}
	}
	return s, nil
}

func (f *fixedInventory) Trees(context.Context) ([]inventoryapi.Tree, error) {
	out := make([]inventoryapi.Tree, 0, len(f.trees))
	for _, t := range f.trees {
		out = append(out, t)
	}
	return out, nil
}

func (f *fixedInventory) Subscriptions(_ context.Context, tree string) ([]inventoryapi.Subscription, error) {
	return slices.Clone(f.subs[tree]), nil
}

// startBus connects to a new embedded NATS server and ensures the
// pulpdist streams and buckets on it; the connection closes when the
// test ends.
func startBus(t *testing.T) (jetstream.JetStream, *bus.Layout) {
	t.Helper()
	nc, js, err := bus.Connect(t.Context(), natstest.Start(t), "test", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	layout, err := bus.Ensure(t.Context(), js)
	if err != nil {
		t.Fatal(err)
	}
	return js, layout
}

// TestSubscriptionSyncCommandsOnlyItsSite runs a trigger naming one site
// through the dispatcher wired to an embedded JetStream: the origin gets
// its snapshot command, then only the named site gets an apply command,
// although another site waits at the same base. A paused site, whose
// subscription was made unpaused, gets nothing from a whole-tree sync.
func TestSubscriptionSyncCommandsOnlyItsSite(t *testing.T) {
	js, layout := startBus(t)
	log := slog.New(slog.DiscardHandler)
	v1, v2 := strings.Repeat("1", 64), strings.Repeat("2", 64)
	inv := &fixedInventory{
		trees: map[string]inventoryapi.Tree{"demo": {Name: "demo", OriginSite: "origin", Source: "/srv/demo", Keep: 2}},
		sites: map[string]inventoryapi.Site{"origin": {Name: "origin"}, "lyon": {Name: "lyon"}, "oslo": {Name: "oslo"}, "rome": {Name: "rome", Paused: true}},
		subs: map[string][]inventoryapi.Subscription{"demo": {
			{Site: "lyon", Tree: "demo"}, {Site: "oslo", Tree: "demo"}, {Site: "rome", Tree: "demo"},
		}},
	}
	for site, root := range map[string]string{"origin": v2, "lyon": v1, "oslo": v1, "rome": v1} {
		if err := bus.PutSiteVersion(t.Context(), layout.Sites, site, "demo", root); err != nil {
			t.Fatal(err)
		}
	}
	out := testSender(t, js)
	d := dispatch.New(inv, &versions{kv: layout.Sites}, out, log)

	applies := func(triggerID string) []string {
		t.Helper()
		if err := d.Snapshot(t.Context(), bus.Snapshot{V: 1, TriggerID: triggerID, Tree: "demo", Site: "origin", Root: v2}); err != nil {
			t.Fatal(err)
		}
		ready := bus.DeltaReady{V: 1, TriggerID: triggerID, Tree: "demo", From: v1, To: v2, Pack: bus.DeltaID("demo", v1, v2), PackHash: v2}
		if err := d.DeltaReady(t.Context(), ready); err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, c := range commands(t, js) {
			if c.Kind == bus.CommandApply && c.TriggerID == triggerID {
				got = append(got, c.Site)
			}
		}
		slices.Sort(got)
		return got
	}

	if err := d.Trigger(t.Context(), bus.Trigger{V: 1, TriggerID: "one", Tree: "demo", Reason: "manual", Sites: []string{"lyon"}}); err != nil {
		t.Fatal(err)
	}
	cs := commands(t, js)
	if len(cs) != 1 || cs[0].Kind != bus.CommandSnapshot || cs[0].Site != "origin" {
		t.Fatalf("after the trigger: %+v, want one snapshot command to the origin", cs)
	}
	if got := applies(cs[0].TriggerID); !slices.Equal(got, []string{"lyon"}) {
		t.Fatalf("scoped trigger: apply commands to %v, want lyon only", got)
	}
	if got := applies("all"); !slices.Equal(got, []string{"lyon", "oslo"}) {
		t.Fatalf("whole-tree trigger: apply commands to %v, want lyon and oslo (rome is paused)", got)
	}
}

// commands reads every sync command in the stream, oldest first.
func commands(t *testing.T, js jetstream.JetStream) []bus.SyncCommand {
	t.Helper()
	s, err := js.Stream(t.Context(), bus.StreamSync)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var out []bus.SyncCommand
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := s.GetMsg(t.Context(), seq)
		if err != nil {
			t.Fatalf("message %d: %v", seq, err)
		}
		c, err := bus.Decode[bus.SyncCommand](m.Data)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
	}
	return out
}
