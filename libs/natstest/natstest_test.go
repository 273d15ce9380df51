package natstest_test

import (
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/pulpdist/pulpdist/libs/bus"
	"github.com/pulpdist/pulpdist/libs/natstest"
	"github.com/pulpdist/pulpdist/libs/poll"
)

// TestRestart: a restarted server listens where it did and keeps what it
// stored; a client reconnects by itself and finds it.
func TestRestart(t *testing.T) {
	srv := natstest.Serve(t)
	nc, js, err := bus.Connect(t.Context(), srv.URL, "test", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if _, err := bus.Ensure(t.Context(), js); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(t.Context(), bus.TriggerSubject("docs"), []byte("kept")); err != nil {
		t.Fatal(err)
	}
	url := srv.URL
	srv.Restart(t)
	if srv.URL != url {
		t.Fatalf("URL %s after the restart, was %s", srv.URL, url)
	}
	poll.Until(t, 30*time.Second, func() error {
		if nc.Stats().Reconnects == 0 || !nc.IsConnected() {
			return errors.New("the client has not reconnected")
		}
		return nil
	})
	st, err := js.Stream(t.Context(), bus.StreamTriggers)
	if err != nil {
		t.Fatal(err)
	}
	m, err := st.GetLastMsgForSubject(t.Context(), bus.TriggerSubject("docs"))
	if err != nil || string(m.Data) != "kept" {
		t.Fatalf("stored message after the restart: %v", err)
	}
}
