package dispatch_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"testing"

	"github.com/pulpdist/pulpdist/libs/bus"
	"github.com/pulpdist/pulpdist/libs/inventoryapi"
	"github.com/pulpdist/pulpdist/services/scheduler/internal/dispatch"
)

// inventory is an in-memory Inventory.
type inventory struct {
	trees map[string]inventoryapi.Tree
	subs  map[string][]inventoryapi.Subscription
	// paused names the paused sites; every other site exists, unpaused.
	paused map[string]bool
	// links are the bandwidth settings of sites (none: unlimited).
	links map[string]inventoryapi.Site
	fail  error
}

func (i *inventory) Site(_ context.Context, name string) (inventoryapi.Site, error) {
	if i.fail != nil {
		return inventoryapi.Site{}, i.fail
	}
	s := i.links[name]
	s.Name, s.Paused = name, i.paused[name]
	return s, nil
}

func (i *inventory) Tree(_ context.Context, name string) (inventoryapi.Tree, error) {
	if i.fail != nil {
		return inventoryapi.Tree{}, i.fail
	}
	t, ok := i.trees[name]
	if !ok {
		return t, &inventoryapi.Problem{Status: http.StatusNotFound, Title: "Not Found"}
	}
	return t, nil
}

func (i *inventory) Trees(context.Context) ([]inventoryapi.Tree, error) {
	out := make([]inventoryapi.Tree, 0, len(i.trees))
	for _, t := range i.trees {
		out = append(out, t)
	}
	return out, nil
}

func (i *inventory) Subscriptions(_ context.Context, tree string) ([]inventoryapi.Subscription, error) {
	return i.subs[tree], nil
}

type versions map[string]string

func (v versions) SiteVersion(_ context.Context, site, tree string) (string, error) {
	return v[site+"/"+tree], nil
}

// recorder is a Sender that keeps what was sent.
type recorder struct {
	commands []bus.SyncCommand
	requests []bus.DeltaRequest
	msgIDs   []string
	events   []string
	finished []bus.SyncFinished
	triggers []bus.Trigger
}

func (r *recorder) Trigger(_ context.Context, t bus.Trigger) error {
	if err := t.Validate(); err != nil {
		return err
	}
	r.triggers = append(r.triggers, t)
	return nil
}

func (r *recorder) Command(_ context.Context, c bus.SyncCommand) error {
	if err := c.Validate(); err != nil {
		return err
	}
	r.commands = append(r.commands, c)
	return nil
}

func (r *recorder) RequestDelta(_ context.Context, d bus.DeltaRequest, msgID string) error {
	if err := d.Validate(); err != nil {
		return err
	}
	r.requests = append(r.requests, d)
	r.msgIDs = append(r.msgIDs, msgID)
	return nil
}

func (r *recorder) Event(_ context.Context, entity, action string, _ bus.About, _ string, data any) error {
	r.events = append(r.events, entity+"."+action)
	if f, ok := data.(bus.SyncFinished); ok {
		r.finished = append(r.finished, f)
	}
	return nil
}

var (
	v1 = strings.Repeat("1", 64)
	v2 = strings.Repeat("2", 64)
	v3 = strings.Repeat("3", 64)
)

func fixture() (*inventory, versions) {
	inv := &inventory{
		trees: map[string]inventoryapi.Tree{"demo": {Name: "demo", OriginSite: "origin", Source: "/srv/demo", Keep: 3}},
		subs: map[string][]inventoryapi.Subscription{"demo": {
			{Site: "current", Tree: "demo"}, {Site: "old-a", Tree: "demo"}, {Site: "old-b", Tree: "demo"},
			{Site: "new", Tree: "demo"}, {Site: "paused", Tree: "demo", Paused: true},
		}},
	}
	ver := versions{"current/demo": v3, "old-a/demo": v1, "old-b/demo": v1, "paused/demo": v1}
	return inv, ver
}

func TestTriggerAsksTheOriginToScan(t *testing.T) {
	inv, ver := fixture()
	out := &recorder{}
	d := dispatch.New(inv, ver, out, slog.New(slog.DiscardHandler))
	trig := bus.Trigger{V: 1, TriggerID: "t1", Tree: "demo", Reason: "manual"}
	for range 2 { // a redelivered trigger yields the same run id
		if err := d.Trigger(t.Context(), trig); err != nil {
			t.Fatal(err)
		}
	}
	if len(out.commands) != 2 || out.commands[0].RunID != out.commands[1].RunID {
		t.Fatalf("commands %+v: want two with one run id", out.commands)
	}
	c := out.commands[0]
	if c.Kind != bus.CommandSnapshot || c.Site != "origin" || c.Source != "/srv/demo" || c.Keep != 3 {
		t.Fatalf("command %+v", c)
	}
	if out.events[0] != "sync.started" {
		t.Fatalf("events %v: the run must be recorded before the command is sent", out.events)
	}
}

func TestTriggerErrorsAreClassified(t *testing.T) {
	inv, ver := fixture()
	d := dispatch.New(inv, ver, &recorder{}, slog.New(slog.DiscardHandler))
	err := d.Trigger(t.Context(), bus.Trigger{V: 1, TriggerID: "t", Tree: "unknown"})
	if !bus.IsPermanent(err) {
		t.Fatalf("unknown tree: %v, want a permanent error", err)
	}
	inv.fail = fmt.Errorf("inventory down: %w", &inventoryapi.Problem{Status: http.StatusServiceUnavailable})
	err = d.Trigger(t.Context(), bus.Trigger{V: 1, TriggerID: "t", Tree: "demo"})
	if err == nil || bus.IsPermanent(err) {
		t.Fatalf("inventory down: %v, want a transient error", err)
	}
}

func TestSnapshotRequestsOneDeltaPerBase(t *testing.T) {
	inv, ver := fixture()
	out := &recorder{}
	d := dispatch.New(inv, ver, out, slog.New(slog.DiscardHandler))
	snap := bus.Snapshot{V: 1, TriggerID: "t1", Tree: "demo", Site: "origin", Root: v3}
	if err := d.Snapshot(t.Context(), snap); err != nil {
		t.Fatal(err)
	}
	// The site already at v3 needs nothing: no command, no run, no event
	// (a poll that finds nothing new costs no site anything).
	if len(out.commands) != 0 {
		t.Fatalf("commands %+v: the site at v3 needs none", out.commands)
	}
	for _, ev := range out.events {
		if ev == "sync.started" {
			t.Fatalf("events %v: no run starts", out.events)
		}
	}
	// One request per distinct base: v1 (two sites) and none (a new site).
	var froms []string
	for _, r := range out.requests {
		froms = append(froms, r.From)
		if r.To != v3 {
			t.Errorf("request to %s", r.To)
		}
	}
	sort.Strings(froms)
	if strings.Join(froms, ",") != ","+v1 {
		t.Fatalf("requests from %q, want none and v1", froms)
	}
	// The paused subscription is recorded as DISABLED.
	if len(out.finished) != 1 || out.finished[0].Site != "paused" || out.finished[0].Result != bus.ResultDisabled {
		t.Fatalf("finished %+v", out.finished)
	}
}

func TestTriggerNamingASiteAtTheVersionHearsBack(t *testing.T) {
	// An operator asking the sites by name gets a run of each, even of the
	// one that already serves the version: it reports UP_TO_DATE.
	inv, ver := fixture()
	out := &recorder{}
	d := dispatch.New(inv, ver, out, slog.New(slog.DiscardHandler))
	id := dispatch.ScopedTriggerID("t1", []string{"current", "old-a"})
	if err := d.Snapshot(t.Context(), bus.Snapshot{V: 1, TriggerID: id, Tree: "demo", Site: "origin", Root: v3}); err != nil {
		t.Fatal(err)
	}
	if len(out.commands) != 1 || out.commands[0].Site != "current" || out.commands[0].Pack != "" || out.commands[0].To != v3 {
		t.Fatalf("commands %+v: want one without a pack to the site at v3", out.commands)
	}
	if len(out.requests) != 1 || out.requests[0].From != v1 || out.requests[0].Sites != 1 {
		t.Fatalf("requests %+v: want one from v1 for old-a only", out.requests)
	}
}

func TestDeltaReadyGoesToSitesAtItsBase(t *testing.T) {
	inv, ver := fixture()
	out := &recorder{}
	d := dispatch.New(inv, ver, out, slog.New(slog.DiscardHandler))
	ready := bus.DeltaReady{V: 1, TriggerID: "t1", Tree: "demo", From: v1, To: v3, Pack: bus.DeltaID("demo", v1, v3), PackHash: v2}
	if err := d.DeltaReady(t.Context(), ready); err != nil {
		t.Fatal(err)
	}
	var sites []string
	for _, c := range out.commands {
		sites = append(sites, c.Site)
		if c.Pack != ready.Pack || c.PackHash != v2 || c.From != v1 || c.To != v3 {
			t.Errorf("command %+v", c)
		}
	}
	sort.Strings(sites)
	if strings.Join(sites, ",") != "old-a,old-b" {
		t.Fatalf("sent to %v, want old-a and old-b (not the paused site, not others)", sites)
	}
}

// TestNoWorkTowardsAReplacedVersion: once the origin has published a newer
// version, a late snapshot or pack for an older one moves no site.
func TestNoWorkTowardsAReplacedVersion(t *testing.T) {
	inv, ver := fixture()
	ver["origin/demo"] = v3
	out := &recorder{}
	d := dispatch.New(inv, ver, out, slog.New(slog.DiscardHandler))
	if err := d.Snapshot(t.Context(), bus.Snapshot{V: 1, TriggerID: "old", Tree: "demo", Site: "origin", Root: v2}); err != nil {
		t.Fatal(err)
	}
	ready := bus.DeltaReady{V: 1, TriggerID: "old", Tree: "demo", From: v1, To: v2, Pack: bus.DeltaID("demo", v1, v2), PackHash: v2}
	if err := d.DeltaReady(t.Context(), ready); err != nil {
		t.Fatal(err)
	}
	if len(out.commands) != 0 || len(out.requests) != 0 {
		t.Fatalf("work towards a replaced version: commands %+v, requests %+v", out.commands, out.requests)
	}
}

// TestDeltaReadyCatchesUpSitesThatMoved: a site serving neither the pack's
// base nor its target gets a delta of its own requested.
func TestDeltaReadyCatchesUpSitesThatMoved(t *testing.T) {
	inv, ver := fixture()
	ver["origin/demo"] = v3
	out := &recorder{}
	d := dispatch.New(inv, ver, out, slog.New(slog.DiscardHandler))
	ready := bus.DeltaReady{V: 1, TriggerID: "t", Tree: "demo", From: v1, To: v3, Pack: bus.DeltaID("demo", v1, v3), PackHash: v2}
	if err := d.DeltaReady(t.Context(), ready); err != nil {
		t.Fatal(err)
	}
	if len(out.commands) != 2 { // old-a and old-b, at the pack's base
		t.Fatalf("commands %+v", out.commands)
	}
	for _, c := range out.commands {
		if c.Origin != "origin" {
			t.Errorf("command without the origin: %+v", c)
		}
	}
	// "new" serves nothing: it needs the full delta; "current" is at v3.
	if len(out.requests) != 1 || out.requests[0].From != "" || out.requests[0].To != v3 {
		t.Fatalf("requests %+v, want one from no version to v3", out.requests)
	}
}

// sites lists the sites of the commands.
func sites(cs []bus.SyncCommand) string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Site)
	}
	sort.Strings(out)
	return strings.Join(out, ",")
}

// TestScopedTriggerReachesOnlyItsSites: a trigger naming one site scans
// at the origin as usual, but the snapshot and the ready delta that follow
// it (correlated by the scoped trigger id) give work to that site only.
func TestScopedTriggerReachesOnlyItsSites(t *testing.T) {
	inv, ver := fixture()
	ver["origin/demo"] = v3
	out := &recorder{}
	d := dispatch.New(inv, ver, out, slog.New(slog.DiscardHandler))
	if err := d.Trigger(t.Context(), bus.Trigger{V: 1, TriggerID: "t1", Tree: "demo", Reason: "manual", Sites: []string{"old-a"}}); err != nil {
		t.Fatal(err)
	}
	if len(out.commands) != 1 || out.commands[0].Site != "origin" || out.commands[0].Kind != bus.CommandSnapshot {
		t.Fatalf("commands %+v, want the snapshot at the origin", out.commands)
	}
	id := out.commands[0].TriggerID
	if id != dispatch.ScopedTriggerID("t1", []string{"old-a"}) || strings.Join(dispatch.TriggerScope(id), ",") != "old-a" {
		t.Fatalf("snapshot trigger id %q does not carry the scope", id)
	}
	out.commands = nil
	if err := d.Snapshot(t.Context(), bus.Snapshot{V: 1, TriggerID: id, Tree: "demo", Site: "origin", Root: v3}); err != nil {
		t.Fatal(err)
	}
	// old-a is at v1: one delta from v1, nothing for the others.
	if len(out.commands) != 0 || len(out.requests) != 1 || out.requests[0].From != v1 || out.requests[0].TriggerID != id {
		t.Fatalf("commands %+v, requests %+v: want one request from v1 for old-a", out.commands, out.requests)
	}
	if len(out.finished) != 0 {
		t.Fatalf("finished %+v: the paused subscription is out of scope", out.finished)
	}
	ready := bus.DeltaReady{V: 1, TriggerID: id, Tree: "demo", From: v1, To: v3, Pack: bus.DeltaID("demo", v1, v3), PackHash: v2}
	if err := d.DeltaReady(t.Context(), ready); err != nil {
		t.Fatal(err)
	}
	if got := sites(out.commands); got != "old-a" {
		t.Fatalf("pack sent to %q, want old-a only (old-b is at the same base)", got)
	}
	// The same ready delta of a whole-tree trigger goes to both.
	out.commands = nil
	ready.TriggerID = "t2"
	if err := d.DeltaReady(t.Context(), ready); err != nil {
		t.Fatal(err)
	}
	if got := sites(out.commands); got != "old-a,old-b" {
		t.Fatalf("unscoped: pack sent to %q, want old-a,old-b", got)
	}
}

func TestTriggerScope(t *testing.T) {
	for _, tc := range []struct {
		id, want string
	}{
		{"t1", ""},
		{dispatch.ScopedTriggerID("t1", nil), ""},
		{dispatch.ScopedTriggerID("t1", []string{"a"}), "a"},
		{dispatch.ScopedTriggerID("t1", []string{"a", "b-2"}), "a,b-2"},
		{"t1~", ""},       // empty scope: not one
		{"t1~A.B", ""},    // not site names: not a scope
		{"t1~a,,b", ""},   // an empty name
		{"t~x~a", "a"},    // the last separator counts
		{"t1~a,../b", ""}, // any bad name spoils it
		{"~a", "a"},       // ScopedTriggerID never makes this, but it parses
	} {
		if got := strings.Join(dispatch.TriggerScope(tc.id), ","); got != tc.want {
			t.Errorf("TriggerScope(%q) = %q, want %q", tc.id, got, tc.want)
		}
	}
}

// TestTriggerRefusesAReservedID: a trigger id holding the scope separator
// would be read as a scope later; it is refused for good.
func TestTriggerRefusesAReservedID(t *testing.T) {
	inv, ver := fixture()
	out := &recorder{}
	d := dispatch.New(inv, ver, out, slog.New(slog.DiscardHandler))
	err := d.Trigger(t.Context(), bus.Trigger{V: 1, TriggerID: "t1~old-a", Tree: "demo", Reason: "manual"})
	if !bus.IsPermanent(err) || !strings.Contains(err.Error(), "reserves") {
		t.Fatalf("Trigger = %v, want a permanent error", err)
	}
	if len(out.commands) != 0 {
		t.Fatalf("commands %+v", out.commands)
	}
}

// TestPausedTreeOrOriginDropsTriggers: nothing is scanned for a paused
// or disabled tree, nor at a paused origin, and the origin's run ends
// DISABLED saying why; resumed, the same trigger scans.
func TestPausedTreeOrOriginDropsTriggers(t *testing.T) {
	inv, ver := fixture()
	out := &recorder{}
	d := dispatch.New(inv, ver, out, slog.New(slog.DiscardHandler))
	trig := bus.Trigger{V: 1, TriggerID: "t1", Tree: "demo", Reason: "manual"}
	tree := inv.trees["demo"]
	tree.Paused = true
	inv.trees["demo"] = tree
	if err := d.Trigger(t.Context(), trig); err != nil {
		t.Fatal(err)
	}
	tree.Paused = false
	off := false
	tree.Enabled = &off
	inv.trees["demo"] = tree
	if err := d.Trigger(t.Context(), trig); err != nil {
		t.Fatal(err)
	}
	tree.Enabled = nil
	inv.trees["demo"] = tree
	inv.paused = map[string]bool{"origin": true}
	if err := d.Trigger(t.Context(), trig); err != nil {
		t.Fatal(err)
	}
	if len(out.commands) != 0 {
		t.Fatalf("paused: commands %+v", out.commands)
	}
	var why []string
	for _, f := range out.finished {
		if f.Site != "origin" || f.Kind != bus.CommandSnapshot || f.Result != bus.ResultDisabled {
			t.Errorf("finished %+v, want the origin's snapshot DISABLED", f)
		}
		why = append(why, f.Error)
	}
	if want := []string{"tree paused", "tree disabled", "origin site paused"}; strings.Join(why, ",") != strings.Join(want, ",") {
		t.Errorf("DISABLED because %q, want %q", why, want)
	}
	inv.paused = nil
	if err := d.Trigger(t.Context(), trig); err != nil {
		t.Fatal(err)
	}
	if len(out.commands) != 1 {
		t.Fatalf("resumed: commands %+v, want the snapshot", out.commands)
	}
	if out.commands[0].RunID == out.finished[0].RunID {
		t.Error("the real run has the id of the DISABLED one")
	}
}

// TestSnapshotCommandCarriesTheTreeRules: the origin gets the tree's type
// and deletion rules, and the trigger's confirmation.
func TestSnapshotCommandCarriesTheTreeRules(t *testing.T) {
	inv, ver := fixture()
	tree := inv.trees["demo"]
	tree.Type, tree.SyncLatest, tree.MaxDeletions, tree.ProtectedPaths = bus.TreeVersioned, 3, 100, []string{"/local/"}
	inv.trees["demo"] = tree
	out := &recorder{}
	d := dispatch.New(inv, ver, out, slog.New(slog.DiscardHandler))
	if err := d.Trigger(t.Context(), bus.Trigger{V: 1, TriggerID: "t1", Tree: "demo", Reason: "manual", ConfirmDeletions: true}); err != nil {
		t.Fatal(err)
	}
	c := out.commands[0]
	if c.Type != bus.TreeVersioned || c.SyncLatest != 3 || c.MaxDeletions != 100 || len(c.ProtectedPaths) != 1 || !c.ConfirmDeletions {
		t.Errorf("snapshot command %+v", c)
	}
}

// TestPausedSiteGetsNoWork: a paused site gets no command even though its
// subscription itself is not paused (it was made after the pause, say);
// its run is recorded as DISABLED with the reason.
func TestPausedSiteGetsNoWork(t *testing.T) {
	inv, ver := fixture()
	ver["origin/demo"] = v3
	inv.paused = map[string]bool{"current": true, "old-b": true}
	out := &recorder{}
	d := dispatch.New(inv, ver, out, slog.New(slog.DiscardHandler))
	if err := d.Snapshot(t.Context(), bus.Snapshot{V: 1, TriggerID: "t1", Tree: "demo", Site: "origin", Root: v3}); err != nil {
		t.Fatal(err)
	}
	if len(out.commands) != 0 {
		t.Fatalf("commands %+v: current is paused", out.commands)
	}
	why := map[string]string{}
	for _, f := range out.finished {
		if f.Result != bus.ResultDisabled {
			t.Errorf("finished %+v", f)
		}
		why[f.Site] = f.Error
	}
	if len(why) != 3 || why["current"] != "site paused" || why["old-b"] != "site paused" || why["paused"] != "subscription paused" {
		t.Fatalf("disabled runs %v", why)
	}
	ready := bus.DeltaReady{V: 1, TriggerID: "t1", Tree: "demo", From: v1, To: v3, Pack: bus.DeltaID("demo", v1, v3), PackHash: v2}
	if err := d.DeltaReady(t.Context(), ready); err != nil {
		t.Fatal(err)
	}
	if got := sites(out.commands); got != "old-a" {
		t.Fatalf("pack sent to %q, want old-a only", got)
	}
}

// TestPausedTreeGetsNoWork: a snapshot or pack of a tree paused since its
// trigger moves no site.
func TestPausedTreeGetsNoWork(t *testing.T) {
	inv, ver := fixture()
	ver["origin/demo"] = v3
	tree := inv.trees["demo"]
	tree.Paused = true
	inv.trees["demo"] = tree
	out := &recorder{}
	d := dispatch.New(inv, ver, out, slog.New(slog.DiscardHandler))
	if err := d.Snapshot(t.Context(), bus.Snapshot{V: 1, TriggerID: "t1", Tree: "demo", Site: "origin", Root: v3}); err != nil {
		t.Fatal(err)
	}
	ready := bus.DeltaReady{V: 1, TriggerID: "t1", Tree: "demo", From: v1, To: v3, Pack: bus.DeltaID("demo", v1, v3), PackHash: v2}
	if err := d.DeltaReady(t.Context(), ready); err != nil {
		t.Fatal(err)
	}
	if len(out.commands) != 0 || len(out.requests) != 0 {
		t.Fatalf("commands %+v, requests %+v", out.commands, out.requests)
	}
	if len(out.finished) != 5 {
		t.Fatalf("finished %+v, want five DISABLED runs", out.finished)
	}
	for _, f := range out.finished {
		want := "tree paused"
		if f.Site == "paused" {
			want = "subscription paused"
		}
		if f.Result != bus.ResultDisabled || f.Error != want {
			t.Errorf("finished %+v, want DISABLED: %s", f, want)
		}
	}
}

// TestApplyCommandsCarryTheLinkAndPriority: an apply command says at what
// pace the site's link takes it, and an urgent tree's are urgent.
func TestApplyCommandsCarryTheLinkAndPriority(t *testing.T) {
	inv, ver := fixture()
	inv.links = map[string]inventoryapi.Site{"old-a": {BandwidthLimit: 20_000_000, BandwidthWindows: []string{"* 22:00-06:00 unlimited"}}}
	tree := inv.trees["demo"]
	tree.Priority = "urgent"
	inv.trees["demo"] = tree
	out := &recorder{}
	d := dispatch.New(inv, ver, out, slog.New(slog.DiscardHandler))
	if err := d.DeltaReady(t.Context(), bus.DeltaReady{V: 1, TriggerID: "t1", Tree: "demo", From: v1, To: v3, Pack: "demo/p", PackHash: "h"}); err != nil {
		t.Fatal(err)
	}
	var seen int
	for _, c := range out.commands {
		if !c.Urgent {
			t.Errorf("command to %s of an urgent tree is not urgent", c.Site)
		}
		if c.Site == "old-a" {
			seen++
			if c.BandwidthLimit != 20_000_000 || len(c.BandwidthWindows) != 1 {
				t.Errorf("command to old-a: limit %d windows %q", c.BandwidthLimit, c.BandwidthWindows)
			}
		} else if c.BandwidthLimit != 0 || c.BandwidthWindows != nil {
			t.Errorf("command to %s carries another site's link", c.Site)
		}
	}
	if seen != 1 {
		t.Fatalf("commands %+v, want one to old-a", out.commands)
	}
}

// TestCanariesGoFirst: a new version goes to the canary sites only; once
// every canary serves it, the others get it.
func TestCanariesGoFirst(t *testing.T) {
	inv, ver := fixture()
	tree := inv.trees["demo"]
	tree.CanarySites = []string{"old-a", "elsewhere"} // "elsewhere" does not subscribe: it holds nothing
	inv.trees["demo"] = tree
	out := &recorder{}
	d := dispatch.New(inv, ver, out, slog.New(slog.DiscardHandler))
	if err := d.Snapshot(t.Context(), bus.Snapshot{V: 1, TriggerID: "t1", Tree: "demo", Site: "origin", Root: v2}); err != nil {
		t.Fatal(err)
	}
	if len(out.requests) != 1 || out.requests[0].From != v1 || len(out.commands) != 0 || len(out.finished) != 0 {
		t.Fatalf("held rollout: requests %+v, commands %+v, finished %+v; want the canary's delta only", out.requests, out.commands, out.finished)
	}
	if err := d.DeltaReady(t.Context(), bus.DeltaReady{V: 1, TriggerID: "t1", Tree: "demo", From: v1, To: v2, Pack: "demo/p", PackHash: "h"}); err != nil {
		t.Fatal(err)
	}
	if len(out.commands) != 1 || out.commands[0].Site != "old-a" {
		t.Fatalf("commands %+v, want old-a only (old-b is at the same base but waits)", out.commands)
	}
	// A failed canary, or another site, moves nothing.
	for _, fin := range []bus.SyncFinished{
		{TriggerID: "t1", Site: "old-a", Tree: "demo", Kind: bus.CommandApply, To: v2, Result: bus.ResultFailed},
		{TriggerID: "t1", Site: "old-b", Tree: "demo", Kind: bus.CommandApply, To: v2, Result: bus.ResultCompleted},
		{TriggerID: "t1", Site: "old-a", Tree: "demo", Kind: bus.CommandApply, To: v2, Result: bus.ResultCompleted}, // KV not updated yet
	} {
		if err := d.RunFinished(t.Context(), fin); err != nil {
			t.Fatal(err)
		}
	}
	if len(out.requests) != 1 || len(out.commands) != 1 {
		t.Fatalf("rollout moved early: requests %+v, commands %+v", out.requests, out.commands)
	}
	// The canary serves v2: the rest follow.
	ver["old-a/demo"] = v2
	if err := d.RunFinished(t.Context(), bus.SyncFinished{TriggerID: "t1", Site: "old-a", Tree: "demo", Kind: bus.CommandApply, To: v2, Result: bus.ResultCompleted}); err != nil {
		t.Fatal(err)
	}
	froms := map[string]bool{}
	for _, r := range out.requests[1:] {
		froms[r.From] = true
	}
	if len(froms) != 3 || !froms[v1] || !froms[v3] || !froms[""] {
		t.Fatalf("released requests from %v, want v1 (old-b), v3 (current) and none (new)", froms)
	}
	for _, id := range out.msgIDs[1:] {
		if !strings.HasSuffix(id, "/t1/rollout") {
			t.Errorf("released request id %q: the same as the first round's, JetStream would drop it", id)
		}
	}
	if len(out.finished) != 1 || out.finished[0].Site != "paused" || out.finished[0].Result != bus.ResultDisabled {
		t.Fatalf("finished %+v, want the paused subscription DISABLED on release", out.finished)
	}
	if err := d.DeltaReady(t.Context(), bus.DeltaReady{V: 1, TriggerID: "t1", Tree: "demo", From: v1, To: v2, Pack: "demo/p", PackHash: "h"}); err != nil {
		t.Fatal(err)
	}
	if last := out.commands[len(out.commands)-1]; last.Site != "old-b" {
		t.Fatalf("after release the pack went to %s, want old-b", last.Site)
	}
	// A trigger naming sites is an operator's: it is not held.
	out2 := &recorder{}
	ver["old-a/demo"] = v1
	d2 := dispatch.New(inv, ver, out2, slog.New(slog.DiscardHandler))
	scoped := dispatch.ScopedTriggerID("t2", []string{"old-b"})
	if err := d2.DeltaReady(t.Context(), bus.DeltaReady{V: 1, TriggerID: scoped, Tree: "demo", From: v1, To: v2, Pack: "demo/p", PackHash: "h"}); err != nil {
		t.Fatal(err)
	}
	if len(out2.commands) != 1 || out2.commands[0].Site != "old-b" {
		t.Fatalf("scoped trigger: commands %+v, want old-b", out2.commands)
	}
}

// TestReplicaMovesTriggerTheTreesMadeOfIt: a tree whose source is a
// site's replica of another is synced when that replica gets a version.
func TestReplicaMovesTriggerTheTreesMadeOfIt(t *testing.T) {
	inv, ver := fixture()
	off := false
	inv.trees["lab"] = inventoryapi.Tree{Name: "lab", OriginSite: "old-a", Source: "replica:demo", Keep: 2}
	inv.trees["elsewhere"] = inventoryapi.Tree{Name: "elsewhere", OriginSite: "old-b", Source: "replica:demo", Keep: 2}
	inv.trees["off"] = inventoryapi.Tree{Name: "off", OriginSite: "old-a", Source: "replica:demo", Keep: 2, Enabled: &off}
	out := &recorder{}
	d := dispatch.New(inv, ver, out, slog.New(slog.DiscardHandler))
	fin := bus.SyncFinished{RunID: "run-1", TriggerID: "t1", Site: "old-a", Tree: "demo", Kind: bus.CommandApply, To: v2, Result: bus.ResultCompleted}
	for range 2 { // a redelivery triggers with the same id
		if err := d.RunFinished(t.Context(), fin); err != nil {
			t.Fatal(err)
		}
	}
	if len(out.triggers) != 2 || out.triggers[0].Tree != "lab" || out.triggers[0].Reason != "chain" || out.triggers[0].TriggerID != out.triggers[1].TriggerID {
		t.Fatalf("triggers %+v, want lab twice with one id (not elsewhere: another origin; not off: disabled)", out.triggers)
	}
	for _, other := range []bus.SyncFinished{
		{RunID: "run-2", Site: "old-a", Tree: "demo", Kind: bus.CommandApply, To: v2, Result: bus.ResultUpToDate}, // nothing moved
		{RunID: "run-3", Site: "old-a", Tree: "demo", Kind: bus.CommandApply, To: v2, Result: bus.ResultFailed},
		{RunID: "run-4", Site: "old-a", Tree: "demo", Kind: bus.CommandSnapshot, To: v2, Result: bus.ResultCompleted},
	} {
		if err := d.RunFinished(t.Context(), other); err != nil {
			t.Fatal(err)
		}
	}
	if len(out.triggers) != 2 {
		t.Fatalf("triggers %+v after runs that moved no replica", out.triggers)
	}
}

// TestChainStepsSitesToTheTarget: the first pack of a chain (v1→v2
// towards v3) goes to the sites at v1, although v2 is not the newest
// version; a site that finishes the step short of the newest asks for the
// next delta.
func TestChainStepsSitesToTheTarget(t *testing.T) {
	inv, ver := fixture()
	ver["origin/demo"] = v3
	out := &recorder{}
	d := dispatch.New(inv, ver, out, slog.New(slog.DiscardHandler))
	ready := bus.DeltaReady{V: 1, TriggerID: "t", Tree: "demo", From: v1, To: v2, Target: v3, Pack: bus.DeltaID("demo", v1, v2), PackHash: "h"}
	if err := d.DeltaReady(t.Context(), ready); err != nil {
		t.Fatal(err)
	}
	if got := sites(out.commands); got != "old-a,old-b" {
		t.Fatalf("commands to %s, want old-a,old-b", got)
	}
	for _, c := range out.commands {
		if c.From != v1 || c.To != v2 || c.Pack != ready.Pack {
			t.Fatalf("command %+v, want the first step v1→v2", c)
		}
	}
	// "new" needs the full version: asked towards the target, not v2.
	if len(out.requests) != 1 || out.requests[0].From != "" || out.requests[0].To != v3 {
		t.Fatalf("requests %+v, want one from no version to v3", out.requests)
	}
	// old-a applied the step: it is at v2, the newest is v3.
	ver["old-a/demo"] = v2
	out.requests = nil
	fin := bus.SyncFinished{TriggerID: "t", RunID: "r", Site: "old-a", Tree: "demo", Kind: bus.CommandApply, From: v1, To: v2, Result: bus.ResultCompleted}
	if err := d.RunFinished(t.Context(), fin); err != nil {
		t.Fatal(err)
	}
	if len(out.requests) != 1 || out.requests[0].From != v2 || out.requests[0].To != v3 || out.requests[0].Stage != "catch-up" {
		t.Fatalf("requests after the step %+v, want v2→v3 (catch-up)", out.requests)
	}
	// At the newest version, or failed: nothing more.
	out.requests = nil
	for _, f := range []bus.SyncFinished{
		{TriggerID: "t", RunID: "r2", Site: "current", Tree: "demo", Kind: bus.CommandApply, From: v2, To: v3, Result: bus.ResultCompleted},
		{TriggerID: "t", RunID: "r3", Site: "old-b", Tree: "demo", Kind: bus.CommandApply, From: v1, To: v2, Result: bus.ResultFailed},
	} {
		if err := d.RunFinished(t.Context(), f); err != nil {
			t.Fatal(err)
		}
	}
	if len(out.requests) != 0 {
		t.Fatalf("requests %+v, want none", out.requests)
	}
	// A chain towards a replaced version goes nowhere.
	ver["origin/demo"] = strings.Repeat("4", 64)
	out.commands = nil
	if err := d.DeltaReady(t.Context(), ready); err != nil {
		t.Fatal(err)
	}
	if len(out.commands) != 0 || len(out.requests) != 0 {
		t.Fatalf("work towards a replaced target: %+v %+v", out.commands, out.requests)
	}
}
