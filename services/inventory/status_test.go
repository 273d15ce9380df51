package inventory_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/pulpdist/pulpdist/libs/bus"
	"github.com/pulpdist/pulpdist/libs/inventoryapi"
	"github.com/pulpdist/pulpdist/libs/natstest"
	"github.com/pulpdist/pulpdist/libs/program"
)

// TestStatusOverTheBus: the inventory is a micro service; its status
// counts what the database holds and how the subscriptions stand, and it
// stops answering when the inventory stops.
func TestStatusOverTheBus(t *testing.T) {
	for _, db := range databases {
		t.Run(db.name, func(t *testing.T) { testStatusOverTheBus(t, start(t, db.url(t))) })
	}
}

func testStatusOverTheBus(t *testing.T, h *harness) {
	ctx := context.Background()
	nc := h.js.Conn()
	info := natstest.Discover(t, nc, micro.InfoVerb, "pulpdist-inventory", func(is []micro.Info) error {
		if len(is) != 1 {
			return fmt.Errorf("%d inventories", len(is))
		}
		return nil
	})[0]
	if len(info.Endpoints) != 1 || info.Endpoints[0].Subject != bus.ServiceSubject(bus.ServiceInventory, bus.EndpointStatus) || info.Metadata["instance"] == "" {
		t.Errorf("info %+v", info)
	}

	seed(t, h)
	_, err := h.client.Subscribe(ctx, inventoryapi.Subscription{Site: "replica-a", Tree: "docs"})
	mustOK(t, err)
	_, err = h.client.Subscribe(ctx, inventoryapi.Subscription{Site: "replica-b", Tree: "docs", Paused: true})
	mustOK(t, err)
	events := bus.NewEvents(h.js, "/test")
	now := time.Now().UTC()
	for i, r := range []string{root('1'), root('2')} {
		mustOK(t, events.Publish(ctx, bus.EntitySnapshot, bus.ActionPublished, bus.About{Tree: "docs", Site: "origin"}, bus.Snapshot{
			V: 1, TriggerID: "t0", Tree: "docs", Site: "origin", Root: r, Files: 1, Bytes: 1, PublishedAt: now.Add(time.Duration(i-2) * time.Minute)}))
	}
	mustOK(t, events.Publish(ctx, bus.EntitySync, bus.ActionFinished, bus.About{Tree: "docs", Site: "replica-a"}, bus.SyncFinished{
		RunID: "run-1", TriggerID: "t1", Site: "replica-a", Tree: "docs", Kind: bus.CommandApply, To: root('1'),
		Result: bus.ResultCompleted, FinishedAt: now.Add(-time.Minute)}))
	mustOK(t, events.Publish(ctx, bus.EntitySync, bus.ActionStarted, bus.About{Tree: "docs", Site: "replica-a"}, bus.SyncStarted{
		RunID: "run-2", TriggerID: "t2", Site: "replica-a", Tree: "docs", Kind: bus.CommandApply, From: root('1'), To: root('2'), StartedAt: now}))
	mustOK(t, events.Publish(ctx, bus.EntitySync, bus.ActionFinished, bus.About{Tree: "docs", Site: "replica-b"}, bus.SyncFinished{
		RunID: "run-3", TriggerID: "t2", Site: "replica-b", Tree: "docs", Kind: bus.CommandApply, To: root('2'),
		Result: bus.ResultFailed, Error: "disk on fire", FinishedAt: now}))

	want := bus.InventoryStatus{Sites: 3, Trees: 1, Subscriptions: 2, Versions: 2, Running: 1, Failing: 1, Behind: 2}
	var st bus.InventoryStatus
	eventually(t, "status counts", func() (bool, string) {
		m, err := nc.Request(bus.ServiceSubject(bus.ServiceInventory, bus.EndpointStatus), nil, 10*time.Second)
		if err != nil {
			return false, err.Error()
		}
		st = bus.InventoryStatus{}
		if err := json.Unmarshal(m.Data, &st); err != nil {
			return false, string(m.Data)
		}
		got := st
		got.ServiceStatus = bus.ServiceStatus{}
		return got == want, string(m.Data)
	})
	if st.Service != bus.ServiceInventory || st.Version != program.Version || !st.Ready || st.StartedAt.IsZero() {
		t.Errorf("status %+v", st.ServiceStatus)
	}

	h.stop()
	if _, err := nc.Request(bus.ServiceSubject(bus.ServiceInventory, bus.EndpointStatus), nil, 5*time.Second); !errors.Is(err, nats.ErrNoResponders) {
		t.Errorf("status of a stopped inventory: %v, want no responders", err)
	}
}
