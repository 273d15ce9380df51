package store

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/pulpdist/pulpdist/libs/bus"
	"github.com/pulpdist/pulpdist/services/inventory/internal/catalog"
)

func TestOutbox(t *testing.T) {
	for _, db := range databases {
		t.Run(db.name, func(t *testing.T) {
			t.Run("with the change", func(t *testing.T) { testOutbox(t, open(t, db.url(t))) })
			t.Run("failure mid-way", func(t *testing.T) { testOutboxFailsWhole(t, open(t, db.url(t)), db.name) })
		})
	}
}

// testEncoder renders an event as one message on "<entity>.<action>"
// whose body names the subject, and a trigger as two; it refuses trees
// named "unsayable". The trace context of a message is what ctx holds
// under traceKey{}, as "traceparent tracestate".
func testEncoder(ctx context.Context, ev catalog.Event) ([]catalog.Message, error) {
	if tr, ok := ev.Data.(catalog.Tree); ok && tr.Name == "unsayable" {
		return nil, errors.New("cannot say it")
	}
	tp, _ := ctx.Value(traceKey{}).(string)
	parent, state, _ := strings.Cut(tp, " ")
	m := catalog.Message{Subject: ev.Entity + "." + ev.Action, MsgID: ev.Entity + "/" + ev.About.Subject(), Body: []byte(ev.About.Subject()),
		TraceParent: parent, TraceState: state}
	if tr, ok := ev.Data.(bus.Trigger); ok {
		return []catalog.Message{{Subject: "trigger", MsgID: tr.TriggerID, ContentType: "application/json", Body: []byte(tr.Tree),
			TraceParent: parent, TraceState: state}, m}, nil
	}
	return []catalog.Message{m}, nil
}

// traceKey holds the trace context testEncoder gives its messages.
type traceKey struct{}

// traceparent is a W3C trace context a change may carry.
const traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

func pending(t *testing.T, s *Store) []string {
	t.Helper()
	ms, err := s.PendingMessages(context.Background(), 100)
	must(t, err)
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.Subject + " " + string(m.Body)
	}
	return out
}

// woken reports whether the store signalled a commit that wrote to the
// outbox, and consumes the signal.
func woken(s *Store) bool {
	select {
	case <-s.Posted():
		return true
	default:
		return false
	}
}

func testOutbox(t *testing.T, s *Store) {
	ctx := context.Background()
	s.UseEncoder(testEncoder)
	must(t, s.CreateSite(ctx, catalog.Site{Name: "origin", CreatedAt: t0}))
	if !woken(s) {
		t.Fatal("a commit that wrote to the outbox did not wake the relay")
	}
	if err := s.CreateSite(ctx, catalog.Site{Name: "origin", CreatedAt: t0}); !errors.Is(err, catalog.ErrAlreadyExists) {
		t.Fatalf("second create: %v", err)
	}
	if woken(s) {
		t.Fatal("a rolled-back change woke the relay")
	}
	must(t, s.CreateTree(ctx, catalog.Tree{Name: "docs", OriginSite: "origin", Source: "/srv/docs", Keep: 2, CreatedAt: t0}))
	if _, err := s.UpdateTree(ctx, "docs", func(tr catalog.Tree) (catalog.Tree, error) { tr.Keep = 3; return tr, nil }); err != nil {
		t.Fatal(err)
	}
	// The trace context of a change is kept with its messages.
	traced := context.WithValue(ctx, traceKey{}, traceparent+" vendor=1")
	must(t, s.RecordAudit(traced, catalog.AuditSyncRequested(ctx, bus.Trigger{Tree: "docs", TriggerID: "trig-1", Reason: "manual", RequestedAt: t0}),
		catalog.SyncRequestedEvent(bus.Trigger{TriggerID: "trig-1", Tree: "docs"})))
	if _, err := s.DeleteTree(ctx, "docs", nil); err != nil {
		t.Fatal(err)
	}
	want := []string{"site.created site/origin", "tree.created tree/docs", "tree.updated tree/docs", "trigger docs", "sync.requested tree/docs", "tree.deleted tree/docs"}
	if got := pending(t, s); !reflect.DeepEqual(got, want) {
		t.Fatalf("outbox = %q, want %q in the order of the changes", got, want)
	}
	all, err := s.PendingMessages(ctx, 100)
	must(t, err)
	for i, m := range all {
		if traced := i == 3 || i == 4; traced && (m.TraceParent != traceparent || m.TraceState != "vendor=1") || !traced && (m.TraceParent != "" || m.TraceState != "") {
			t.Errorf("message %d (%s) has trace context %q %q", i, m.Subject, m.TraceParent, m.TraceState)
		}
	}

	// An event that cannot be encoded undoes its change.
	before := counts(t, s)
	err = s.CreateTree(ctx, catalog.Tree{Name: "unsayable", OriginSite: "origin", Source: "/srv/x", Keep: 2, CreatedAt: t0})
	if err == nil {
		t.Fatal("a change whose event cannot be encoded was stored")
	}
	if got := counts(t, s); !reflect.DeepEqual(got, before) {
		t.Fatalf("the failed change wrote rows: %v, before %v", got, before)
	}
	if got := pending(t, s); len(got) != len(want) {
		t.Fatalf("the failed change wrote to the outbox: %q", got)
	}

	// Failures are counted on the message; a sent message is gone.
	ms, err := s.PendingMessages(ctx, 2)
	must(t, err)
	if len(ms) != 2 || ms[0].MsgID != "site/site/origin" || ms[0].Attempts != 0 || ms[0].CreatedAt.IsZero() {
		t.Fatalf("first two = %+v", ms)
	}
	must(t, s.MessageFailed(ctx, ms[0].ID, fmt.Errorf("nats: no responders")))
	must(t, s.MessageFailed(ctx, ms[0].ID, fmt.Errorf("nats: timeout")))
	again, err := s.PendingMessages(ctx, 1)
	must(t, err)
	if again[0].ID != ms[0].ID || again[0].Attempts != 2 || again[0].LastError != "nats: timeout" {
		t.Fatalf("after two failures = %+v", again[0])
	}
	must(t, s.MessageSent(ctx, ms[0].ID))
	if got := pending(t, s); !reflect.DeepEqual(got, want[1:]) {
		t.Fatalf("after sending the first = %q, want %q", got, want[1:])
	}
}

// testOutboxFailsWhole makes the outbox insert fail inside the change's
// transaction (on PostgreSQL the session ends there): the site and its
// audit entry are not stored either.
func testOutboxFailsWhole(t *testing.T, s *Store, driver string) {
	ctx := context.Background()
	s.UseEncoder(testEncoder)
	if driver == "postgres" {
		must(t, exec(ctx, s, `CREATE FUNCTION die() RETURNS trigger LANGUAGE plpgsql AS $$
			BEGIN PERFORM pg_terminate_backend(pg_backend_pid()); RETURN NEW; END $$`))
		must(t, exec(ctx, s, `CREATE TRIGGER outbox_die BEFORE INSERT ON outbox FOR EACH ROW EXECUTE FUNCTION die()`))
	} else {
		must(t, exec(ctx, s, `CREATE TRIGGER outbox_die BEFORE INSERT ON outbox BEGIN SELECT RAISE(ABORT, 'disk on fire'); END`))
	}
	before := counts(t, s)
	err := s.CreateSite(ctx, catalog.Site{Name: "origin", CreatedAt: t0})
	if err == nil {
		t.Fatal("create succeeded though its event could not be written")
	}
	if driver == "postgres" && !errors.Is(err, catalog.ErrUnavailable) {
		t.Errorf("err = %v, want it marked unavailable (503)", err)
	}
	if got := counts(t, s); !reflect.DeepEqual(got, before) {
		t.Fatalf("the failed create wrote rows: %v, before %v", got, before)
	}
	if woken(s) {
		t.Fatal("a failed change woke the relay")
	}
	if got := pending(t, s); len(got) != 0 {
		t.Fatalf("outbox = %q", got)
	}
}

// TestPauseAnnouncesChanges: pausing or resuming announces the site or
// tree whose flag changed and each subscription whose flag changed, in
// the change's transaction; a pause of what is paused announces nothing.
func TestPauseAnnouncesChanges(t *testing.T) {
	for _, db := range databases {
		t.Run(db.name, func(t *testing.T) { testPauseAnnouncesChanges(t, open(t, db.url(t))) })
	}
}

func testPauseAnnouncesChanges(t *testing.T, s *Store) {
	ctx := context.Background()
	s.UseEncoder(testEncoder)
	for _, name := range []string{"origin", "paris", "lyon"} {
		must(t, s.CreateSite(ctx, catalog.Site{Name: name, CreatedAt: t0}))
	}
	for _, name := range []string{"docs", "isos"} {
		must(t, s.CreateTree(ctx, catalog.Tree{Name: name, OriginSite: "origin", Source: "/srv", Keep: 2, CreatedAt: t0}))
	}
	for _, sub := range []catalog.Subscription{{Site: "paris", Tree: "docs"}, {Site: "paris", Tree: "isos", Paused: true}, {Site: "lyon", Tree: "docs"}} {
		sub.CreatedAt = t0
		must(t, s.CreateSubscription(ctx, sub))
	}
	drain := func() []string {
		t.Helper()
		got := pending(t, s)
		ms, err := s.PendingMessages(ctx, 100)
		must(t, err)
		for _, m := range ms {
			must(t, s.MessageSent(ctx, m.ID))
		}
		return got
	}
	drain()
	for _, step := range []struct {
		f      catalog.SubscriptionFilter
		paused bool
		want   []string
	}{
		// isos was paused already: docs alone changes.
		{catalog.SubscriptionFilter{Site: "paris"}, true, []string{"site.updated site/paris", "subscription.updated tree/docs/site/paris"}},
		{catalog.SubscriptionFilter{Site: "paris"}, true, nil},
		{catalog.SubscriptionFilter{Tree: "docs"}, true, []string{"tree.updated tree/docs", "subscription.updated tree/docs/site/lyon"}},
		{catalog.SubscriptionFilter{Tree: "docs"}, false, []string{"tree.updated tree/docs", "subscription.updated tree/docs/site/lyon", "subscription.updated tree/docs/site/paris"}},
		{catalog.SubscriptionFilter{Site: "paris", Tree: "isos"}, false, []string{"subscription.updated tree/isos/site/paris"}},
		{catalog.SubscriptionFilter{Site: "lyon", Tree: "docs"}, false, nil},
	} {
		if _, err := s.SetPaused(ctx, step.f, step.paused); err != nil {
			t.Fatalf("%+v paused=%t: %v", step.f, step.paused, err)
		}
		if got := drain(); !reflect.DeepEqual(got, step.want) && len(got)+len(step.want) > 0 {
			t.Errorf("%+v paused=%t: outbox %q, want %q", step.f, step.paused, got, step.want)
		}
	}
	// The announced subscription carries its new flag.
	var seen []catalog.Subscription
	s.UseEncoder(func(ctx context.Context, ev catalog.Event) ([]catalog.Message, error) {
		if sub, ok := ev.Data.(catalog.Subscription); ok {
			seen = append(seen, sub)
		}
		return testEncoder(ctx, ev)
	})
	if _, err := s.SetPaused(ctx, catalog.SubscriptionFilter{Site: "lyon"}, true); err != nil {
		t.Fatal(err)
	}
	if len(seen) != 1 || seen[0].Site != "lyon" || seen[0].Tree != "docs" || !seen[0].Paused || !seen[0].CreatedAt.Equal(t0) {
		t.Fatalf("announced %+v, want lyon/docs paused", seen)
	}
}
