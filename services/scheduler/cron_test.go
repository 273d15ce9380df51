package scheduler

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/pulpdist/pulpdist/libs/bus"
	"github.com/pulpdist/pulpdist/libs/inventoryapi"
	"github.com/pulpdist/pulpdist/services/scheduler/internal/cron"
)

type treeList []inventoryapi.Tree

func (l treeList) Trees(context.Context) ([]inventoryapi.Tree, error) { return l, nil }

// flakyList answers once, then fails like an inventory that went away.
type flakyList struct {
	trees []inventoryapi.Tree
	calls int
}

func (l *flakyList) Trees(context.Context) ([]inventoryapi.Tree, error) {
	l.calls++
	if l.calls > 1 {
		return nil, errors.New("inventory unreachable")
	}
	return l.trees, nil
}

// TestCronFiresOncePerMinuteAcrossInstances runs two cron instances against
// one embedded JetStream: a due schedule yields exactly one trigger.
func TestCronFiresOncePerMinuteAcrossInstances(t *testing.T) {
	js, _ := startBus(t)
	log := slog.New(slog.DiscardHandler)
	disabled := false
	trees := treeList{
		{Name: "every-minute", Schedule: "* * * * *"},
		{Name: "manual"},
		{Name: "at-midnight", Schedule: "0 0 * * *"},
		{Name: "disabled", Schedule: "* * * * *", Enabled: &disabled},
		{Name: "paused", Schedule: "* * * * *", Paused: true},
	}
	out := testSender(t, js)
	a := cron.New(trees, out, time.Minute, log)
	b := cron.New(trees, out, time.Minute, log)
	now := time.Date(2026, 11, 23, 10, 17, 5, 0, time.UTC)
	for _, tick := range []struct {
		c  *cron.Cron
		at time.Time
	}{{a, now}, {a, now.Add(10 * time.Second)}, {b, now.Add(20 * time.Second)}} {
		if err := tick.c.Tick(t.Context(), tick.at); err != nil {
			t.Fatal(err)
		}
	}
	s, err := js.Stream(t.Context(), bus.StreamTriggers)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 1 {
		t.Fatalf("%d triggers stored, want 1", info.State.Msgs)
	}
	m, err := s.GetLastMsgForSubject(t.Context(), bus.TriggerSubject("every-minute"))
	if err != nil {
		t.Fatal(err)
	}
	trig, err := bus.Decode[bus.Trigger](m.Data)
	if err != nil {
		t.Fatal(err)
	}
	if trig.Reason != "schedule" || trig.TriggerID != cron.TriggerID("every-minute", now.Truncate(time.Minute)) {
		t.Fatalf("trigger %+v", trig)
	}
	// The next minute fires again.
	if err := a.Tick(t.Context(), now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if info, err = s.Info(t.Context()); err != nil || info.State.Msgs != 2 {
		t.Fatalf("after next minute: %d triggers, %v", info.State.Msgs, err)
	}

	// With the inventory gone, schedules keep firing from the last list.
	flaky := &flakyList{trees: []inventoryapi.Tree{{Name: "every-minute", Schedule: "* * * * *"}}}
	c := cron.New(flaky, out, time.Nanosecond, log)
	later := now.Add(10 * time.Minute)
	for i := range 3 {
		if err := c.Tick(t.Context(), later.Add(time.Duration(i)*time.Minute)); err != nil {
			t.Fatalf("tick %d: %v", i, err)
		}
	}
	if flaky.calls < 2 {
		t.Fatalf("the list was not refreshed (%d calls)", flaky.calls)
	}
	if info, err = s.Info(t.Context()); err != nil || info.State.Msgs != 5 {
		t.Fatalf("with the inventory away: %d triggers, %v; want 3 more", info.State.Msgs, err)
	}
}
