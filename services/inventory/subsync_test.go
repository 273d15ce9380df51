package inventory_test

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"testing"

	"github.com/pulpdist/pulpdist/libs/bus"
	"github.com/pulpdist/pulpdist/libs/inventoryapi"
)

// TestSubscriptionSync: POST /api/v1/subscriptions/{site}/{tree}/sync
// publishes a trigger limited to the site, for operators only, and only
// for a subscription that exists.
func TestSubscriptionSync(t *testing.T) {
	for _, db := range databases {
		t.Run(db.name, func(t *testing.T) {
			h := start(t, db.url(t))
			testSubscriptionSync(t, h)
		})
	}
}

func testSubscriptionSync(t *testing.T, h *harness) {
	ctx := context.Background()
	seed(t, h)
	_, err := h.client.Subscribe(ctx, inventoryapi.Subscription{Site: "replica-a", Tree: "docs"})
	mustOK(t, err)
	tokens := map[string]string{}
	ids := map[string]string{}
	for _, role := range []string{"viewer", "operator"} {
		tc, err := h.client.CreateToken(ctx, inventoryapi.TokenCreate{Role: role})
		mustOK(t, err)
		tokens[role], ids[role] = "Bearer "+tc.Secret, tc.ID
	}
	triggers := consumer(t, h.js, bus.StreamTriggers, bus.TriggerSubject("docs"))

	// A viewer is refused, whether or not the subscription exists.
	for _, p := range []string{"replica-a/docs", "replica-b/docs", "nowhere/docs"} {
		code, hdr, body := call(t, h, http.MethodPost, "/api/v1/subscriptions/"+p+"/sync", tokens["viewer"])
		wantRefusal(t, "viewer sync "+p, http.StatusForbidden, code, hdr, body)
	}
	// An operator gets 404 for a subscription that does not exist (the
	// site exists but does not subscribe; the site or tree is unknown),
	// 400 for a name that cannot be one.
	for _, tc := range []struct {
		path string
		want int
	}{
		{"replica-b/docs", http.StatusNotFound},
		{"nowhere/docs", http.StatusNotFound},
		{"replica-a/nothing", http.StatusNotFound},
		{"Replica-A/docs", http.StatusBadRequest},
		{"replica-a/docs.v2", http.StatusBadRequest},
	} {
		code, _, body := call(t, h, http.MethodPost, "/api/v1/subscriptions/"+tc.path+"/sync", tokens["operator"])
		var p inventoryapi.Problem
		if code != tc.want || json.Unmarshal([]byte(body), &p) != nil || p.Detail == "" {
			t.Errorf("operator sync %s: %d %s, want a %d problem", tc.path, code, body, tc.want)
		}
	}

	code, _, body := call(t, h, http.MethodPost, "/api/v1/subscriptions/replica-a/docs/sync", tokens["operator"])
	if code != http.StatusAccepted {
		t.Fatalf("operator sync: %d %s", code, body)
	}
	acc := decodeAs[inventoryapi.SyncAccepted](t, body)
	if acc.Tree != "docs" || acc.Site != "replica-a" || acc.TriggerID == "" {
		t.Fatalf("accepted = %+v", acc)
	}
	// The refused requests published nothing: the first trigger is ours.
	tr, err := bus.Decode[bus.Trigger](next(t, triggers).Data())
	mustOK(t, err)
	if tr.TriggerID != acc.TriggerID || tr.Tree != "docs" || tr.Reason != "manual" || !slices.Equal(tr.Sites, []string{"replica-a"}) {
		t.Fatalf("trigger = %+v, want one limited to replica-a", tr)
	}
	// A tree sync stays a trigger of every subscription.
	acc2, err := h.client.Sync(ctx, "docs")
	mustOK(t, err)
	tr, err = bus.Decode[bus.Trigger](next(t, triggers).Data())
	mustOK(t, err)
	if tr.TriggerID != acc2.TriggerID || tr.Sites != nil {
		t.Fatalf("tree trigger = %+v, want no sites", tr)
	}

	log, err := h.client.AuditLog(ctx, 0)
	mustOK(t, err)
	if !slices.ContainsFunc(log, func(e inventoryapi.AuditEntry) bool {
		var sum map[string]string
		return e.Action == "trigger" && e.Entity == "subscription" && e.Name == "replica-a/docs" &&
			e.Actor == "token "+ids["operator"] && json.Unmarshal(e.Summary, &sum) == nil && sum["trigger_id"] == acc.TriggerID
	}) {
		t.Errorf("audit log %+v lacks the operator's subscription sync", log)
	}
}

// TestPauseIsKept: pausing a site or tree shows on the site or tree, and
// holds for a subscription made afterwards until it is resumed.
func TestPauseIsKept(t *testing.T) {
	h := start(t, databases[0].url(t))
	ctx := context.Background()
	seed(t, h)
	subs, err := h.client.SetPaused(ctx, "sites", "replica-b", true)
	mustOK(t, err)
	if len(subs) != 0 {
		t.Fatalf("paused %+v, want no subscription", subs)
	}
	_, err = h.client.SetPaused(ctx, "trees", "docs", true)
	mustOK(t, err)
	_, err = h.client.Subscribe(ctx, inventoryapi.Subscription{Site: "replica-b", Tree: "docs"})
	mustOK(t, err)
	site, err := h.client.Site(ctx, "replica-b")
	mustOK(t, err)
	tree, err := h.client.Tree(ctx, "docs")
	mustOK(t, err)
	if !site.Paused || !tree.Paused {
		t.Fatalf("after pause and a new subscription: site %+v, tree %+v", site, tree)
	}
	sites, err := h.client.Sites(ctx)
	mustOK(t, err)
	for _, s := range sites {
		if s.Paused != (s.Name == "replica-b") {
			t.Errorf("listed %s paused=%t", s.Name, s.Paused)
		}
	}
	_, err = h.client.SetPaused(ctx, "sites", "replica-b", false)
	mustOK(t, err)
	_, err = h.client.SetPaused(ctx, "trees", "docs", false)
	mustOK(t, err)
	site, err = h.client.Site(ctx, "replica-b")
	mustOK(t, err)
	tree, err = h.client.Tree(ctx, "docs")
	mustOK(t, err)
	if site.Paused || tree.Paused {
		t.Fatalf("after resume: site %+v, tree %+v", site, tree)
	}
}
