package bus_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pulpdist/pulpdist/libs/bus"
	"github.com/pulpdist/pulpdist/libs/poll"
)

func TestMessageAbout(t *testing.T) {
	for _, tc := range []struct {
		subject string
		want    bus.About
	}{
		{bus.TriggerSubject("docs"), bus.About{Tree: "docs"}},
		{bus.SyncSubject("paris", "docs"), bus.About{Tree: "docs", Site: "paris"}},
		{bus.UrgentSyncSubject("paris", "docs"), bus.About{Tree: "docs", Site: "paris"}},
		{bus.SnapshotSubject("docs"), bus.About{Tree: "docs"}},
		{bus.DeltaRequestSubject("docs"), bus.About{Tree: "docs"}},
		{bus.DeltaReadySubject("docs"), bus.About{Tree: "docs"}},
		{bus.EventSubject(bus.EntitySync, bus.ActionFinished, bus.About{Tree: "docs", Site: "paris"}), bus.About{Tree: "docs", Site: "paris"}},
		{bus.EventSubject(bus.EntitySite, bus.ActionCreated, bus.About{Site: "paris"}), bus.About{Site: "paris"}},
		{bus.EventSubject(bus.EntityKey, bus.ActionAdded, bus.About{}), bus.About{}},
		// Names that cannot be subject tokens of an event name nothing.
		{"pulpdist.trigger.Docs", bus.About{}},
		{"pulpdist.sync.paris.Bad_Tree", bus.About{Site: "paris"}},
		{"pulpdist.sync.paris.docs.later", bus.About{}},
		{"pulpdist.trigger.docs.extra", bus.About{}},
		{"pulpdist.delta.other.docs", bus.About{}},
		{"elsewhere.trigger.docs", bus.About{}},
		{"", bus.About{}},
	} {
		if got := bus.MessageAbout(tc.subject); got != tc.want {
			t.Errorf("MessageAbout(%q) = %+v, want %+v", tc.subject, got, tc.want)
		}
	}
}

// deadLetterEvents reads every message.deadlettered event stored so far.
func deadLetterEvents(t *testing.T, js jetstream.JetStream) []jetstream.Msg {
	t.Helper()
	cons, err := js.OrderedConsumer(t.Context(), bus.StreamEvents, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{bus.EventFilter(bus.EntityMessage, bus.ActionDeadLettered)},
	})
	if err != nil {
		t.Fatal(err)
	}
	batch, err := cons.FetchNoWait(100)
	if err != nil {
		t.Fatal(err)
	}
	var out []jetstream.Msg
	for m := range batch.Messages() {
		out = append(out, m)
	}
	return out
}

// deadLetterCase is a consumer of a test: its stream, durable name,
// filter, MaxDeliver (0: the default) and handler.
type deadLetterCase struct {
	stream, durable, filter string
	maxDeliver              int
	handler                 bus.Handler
}

// runConsumer runs Consume for c until the test ends, retrying 1 ms
// apart, with dead letters announced by events.
func runConsumer(t *testing.T, js jetstream.JetStream, c deadLetterCase, events *bus.Events) jetstream.Consumer {
	t.Helper()
	cfg := bus.ConsumerConfig(c.durable, c.filter)
	if c.maxDeliver > 0 {
		cfg.MaxDeliver = c.maxDeliver
	}
	cons, err := js.CreateOrUpdateConsumer(t.Context(), c.stream, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- bus.Consume(ctx, cons, slog.New(slog.DiscardHandler), c.handler, bus.WithDeadLetter(js, events),
			bus.WithBackoff(func(uint64) time.Duration { return time.Millisecond }))
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Consume: %v", err)
		}
	})
	return cons
}

// drained waits until cons has nothing pending or unacknowledged: every
// message it was given is acked or terminated.
func drained(t *testing.T, cons jetstream.Consumer) {
	t.Helper()
	poll.Until(t, 20*time.Second, func() error {
		info, err := cons.Info(t.Context())
		if err != nil {
			return err
		}
		if info.NumAckPending != 0 || info.NumPending != 0 || info.Delivered.Consumer == 0 {
			return fmt.Errorf("delivered %d, ack pending %d, pending %d", info.Delivered.Consumer, info.NumAckPending, info.NumPending)
		}
		return nil
	})
}

// TestDeadLetterIsAnnounced: a message a consumer gives up on — refused
// as permanent at once, or failed on every delivery up to MaxDeliver —
// ends in PULPDIST_DEAD and is announced by exactly one
// message.deadlettered event, from the consuming service's source, about
// the tree and site its subject names, with an id derived from its
// stream and sequence (natstest checks the event against its schema when
// the test ends).
func TestDeadLetterIsAnnounced(t *testing.T) {
	refuse := func(_ context.Context, m jetstream.Msg) error {
		_, err := bus.Decode[bus.SyncCommand](m.Data())
		return bus.Permanent(err)
	}
	fail := func(context.Context, jetstream.Msg) error { return errors.New("the database is away") }
	for _, tc := range []struct {
		name    string
		c       deadLetterCase
		subject string
		about   bus.About
		// deliveries and reason the event reports.
		deliveries uint64
		reason     string
	}{
		{
			name:    "refused",
			c:       deadLetterCase{stream: bus.StreamSync, durable: "siteagent-paris", filter: bus.SyncFilter("paris"), handler: refuse},
			subject: bus.SyncSubject("paris", "docs"), about: bus.About{Tree: "docs", Site: "paris"},
			deliveries: 1, reason: "refused: ",
		},
		{
			name:    "out of deliveries",
			c:       deadLetterCase{stream: bus.StreamDeltaReq, durable: "deltacache", filter: "pulpdist.delta.req.>", maxDeliver: 3, handler: fail},
			subject: bus.DeltaRequestSubject("docs"), about: bus.About{Tree: "docs"},
			deliveries: 3, reason: "gave up after 3 deliveries: the database is away",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			js := connect(t)
			const source = "/pulpdist/test"
			cons := runConsumer(t, js, tc.c, bus.NewEvents(js, source))
			ack, err := js.Publish(t.Context(), tc.subject, []byte("poison"))
			if err != nil {
				t.Fatal(err)
			}
			// The event is published before the message is terminated.
			poll.Until(t, 20*time.Second, func() error {
				if len(deadLetterEvents(t, js)) == 0 {
					return errors.New("no dead-letter event yet")
				}
				return nil
			})
			drained(t, cons)

			dead, err := js.Stream(t.Context(), bus.StreamDead)
			if err != nil {
				t.Fatal(err)
			}
			dl, err := dead.GetLastMsgForSubject(t.Context(), bus.DeadLetterSubject(tc.c.stream))
			if err != nil {
				t.Fatalf("no dead letter: %v", err)
			}
			if string(dl.Data) != "poison" || dl.Header.Get(bus.HeaderDeadSubject) != tc.subject {
				t.Errorf("dead letter %q with headers %v", dl.Data, dl.Header)
			}

			evs := deadLetterEvents(t, js)
			if len(evs) != 1 {
				t.Fatalf("%d dead-letter events, want exactly 1", len(evs))
			}
			if want := bus.EventSubject(bus.EntityMessage, bus.ActionDeadLettered, tc.about); evs[0].Subject() != want {
				t.Errorf("event on %s, want %s", evs[0].Subject(), want)
			}
			ev, data, err := bus.DecodeEvent[bus.DeadLettered](evs[0].Data())
			if err != nil {
				t.Fatal(err)
			}
			key := fmt.Sprintf("%s/%d", tc.c.stream, ack.Sequence)
			if ev.ID() != bus.EventID(bus.EntityMessage, bus.ActionDeadLettered, key) || ev.Source() != source ||
				ev.Type() != "org.pulpdist.message.deadlettered.v1" || ev.Subject() != tc.about.Subject() {
				t.Errorf("event id %s source %s type %s subject %q", ev.ID(), ev.Source(), ev.Type(), ev.Subject())
			}
			want := bus.DeadLettered{
				Stream: tc.c.stream, StreamSequence: ack.Sequence, Subject: tc.subject, Consumer: tc.c.durable,
				Deliveries: tc.deliveries, DeadLetterSubject: bus.DeadLetterSubject(tc.c.stream),
			}
			if !strings.HasPrefix(data.Reason, tc.reason) || data.Reason != dl.Header.Get(bus.HeaderDeadReason) {
				t.Errorf("reason %q (dead letter says %q), want it to start %q", data.Reason, dl.Header.Get(bus.HeaderDeadReason), tc.reason)
			}
			data.Reason = ""
			if data != want {
				t.Errorf("event data %+v, want %+v", data, want)
			}
		})
	}
}

// TestDeadLetterIsAnnouncedOnce: the same message given up on twice (here
// by two consumers of a stream that keeps it; after a restart between the
// copy and the Term, by the same one) is one dead letter and one event:
// both are keyed by the message's stream and sequence.
func TestDeadLetterIsAnnouncedOnce(t *testing.T) {
	js := connect(t)
	refuse := func(context.Context, jetstream.Msg) error { return bus.Permanent(errors.New("no")) }
	events := bus.NewEvents(js, "/pulpdist/test")
	var conss []jetstream.Consumer
	for _, durable := range []string{"first", "second"} {
		conss = append(conss, runConsumer(t, js, deadLetterCase{
			stream: bus.StreamSnapshots, durable: durable, filter: "pulpdist.snapshot.>", handler: refuse,
		}, events))
	}
	if _, err := js.Publish(t.Context(), bus.SnapshotSubject("docs"), []byte("poison")); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 20*time.Second, func() error {
		if len(deadLetterEvents(t, js)) == 0 {
			return errors.New("no dead-letter event yet")
		}
		return nil
	})
	for _, c := range conss {
		drained(t, c)
	}
	if n := len(deadLetterEvents(t, js)); n != 1 {
		t.Errorf("%d dead-letter events, want 1", n)
	}
	dead, err := js.Stream(t.Context(), bus.StreamDead)
	if err != nil {
		t.Fatal(err)
	}
	if info, err := dead.Info(t.Context()); err != nil || info.State.Msgs != 1 {
		t.Errorf("dead letters %v, %v; want 1", info, err)
	}
}
