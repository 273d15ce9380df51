package inventory_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/pulpdist/pulpdist/libs/bus"
	"github.com/pulpdist/pulpdist/libs/inventoryapi"
	"github.com/pulpdist/pulpdist/libs/natstest"
	"github.com/pulpdist/pulpdist/services/inventory"
)

// TestAgentReportsOnlyForItsSite: what a site-agent says about another
// site (a run, a snapshot) is kept as a problem and changes nothing; what
// it says about its own is recorded.
func TestAgentReportsOnlyForItsSite(t *testing.T) {
	for _, db := range databases {
		t.Run(db.name, func(t *testing.T) { testAgentReports(t, start(t, db.url(t))) })
	}
}

func testAgentReports(t *testing.T, h *harness) {
	ctx := context.Background()
	seed(t, h)
	for _, site := range []string{"replica-a", "replica-b"} {
		_, err := h.client.Subscribe(ctx, inventoryapi.Subscription{Site: site, Tree: "docs"})
		mustOK(t, err)
	}
	now := time.Now().UTC()
	finished := func(run, site string) bus.SyncFinished {
		return bus.SyncFinished{RunID: run, TriggerID: "t1", Site: site, Tree: "docs", Kind: bus.CommandApply, To: root('1'),
			Result: bus.ResultCompleted, Files: 1, Bytes: 1, FinishedAt: now}
	}
	const agentA = "/pulpdist/siteagent/replica-a"
	publishFrom(t, h, "forged-run", agentA, bus.EntitySync, bus.ActionFinished, finished("run-b", "replica-b"))
	publishFrom(t, h, "forged-snap", agentA, bus.EntitySnapshot, bus.ActionPublished, bus.Snapshot{
		V: bus.MessageVersion, TriggerID: "t1", Tree: "docs", Site: "origin", Root: root('2'), PublishedAt: now})
	publishFrom(t, h, "own-run", agentA, bus.EntitySync, bus.ActionFinished, finished("run-a", "replica-a"))

	eventually(t, "own run recorded, forged ones kept as problems", func() (bool, string) {
		runs, err := h.client.Runs(ctx, "docs", "")
		if err != nil || len(runs) != 1 {
			return false, jsonString(runs, err)
		}
		ps, err := h.client.Problems(ctx, 0)
		return err == nil && len(ps) == 2 && runs[0].ID == "run-a", jsonString(ps, err)
	})
	ps, err := h.client.Problems(ctx, 0)
	mustOK(t, err)
	for _, p := range ps {
		if !strings.Contains(p.Reason, `site-agent of "replica-a" reported for site`) {
			t.Errorf("problem %+v", p)
		}
	}
	if vs, err := h.client.Versions(ctx, "docs"); err != nil || len(vs) != 0 {
		t.Errorf("versions after a forged snapshot: %s", jsonString(vs, err))
	}
	rows, err := h.client.Overview(ctx)
	mustOK(t, err)
	for _, r := range rows {
		if r.Site == "replica-b" && r.Version != "" {
			t.Errorf("replica-b serves %s after a report from replica-a's agent", r.Version)
		}
	}
}

// publishSigned publishes an event from the site-agent of site, signed
// with token (none when ""); tamper, if set, changes the event after it
// was signed.
func publishSigned(t *testing.T, h *harness, id, site, token string, data any, tamper func(*event.Event)) {
	t.Helper()
	ev := event.New()
	ev.SetID(id)
	ev.SetSource("/pulpdist/siteagent/" + site)
	ev.SetType(bus.EventType(bus.EntitySync, bus.ActionFinished))
	about := aboutOf(t, data)
	ev.SetSubject(about.Subject())
	ev.SetTime(time.Now().UTC())
	mustOK(t, ev.SetData("application/json", data))
	if token != "" {
		tokID, err := bus.ReportTokenID(token)
		mustOK(t, err)
		mustOK(t, bus.SignReport(&ev, tokID, bus.ReportKey(token)))
	}
	if tamper != nil {
		tamper(&ev)
	}
	body, err := json.Marshal(ev)
	mustOK(t, err)
	publishRaw(t, h.js, bus.EventSubject(bus.EntitySync, bus.ActionFinished, about), body)
}

// TestSignedAgentReports: by default (signed reports required), a site-agent's
// event is applied only when signed with a live agent token of its own
// site and unchanged since; every other one is kept as a problem, without
// counting as a heartbeat.
func TestSignedAgentReports(t *testing.T) {
	for _, db := range databases {
		t.Run(db.name, func(t *testing.T) {
			h := startWith(t, inventory.Config{NATSURL: natstest.Start(t), DatabaseURL: db.url(t)})
			testSignedAgentReports(t, h)
		})
	}
}

func testSignedAgentReports(t *testing.T, h *harness) {
	ctx := context.Background()
	seed(t, h)
	_, err := h.client.Subscribe(ctx, inventoryapi.Subscription{Site: "replica-a", Tree: "docs"})
	mustOK(t, err)
	token := func(role, site string) string {
		t.Helper()
		tc, err := h.client.CreateToken(ctx, inventoryapi.TokenCreate{Role: role, Site: site})
		mustOK(t, err)
		return tc.Secret
	}
	agentA, agentB, viewer := token("agent", "replica-a"), token("agent", "replica-b"), token("viewer", "")
	revoked, err := h.client.CreateToken(ctx, inventoryapi.TokenCreate{Role: "agent", Site: "replica-a"})
	mustOK(t, err)
	_, err = h.client.RevokeToken(ctx, revoked.ID)
	mustOK(t, err)
	run := func(id string) bus.SyncFinished {
		return bus.SyncFinished{RunID: id, TriggerID: "t1", Site: "replica-a", Tree: "docs", Kind: bus.CommandApply, To: root('1'),
			Result: bus.ResultCompleted, Files: 1, Bytes: 1, FinishedAt: time.Now().UTC()}
	}
	bad := map[string]string{
		"unsigned":     "unsigned report",
		"other-site":   `signed with token`,
		"viewer":       "not an agent token",
		"revoked":      "revoked token",
		"tampered":     "MAC does not match",
		"forged-token": "unknown token",
		"not-an-agent": "not from the site's agent",
	}
	publishSigned(t, h, "unsigned", "replica-a", "", run("r-unsigned"), nil)
	publishSigned(t, h, "other-site", "replica-a", agentB, run("r-other"), nil)
	publishSigned(t, h, "viewer", "replica-a", viewer, run("r-viewer"), nil)
	publishSigned(t, h, "revoked", "replica-a", revoked.Secret, run("r-revoked"), nil)
	publishSigned(t, h, "tampered", "replica-a", agentA, run("r-tampered"), func(e *event.Event) {
		mustOK(t, e.SetData("application/json", run("r-tampered-2")))
	})
	publishSigned(t, h, "forged-token", "replica-a", "pdt_0123456789ab_"+strings.Repeat("A", 43), run("r-forged"), nil)
	// Another service may record a DISABLED run, not a result that moves
	// a site to a version.
	publishFrom(t, h, "not-an-agent", "/pulpdist/scheduler", bus.EntitySync, bus.ActionFinished, run("r-scheduler"))
	disabled := run("r-disabled")
	disabled.Result, disabled.To = bus.ResultDisabled, ""
	publishFrom(t, h, "disabled", "/pulpdist/scheduler", bus.EntitySync, bus.ActionFinished, disabled)
	publishSigned(t, h, "good", "replica-a", agentA, run("r-good"), nil)

	eventually(t, "the signed run recorded, the others kept as problems", func() (bool, string) {
		runs, err := h.client.Runs(ctx, "docs", "")
		ps, perr := h.client.Problems(ctx, 0)
		return err == nil && perr == nil && len(runs) == 2 && runs[0].ID == "r-good" && runs[1].ID == "r-disabled" &&
			len(ps) == len(bad), jsonString(runs, err) + jsonString(ps, perr)
	})
	ps, err := h.client.Problems(ctx, 0)
	mustOK(t, err)
	for _, p := range ps {
		if want, ok := bad[p.EventID]; !ok || !strings.Contains(p.Reason, want) {
			t.Errorf("problem %s: %q, want it to say %q", p.EventID, p.Reason, want)
		}
	}
	// Only the good report moved replica-a's heartbeat.
	site, err := h.client.Site(ctx, "replica-a")
	mustOK(t, err)
	if site.LastHeartbeat == nil {
		t.Error("no heartbeat from the signed report")
	}
	if site, err := h.client.Site(ctx, "replica-b"); err != nil || site.LastHeartbeat != nil {
		t.Errorf("replica-b heartbeat %v, %v", site.LastHeartbeat, err)
	}
}

// TestRunsOfUnknownTreesAreProblems: a run of a tree the inventory does
// not know (never declared, or deleted) is kept as a problem, not
// recorded, once however often it is delivered.
func TestRunsOfUnknownTreesAreProblems(t *testing.T) {
	h := start(t, databases[0].url(t))
	ctx := context.Background()
	seed(t, h)
	ghost := bus.SyncStarted{RunID: "r-ghost", TriggerID: "t1", Site: "replica-a", Tree: "ghost", Kind: bus.CommandApply,
		To: root('1'), StartedAt: time.Now().UTC()}
	for range 2 {
		publishFrom(t, h, "ghost-started", "/pulpdist/siteagent/replica-a", bus.EntitySync, bus.ActionStarted, ghost)
	}
	publishFrom(t, h, "ghost-finished", "/pulpdist/siteagent/replica-a", bus.EntitySync, bus.ActionFinished, bus.SyncFinished{
		RunID: "r-ghost", TriggerID: "t1", Site: "replica-a", Tree: "ghost", Kind: bus.CommandApply, To: root('1'),
		Result: bus.ResultCompleted, FinishedAt: time.Now().UTC()})
	eventually(t, "problems kept", func() (bool, string) {
		ps, err := h.client.Problems(ctx, 0)
		return err == nil && len(ps) == 2, jsonString(ps, err)
	})
	if runs, err := h.client.Runs(ctx, "", ""); err != nil || len(runs) != 0 {
		t.Fatalf("runs of an unknown tree recorded: %s", jsonString(runs, err))
	}
}
