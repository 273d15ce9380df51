package natstest_test

import (
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/pulpdist/pulpdist/libs/bus"
	"github.com/pulpdist/pulpdist/libs/natstest"
)

func TestCheckEvents(t *testing.T) {
	// An event as a service renders it passes.
	ev := bus.NewEvents(nil, "/pulpdist/scheduler")
	fin := bus.SyncFinished{RunID: "r1", TriggerID: "t1", Site: "paris", Tree: "docs", Kind: bus.CommandApply,
		To: strings.Repeat("a", 64), Result: bus.ResultCompleted, FinishedAt: time.Now().UTC()}
	about := bus.About{Tree: "docs", Site: "paris"}
	msg, _, err := ev.Render(t.Context(), bus.EntitySync, bus.ActionFinished, about, "r1", fin)
	if err != nil {
		t.Fatal(err)
	}
	if err := natstest.CheckEvent(msg.Subject, msg.Data); err != nil {
		t.Fatalf("a rendered event: %v", err)
	}
	edit := func(f func(map[string]any)) []byte {
		var m map[string]any
		if err := json.Unmarshal(msg.Data, &m); err != nil {
			t.Fatal(err)
		}
		f(m)
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	bad := []struct {
		name, subject string
		body          []byte
	}{
		{"data lacks run_id", msg.Subject, edit(func(m map[string]any) { delete(m["data"].(map[string]any), "run_id") })},
		{"result not a result", msg.Subject, edit(func(m map[string]any) { m["data"].(map[string]any)["result"] = "DONE" })},
		{"no subject", msg.Subject, edit(func(m map[string]any) { delete(m, "subject") })},
		{"unknown type", msg.Subject, edit(func(m map[string]any) { m["type"] = "org.pulpdist.sync.vanished.v1" })},
		{"type with a path", msg.Subject, edit(func(m map[string]any) { m["type"] = "../../go.mod" })},
		{"other site on the subject", bus.EventSubject(bus.EntitySync, bus.ActionFinished, bus.About{Tree: "docs", Site: "lyon"}), msg.Data},
		{"other event's subject", bus.EventSubject(bus.EntitySync, bus.ActionStarted, about), msg.Data},
		{"not an event subject", "pulpdist.sync.paris.docs", msg.Data},
	}
	for _, b := range bad {
		if err := natstest.CheckEvent(b.subject, b.body); err == nil {
			t.Errorf("%s: accepted", b.name)
		}
	}
	// What no pulpdist service sent is not judged: tests publish junk on purpose.
	for _, body := range [][]byte{[]byte("not json"), edit(func(m map[string]any) { m["source"] = "/test"; delete(m, "data") })} {
		if err := natstest.CheckEvent(msg.Subject, body); err != nil {
			t.Errorf("foreign event %s: %v", body, err)
		}
	}

	// CheckEvents reads them back from a server's events stream.
	url := natstest.Start(t)
	nc, js, err := bus.Connect(t.Context(), url, "test", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if errs := natstest.CheckEvents(t.Context(), url); len(errs) != 0 {
		t.Fatalf("no stream yet: %v", errs)
	}
	if _, err := bus.Ensure(t.Context(), js); err != nil {
		t.Fatal(err)
	}
	if err := bus.NewEvents(js, "/pulpdist/scheduler").PublishKeyed(t.Context(), bus.EntitySync, bus.ActionFinished, about, "r1", fin); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(t.Context(), msg.Subject, bad[0].body); err != nil {
		t.Fatal(err)
	}
	errs := natstest.CheckEvents(t.Context(), url)
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "event 2 ") {
		t.Fatalf("check of a good and a bad event: %v", errs)
	}
	// Serve's own check at the end of this test would report it too.
	if err := js.DeleteStream(t.Context(), bus.StreamEvents); err != nil {
		t.Fatal(err)
	}
}
