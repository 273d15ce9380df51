package inventory

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/propagation"

	"github.com/pulpdist/pulpdist/libs/bus"
	"github.com/pulpdist/pulpdist/libs/telemetry"
	"github.com/pulpdist/pulpdist/services/inventory/internal/catalog"
	"github.com/pulpdist/pulpdist/services/inventory/internal/wire"
)

// Outbox relay settings.
const (
	// outboxRetry is how often the relay looks at the outbox when no
	// commit woke it: the retry interval of failed publications.
	outboxRetry = 2 * time.Second
	// outboxBatch is how many messages one read of the outbox takes.
	outboxBatch = 100
	// outboxPublishTimeout bounds one publication.
	outboxPublishTimeout = 5 * time.Second
	// outboxStuck is the failed publications after which a message no
	// longer holds back the ones behind it (it is still retried).
	outboxStuck = 10
)

// encoder renders the catalog's events as the messages the outbox keeps:
// CloudEvents on pulpdist.evt.>, and for a sync request the trigger for
// the scheduler before its sync.requested event. Each message keeps the
// trace context of the change (a REST request's, an event handler's),
// which the relay publishes it within; events carry it in their body too.
type encoder struct{ events *bus.Events }

func (e encoder) encode(ctx context.Context, ev catalog.Event) ([]catalog.Message, error) {
	msgs, err := e.messages(ctx, ev)
	if err != nil {
		return nil, err
	}
	tc := propagation.MapCarrier{}
	telemetry.Propagator.Inject(ctx, tc)
	for i := range msgs {
		msgs[i].TraceParent, msgs[i].TraceState = tc.Get("traceparent"), tc.Get("tracestate")
	}
	return msgs, nil
}

func (e encoder) messages(ctx context.Context, ev catalog.Event) ([]catalog.Message, error) {
	switch d := ev.Data.(type) {
	case catalog.Site:
		return e.event(ctx, ev, wire.Site(d))
	case catalog.Tree:
		return e.event(ctx, ev, wire.Tree(d))
	case catalog.Subscription:
		return e.event(ctx, ev, wire.Subscription(d))
	case catalog.SigningKey:
		return e.event(ctx, ev, wire.SigningKey(d))
	case bus.FreshnessAlarm, bus.AgentOnline, bus.AgentOffline:
		return e.event(ctx, ev, d)
	case bus.Trigger:
		body, err := json.Marshal(d)
		if err != nil {
			return nil, fmt.Errorf("trigger %s: %w", d.TriggerID, err)
		}
		requested, err := e.event(ctx, ev, bus.SyncRequested{TriggerID: d.TriggerID, Tree: d.Tree, Reason: d.Reason})
		if err != nil {
			return nil, err
		}
		trigger := catalog.Message{Subject: bus.TriggerSubject(d.Tree), MsgID: d.TriggerID, ContentType: "application/json", Body: body}
		return append([]catalog.Message{trigger}, requested...), nil
	}
	return nil, fmt.Errorf("no message for %s.%s with %T", ev.Entity, ev.Action, ev.Data)
}

func (e encoder) event(ctx context.Context, ev catalog.Event, data any) ([]catalog.Message, error) {
	msg, id, err := e.events.Render(ctx, ev.Entity, ev.Action, ev.About, "", data)
	if err != nil {
		return nil, err
	}
	return []catalog.Message{{Subject: msg.Subject, MsgID: id, ContentType: msg.Header.Get("Content-Type"), Body: msg.Data}}, nil
}

// relayOutbox publishes what changes wrote to the outbox, in order, and
// removes each message once JetStream has stored it, until ctx ends. It
// runs after every commit that wrote to the outbox and every outboxRetry.
// A message published twice (the inventory stopped between publication
// and removal) is stored once: its Nats-Msg-Id is kept with it.
func (s *Service) relayOutbox(ctx context.Context) {
	t := time.NewTicker(outboxRetry)
	defer t.Stop()
	for {
		s.drainOutbox(ctx)
		select {
		case <-ctx.Done():
			return
		case <-s.store.Posted():
		case <-t.C:
		}
	}
}

// drainOutbox publishes the outbox until it is empty or a publication
// fails; a message that failed outboxStuck times no longer blocks the
// ones after it.
func (s *Service) drainOutbox(ctx context.Context) {
	for ctx.Err() == nil {
		msgs, err := s.store.PendingMessages(ctx, outboxBatch)
		if err != nil {
			if ctx.Err() == nil {
				s.log.Warn("outbox not read", "err", err)
			}
			return
		}
		sent := 0
		for _, m := range msgs {
			if err := s.publishMessage(ctx, m); err != nil {
				if ctx.Err() != nil {
					return
				}
				if m.Attempts%30 == 0 {
					s.log.Warn("outbox message not published; retrying", "subject", m.Subject, "msg_id", m.MsgID, "attempts", m.Attempts+1, "err", err)
				}
				if ferr := s.store.MessageFailed(ctx, m.ID, err); ferr != nil {
					s.log.Warn("outbox failure not recorded", "msg_id", m.MsgID, "err", ferr)
					return
				}
				if m.Attempts+1 < outboxStuck {
					return
				}
				continue
			}
			if err := s.store.MessageSent(ctx, m.ID); err != nil {
				s.log.Warn("published outbox message not removed; it will be published again (and deduplicated)", "msg_id", m.MsgID, "err", err)
				return
			}
			sent++
		}
		if len(msgs) < outboxBatch || sent == 0 {
			return
		}
	}
}

// publishMessage publishes m within the trace of the change that made it
// (a producer span, its context in the headers: bus.PublishMsg).
func (s *Service) publishMessage(ctx context.Context, m catalog.Message) error {
	ctx, cancel := context.WithTimeout(ctx, outboxPublishTimeout)
	defer cancel()
	ctx = telemetry.Propagator.Extract(ctx, propagation.MapCarrier{"traceparent": m.TraceParent, "tracestate": m.TraceState})
	msg := nats.NewMsg(m.Subject)
	if m.ContentType != "" {
		msg.Header.Set("Content-Type", m.ContentType)
	}
	msg.Data = m.Body
	return bus.PublishMsg(ctx, s.js, msg, m.MsgID)
}
