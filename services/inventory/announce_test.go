package inventory_test

import (
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pulpdist/pulpdist/libs/bus"
	"github.com/pulpdist/pulpdist/libs/inventoryapi"
	"github.com/pulpdist/pulpdist/libs/natstest"
	"github.com/pulpdist/pulpdist/services/inventory"
)

// TestPauseAndResumeAreAnnounced: pausing a site is a site.updated of
// the site, paused, and a subscription.updated of each of its
// subscriptions that changed; resuming a tree the same, unpaused. What
// is paused already is not announced again.
func TestPauseAndResumeAreAnnounced(t *testing.T) {
	h := startWith(t, inventory.Config{NATSURL: natstest.Start(t), DatabaseURL: databases[0].url(t), AcceptUnsignedReports: true})
	sites := consumer(t, h.js, bus.StreamEvents, bus.EventFilter(bus.EntitySite, bus.ActionUpdated))
	trees := consumer(t, h.js, bus.StreamEvents, bus.EventFilter(bus.EntityTree, bus.ActionUpdated))
	subs := consumer(t, h.js, bus.StreamEvents, bus.EventFilter(bus.EntitySubscription, bus.ActionUpdated))
	for _, s := range []string{"p-origin", "p-lyon", "p-oslo"} {
		h.send(t, "POST", "/api/v1/sites", `{"name":"`+s+`"}`, nil)
	}
	for _, tr := range []string{"p-docs", "p-isos"} {
		h.send(t, "POST", "/api/v1/trees", `{"name":"`+tr+`","origin_site":"p-origin","source":"/srv/x"}`, nil)
	}
	for _, s := range []string{`{"site":"p-lyon","tree":"p-docs"}`, `{"site":"p-lyon","tree":"p-isos","paused":true}`, `{"site":"p-oslo","tree":"p-docs"}`} {
		h.send(t, "POST", "/api/v1/subscriptions", s, nil)
	}
	sub := func() inventoryapi.Subscription {
		t.Helper()
		_, s, err := bus.DecodeEvent[inventoryapi.Subscription](next(t, subs).Data())
		mustOK(t, err)
		return s
	}

	if code, _, body := h.send(t, "POST", "/api/v1/sites/p-lyon/pause", "", nil); code != 200 {
		t.Fatalf("pause p-lyon: %d %s", code, body)
	}
	_, site, err := bus.DecodeEvent[inventoryapi.Site](next(t, sites).Data())
	mustOK(t, err)
	if site.Name != "p-lyon" || !site.Paused {
		t.Errorf("site.updated %+v, want p-lyon paused", site)
	}
	// p-isos was paused already: only p-docs changed.
	if s := sub(); s.Site != "p-lyon" || s.Tree != "p-docs" || !s.Paused {
		t.Errorf("subscription.updated %+v, want p-lyon/p-docs paused", s)
	}
	// Pausing again changes nothing and announces nothing; the next
	// announcement is the tree's.
	if code, _, body := h.send(t, "POST", "/api/v1/sites/p-lyon/pause", "", nil); code != 200 {
		t.Fatalf("pause p-lyon again: %d %s", code, body)
	}
	if code, _, body := h.send(t, "POST", "/api/v1/trees/p-docs/pause", "", nil); code != 200 {
		t.Fatalf("pause p-docs: %d %s", code, body)
	}
	if s := sub(); s.Site != "p-oslo" || s.Tree != "p-docs" || !s.Paused {
		t.Errorf("subscription.updated %+v, want p-oslo/p-docs paused", s)
	}
	if code, _, body := h.send(t, "POST", "/api/v1/trees/p-docs/resume", "", nil); code != 200 {
		t.Fatalf("resume p-docs: %d %s", code, body)
	}
	for _, want := range []inventoryapi.Subscription{{Site: "p-lyon", Tree: "p-docs"}, {Site: "p-oslo", Tree: "p-docs"}} {
		if s := sub(); s.Site != want.Site || s.Tree != want.Tree || s.Paused {
			t.Errorf("subscription.updated %+v, want %s/%s resumed", s, want.Site, want.Tree)
		}
	}
	for _, paused := range []bool{true, false} {
		_, tr, err := bus.DecodeEvent[inventoryapi.Tree](next(t, trees).Data())
		mustOK(t, err)
		if tr.Name != "p-docs" || tr.Paused != paused {
			t.Errorf("tree.updated %+v, want p-docs paused=%t", tr, paused)
		}
	}
	// The outbox relays in order: the second pause's site.updated, had
	// there been one, was stored before the tree's.
	if n := storedEvents(t, h, bus.EventSubject(bus.EntitySite, bus.ActionUpdated, bus.About{Site: "p-lyon"})); n != 1 {
		t.Errorf("%d site.updated events of p-lyon, want 1", n)
	}
}

// storedEvents counts the events stored on subject.
func storedEvents(t *testing.T, h *harness, subject string) uint64 {
	t.Helper()
	st, err := h.js.Stream(t.Context(), bus.StreamEvents)
	mustOK(t, err)
	info, err := st.Info(t.Context(), jetstream.WithSubjectFilter(subject))
	mustOK(t, err)
	return info.State.Subjects[subject]
}
