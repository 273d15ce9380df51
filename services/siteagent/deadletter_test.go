package siteagent_test

import (
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pulpdist/pulpdist/libs/bus"
	"github.com/pulpdist/pulpdist/libs/poll"
	"github.com/pulpdist/pulpdist/services/siteagent"
)

// TestRefusedCommandIsAnnouncedSigned: a command the agent refuses goes
// to the dead letters, and the agent announces it as its other events,
// from its own source and signed with its agent token, so an inventory
// that requires signed reports takes it as the agent's.
func TestRefusedCommandIsAnnouncedSigned(t *testing.T) {
	const token = "pdt_abc123_secretsecret"
	h := start(t, "paris", func(c *siteagent.Config) { c.AgentToken = token })
	if _, err := h.js.Publish(t.Context(), bus.SyncSubject("paris", "docs"), []byte(`{"v":2}`)); err != nil {
		t.Fatal(err)
	}
	subject := bus.EventSubject(bus.EntityMessage, bus.ActionDeadLettered, bus.About{Tree: "docs", Site: "paris"})
	var raw *jetstream.RawStreamMsg
	poll.Until(t, 20*time.Second, func() error {
		st, err := h.js.Stream(t.Context(), bus.StreamEvents)
		if err != nil {
			return err
		}
		raw, err = st.GetLastMsgForSubject(t.Context(), subject)
		if err != nil {
			return errors.Join(errors.New("no dead-letter event yet"), err)
		}
		return nil
	})
	ev, data, err := bus.DecodeEvent[bus.DeadLettered](raw.Data)
	if err != nil {
		t.Fatal(err)
	}
	if ev.Source() != "/pulpdist/siteagent/paris" || data.Stream != bus.StreamSync || data.Consumer != siteagent.ConsumerName("paris") {
		t.Errorf("event from %s: %+v", ev.Source(), data)
	}
	if id, ok := bus.ReportSigner(ev); !ok || id != "abc123" {
		t.Errorf("event signed by %q (%v), want the agent token abc123", id, ok)
	}
	if err := bus.VerifyReport(ev, bus.ReportKey(token)); err != nil {
		t.Errorf("signature: %v", err)
	}
}
