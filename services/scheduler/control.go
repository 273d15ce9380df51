package scheduler

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/pulpdist/pulpdist/libs/bus"
	"github.com/pulpdist/pulpdist/libs/control"
	"github.com/pulpdist/pulpdist/libs/inventoryapi"
	"github.com/pulpdist/pulpdist/services/scheduler/internal/dispatch"
)

// control is the scheduler on the bus's request-reply side: status and
// trigger, on subjects every instance shares (any one answers).
func (s *Service) control() control.Config {
	return control.Config{
		Service:     bus.ServiceScheduler,
		Instance:    s.instance,
		Description: "pulpdist scheduler: turns triggers and schedules into scans, delta requests and sync commands",
		Status:      s.status,
		Endpoints: []control.Endpoint{
			control.Handle(bus.EndpointTrigger, "sync a tree now, or only some of its sites: answers the trigger id", s.trigger),
		},
	}
}

// status adds the trees and schedules this instance knows, and the scans
// in flight, to the common status.
func (s *Service) status(ctx context.Context, common bus.ServiceStatus) (any, error) {
	trees, readAt := s.cron.Schedules(time.Now())
	scans, err := s.scans.InFlight(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", control.ErrUnavailable, err)
	}
	st := bus.SchedulerStatus{ServiceStatus: common, Trees: trees, Scans: scans}
	if !readAt.IsZero() {
		st.TreesReadAt = &readAt
	}
	return st, nil
}

// trigger asks for a sync of r's tree now, as the inventory's POST
// /api/v1/trees/{name}/sync (and …/subscriptions/{site}/{tree}/sync for
// sites) does: a manual trigger on the triggers stream, with its
// sync.requested event, which this scheduler's trigger consumer (or
// another instance's) then runs like any other. The tree must exist, and
// each site named must subscribe to it; otherwise nothing is published.
func (s *Service) trigger(ctx context.Context, r bus.TriggerRequest) (bus.TriggerReply, error) {
	if _, err := s.inv.Tree(ctx, r.Tree); err != nil {
		return bus.TriggerReply{}, inventoryError(fmt.Sprintf("tree %q", r.Tree), err)
	}
	if len(r.Sites) > 0 {
		subs, err := s.inv.Subscriptions(ctx, r.Tree)
		if err != nil {
			return bus.TriggerReply{}, inventoryError(fmt.Sprintf("subscriptions to %q", r.Tree), err)
		}
		for _, site := range r.Sites {
			if !slices.ContainsFunc(subs, func(sub inventoryapi.Subscription) bool { return sub.Site == site }) {
				return bus.TriggerReply{}, fmt.Errorf("site %q does not subscribe to %q: %w", site, r.Tree, control.ErrNotFound)
			}
		}
	}
	t := bus.ManualTrigger(r.Tree, r.Sites, r.ConfirmDeletions, time.Now())
	if err := t.Validate(); err != nil {
		return bus.TriggerReply{}, fmt.Errorf("%w: %w", control.ErrInvalid, err)
	}
	// Once the trigger is stored the sync will run: the requester is told
	// so even if the event about it failed (asking again would queue a
	// second sync under a new id).
	if err := s.out.Trigger(ctx, t); errors.Is(err, errTriggerQueued) {
		s.log.Warn("trigger queued without its event", "trigger", t.TriggerID, "tree", t.Tree, "err", err)
	} else if err != nil {
		return bus.TriggerReply{}, err
	}
	return bus.TriggerReply{TriggerID: t.TriggerID, Tree: t.Tree, RunTriggerID: dispatch.ScopedTriggerID(t.TriggerID, t.Sites), Sites: t.Sites}, nil
}

// inventoryError classifies an error of the inventory API about what: a
// 404 is not found, a 400 invalid, no answer at all unavailable; any other
// answer (the scheduler's token refused…) is the scheduler's own failure.
func inventoryError(what string, err error) error {
	var p *inventoryapi.Problem
	switch {
	case errors.As(err, &p) && p.Status == http.StatusNotFound:
		return fmt.Errorf("%s: %w", what, control.ErrNotFound)
	case errors.As(err, &p) && p.Status == http.StatusBadRequest:
		return fmt.Errorf("%s: %w: %w", what, control.ErrInvalid, err)
	case errors.As(err, &p):
		return fmt.Errorf("%s: inventory: %w", what, err)
	}
	return fmt.Errorf("%s: %w: inventory: %w", what, control.ErrUnavailable, err)
}
