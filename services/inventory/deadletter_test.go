package inventory_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/pulpdist/pulpdist/libs/bus"
	"github.com/pulpdist/pulpdist/libs/inventoryapi"
	"github.com/pulpdist/pulpdist/libs/natstest"
	"github.com/pulpdist/pulpdist/services/inventory"
)

// TestDeadLettersAreNotProblems: the inventory announces an event it
// refuses as a dead letter (message.deadlettered, its own source), and
// takes such announcements — its own, and a site-agent's, signed — as
// the events they are: not recorded, not problems; the agent's is still
// its heartbeat.
func TestDeadLettersAreNotProblems(t *testing.T) {
	// Signed reports required, as by default.
	h := startWith(t, inventory.Config{NATSURL: natstest.Start(t), DatabaseURL: databases[0].url(t)})
	ctx := context.Background()
	seed(t, h)
	refused := bus.About{Tree: "docs", Site: "replica-b"}
	publishRaw(t, h.js, bus.EventSubject(bus.EntitySync, bus.ActionFinished, refused), []byte("not an event"))

	tc, err := h.client.CreateToken(ctx, inventoryapi.TokenCreate{Role: "agent", Site: "replica-a"})
	mustOK(t, err)
	id, err := bus.ReportTokenID(tc.Secret)
	mustOK(t, err)
	agent := bus.NewEvents(h.js, "/pulpdist/siteagent/replica-a").SignReportsWith(id, bus.ReportKey(tc.Secret))
	mustOK(t, agent.PublishKeyed(ctx, bus.EntityMessage, bus.ActionDeadLettered, bus.About{Tree: "docs", Site: "replica-a"}, "PULPDIST_SYNC/7", bus.DeadLettered{
		Stream: bus.StreamSync, StreamSequence: 7, Subject: bus.SyncSubject("replica-a", "docs"), Consumer: "siteagent-replica-a",
		Reason: "refused: unsupported message version 2", Deliveries: 1, DeadLetterSubject: bus.DeadLetterSubject(bus.StreamSync),
	}))

	// The inventory's own announcement is stored, and its consumer has
	// taken every event, that one included.
	eventually(t, "the refused event announced and every event handled", func() (bool, string) {
		st, err := h.js.Stream(ctx, bus.StreamEvents)
		if err != nil {
			return false, err.Error()
		}
		raw, err := st.GetLastMsgForSubject(ctx, bus.EventSubject(bus.EntityMessage, bus.ActionDeadLettered, refused))
		if err != nil {
			return false, err.Error()
		}
		ev, _, err := bus.DecodeEvent[bus.DeadLettered](raw.Data)
		if err != nil || ev.Source() != inventory.EventSource {
			return false, fmt.Sprintf("last dead-letter event from %s (%v)", ev.Source(), err)
		}
		cons, err := h.js.Consumer(ctx, bus.StreamEvents, "inventory")
		if err != nil {
			return false, err.Error()
		}
		info, err := cons.Info(ctx)
		if err != nil {
			return false, err.Error()
		}
		return info.NumPending == 0 && info.NumAckPending == 0 && info.Delivered.Stream >= raw.Sequence,
			fmt.Sprintf("consumer at %d, pending %d, ack pending %d", info.Delivered.Stream, info.NumPending, info.NumAckPending)
	})
	dead, err := h.js.Stream(ctx, bus.StreamDead)
	mustOK(t, err)
	if _, err := dead.GetLastMsgForSubject(ctx, bus.DeadLetterSubject(bus.StreamEvents)); err != nil {
		t.Errorf("the refused event is not in the dead letters: %v", err)
	}
	if ps, err := h.client.Problems(ctx, 0); err != nil || len(ps) != 0 {
		t.Errorf("problems %s, want none", jsonString(ps, err))
	}
	if site, err := h.client.Site(ctx, "replica-a"); err != nil || site.LastHeartbeat == nil {
		t.Errorf("replica-a: %s, want the agent's signed announcement as its heartbeat", jsonString(site, err))
	}
}
