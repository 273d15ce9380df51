package deltacache

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/pulpdist/pulpdist/libs/bus"
	"github.com/pulpdist/pulpdist/libs/control"
)

// TestDeltaCacheStatus: each instance answers its status on a subject of
// its own, listing the deltas it is computing; a delta computed is no
// longer listed.
func TestDeltaCacheStatus(t *testing.T) {
	h := start(t, 2)
	for _, s := range h.instances {
		svc, err := control.Start(t.Context(), s.js.Conn(), s.control(), slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := svc.Stop(); err != nil {
				t.Error(err)
			}
		})
	}
	nc, err := nats.Connect(h.js.Conn().ConnectedUrl())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	status := func(instance string) bus.DeltaCacheStatus {
		t.Helper()
		m, err := nc.Request(bus.InstanceSubject(bus.ServiceDeltaCache, instance, bus.EndpointStatus), nil, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		var st bus.DeltaCacheStatus
		if err := json.Unmarshal(m.Data, &st); err != nil {
			t.Fatalf("status %q: %v", m.Data, err)
		}
		if st.Service != bus.ServiceDeltaCache || st.Instance != instance || st.Effort != EffortAuto {
			t.Errorf("status of %s: %+v", instance, st)
		}
		return st
	}

	dir := t.TempDir()
	write(t, dir, "a.txt", "one")
	v1 := publish(t, h.layout, "demo", dir)
	write(t, dir, "a.txt", "two")
	v2 := publish(t, h.layout, "demo", dir)
	req := bus.DeltaRequest{V: 1, TriggerID: "t1", Tree: "demo", From: v1.Root(), To: v2.Root(), Sites: 3}
	a := h.instances[0]
	done := a.track(req, bus.DeltaID("demo", v1.Root(), v2.Root()), time.Now())
	got := status("a").Computing
	if len(got) != 1 || got[0].Tree != "demo" || got[0].From != v1.Root() || got[0].To != v2.Root() || got[0].TriggerID != "t1" || got[0].Sites != 3 {
		t.Errorf("instance a computing %+v", got)
	}
	if other := status("b").Computing; len(other) != 0 {
		t.Errorf("instance b computing %+v, want nothing", other)
	}
	done()

	if err := a.Serve(t.Context(), req); err != nil {
		t.Fatal(err)
	}
	if n := h.computedEvents(t); n != 1 {
		t.Fatalf("%d deltas computed, want 1", n)
	}
	if left := status("a").Computing; len(left) != 0 {
		t.Errorf("after the build, instance a computing %+v", left)
	}

	// A build of a thousand files is seen while it runs.
	for i := range 1000 {
		write(t, dir, fmt.Sprintf("many/%04d", i), strings.Repeat(fmt.Sprint(i), 500))
	}
	v3 := publish(t, h.layout, "demo", dir)
	big := bus.DeltaRequest{V: 1, TriggerID: "t2", Tree: "demo", From: v2.Root(), To: v3.Root()}
	served := make(chan error, 1)
	go func() { served <- a.Serve(t.Context(), big) }()
	for seen := false; !seen; {
		select {
		case err := <-served:
			t.Fatalf("the build ended (%v) before the status showed it", err)
		default:
		}
		for _, d := range status("a").Computing {
			seen = seen || d.To == v3.Root() && d.TriggerID == "t2"
		}
	}
	if err := <-served; err != nil {
		t.Fatal(err)
	}
	m, err := nc.Request(bus.InstanceSubject(bus.ServiceDeltaCache, "a", bus.EndpointStatus), []byte(`{"x":1}`), 10*time.Second)
	if err != nil || !strings.Contains(m.Header.Get("Nats-Service-Error"), "unknown field") {
		t.Errorf("status with a body: %v %v", m, err)
	}
}
