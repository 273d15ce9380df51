package bus_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pulpdist/pulpdist/libs/bus"
	"github.com/pulpdist/pulpdist/libs/natstest"
	"github.com/pulpdist/pulpdist/libs/poll"
)

var root = strings.Repeat("ab", 32)

func TestValidateName(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"fedora-40", true}, {"a", true}, {"x9", true},
		{"", false}, {"Fedora", false}, {"a.b", false}, {"a/b", false}, {"a*", false}, {"-a", false},
		{"a b", false}, {">", false}, {strings.Repeat("a", 64), false}, {"../etc", false},
	} {
		err := bus.ValidateName("tree", tc.name)
		if (err == nil) != tc.ok {
			t.Errorf("ValidateName(%q) = %v, want ok=%v", tc.name, err, tc.ok)
		}
		if err != nil && !errors.Is(err, bus.ErrInvalidName) {
			t.Errorf("ValidateName(%q) error %v does not wrap ErrInvalidName", tc.name, err)
		}
	}
}

func TestDecodeRefusesBadMessages(t *testing.T) {
	for _, tc := range []struct {
		name, body, want string
	}{
		{"not json", `{`, "decode"},
		{"wrong version", `{"v":2,"trigger_id":"x","tree":"a"}`, "unsupported message version"},
		{"bad tree", `{"v":1,"trigger_id":"x","tree":"A/B"}`, "invalid name"},
		{"missing id", `{"v":1,"tree":"a"}`, "missing trigger_id"},
		{"bad site", `{"v":1,"trigger_id":"x","tree":"a","sites":["A.B"]}`, "invalid name"},
		{"empty site", `{"v":1,"trigger_id":"x","tree":"a","sites":[""]}`, "invalid name"},
		{"site twice", `{"v":1,"trigger_id":"x","tree":"a","sites":["s","s"]}`, "named twice"},
		{"too many sites", `{"v":1,"trigger_id":"x","tree":"a","sites":[` + strings.Repeat(`"s",`, bus.MaxTriggerSites) + `"s"]}`, "at most"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := bus.Decode[bus.Trigger]([]byte(tc.body))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Decode = %v, want error containing %q", err, tc.want)
			}
		})
	}
	for _, tc := range []struct {
		name, body, want string
	}{
		{"unknown kind", `{"v":1,"run_id":"r","kind":"rm","site":"s","tree":"t"}`, "unknown kind"},
		{"snapshot without source", `{"v":1,"run_id":"r","kind":"snapshot","site":"s","tree":"t"}`, "without source"},
		{"apply bad to", `{"v":1,"run_id":"r","kind":"apply","site":"s","tree":"t","to":"../x"}`, "invalid version"},
		{"apply bad from", `{"v":1,"run_id":"r","kind":"apply","site":"s","tree":"t","from":"zz","to":"` + root + `"}`, "invalid version"},
		{"site with dot", `{"v":1,"run_id":"r","kind":"apply","site":"s.x","tree":"t","to":"` + root + `"}`, "invalid name"},
		{"negative bandwidth", `{"v":1,"run_id":"r","kind":"apply","site":"s","tree":"t","to":"` + root + `","bandwidth_limit":-1}`, "negative"},
		{"bad window", `{"v":1,"run_id":"r","kind":"apply","site":"s","tree":"t","to":"` + root + `","bandwidth_windows":["nights"]}`, "bandwidth window"},
		{"unknown tree type", `{"v":1,"run_id":"r","kind":"snapshot","site":"s","tree":"t","source":"/x","type":"weekly"}`, "tree type"},
		{"sync_latest of a simple tree", `{"v":1,"run_id":"r","kind":"snapshot","site":"s","tree":"t","source":"/x","sync_latest":2}`, "sync_latest"},
		{"negative max_deletions", `{"v":1,"run_id":"r","kind":"snapshot","site":"s","tree":"t","source":"/x","max_deletions":-1}`, "max_deletions"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := bus.Decode[bus.SyncCommand]([]byte(tc.body))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Decode = %v, want error containing %q", err, tc.want)
			}
		})
	}
	ok := `{"v":1,"run_id":"r","kind":"apply","site":"s","tree":"t","to":"` + root + `","extra":true}`
	if _, err := bus.Decode[bus.SyncCommand]([]byte(ok)); err != nil {
		t.Fatalf("valid command refused: %v", err)
	}
}

func TestDeltaNames(t *testing.T) {
	if got := bus.DeltaID("t", "", root); got != "t/none/"+root {
		t.Errorf("DeltaID = %q", got)
	}
	if got := bus.DeltaClaimKey("t", root, root); strings.ContainsAny(got, "/ *>") {
		t.Errorf("DeltaClaimKey %q is not a valid KV key", got)
	}
}

func connect(t *testing.T) jetstream.JetStream {
	t.Helper()
	url := natstest.Start(t)
	nc, js, err := bus.Connect(t.Context(), url, "test", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	if _, err := bus.Ensure(t.Context(), js); err != nil {
		t.Fatal(err)
	}
	return js
}

func TestEnsureIsIdempotent(t *testing.T) {
	js := connect(t)
	if _, err := bus.Ensure(t.Context(), js); err != nil {
		t.Fatalf("second Ensure: %v", err)
	}
}

// TestEventLimits: the events stream's limits are the inventory's to
// set; a service starting with the defaults keeps them.
func TestEventLimits(t *testing.T) {
	js := connect(t)
	limits := func() (time.Duration, int64) {
		st, err := js.Stream(t.Context(), bus.StreamEvents)
		if err != nil {
			t.Fatal(err)
		}
		c := st.CachedInfo().Config
		return c.MaxAge, c.MaxBytes
	}
	if age, size := limits(); age != bus.EventRetention || size > 0 {
		t.Fatalf("default limits %s, %d bytes", age, size)
	}
	set := bus.EventLimits{MaxAge: 90 * 24 * time.Hour, MaxBytes: 64 << 20}
	if _, err := bus.Ensure(t.Context(), js, bus.WithEventLimits(set)); err != nil {
		t.Fatal(err)
	}
	if _, err := bus.Ensure(t.Context(), js); err != nil { // another service starts
		t.Fatal(err)
	}
	if age, size := limits(); age != set.MaxAge || size != set.MaxBytes {
		t.Fatalf("limits %s, %d bytes after a service started with the defaults; want %+v", age, size, set)
	}
	if _, err := bus.Ensure(t.Context(), js, bus.WithEventLimits(bus.EventLimits{MaxAge: -time.Hour})); err == nil {
		t.Error("a negative age accepted")
	}
	if age, size := limits(); age != set.MaxAge || size != set.MaxBytes {
		t.Fatalf("limits %s, %d bytes after a refused change", age, size)
	}
}

func TestEventSubjects(t *testing.T) {
	cases := []struct {
		about              bus.About
		subject, ceSubject string
	}{
		{bus.About{Tree: "docs", Site: "paris"}, "pulpdist.evt.sync.finished.docs.paris", "tree/docs/site/paris"},
		{bus.About{Tree: "docs"}, "pulpdist.evt.sync.finished.docs._", "tree/docs"},
		{bus.About{Site: "paris"}, "pulpdist.evt.sync.finished._.paris", "site/paris"},
		{bus.About{Key: "k1"}, "pulpdist.evt.sync.finished._._", "key/k1"},
		{bus.About{}, "pulpdist.evt.sync.finished._._", ""},
	}
	for _, c := range cases {
		got := bus.EventSubject(bus.EntitySync, bus.ActionFinished, c.about)
		if got != c.subject || c.about.Subject() != c.ceSubject {
			t.Errorf("%+v: subject %s, CloudEvents subject %q; want %s, %q", c.about, got, c.about.Subject(), c.subject, c.ceSubject)
		}
		e, a, about, ok := bus.ParseEventSubject(got)
		if !ok || e != bus.EntitySync || a != bus.ActionFinished || about.Tree != c.about.Tree || about.Site != c.about.Site {
			t.Errorf("parse %s: %s %s %+v %v", got, e, a, about, ok)
		}
	}
	for _, bad := range []string{
		"", "pulpdist.evt", "pulpdist.evt.sync.finished", "pulpdist.evt.sync.finished.docs", "pulpdist.evt.sync.finished.docs.paris.x",
		"pulpdist.sync.a.docs", "pulpdist.evt.sync.finished.Docs._", "pulpdist.evt.sync.finished.*._", "pulpdist.evt..finished._._",
	} {
		if _, _, _, ok := bus.ParseEventSubject(bad); ok {
			t.Errorf("ParseEventSubject(%q) accepted", bad)
		}
	}
	if got := bus.SiteEventsFilter("paris"); got != "pulpdist.evt.*.*.*.paris" {
		t.Errorf("site filter %s", got)
	}
	if got := bus.TreeEventsFilter("docs"); got != "pulpdist.evt.*.*.docs.*" {
		t.Errorf("tree filter %s", got)
	}
	if got := bus.EventFilter(bus.EntityDelta, "*"); got != "pulpdist.evt.delta.*.>" {
		t.Errorf("event filter %s", got)
	}
}

func TestEventsArePublishedAsCloudEvents(t *testing.T) {
	js := connect(t)
	ev := bus.NewEvents(js, "/pulpdist/test")
	data := bus.SyncRequested{TriggerID: "t1", Tree: "demo", Reason: "manual"}
	if err := ev.Publish(t.Context(), bus.EntitySync, bus.ActionRequested, bus.About{Tree: "demo"}, data); err != nil {
		t.Fatal(err)
	}
	msg, err := js.Stream(t.Context(), bus.StreamEvents)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := msg.GetLastMsgForSubject(t.Context(), "pulpdist.evt.sync.requested.demo._")
	if err != nil {
		t.Fatal(err)
	}
	if ct := raw.Header.Get("Content-Type"); ct != bus.ContentTypeCloudEvents {
		t.Errorf("content type %q", ct)
	}
	var generic map[string]any
	if err := json.Unmarshal(raw.Data, &generic); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"specversion", "id", "source", "type", "time", "data"} {
		if _, ok := generic[k]; !ok {
			t.Errorf("event lacks %q: %s", k, raw.Data)
		}
	}
	ce, got, err := bus.DecodeEvent[bus.SyncRequested](raw.Data)
	if err != nil {
		t.Fatal(err)
	}
	if ce.Type() != "org.pulpdist.sync.requested.v1" || ce.Subject() != "tree/demo" || got != data {
		t.Errorf("decoded %s %s %+v", ce.Type(), ce.Subject(), got)
	}
	// A name that cannot be a subject token publishes nothing.
	for _, bad := range []bus.About{{Tree: "a.b"}, {Site: "*"}, {Tree: "docs", Site: "_"}, {Site: "Paris"}} {
		if err := ev.Publish(t.Context(), bus.EntitySync, bus.ActionRequested, bad, data); err == nil {
			t.Errorf("event about %+v published", bad)
		}
	}
	if info, err := msg.Info(t.Context()); err != nil || info.State.Msgs != 1 {
		t.Errorf("events stored: %v, %v; want only the one", info, err)
	}
	if _, _, err := bus.DecodeEvent[bus.SyncRequested]([]byte(`{"specversion":"1.0"}`)); err == nil {
		t.Error("invalid cloudevent accepted")
	}
}

// TestTransientEvents: an event published transient carries its TTL
// (Nats-TTL) and the stream removes it when it runs out, while an
// ordinary event stays; an events stream made before TTLs were allowed
// is given them by Ensure, its events kept.
func TestTransientEvents(t *testing.T) {
	nc, js, err := bus.Connect(t.Context(), natstest.Start(t), "test", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	// The events stream as an older release made it.
	if _, err := js.CreateStream(t.Context(), jetstream.StreamConfig{Name: bus.StreamEvents, Subjects: []string{bus.EventsPrefix + ".>"},
		MaxAge: bus.EventRetention, Duplicates: bus.DuplicateWindow, Storage: jetstream.FileStorage}); err != nil {
		t.Fatal(err)
	}
	ev := bus.NewEvents(js, "/pulpdist/test")
	about := bus.About{Site: "paris"}
	kept := bus.AgentOnline{Site: "paris", Reason: bus.AgentStarted, Since: time.Now().UTC()}
	if err := ev.Publish(t.Context(), bus.EntityAgent, bus.ActionOnline, about, kept); err != nil {
		t.Fatal(err)
	}
	if _, err := bus.Ensure(t.Context(), js); err != nil {
		t.Fatalf("Ensure over the older events stream: %v", err)
	}
	st, err := js.Stream(t.Context(), bus.StreamEvents)
	if err != nil {
		t.Fatal(err)
	}
	if !st.CachedInfo().Config.AllowMsgTTL {
		t.Fatal("the events stream does not allow message TTLs after Ensure")
	}
	beat := bus.AgentHeartbeat{Site: "paris", StartedAt: time.Now().UTC(), HeartbeatSeconds: 1}
	if err := ev.PublishTransient(t.Context(), bus.EntityAgent, bus.ActionHeartbeat, about, time.Second, beat); err != nil {
		t.Fatal(err)
	}
	subject := bus.EventSubject(bus.EntityAgent, bus.ActionHeartbeat, about)
	raw, err := st.GetLastMsgForSubject(t.Context(), subject)
	if err != nil {
		t.Fatal(err)
	}
	if got := raw.Header.Get("Nats-TTL"); got != "1s" {
		t.Errorf("transient event's Nats-TTL %q, want 1s", got)
	}
	if _, got, err := bus.DecodeEvent[bus.AgentHeartbeat](raw.Data); err != nil || got.Site != "paris" {
		t.Errorf("transient event decodes to %+v, %v", got, err)
	}
	poll.Until(t, 10*time.Second, func() error {
		if _, err := st.GetLastMsgForSubject(t.Context(), subject); !errors.Is(err, jetstream.ErrMsgNotFound) {
			return fmt.Errorf("the heartbeat is still stored (%w)", err)
		}
		return nil
	})
	if _, err := st.GetLastMsgForSubject(t.Context(), bus.EventSubject(bus.EntityAgent, bus.ActionOnline, about)); err != nil {
		t.Errorf("the ordinary event went too: %v", err)
	}
}

// TestConsumeAcksByErrorClass checks the one place acks are decided: a
// handled message is acked once, a permanent error terminates the message
// after one delivery, a transient one is redelivered until it succeeds.
func TestConsumeAcksByErrorClass(t *testing.T) {
	js := connect(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	cons, err := js.CreateOrUpdateConsumer(ctx, bus.StreamTriggers, bus.ConsumerConfig("test", "pulpdist.trigger.>"))
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	deliveries := map[string]int{}
	done := make(chan string, 10)
	h := func(_ context.Context, m jetstream.Msg) error {
		tr, err := bus.Decode[bus.Trigger](m.Data())
		if err != nil {
			done <- "bad"
			return bus.Permanent(err)
		}
		mu.Lock()
		deliveries[tr.Tree]++
		n := deliveries[tr.Tree]
		mu.Unlock()
		if tr.Tree == "flaky" && n < 3 {
			return errors.New("transient")
		}
		done <- tr.Tree
		return nil
	}
	consumeErr := make(chan error, 1)
	go func() {
		consumeErr <- bus.Consume(ctx, cons, slog.New(slog.DiscardHandler), h, bus.WithDeadLetter(js, bus.NewEvents(js, "/pulpdist/test")))
	}()

	for _, tree := range []string{"good", "flaky"} {
		tr := bus.Trigger{V: 1, TriggerID: tree, Tree: tree, Reason: "manual"}
		if err := bus.Publish(ctx, js, bus.TriggerSubject(tree), "", tr); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := js.Publish(ctx, bus.TriggerSubject("junk"), []byte("not json")); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	deadline := time.After(20 * time.Second)
	for len(seen) < 3 {
		select {
		case s := <-done:
			seen[s] = true
		case <-deadline:
			t.Fatalf("only saw %v", seen)
		}
	}
	// Every message is gone from the work queue: acked or terminated.
	poll.Until(t, 10*time.Second, func() error {
		info, err := cons.Info(ctx)
		if err != nil {
			return err
		}
		if info.NumAckPending != 0 || info.NumPending != 0 {
			return fmt.Errorf("ack pending %d, pending %d", info.NumAckPending, info.NumPending)
		}
		return nil
	})
	// The refused message was kept as a dead letter, with the reason.
	dead, err := js.Stream(ctx, bus.StreamDead)
	if err != nil {
		t.Fatal(err)
	}
	dl, err := dead.GetLastMsgForSubject(ctx, bus.DeadLetterSubject(bus.StreamTriggers))
	if err != nil {
		t.Fatalf("no dead letter: %v", err)
	}
	if string(dl.Data) != "not json" || dl.Header.Get(bus.HeaderDeadSubject) != bus.TriggerSubject("junk") ||
		!strings.Contains(dl.Header.Get(bus.HeaderDeadReason), "refused") {
		t.Fatalf("dead letter %q with headers %v", dl.Data, dl.Header)
	}
	if info, err := dead.Info(ctx); err != nil || info.State.Msgs != 1 {
		t.Fatalf("dead letters: %v, %v; want exactly the refused one", info, err)
	}
	mu.Lock()
	if deliveries["good"] != 1 || deliveries["flaky"] != 3 {
		t.Errorf("deliveries = %v, want good:1 flaky:3", deliveries)
	}
	mu.Unlock()
	cancel()
	if err := <-consumeErr; err != nil {
		t.Errorf("Consume returned %v", err)
	}
}

func TestSiteVersions(t *testing.T) {
	js := connect(t)
	l, err := bus.Ensure(t.Context(), js)
	if err != nil {
		t.Fatal(err)
	}
	if v, err := bus.GetSiteVersion(t.Context(), l.Sites, "s", "t"); err != nil || v != "" {
		t.Fatalf("unknown site version = %q, %v", v, err)
	}
	if err := bus.PutSiteVersion(t.Context(), l.Sites, "s", "t", root); err != nil {
		t.Fatal(err)
	}
	if v, err := bus.GetSiteVersion(t.Context(), l.Sites, "s", "t"); err != nil || v != root {
		t.Fatalf("site version = %q, %v", v, err)
	}
	if _, err := l.Sites.Put(t.Context(), bus.SiteVersionKey("s", "bad"), []byte(`{"root":"../x"}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := bus.GetSiteVersion(t.Context(), l.Sites, "s", "bad"); err == nil {
		t.Fatal("corrupt site version accepted")
	}
}

func TestParseSource(t *testing.T) {
	for _, tc := range []struct{ in, kind, tree, err string }{
		{in: "/srv/trees/fedora", kind: bus.SourceDir},
		{in: "rsync://mirror.example.org/debian/dists", kind: bus.SourceRsync},
		{in: "rsync://127.0.0.1:8730/mod", kind: bus.SourceRsync},
		{in: "replica:fedora-40", kind: bus.SourceReplica, tree: "fedora-40"},
		{in: "", err: "unknown kind"},
		{in: "srv/x", err: "unknown kind"},
		{in: "/srv/../etc", err: "clean"},
		{in: "/srv/x/", err: "clean"},
		{in: "/srv/a\nb", err: "control"},
		{in: "replica:", err: "invalid name"},
		{in: "replica:Fedora", err: "invalid name"},
		{in: "rsync://", err: "no host"},
		{in: "rsync://host", err: "no module"},
		{in: "rsync://host/", err: "no module"},
		{in: "rsync://user@host/mod", err: "credentials"},
		{in: "rsync://user:pw@host/mod", err: "credentials"},
		{in: "rsync://host/mod?x=1", err: "query"},
		{in: "rsync://host/mod/../other", err: "clean"},
		{in: "rsync://host/mod dir", err: "character"},
		{in: "http://host/mod", err: "unknown kind"},
	} {
		kind, tr, err := bus.ParseSource(tc.in)
		if tc.err != "" {
			if !errors.Is(err, bus.ErrInvalidSource) || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseSource(%q) = %q, %v; want an error with %q", tc.in, kind, err, tc.err)
			}
			continue
		}
		if err != nil || kind != tc.kind || tr != tc.tree {
			t.Errorf("ParseSource(%q) = %q %q %v; want %q %q", tc.in, kind, tr, err, tc.kind, tc.tree)
		}
	}
}
