package bus_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pulpdist/pulpdist/libs/bus"
	"github.com/pulpdist/pulpdist/libs/natstest"
	"github.com/pulpdist/pulpdist/libs/poll"
)

// TestEventsAcrossServerRestart: NATS restarts while a publisher keeps
// publishing events and a durable consumer (Consume) reads them. Every
// event the publisher had an ack for is handled, and a message handled
// twice carries the id of its fact both times, so a consumer recognises
// it as the same.
func TestEventsAcrossServerRestart(t *testing.T) {
	srv := natstest.Serve(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	log := slog.New(slog.DiscardHandler)
	nc, js, err := bus.Connect(ctx, srv.URL, "consumer", log)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if _, err := bus.Ensure(ctx, js); err != nil {
		t.Fatal(err)
	}
	cons, err := js.CreateOrUpdateConsumer(ctx, bus.StreamEvents, bus.ConsumerConfig("follower", bus.EventsPrefix+".>"))
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	handled := map[string]int{} // by trigger id, the fact each event states
	var wrongIDs []string
	h := func(_ context.Context, m jetstream.Msg) error {
		ev, data, err := bus.DecodeEvent[bus.SyncRequested](m.Data())
		if err != nil {
			return bus.Permanent(err)
		}
		mu.Lock()
		defer mu.Unlock()
		if ev.ID() != bus.EventID(bus.EntitySync, bus.ActionRequested, data.TriggerID) {
			wrongIDs = append(wrongIDs, ev.ID())
		}
		handled[data.TriggerID]++
		return nil
	}
	consumed := make(chan error, 1)
	go func() {
		consumed <- bus.Consume(ctx, cons, log, h, bus.WithDeadLetter(js, bus.NewEvents(js, "/pulpdist/test")))
	}()

	// The publisher has a connection of its own; it retries an event it
	// had no ack for, under the same id, until it has one.
	pnc, pjs, err := bus.Connect(ctx, srv.URL, "publisher", log)
	if err != nil {
		t.Fatal(err)
	}
	defer pnc.Close()
	events := bus.NewEvents(pjs, "/pulpdist/test")
	const total = 1000
	var (
		pmu   sync.Mutex
		acked []string
	)
	published := make(chan error, 1)
	go func() {
		for i := range total {
			id := fmt.Sprintf("trigger-%03d", i)
			for {
				err := events.PublishKeyed(ctx, bus.EntitySync, bus.ActionRequested, bus.About{Tree: "docs"}, id,
					bus.SyncRequested{TriggerID: id, Tree: "docs", Reason: "manual"})
				if err == nil {
					break
				}
				if ctx.Err() != nil {
					published <- err
					return
				}
			}
			pmu.Lock()
			acked = append(acked, id)
			pmu.Unlock()
		}
		published <- nil
	}()
	ackedSoFar := func() []string {
		pmu.Lock()
		defer pmu.Unlock()
		return append([]string(nil), acked...)
	}

	// Restart in the middle of the stream: some events acked, not all.
	poll.Until(t, 30*time.Second, func() error {
		if n := len(ackedSoFar()); n < total/3 {
			return fmt.Errorf("%d events acked", n)
		}
		return nil
	})
	srv.Restart(t)
	if n := len(ackedSoFar()); n == total {
		t.Fatal("every event was acked before the restart: publish more")
	}

	select {
	case err := <-published:
		if err != nil {
			t.Fatalf("publisher: %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("publisher stuck after the restart at %d of %d events", len(ackedSoFar()), total)
	}
	// Within less than the two missed heartbeats (60 s) after which a
	// consumer that lost its pull request would ask again.
	poll.Until(t, 30*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		var missing []string
		for _, id := range ackedSoFar() {
			if handled[id] == 0 {
				missing = append(missing, id)
			}
		}
		if len(missing) > 0 {
			return fmt.Errorf("%d acked events not handled, from %s", len(missing), missing[0])
		}
		return nil
	})
	if nc.Stats().Reconnects == 0 || pnc.Stats().Reconnects == 0 {
		t.Errorf("reconnects: consumer %d, publisher %d; the restart did not reach the clients", nc.Stats().Reconnects, pnc.Stats().Reconnects)
	}
	mu.Lock()
	dups := 0
	for _, n := range handled {
		dups += n - 1
	}
	if len(wrongIDs) > 0 {
		t.Errorf("events with an id not derived from their fact: %v", wrongIDs)
	}
	mu.Unlock()
	t.Logf("%d events acked, %d handled twice or more (recognised by id)", total, dups)
	cancel()
	if err := <-consumed; err != nil && !errors.Is(err, context.Canceled) {
		t.Errorf("Consume: %v", err)
	}
}
