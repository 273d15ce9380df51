// Package events is the inventory's bus transport: it reads the CloudEvents
// on pulpdist.evt.> and records the ones that change the catalog (a
// snapshot published, a sync started or finished, a delta computed or
// ready). Any event from a site-agent also counts as the site's heartbeat.
// An event about a tree the inventory does not know, or one in which a
// site-agent reports for another site than its own, is kept as a problem.
// Other event types are acknowledged and ignored.
package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pulpdist/pulpdist/libs/bus"
	"github.com/pulpdist/pulpdist/services/inventory/internal/catalog"
)

// Durable is the name of the inventory's consumer on the events stream.
const Durable = "inventory"

// Filter selects every event.
const Filter = bus.EventsPrefix + ".>"

// The CloudEvents types the inventory records.
const (
	TypeSnapshotPublished = bus.EventTypePrefix + bus.EntitySnapshot + "." + bus.ActionPublished
	TypeSyncStarted       = bus.EventTypePrefix + bus.EntitySync + "." + bus.ActionStarted
	TypeSyncFinished      = bus.EventTypePrefix + bus.EntitySync + "." + bus.ActionFinished
	TypeDeltaComputed     = bus.EventTypePrefix + bus.EntityDelta + "." + bus.ActionComputed
	TypeDeltaReady        = bus.EventTypePrefix + bus.EntityDelta + "." + bus.ActionReady
)

// SiteAgentSource prefixes the CloudEvents source of every site-agent's
// events: /pulpdist/siteagent/<site>.
const SiteAgentSource = "/pulpdist/siteagent/"

// Recorder stores what the events say; each call is idempotent by event id
// (RecordHeartbeat by nature: it only moves a time forward).
type Recorder interface {
	RecordSnapshot(ctx context.Context, eventID string, m bus.Snapshot) error
	RecordSyncStarted(ctx context.Context, eventID string, m bus.SyncStarted) error
	RecordSyncFinished(ctx context.Context, eventID string, m bus.SyncFinished) error
	RecordDeltaComputed(ctx context.Context, eventID string, at time.Time, m bus.DeltaComputed) error
	RecordDeltaReady(ctx context.Context, eventID string, at time.Time, m bus.DeltaReady) error
	RecordHeartbeat(ctx context.Context, site string, at time.Time) error
	RecordProblem(ctx context.Context, p catalog.EventProblem) error
}

// Handler returns the bus handler for the events stream. An event that
// does not decode, or that the catalog refuses as invalid, is permanent:
// redelivery cannot fix it. One about a tree the catalog does not know is
// recorded as a problem and acknowledged.
func Handler(rec Recorder) bus.Handler {
	return func(ctx context.Context, m jetstream.Msg) error {
		return Handle(ctx, rec, m.Data())
	}
}

// Handle records one event body.
func Handle(ctx context.Context, rec Recorder, body []byte) error {
	ev, _, err := bus.DecodeEvent[json.RawMessage](body)
	if err != nil {
		return bus.Permanent(err)
	}
	agent, fromAgent := strings.CutPrefix(ev.Source(), SiteAgentSource)
	if fromAgent && bus.ValidateName("site", agent) == nil {
		if err := rec.RecordHeartbeat(ctx, agent, ev.Time()); err != nil {
			return fmt.Errorf("%s %s: %w", ev.Type(), ev.ID(), err)
		}
	}
	// A site-agent reports for its own site only: what it says of another
	// site is kept as a problem, not applied.
	own := func(site string) error {
		if fromAgent && site != agent {
			return fmt.Errorf("%w: the site-agent of %q reported for site %q", errOtherSite, agent, site)
		}
		return nil
	}
	switch ev.Type() {
	case TypeSnapshotPublished:
		return record(ctx, rec, body, checked(func(m bus.Snapshot) error { return own(m.Site) }, byID(rec.RecordSnapshot)))
	case TypeSyncStarted:
		return record(ctx, rec, body, checked(func(m bus.SyncStarted) error { return own(m.Site) }, byID(rec.RecordSyncStarted)))
	case TypeSyncFinished:
		return record(ctx, rec, body, checked(func(m bus.SyncFinished) error { return own(m.Site) }, byID(rec.RecordSyncFinished)))
	case TypeDeltaComputed:
		return record(ctx, rec, body, byIDAndTime(rec.RecordDeltaComputed))
	case TypeDeltaReady:
		return record(ctx, rec, body, byIDAndTime(rec.RecordDeltaReady))
	}
	return nil
}

// errOtherSite marks an event a site-agent sent about another site.
var errOtherSite = errors.New("report for another site")

// checked runs check on the decoded event before f records it.
func checked[T any](check func(T) error, f func(context.Context, event.Event, T) error) func(context.Context, event.Event, T) error {
	return func(ctx context.Context, ev event.Event, m T) error {
		if err := check(m); err != nil {
			return err
		}
		return f(ctx, ev, m)
	}
}

// byID and byIDAndTime adapt Record methods to the event they record.
func byID[T any](f func(context.Context, string, T) error) func(context.Context, event.Event, T) error {
	return func(ctx context.Context, ev event.Event, m T) error { return f(ctx, ev.ID(), m) }
}

func byIDAndTime[T any](f func(context.Context, string, time.Time, T) error) func(context.Context, event.Event, T) error {
	return func(ctx context.Context, ev event.Event, m T) error { return f(ctx, ev.ID(), ev.Time(), m) }
}

func record[T any](ctx context.Context, rec Recorder, body []byte, f func(context.Context, event.Event, T) error) error {
	ev, data, err := bus.DecodeEvent[T](body)
	if err != nil {
		return bus.Permanent(err)
	}
	err = f(ctx, ev, data)
	if (errors.Is(err, catalog.ErrNotFound) && !errors.Is(err, catalog.ErrInvalid)) || errors.Is(err, errOtherSite) {
		// Kept, not dropped: an operator sees it at /api/v1/problems.
		err = rec.RecordProblem(ctx, catalog.EventProblem{EventID: ev.ID(), Type: ev.Type(), Subject: ev.Subject(), Reason: err.Error()})
	}
	if err != nil {
		if errors.Is(err, catalog.ErrInvalid) {
			return bus.Permanent(fmt.Errorf("%s %s: %w", ev.Type(), ev.ID(), err))
		}
		return fmt.Errorf("%s %s: %w", ev.Type(), ev.ID(), err)
	}
	return nil
}
