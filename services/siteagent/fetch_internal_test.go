package siteagent

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/pulpdist/pulpdist/libs/bus"
	"github.com/pulpdist/pulpdist/libs/natstest"
	"github.com/pulpdist/pulpdist/libs/poll"
)

// TestUntilDisconnected: the wait for a chunk ends as soon as NATS goes
// away (its answer would never come), not after stallTimeout; stopped
// otherwise, it ends without that cause.
func TestUntilDisconnected(t *testing.T) {
	srv := natstest.Serve(t)
	nc, _, err := bus.Connect(t.Context(), srv.URL, "test", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()

	ctx, stop := untilDisconnected(t.Context(), nc)
	defer stop()
	if ctx.Err() != nil {
		t.Fatalf("ended while connected: %v", context.Cause(ctx))
	}
	srv.Restart(t)
	select {
	case <-ctx.Done():
	case <-time.After(stallTimeout / 2):
		t.Fatal("still waiting after the server went away")
	}
	if cause := context.Cause(ctx); !errors.Is(cause, errDisconnected) {
		t.Errorf("cause %v, want %v", cause, errDisconnected)
	}

	// Asked while NATS is away (the client reconnects after 2 s), it has
	// ended already.
	away := !nc.IsConnected()
	ctx, stop = untilDisconnected(t.Context(), nc)
	if away && !errors.Is(context.Cause(ctx), errDisconnected) {
		t.Errorf("asked while disconnected: cause %v", context.Cause(ctx))
	}
	stop()
	poll.Until(t, 30*time.Second, func() error {
		if !nc.IsConnected() {
			return errors.New("not reconnected")
		}
		return nil
	})
	ctx, stop = untilDisconnected(t.Context(), nc)
	stop()
	if cause := context.Cause(ctx); ctx.Err() == nil || errors.Is(cause, errDisconnected) {
		t.Errorf("stopped: err %v, cause %v", ctx.Err(), cause)
	}
}
