package inventory_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/pulpdist/pulpdist/libs/bus"
	"github.com/pulpdist/pulpdist/libs/inventoryapi"
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
