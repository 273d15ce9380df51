package inventory_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pulpdist/pulpdist/libs/bus"
	"github.com/pulpdist/pulpdist/libs/natstest"
	"github.com/pulpdist/pulpdist/services/inventory"
)

// TestFreshnessAlarmsAreRaisedAndCleared: a site further behind than its
// tree's allowed lag gets one alarm.raised event (however often the
// inventory checks), and an alarm.cleared once it catches up.
func TestFreshnessAlarmsAreRaisedAndCleared(t *testing.T) {
	h := startWith(t, inventory.Config{NATSURL: natstest.Start(t), DatabaseURL: databases[0].url(t),
		AcceptUnsignedReports: true, AlarmInterval: 20 * time.Millisecond})
	ctx := context.Background()
	raised := consumer(t, h.js, bus.StreamEvents, bus.EventFilter(bus.EntityAlarm, bus.ActionRaised))
	cleared := consumer(t, h.js, bus.StreamEvents, bus.EventFilter(bus.EntityAlarm, bus.ActionCleared))
	for _, s := range []string{"a-origin", "a-lyon", "a-oslo"} {
		h.send(t, "POST", "/api/v1/sites", `{"name":"`+s+`"}`, nil)
	}
	h.send(t, "POST", "/api/v1/trees", `{"name":"a-docs","origin_site":"a-origin","source":"/srv/docs","allowed_lag":"1h"}`, nil)
	for _, s := range []string{"a-lyon", "a-oslo"} {
		h.send(t, "POST", "/api/v1/subscriptions", `{"site":"`+s+`","tree":"a-docs"}`, nil)
	}
	events := bus.NewEvents(h.js, "/test")
	now := time.Now().UTC()
	mustOK(t, events.Publish(ctx, bus.EntitySnapshot, bus.ActionPublished, bus.About{Tree: "a-docs", Site: "a-origin"}, bus.Snapshot{
		V: 1, TriggerID: "t", Tree: "a-docs", Site: "a-origin", Root: root('1'), Files: 1, Bytes: 1, PublishedAt: now.Add(-3 * time.Hour)}))
	// oslo has the version; lyon has nothing: 3 h behind, 1 h allowed.
	finish := func(id, site string) {
		mustOK(t, events.Publish(ctx, bus.EntitySync, bus.ActionFinished, bus.About{Tree: "a-docs", Site: site}, bus.SyncFinished{
			RunID: id, TriggerID: "t", Site: site, Tree: "a-docs", Kind: bus.CommandApply, To: root('1'),
			Result: bus.ResultCompleted, FinishedAt: time.Now().UTC()}))
	}
	finish("a-1", "a-oslo")
	eventually(t, "the alarm in the view", func() (bool, string) {
		_, _, body := h.send(t, "GET", "/api/v1/alarms", "", nil)
		return strings.Contains(body, "a-lyon"), body
	})
	// The database is the package's: other tests' subscriptions may raise
	// alarms too; and oslo may be behind for a moment, until its run is
	// recorded. Only lyon's alarm is followed.
	ours := func(c jetstream.Consumer) bus.FreshnessAlarm {
		t.Helper()
		for {
			_, a, err := bus.DecodeEvent[bus.FreshnessAlarm](next(t, c).Data())
			mustOK(t, err)
			if a.Tree == "a-docs" && a.Site == "a-lyon" {
				return a
			}
		}
	}
	alarm := ours(raised)
	if alarm.Site != "a-lyon" || alarm.Tree != "a-docs" || alarm.AllowedLagSeconds != 3600 || alarm.LagSeconds < 3*3600-60 || alarm.Latest != root('1') {
		t.Fatalf("alarm.raised %+v", alarm)
	}
	if code, _, body := h.send(t, "GET", "/api/v1/alarms", "", nil); code != http.StatusOK || !strings.Contains(body, "a-lyon") {
		t.Fatalf("alarms view: %d %s", code, body)
	}
	// lyon catches up: the alarm clears.
	finish("a-2", "a-lyon")
	clear := ours(cleared)
	if clear.Site != "a-lyon" || clear.ClearedAt == nil || clear.RaisedAt.Sub(alarm.RaisedAt).Abs() > time.Millisecond {
		t.Fatalf("alarm.cleared %+v (raised %+v)", clear, alarm)
	}
	// Many checks ran meanwhile: one alarm.raised all the same.
	subject := bus.EventSubject(bus.EntityAlarm, bus.ActionRaised, bus.About{Tree: "a-docs", Site: "a-lyon"})
	st, err := h.js.Stream(ctx, bus.StreamEvents)
	mustOK(t, err)
	info, err := st.Info(ctx, jetstream.WithSubjectFilter(subject))
	mustOK(t, err)
	all, err := h.js.OrderedConsumer(ctx, bus.StreamEvents, jetstream.OrderedConsumerConfig{FilterSubjects: []string{subject}})
	mustOK(t, err)
	n := 0
	for range info.State.Subjects[subject] {
		m, err := all.Next(jetstream.FetchMaxWait(10 * time.Second))
		mustOK(t, err)
		if _, a, err := bus.DecodeEvent[bus.FreshnessAlarm](m.Data()); err == nil && a.Tree == "a-docs" && a.Site == "a-lyon" {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d alarm.raised events of a-lyon, want 1", n)
	}
}
