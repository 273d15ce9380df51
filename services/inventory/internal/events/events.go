// Package events is the inventory's bus transport: it reads the CloudEvents
// on pulpdist.evt.> and records the ones that change the catalog (a
// snapshot published, a sync started or finished). Other event types are
// acknowledged and ignored.
package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

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
)

// Recorder stores what the events say; each call is idempotent by event id.
type Recorder interface {
	RecordSnapshot(ctx context.Context, eventID string, m bus.Snapshot) error
	RecordSyncStarted(ctx context.Context, eventID string, m bus.SyncStarted) error
	RecordSyncFinished(ctx context.Context, eventID string, m bus.SyncFinished) error
}

// Handler returns the bus handler for the events stream. An event that
// does not decode, or that the catalog refuses as invalid or about
// something it does not know, is permanent: redelivery cannot fix it.
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
	switch ev.Type() {
	case TypeSnapshotPublished:
		return record(ctx, body, rec.RecordSnapshot)
	case TypeSyncStarted:
		return record(ctx, body, rec.RecordSyncStarted)
	case TypeSyncFinished:
		return record(ctx, body, rec.RecordSyncFinished)
	}
	return nil
}

func record[T any](ctx context.Context, body []byte, f func(context.Context, string, T) error) error {
	ev, data, err := bus.DecodeEvent[T](body)
	if err != nil {
		return bus.Permanent(err)
	}
	if err := f(ctx, ev.ID(), data); err != nil {
		if errors.Is(err, catalog.ErrInvalid) || errors.Is(err, catalog.ErrNotFound) {
			return bus.Permanent(fmt.Errorf("%s %s: %w", ev.Type(), ev.ID(), err))
		}
		return fmt.Errorf("%s %s: %w", ev.Type(), ev.ID(), err)
	}
	return nil
}
