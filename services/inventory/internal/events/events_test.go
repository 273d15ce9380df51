package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/pulpdist/pulpdist/libs/bus"
	"github.com/pulpdist/pulpdist/services/inventory/internal/catalog"
)

// calls records what Handle passed on, and fails with err.
type calls struct {
	got []string
	err error
}

func (c *calls) RecordSnapshot(_ context.Context, id string, m bus.Snapshot) error {
	c.got = append(c.got, "snapshot "+id+" "+m.Tree)
	return c.err
}

func (c *calls) RecordSyncStarted(_ context.Context, id string, m bus.SyncStarted) error {
	c.got = append(c.got, "started "+id+" "+m.RunID)
	return c.err
}

func (c *calls) RecordSyncFinished(_ context.Context, id string, m bus.SyncFinished) error {
	c.got = append(c.got, "finished "+id+" "+m.RunID+" "+string(m.Result))
	return c.err
}

func body(t *testing.T, typ string, data any) []byte {
	t.Helper()
	ev := event.New()
	ev.SetID("ev-1")
	ev.SetSource("/test")
	ev.SetType(typ)
	if err := ev.SetData("application/json", data); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestHandleRoutesByType(t *testing.T) {
	for _, tc := range []struct {
		typ  string
		data any
		want string
	}{
		{TypeSnapshotPublished, bus.Snapshot{Tree: "docs"}, "snapshot ev-1 docs"},
		{TypeSyncStarted, bus.SyncStarted{RunID: "r"}, "started ev-1 r"},
		{TypeSyncFinished, bus.SyncFinished{RunID: "r", Result: bus.ResultFailed}, "finished ev-1 r FAILED"},
		{"dev.pulpdist.delta.computed", bus.DeltaComputed{}, ""},
		{"dev.pulpdist.tree.created", map[string]string{"name": "docs"}, ""},
	} {
		var c calls
		if err := Handle(context.Background(), &c, body(t, tc.typ, tc.data)); err != nil {
			t.Errorf("%s: %v", tc.typ, err)
		}
		if got := fmt.Sprint(c.got); (tc.want == "" && len(c.got) != 0) || (tc.want != "" && got != "["+tc.want+"]") {
			t.Errorf("%s: calls %v, want %q", tc.typ, c.got, tc.want)
		}
	}
}

func TestHandleErrorClasses(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name      string
		body      []byte
		err       error
		permanent bool
	}{
		{"not json", []byte("{"), nil, true},
		{"not a cloudevent", []byte(`{"hello":"world"}`), nil, true},
		{"data of the wrong shape", body(t, TypeSyncStarted, []int{1}), nil, true},
		{"invalid", body(t, TypeSyncStarted, bus.SyncStarted{}), fmt.Errorf("%w: bad", catalog.ErrInvalid), true},
		{"unknown tree", body(t, TypeSnapshotPublished, bus.Snapshot{}), catalog.ErrTreeNotFound, true},
		{"database down", body(t, TypeSyncFinished, bus.SyncFinished{}), errors.New("connection refused"), false},
	} {
		err := Handle(ctx, &calls{err: tc.err}, tc.body)
		if err == nil || bus.IsPermanent(err) != tc.permanent {
			t.Errorf("%s: err = %v, permanent %v, want %v", tc.name, err, bus.IsPermanent(err), tc.permanent)
		}
	}
}
