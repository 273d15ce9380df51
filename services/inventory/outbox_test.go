package inventory_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/pulpdist/pulpdist/libs/bus"
	"github.com/pulpdist/pulpdist/libs/inventoryapi"
)

// TestTriggerOutlivesBusOutage: a manual sync requested while JetStream
// cannot store triggers is accepted (the trigger and its audit entry are
// one transaction), and the trigger reaches the scheduler's stream once
// the stream is back, exactly once.
func TestTriggerOutlivesBusOutage(t *testing.T) {
	for _, db := range databases {
		t.Run(db.name, func(t *testing.T) {
			h := start(t, db.url(t))
			seed(t, h)
			ctx := context.Background()
			if err := h.js.DeleteStream(ctx, bus.StreamTriggers); err != nil {
				t.Fatal(err)
			}
			code, body := h.do(t, http.MethodPost, "/api/v1/trees/docs/sync", "")
			if code != http.StatusAccepted {
				t.Fatalf("sync while the trigger stream is gone: %d %s", code, body)
			}
			var acc inventoryapi.SyncAccepted
			mustOK(t, json.Unmarshal([]byte(body), &acc))
			entries, err := h.client.AuditLog(ctx, 10)
			mustOK(t, err)
			if len(entries) == 0 || entries[0].Action != "trigger" || entries[0].Name != "docs" {
				t.Fatalf("newest audit entry = %+v, want the trigger", entries)
			}

			if _, err := bus.Ensure(ctx, h.js); err != nil {
				t.Fatal(err)
			}
			triggers := consumer(t, h.js, bus.StreamTriggers, bus.TriggerSubject("docs"))
			tr, err := bus.Decode[bus.Trigger](next(t, triggers).Data())
			mustOK(t, err)
			if tr.TriggerID != acc.TriggerID || tr.Tree != "docs" {
				t.Fatalf("trigger = %+v, want %s", tr, acc.TriggerID)
			}
			// The relay removes what it published: a second request's
			// trigger is the only one that follows.
			code, body = h.do(t, http.MethodPost, "/api/v1/trees/docs/sync", "")
			if code != http.StatusAccepted {
				t.Fatalf("second sync: %d %s", code, body)
			}
			mustOK(t, json.Unmarshal([]byte(body), &acc))
			tr, err = bus.Decode[bus.Trigger](next(t, triggers).Data())
			mustOK(t, err)
			if tr.TriggerID != acc.TriggerID {
				t.Fatalf("after the outage the stream got %s, want only the new trigger %s", tr.TriggerID, acc.TriggerID)
			}
		})
	}
}
