package inventory_test

import (
	"context"
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/pulpdist/pulpdist/libs/bus"
	"github.com/pulpdist/pulpdist/libs/inventoryapi"
)

func TestDeletions(t *testing.T) {
	for _, db := range databases {
		t.Run(db.name, func(t *testing.T) { testDeletions(t, start(t, db.url(t))) })
	}
}

func testDeletions(t *testing.T, h *harness) {
	ctx := context.Background()
	seed(t, h)
	for _, site := range []string{"replica-a", "replica-b"} {
		_, err := h.client.Subscribe(ctx, inventoryapi.Subscription{Site: site, Tree: "docs"})
		mustOK(t, err)
	}
	agentTok, err := h.client.CreateToken(ctx, inventoryapi.TokenCreate{Role: "agent", Site: "replica-a"})
	mustOK(t, err)
	agent := h.client.WithToken(agentTok.Secret)
	if _, err := agent.Site(ctx, "replica-a"); err != nil {
		t.Fatalf("agent reads its site: %v", err)
	}
	deleted := consumer(t, h.js, bus.StreamEvents, bus.EventFilter("*", bus.ActionDeleted))
	events := bus.NewEvents(h.js, "/test")
	mustOK(t, events.Publish(ctx, bus.EntitySnapshot, bus.ActionPublished, bus.About{Tree: "docs", Site: "origin"}, bus.Snapshot{
		V: 1, TriggerID: "t0", Tree: "docs", Site: "origin", Root: root('1'), Files: 1, Bytes: 10, PublishedAt: time.Now().UTC()}))
	mustOK(t, events.Publish(ctx, bus.EntitySync, bus.ActionFinished, bus.About{Tree: "docs", Site: "replica-a"}, bus.SyncFinished{
		RunID: "run-1", TriggerID: "t0", Site: "replica-a", Tree: "docs", Kind: bus.CommandApply, To: root('1'),
		Result: bus.ResultCompleted, Files: 1, Bytes: 10, FinishedAt: time.Now().UTC()}))
	eventually(t, "run recorded", func() (bool, string) {
		runs, err := h.client.Runs(ctx, "docs", "replica-a")
		return err == nil && len(runs) == 1, jsonString(runs, err)
	})

	// Refusals first: the origin of a tree stays, and so does all else.
	_, err = h.client.DeleteSite(ctx, "origin", "")
	if p := problem(err); p == nil || p.Status != http.StatusConflict || !strings.Contains(p.Detail, "origin of tree docs") {
		t.Fatalf("delete origin: %v, want 409 naming docs", err)
	}
	_, tag, err := h.client.TreeTagged(ctx, "docs")
	mustOK(t, err)
	_, _, err = h.client.UpdateTree(ctx, "docs", tag, inventoryapi.TreePatch{Schedule: ptr("0 4 * * *")})
	mustOK(t, err)
	if _, err := h.client.DeleteTree(ctx, "docs", tag); problem(err) == nil || problem(err).Status != http.StatusPreconditionFailed {
		t.Fatalf("delete with the tag before an update: %v, want 412", err)
	}
	for path, want := range map[string]int{
		"/api/v1/trees/Docs":                  http.StatusBadRequest,
		"/api/v1/sites/-x":                    http.StatusBadRequest,
		"/api/v1/subscriptions/replica-a/a_b": http.StatusBadRequest,
		"/api/v1/trees/nope":                  http.StatusNotFound,
		"/api/v1/subscriptions/origin/docs":   http.StatusNotFound,
	} {
		if code, body := h.do(t, http.MethodDelete, path, ""); code != want {
			t.Errorf("DELETE %s: %d %s, want %d", path, code, body, want)
		}
	}
	if vs, err := h.client.Versions(ctx, "docs"); err != nil || len(vs) != 1 {
		t.Fatalf("versions after refusals: %v, %v", vs, err)
	}

	// Who may not delete learns nothing of what exists.
	viewer, err := h.client.CreateToken(ctx, inventoryapi.TokenCreate{Role: "operator"})
	mustOK(t, err)
	c1, _, b1 := call(t, h, http.MethodDelete, "/api/v1/trees/docs", "Bearer "+viewer.Secret)
	c2, _, b2 := call(t, h, http.MethodDelete, "/api/v1/trees/nope", "Bearer "+viewer.Secret)
	if c1 != http.StatusForbidden || c1 != c2 || b1 != b2 {
		t.Errorf("operator deleting an existing and a missing tree: %d %s / %d %s", c1, b1, c2, b2)
	}

	// The tree, with the tag it has now; the versions the origin and
	// replica-a were recorded as serving go with it.
	_, tag, err = h.client.TreeTagged(ctx, "docs")
	mustOK(t, err)
	d, err := h.client.DeleteTree(ctx, "docs", tag)
	mustOK(t, err)
	want := inventoryapi.Deletion{Entity: "tree", Name: "docs", Removed: map[string]int64{"subscriptions": 2, "versions": 1, "deltas": 0, "site_versions": 2}}
	if !reflect.DeepEqual(d, want) {
		t.Fatalf("deletion = %+v, want %+v", d, want)
	}
	if _, err := h.client.Tree(ctx, "docs"); problem(err) == nil || problem(err).Status != http.StatusNotFound {
		t.Fatalf("deleted tree: %v", err)
	}
	if rows, err := h.client.Overview(ctx); err != nil || len(rows) != 0 {
		t.Fatalf("overview after deleting the only tree: %s", jsonString(rows, err))
	}
	if runs, err := h.client.Runs(ctx, "docs", ""); err != nil || len(runs) != 1 {
		t.Fatalf("runs of the deleted tree stay in the record: %s", jsonString(runs, err))
	}
	wantDeleted(t, next(t, deleted), "org.pulpdist.tree.deleted.v1", "tree/docs")

	// The site, whose agent token stops working with it.
	d, err = h.client.DeleteSite(ctx, "replica-a", "")
	mustOK(t, err)
	if d.Entity != "site" || d.Name != "replica-a" || d.Removed["agent_tokens_revoked"] != 1 {
		t.Fatalf("deletion = %+v", d)
	}
	if _, err := agent.Sites(ctx); problem(err) == nil || problem(err).Status != http.StatusUnauthorized {
		t.Fatalf("agent token of a deleted site: %v, want 401", err)
	}
	wantDeleted(t, next(t, deleted), "org.pulpdist.site.deleted.v1", "site/replica-a")

	// A subscription on its own.
	_, err = h.client.CreateTree(ctx, inventoryapi.Tree{Name: "logs", OriginSite: "replica-b", Source: "/srv/logs"})
	mustOK(t, err)
	_, err = h.client.Subscribe(ctx, inventoryapi.Subscription{Site: "origin", Tree: "logs"})
	mustOK(t, err)
	d, err = h.client.DeleteSubscription(ctx, "origin", "logs", "")
	mustOK(t, err)
	if d.Entity != "subscription" || d.Name != "origin/logs" {
		t.Fatalf("deletion = %+v", d)
	}
	wantDeleted(t, next(t, deleted), "org.pulpdist.subscription.deleted.v1", "tree/logs/site/origin")
	if subs, err := h.client.Subscriptions(ctx, "logs"); err != nil || len(subs) != 0 {
		t.Fatalf("subscriptions of logs: %v, %v", subs, err)
	}

	log, err := h.client.AuditLog(ctx, 0)
	mustOK(t, err)
	var dels []string
	for _, e := range log {
		if e.Action == "delete" {
			dels = append(dels, e.Entity+" "+e.Name)
		}
	}
	if strings.Join(dels, ", ") != "subscription origin/logs, site replica-a, tree docs" {
		t.Errorf("audited deletions: %v", dels)
	}
}

func wantDeleted(t *testing.T, m interface{ Data() []byte }, typ, subject string) {
	t.Helper()
	var ev event.Event
	mustOK(t, json.Unmarshal(m.Data(), &ev))
	if ev.Type() != typ || ev.Subject() != subject || ev.Source() != "/pulpdist/inventory" {
		t.Errorf("event %s %s from %s, want %s %s", ev.Type(), ev.Subject(), ev.Source(), typ, subject)
	}
	if m, ok := m.(interface{ Subject() string }); ok {
		if _, _, about, _ := bus.ParseEventSubject(m.Subject()); about.Subject() != subject {
			t.Errorf("event %s on subject %s, not about %s", typ, m.Subject(), subject)
		}
	}
}

func ptr[T any](v T) *T { return &v }
