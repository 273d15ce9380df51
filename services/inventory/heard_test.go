package inventory

import (
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pulpdist/pulpdist/libs/bus"
	"github.com/pulpdist/pulpdist/libs/natstest"
)

// TestHeardUntil: the time up to which a consumer has handled a stream is
// when the first event it has not handled was stored, however many wait
// behind it, whether it waits, is in hand, or was passed by others
// handled first; an event removed from the stream does not hide the ones
// after it; and once every event is handled it is the server's time.
func TestHeardUntil(t *testing.T) {
	ctx := t.Context()
	nc, err := nats.Connect(natstest.Start(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	st, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "EVENTS", Subjects: []string{"evt.>"}})
	if err != nil {
		t.Fatal(err)
	}
	c, err := js.CreateOrUpdateConsumer(ctx, "EVENTS", bus.ConsumerConfig("inventory", "evt.>"))
	if err != nil {
		t.Fatal(err)
	}
	publish := func(n int) {
		t.Helper()
		for range n {
			if _, err := js.Publish(ctx, "evt.x", nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	stored := func(seq uint64) time.Time {
		t.Helper()
		m, err := st.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		return m.Time
	}
	heardIs := func(what string, want time.Time) {
		t.Helper()
		got, now, err := heardUntil(ctx, st, c)
		if err != nil {
			t.Fatal(err)
		}
		if !got.Equal(want) || !now.After(want) {
			t.Fatalf("%s: heard until %s at %s, want %s", what, got, now, want)
		}
	}
	heardNow := func(what string) {
		t.Helper()
		before := time.Now()
		got, now, err := heardUntil(ctx, st, c)
		if err != nil {
			t.Fatal(err)
		}
		if got.Before(before) || got.After(time.Now()) || !got.Equal(now) {
			t.Fatalf("%s: heard until %s at %s, want the server's time, between %s and now", what, got, now, before)
		}
	}
	fetch := func(n int) []jetstream.Msg {
		t.Helper()
		b, err := c.FetchNoWait(n)
		if err != nil {
			t.Fatal(err)
		}
		var ms []jetstream.Msg
		for m := range b.Messages() {
			ms = append(ms, m)
		}
		if len(ms) != n {
			t.Fatalf("fetched %d events, want %d", len(ms), n)
		}
		return ms
	}
	ack := func(ms ...jetstream.Msg) {
		t.Helper()
		for _, m := range ms {
			if err := m.DoubleAck(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}

	heardNow("nothing stored")
	publish(5)
	heardIs("five waiting", stored(1))
	ms := fetch(2)
	ack(ms[0])
	heardIs("the second in hand", stored(2))
	ack(ms[1])
	heardIs("three waiting", stored(3))
	ms = fetch(3)
	ack(ms[1], ms[2])
	heardIs("the third in hand, the next two handled", stored(3))
	ack(ms[0])
	heardNow("all handled")
	publish(2)
	if err := st.DeleteMsg(ctx, 6); err != nil {
		t.Fatal(err)
	}
	heardIs("the sixth removed, the seventh waiting", stored(7))
	ack(fetch(1)...)
	heardNow(fmt.Sprintf("all handled, the last stored at %s", stored(7)))
}

// TestSilenceKnown: silence is told only while every heartbeat sent in
// the threshold before the point the inventory has handled the stream to
// is still kept, or once it is caught up; not when it is so far behind
// that heartbeats waiting for it may have expired unseen.
func TestSilenceKnown(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	ttl := bus.AgentHeartbeatTTL
	for _, tc := range []struct {
		behind, after time.Duration
		want          bool
	}{
		{0, 5 * time.Minute, true},
		{0, 2 * ttl, true}, // caught up: whatever the threshold
		{time.Second, 5 * time.Minute, true},
		{ttl - 5*time.Minute - time.Second, 5 * time.Minute, true},
		{ttl - 5*time.Minute, 5 * time.Minute, false},
		{ttl, 5 * time.Minute, false},
		{2 * ttl, 5 * time.Minute, false},
		{time.Second, ttl, false},
		{-time.Second, ttl, true}, // an event stored after the state was read
	} {
		if got := silenceKnown(now.Add(-tc.behind), now, tc.after); got != tc.want {
			t.Errorf("%s behind, threshold %s: %t, want %t", tc.behind, tc.after, got, tc.want)
		}
	}
}
