package main

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/pulpdist/pulpdist/cmd/pulpdist/internal/devstack"
	"github.com/pulpdist/pulpdist/libs/bus"
	"github.com/pulpdist/pulpdist/libs/inventoryapi"
	"github.com/pulpdist/pulpdist/libs/natstest"
	"github.com/pulpdist/pulpdist/libs/poll"
)

// TestSyncAcrossNATSRestarts restarts NATS (same port, same store) twice
// in the middle of a sync — once the origin has published the version,
// while the scheduler plans and the delta-cache builds, and once the delta
// is ready, while the sites are sent their commands and fetch — and the
// sync still ends COMPLETED at every site, with the origin's tree, and
// nothing dead-lettered: every service reconnects and takes its work up
// again, none is left stuck. A delivery NATS lost as it stopped is
// delivered again after AckWait (bus.DefaultAckWait), within the waits.
func TestSyncAcrossNATSRestarts(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "origin-tree")
	rng := rand.New(rand.NewPCG(7, 7))
	for i := range 40 {
		body := make([]byte, 20_000+rng.IntN(200_000))
		for j := range body {
			body[j] = byte(rng.Uint32())
		}
		writeFile(t, src, fmt.Sprintf("dir-%d/file-%02d.bin", i%5, i), string(body), 0o644)
	}
	srv := natstest.Serve(t) // its check of every event runs once the stack has stopped
	st := startStack(t, devstack.Options{
		DataDir: filepath.Join(dir, "stack"), NATSURL: srv.URL, APIAddr: "127.0.0.1:0",
		Sites: []string{"origin", "site-a", "site-b"}, DeltaCaches: 1,
	})
	ready(t, st.APIURL)
	ctx := t.Context()
	c := inventoryapi.NewClient(st.APIURL, nil).WithToken(st.Token)
	createSites(t, c, "origin", "site-a", "site-b")
	if _, err := c.CreateTree(ctx, inventoryapi.Tree{Name: "demo", OriginSite: "origin", Source: src}); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"site-a", "site-b"} {
		if _, err := c.Subscribe(ctx, inventoryapi.Subscription{Site: s, Tree: "demo"}); err != nil {
			t.Fatal(err)
		}
	}
	js := connectJetStream(t, srv.URL)
	acc, err := c.Sync(ctx, "demo")
	if err != nil {
		t.Fatal(err)
	}
	// restartAfter restarts NATS once the sync has reached the event.
	restartAfter := func(entity, action string, about bus.About) {
		t.Helper()
		subject := bus.EventSubject(entity, action, about)
		poll.Until(t, 60*time.Second, func() error {
			stream, err := js.Stream(ctx, bus.StreamEvents)
			if err != nil {
				return err
			}
			m, err := stream.GetLastMsgForSubject(ctx, subject)
			if err != nil {
				return fmt.Errorf("%s: %w", subject, err)
			}
			_, data, err := bus.DecodeEvent[struct {
				TriggerID string `json:"trigger_id"`
			}](m.Data)
			if err != nil {
				return err
			}
			if data.TriggerID != acc.TriggerID {
				return fmt.Errorf("%s: not of the sync yet", subject)
			}
			return nil
		})
		srv.Restart(t)
	}
	restartAfter(bus.EntitySnapshot, bus.ActionPublished, bus.About{Tree: "demo", Site: "origin"})
	restartAfter(bus.EntityDelta, bus.ActionReady, bus.About{Tree: "demo"})

	runs := waitRuns(t, c, acc.TriggerID, "origin", "site-a", "site-b")
	want := scan(t, src)
	for _, s := range []string{"origin", "site-a", "site-b"} {
		if r := runs[s]; r.Result != string(bus.ResultCompleted) || r.To != want.Root() {
			t.Errorf("%s: run %+v, want COMPLETED at %s", s, r, want.Root())
		}
	}
	for _, s := range []string{"site-a", "site-b"} {
		if got := scan(t, filepath.Join(st.SiteDir(s), "trees", "demo", "current")); !reflect.DeepEqual(got.Entries, want.Entries) {
			t.Errorf("%s serves %s, the origin has %s", s, got.Root(), want.Root())
		}
	}
	// Nothing was given up on because NATS went away for a moment.
	dead, err := js.Stream(ctx, bus.StreamDead)
	if err != nil {
		t.Fatal(err)
	}
	if info, err := dead.Info(ctx); err != nil || info.State.Msgs != 0 {
		t.Errorf("dead letters: %+v, %v; want none", info.State, err)
	}
	if ps, err := c.Problems(ctx, 0); err != nil || len(ps) != 0 {
		t.Errorf("problems %+v, %v: want none", ps, err)
	}
}
