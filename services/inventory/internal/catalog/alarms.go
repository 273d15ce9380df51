package catalog

import (
	"context"
	"fmt"
	"time"

	"github.com/pulpdist/pulpdist/libs/bus"
)

// RaisedAlarm is a freshness alarm raised and not cleared yet.
type RaisedAlarm struct {
	Site, Tree string
	RaisedAt   time.Time
}

// AlarmRepository keeps the freshness alarms raised. Each method writes
// its event to the outbox in the transaction of the change, and only when
// it changed something, so that several inventories raise an alarm once.
type AlarmRepository interface {
	// RaisedAlarms lists the alarms raised and not cleared.
	RaisedAlarms(ctx context.Context) ([]RaisedAlarm, error)
	// RaiseAlarm records a and posts ev; false when a was raised already.
	RaiseAlarm(ctx context.Context, a RaisedAlarm, ev Event) (bool, error)
	// ClearAlarm removes the alarm of site and tree and posts ev; false
	// when none was raised.
	ClearAlarm(ctx context.Context, site, tree string, ev Event) (bool, error)
}

// CheckAlarms raises an alarm.raised event for each subscription now
// further behind than its tree's allowed lag that has none, and an
// alarm.cleared event for each alarm raised whose subscription no longer
// is (or went, or was paused). It returns how many it raised and cleared.
func (s *Service) CheckAlarms(ctx context.Context) (raised, cleared int, err error) {
	now := s.now()
	current, err := s.Alarms(ctx, SubscriptionFilter{})
	if err != nil {
		return 0, 0, err
	}
	known, err := s.repo.RaisedAlarms(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("alarms raised: %w", err)
	}
	was := make(map[[2]string]RaisedAlarm, len(known))
	for _, a := range known {
		was[[2]string{a.Site, a.Tree}] = a
	}
	is := make(map[[2]string]bool, len(current))
	for _, a := range current {
		key := [2]string{a.Site, a.Tree}
		is[key] = true
		if _, ok := was[key]; ok {
			continue
		}
		ev := bus.FreshnessAlarm{
			Site: a.Site, Tree: a.Tree, Version: a.Version, Latest: a.LatestVersion,
			LagSeconds: a.LagSeconds, AllowedLagSeconds: int64(a.AllowedLag / time.Second), RaisedAt: now.UTC(),
		}
		ok, err := s.repo.RaiseAlarm(ctx, RaisedAlarm{Site: a.Site, Tree: a.Tree, RaisedAt: now},
			Event{Entity: bus.EntityAlarm, Action: bus.ActionRaised, About: bus.About{Tree: a.Tree, Site: a.Site}, Data: ev})
		if err != nil {
			return raised, cleared, fmt.Errorf("raise alarm %s/%s: %w", a.Site, a.Tree, err)
		}
		if ok {
			raised++
		}
	}
	for key, a := range was {
		if is[key] {
			continue
		}
		at := now.UTC()
		ev := bus.FreshnessAlarm{Site: a.Site, Tree: a.Tree, RaisedAt: a.RaisedAt.UTC(), ClearedAt: &at}
		ok, err := s.repo.ClearAlarm(ctx, a.Site, a.Tree,
			Event{Entity: bus.EntityAlarm, Action: bus.ActionCleared, About: bus.About{Tree: a.Tree, Site: a.Site}, Data: ev})
		if err != nil {
			return raised, cleared, fmt.Errorf("clear alarm %s/%s: %w", a.Site, a.Tree, err)
		}
		if ok {
			cleared++
		}
	}
	return raised, cleared, nil
}
