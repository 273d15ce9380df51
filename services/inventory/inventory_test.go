package inventory_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pulpdist/pulpdist/libs/bus"
	"github.com/pulpdist/pulpdist/libs/health"
	"github.com/pulpdist/pulpdist/libs/inventoryapi"
	"github.com/pulpdist/pulpdist/libs/natstest"
	"github.com/pulpdist/pulpdist/libs/pgtest"
	"github.com/pulpdist/pulpdist/services/inventory"
	"github.com/pulpdist/pulpdist/services/inventory/internal/store"
)

// harness is a running inventory wired to an embedded NATS server.
type harness struct {
	url    string
	client *inventoryapi.Client
	js     jetstream.JetStream
	svc    *inventory.Service
	// stop ends the inventory and waits for it; the test's end calls it too.
	stop func()
}

var databases = []struct {
	name string
	url  func(t *testing.T) string
}{
	{"sqlite", func(t *testing.T) string { return "sqlite://" + filepath.Join(t.TempDir(), "inventory.db") }},
	{"postgres", func(t *testing.T) string { return pgtest.NewDatabase(t) }},
}

func start(t *testing.T, dbURL string, extra ...*health.Probe) *harness {
	t.Helper()
	// The tests publish agents' events unsigned (agentreport_test.go
	// checks signed ones).
	return startWith(t, inventory.Config{NATSURL: natstest.Start(t), DatabaseURL: dbURL, ExtraProbes: extra, AcceptUnsignedReports: true})
}

// startWith runs an inventory with cfg (NATS and database URLs set by the
// caller) until the test ends.
func startWith(t *testing.T, cfg inventory.Config) *harness {
	t.Helper()
	natsURL := cfg.NATSURL
	ctx, cancel := context.WithCancel(context.Background())
	log := slog.New(slog.DiscardHandler)
	cfg.HTTPAddr, cfg.LogFormat, cfg.LogLevel = "127.0.0.1:0", "text", "info"
	cfg.Migrate = true
	if cfg.AdminToken == "" {
		cfg.AdminToken = testAdminToken
	}
	svc, err := inventory.New(ctx, cfg, log)
	if err != nil {
		cancel()
		t.Fatalf("new inventory: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("inventory run: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	nc, err := nats.Connect(natsURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{url: svc.URL(), client: inventoryapi.NewClient(svc.URL(), nil).WithToken(cfg.AdminToken), js: js, svc: svc, stop: stop}
	eventually(t, "inventory ready", func() (bool, string) {
		code, body := h.do(t, http.MethodGet, "/readyz", "")
		return code == http.StatusOK, body
	})
	return h
}

// do sends a raw request and returns the status and body.
func (h *harness) do(t *testing.T, method, path, body string) (int, string) {
	t.Helper()
	code, _, b := h.doHeader(t, method, path, body)
	return code, b
}

func (h *harness) doHeader(t *testing.T, method, path, body string) (int, http.Header, string) {
	t.Helper()
	return h.send(t, method, path, body, nil)
}

// roundTrip sends req and returns the status, headers and body.
func roundTrip(t *testing.T, req *http.Request) (int, http.Header, string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL.RequestURI(), err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, string(b)
}

// eventually polls cond until it holds or 15 s have passed.
func eventually(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		ok, last := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not reached before the deadline; last: %s", what, last)
		}
		<-tick.C
	}
}

func root(c byte) string { return strings.Repeat(string(c), 64) }

func mustOK(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func seed(t *testing.T, h *harness) {
	t.Helper()
	ctx := context.Background()
	for _, s := range []string{"origin", "replica-a", "replica-b"} {
		_, err := h.client.CreateSite(ctx, inventoryapi.Site{Name: s})
		mustOK(t, err)
	}
	_, err := h.client.CreateTree(ctx, inventoryapi.Tree{Name: "docs", OriginSite: "origin", Source: "/srv/docs"})
	mustOK(t, err)
}

func TestREST(t *testing.T) {
	for _, db := range databases {
		t.Run(db.name, func(t *testing.T) {
			h := start(t, db.url(t))
			testHappyPath(t, h)
			testBadRequests(t, h)
		})
	}
}

func testHappyPath(t *testing.T, h *harness) {
	ctx := context.Background()
	code, hdr, body := h.doHeader(t, http.MethodPost, "/api/v1/sites", `{"name":"origin","description":"the origin"}`)
	if code != http.StatusCreated || hdr.Get("Content-Type") != "application/json" {
		t.Fatalf("create site: %d %s %s", code, hdr.Get("Content-Type"), body)
	}
	var site inventoryapi.Site
	mustOK(t, json.Unmarshal([]byte(body), &site))
	if site.Name != "origin" || site.Description != "the origin" || site.CreatedAt.IsZero() {
		t.Fatalf("created site = %+v", site)
	}
	_, err := h.client.CreateSite(ctx, inventoryapi.Site{Name: "replica-a"})
	mustOK(t, err)

	tree, err := h.client.CreateTree(ctx, inventoryapi.Tree{Name: "docs", OriginSite: "origin", Source: "/srv/docs", Schedule: "*/5  * * * *"})
	mustOK(t, err)
	if tree.Keep != 2 || tree.Schedule != "*/5 * * * *" || tree.CreatedAt.IsZero() {
		t.Fatalf("created tree = %+v, want keep 2 and a normalised schedule", tree)
	}
	code, body = h.do(t, http.MethodPost, "/api/v1/trees", `{"name":"isos","origin_site":"origin","source":"/srv/isos","keep":5}`)
	if code != http.StatusCreated || !strings.Contains(body, `"keep":5`) {
		t.Fatalf("create tree isos: %d %s", code, body)
	}

	sub, err := h.client.Subscribe(ctx, inventoryapi.Subscription{Site: "replica-a", Tree: "docs"})
	mustOK(t, err)
	if sub.Site != "replica-a" || sub.Tree != "docs" || sub.Paused || sub.CreatedAt.IsZero() {
		t.Fatalf("subscription = %+v", sub)
	}
	code, body = h.do(t, http.MethodPost, "/api/v1/subscriptions", `{"site":"replica-a","tree":"isos","paused":true}`)
	if code != http.StatusCreated || !strings.Contains(body, `"paused":true`) {
		t.Fatalf("create paused subscription: %d %s", code, body)
	}

	got, err := h.client.Tree(ctx, "docs")
	mustOK(t, err)
	if !reflect.DeepEqual(got, tree) {
		t.Fatalf("GET tree = %+v, want %+v", got, tree)
	}
	trees, err := h.client.Trees(ctx)
	mustOK(t, err)
	if len(trees) != 2 || trees[0].Name != "docs" || trees[1].Name != "isos" {
		t.Fatalf("trees = %+v", trees)
	}
	sites, err := h.client.Sites(ctx)
	mustOK(t, err)
	if len(sites) != 2 {
		t.Fatalf("sites = %+v", sites)
	}
	code, body = h.do(t, http.MethodGet, "/api/v1/sites/origin", "")
	if code != http.StatusOK || !strings.Contains(body, `"the origin"`) {
		t.Fatalf("GET site: %d %s", code, body)
	}
	subs, err := h.client.Subscriptions(ctx, "docs")
	mustOK(t, err)
	if len(subs) != 1 || subs[0] != sub {
		t.Fatalf("subscriptions of docs = %+v", subs)
	}
	for path, want := range map[string]int{
		"/api/v1/subscriptions":                            2,
		"/api/v1/subscriptions?site=replica-a&tree=isos":   1,
		"/api/v1/subscriptions?tree=isos":                  1,
		"/api/v1/subscriptions?site=origin":                0,
		"/api/v1/runs":                                     0,
		"/api/v1/trees/docs/versions":                      0,
		"/api/v1/runs?tree=docs&site=replica-a&limit=1000": 0,
	} {
		code, body := h.do(t, http.MethodGet, path, "")
		var list []json.RawMessage
		if code != http.StatusOK || json.Unmarshal([]byte(body), &list) != nil || len(list) != want {
			t.Errorf("GET %s = %d %s, want %d items", path, code, body, want)
		}
	}
}

func testBadRequests(t *testing.T, h *harness) {
	for _, tc := range []struct {
		name, method, path, body string
		status                   int
		detail                   string
	}{
		{"malformed json", "POST", "/api/v1/sites", `{"name":`, 400, "malformed request"},
		{"empty body", "POST", "/api/v1/trees", ``, 400, "empty request body"},
		{"unknown field", "POST", "/api/v1/sites", `{"name":"x","colour":"red"}`, 400, `unknown field "colour"`},
		{"two values", "POST", "/api/v1/sites", `{"name":"x"}{"name":"y"}`, 400, "exactly one JSON value"},
		{"wrong type", "POST", "/api/v1/trees", `{"name":"x","keep":"two"}`, 400, "malformed request"},
		{"invalid site name", "POST", "/api/v1/sites", `{"name":"Bad_Name"}`, 400, "invalid name"},
		{"invalid tree name", "POST", "/api/v1/trees", `{"name":"a.b","origin_site":"origin","source":"/srv"}`, 400, "invalid name"},
		{"relative source", "POST", "/api/v1/trees", `{"name":"rel","origin_site":"origin","source":"srv/rel"}`, 400, "absolute path"},
		{"unclean source", "POST", "/api/v1/trees", `{"name":"rel","origin_site":"origin","source":"/srv/../etc"}`, 400, "clean path"},
		{"bad cron", "POST", "/api/v1/trees", `{"name":"cron","origin_site":"origin","source":"/srv","schedule":"61 * * * *"}`, 400, "not a valid cron"},
		{"six-field cron", "POST", "/api/v1/trees", `{"name":"cron","origin_site":"origin","source":"/srv","schedule":"0 0 * * * *"}`, 400, "want 5"},
		{"bad filter", "POST", "/api/v1/trees", `{"name":"filt","origin_site":"origin","source":"/srv","filters":["* no sign"]}`, 400, "filters"},
		{"filters not a list", "POST", "/api/v1/trees", `{"name":"filt","origin_site":"origin","source":"/srv","filters":"- *.tmp"}`, 400, ""},
		{"keep too big", "POST", "/api/v1/trees", `{"name":"k","origin_site":"origin","source":"/srv","keep":101}`, 400, "out of range"},
		{"keep negative", "POST", "/api/v1/trees", `{"name":"k","origin_site":"origin","source":"/srv","keep":-1}`, 400, "out of range"},
		{"unknown origin", "POST", "/api/v1/trees", `{"name":"orphan","origin_site":"nowhere","source":"/srv"}`, 404, `site not found: "nowhere"`},
		{"duplicate site", "POST", "/api/v1/sites", `{"name":"origin"}`, 409, "already exists"},
		{"duplicate tree", "POST", "/api/v1/trees", `{"name":"docs","origin_site":"origin","source":"/srv/docs"}`, 409, "already exists"},
		{"duplicate subscription", "POST", "/api/v1/subscriptions", `{"site":"replica-a","tree":"docs"}`, 409, "already exists"},
		{"origin subscribes", "POST", "/api/v1/subscriptions", `{"site":"origin","tree":"docs"}`, 400, "origin of tree"},
		{"subscribe unknown tree", "POST", "/api/v1/subscriptions", `{"site":"replica-a","tree":"nope"}`, 404, "tree not found"},
		{"subscribe unknown site", "POST", "/api/v1/subscriptions", `{"site":"nope","tree":"docs"}`, 404, "site not found"},
		{"unknown tree", "GET", "/api/v1/trees/nope", "", 404, `tree not found: "nope"`},
		{"unknown site", "GET", "/api/v1/sites/nope", "", 404, "site not found"},
		{"invalid tree in path", "GET", "/api/v1/trees/NOPE", "", 400, "invalid name"},
		{"sync unknown tree", "POST", "/api/v1/trees/nope/sync", "", 404, "tree not found"},
		{"versions of unknown tree", "GET", "/api/v1/trees/nope/versions", "", 404, "tree not found"},
		{"subscriptions of unknown tree", "GET", "/api/v1/trees/nope/subscriptions", "", 404, "tree not found"},
		{"unknown run", "GET", "/api/v1/runs/nope", "", 404, "run not found"},
		{"limit zero", "GET", "/api/v1/runs?limit=0", "", 400, "positive integer"},
		{"limit text", "GET", "/api/v1/runs?limit=ten", "", 400, "positive integer"},
		{"limit too big", "GET", "/api/v1/runs?limit=1001", "", 400, "out of range"},
		{"bad filter", "GET", "/api/v1/subscriptions?tree=A/B", "", 400, "invalid name"},
		{"unknown route", "GET", "/api/v1/nothing", "", 404, "no route"},
		{"body too large", "POST", "/api/v1/sites", `{"name":"` + strings.Repeat("a", 1<<20) + `"}`, 413, "exceeds 1048576 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, hdr, body := h.doHeader(t, tc.method, tc.path, tc.body)
			var p inventoryapi.Problem
			if err := json.Unmarshal([]byte(body), &p); err != nil {
				t.Fatalf("body %q is not a problem: %v", body, err)
			}
			if code != tc.status || p.Status != tc.status || hdr.Get("Content-Type") != "application/problem+json" ||
				!strings.Contains(p.Detail, tc.detail) {
				t.Fatalf("%s %s = %d %s %s, want %d with %q", tc.method, tc.path, code, hdr.Get("Content-Type"), body, tc.status, tc.detail)
			}
		})
	}
	// The shared client surfaces the problem as an error.
	_, err := h.client.Tree(context.Background(), "nope")
	var p *inventoryapi.Problem
	if !errors.As(err, &p) || p.Status != http.StatusNotFound {
		t.Fatalf("client error = %v", err)
	}
}

// consumer reads messages on subject from stream with a real JetStream
// consumer of its own.
func consumer(t *testing.T, js jetstream.JetStream, stream, filter string) jetstream.Consumer {
	t.Helper()
	c, err := js.CreateConsumer(context.Background(), stream, jetstream.ConsumerConfig{
		FilterSubject: filter, AckPolicy: jetstream.AckExplicitPolicy, DeliverPolicy: jetstream.DeliverAllPolicy,
	})
	if err != nil {
		t.Fatalf("consumer on %s %s: %v", stream, filter, err)
	}
	return c
}

func next(t *testing.T, c jetstream.Consumer) jetstream.Msg {
	t.Helper()
	m, err := c.Next(jetstream.FetchMaxWait(10 * time.Second))
	if err != nil {
		t.Fatalf("no message: %v", err)
	}
	if err := m.Ack(); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestSyncPublishesTrigger(t *testing.T) {
	h := start(t, databases[0].url(t))
	seed(t, h)
	triggers := consumer(t, h.js, bus.StreamTriggers, bus.TriggerSubject("docs"))
	requested := consumer(t, h.js, bus.StreamEvents, bus.EventFilter(bus.EntitySync, bus.ActionRequested))
	created := consumer(t, h.js, bus.StreamEvents, bus.EventFilter(bus.EntityTree, bus.ActionCreated))

	code, body := h.do(t, http.MethodPost, "/api/v1/trees/docs/sync", "")
	if code != http.StatusAccepted {
		t.Fatalf("sync: %d %s", code, body)
	}
	var acc inventoryapi.SyncAccepted
	mustOK(t, json.Unmarshal([]byte(body), &acc))
	if acc.Tree != "docs" || uuid.Validate(acc.TriggerID) != nil {
		t.Fatalf("accepted = %+v", acc)
	}

	m := next(t, triggers)
	tr, err := bus.Decode[bus.Trigger](m.Data())
	mustOK(t, err)
	if tr.TriggerID != acc.TriggerID || tr.Tree != "docs" || tr.Reason != "manual" || tr.RequestedAt.IsZero() || tr.ConfirmDeletions {
		t.Fatalf("trigger = %+v", tr)
	}
	if got := m.Headers().Get(jetstream.MsgIDHeader); got != acc.TriggerID {
		t.Fatalf("trigger Nats-Msg-Id = %q, want the trigger id", got)
	}
	ev, sr, err := bus.DecodeEvent[bus.SyncRequested](next(t, requested).Data())
	mustOK(t, err)
	if sr.TriggerID != acc.TriggerID || sr.Tree != "docs" || sr.Reason != "manual" || ev.Source() != inventory.EventSource {
		t.Fatalf("sync.requested = %+v from %s", sr, ev.Source())
	}
	ev, tree, err := bus.DecodeEvent[inventoryapi.Tree](next(t, created).Data())
	mustOK(t, err)
	if tree.Name != "docs" || tree.OriginSite != "origin" || ev.Subject() != "tree/docs" {
		t.Fatalf("tree.created = %+v (subject %q)", tree, ev.Subject())
	}
	// The operator's confirmation of deletions travels with the trigger.
	acc, err = h.client.SyncWith(t.Context(), "docs", inventoryapi.SyncRequest{ConfirmDeletions: true})
	mustOK(t, err)
	tr, err = bus.Decode[bus.Trigger](next(t, triggers).Data())
	mustOK(t, err)
	if tr.TriggerID != acc.TriggerID || !tr.ConfirmDeletions {
		t.Fatalf("confirmed trigger = %+v", tr)
	}
}

// publishEvent publishes a CloudEvent with a chosen id; the Nats-Msg-Id is
// fresh each time, so the same event can be redelivered past JetStream's
// deduplication.
func publishEvent(t *testing.T, js jetstream.JetStream, id, entity, action string, data any) {
	t.Helper()
	ev := event.New()
	ev.SetID(id)
	ev.SetSource("/test")
	ev.SetType(bus.EventType(entity, action))
	ev.SetTime(time.Now().UTC())
	about := aboutOf(t, data)
	ev.SetSubject(about.Subject())
	mustOK(t, ev.SetData("application/json", data))
	body, err := json.Marshal(ev)
	mustOK(t, err)
	publishRaw(t, js, bus.EventSubject(entity, action, about), body)
}

func publishRaw(t *testing.T, js jetstream.JetStream, subject string, body []byte) {
	t.Helper()
	if _, err := js.Publish(context.Background(), subject, body, jetstream.WithMsgID(uuid.NewString())); err != nil {
		t.Fatal(err)
	}
}

func TestEventsRecorded(t *testing.T) {
	for _, db := range databases {
		t.Run(db.name, func(t *testing.T) { testEventsRecorded(t, start(t, db.url(t))) })
	}
}

func testEventsRecorded(t *testing.T, h *harness) {
	ctx := context.Background()
	seed(t, h)
	_, err := h.client.Subscribe(ctx, inventoryapi.Subscription{Site: "replica-a", Tree: "docs"})
	mustOK(t, err)
	_, err = h.client.Subscribe(ctx, inventoryapi.Subscription{Site: "replica-b", Tree: "docs", Paused: true})
	mustOK(t, err)
	events := bus.NewEvents(h.js, "/test")
	now := time.Now().UTC()

	// The origin published v1 100 s ago and v2 40 s ago.
	for _, v := range []struct {
		root string
		ago  time.Duration
	}{{root('1'), 100 * time.Second}, {root('2'), 40 * time.Second}} {
		mustOK(t, events.Publish(ctx, bus.EntitySnapshot, bus.ActionPublished, bus.About{Tree: "docs", Site: "origin"}, bus.Snapshot{
			V: 1, TriggerID: "t0", Tree: "docs", Site: "origin", Root: v.root, Files: 7, Bytes: 700, PublishedAt: now.Add(-v.ago)}))
	}
	// replica-a reached v1 and is now running towards v2.
	mustOK(t, events.Publish(ctx, bus.EntitySync, bus.ActionFinished, bus.About{Tree: "docs", Site: "replica-a"}, bus.SyncFinished{
		RunID: "run-1", TriggerID: "t1", Site: "replica-a", Tree: "docs", Kind: bus.CommandApply, To: root('1'),
		Result: bus.ResultCompleted, Files: 7, Bytes: 700, DurationMS: 1500, FinishedAt: now.Add(-90 * time.Second)}))
	mustOK(t, events.Publish(ctx, bus.EntitySync, bus.ActionStarted, bus.About{Tree: "docs", Site: "replica-a"}, bus.SyncStarted{
		RunID: "run-2", TriggerID: "t2", Site: "replica-a", Tree: "docs", Kind: bus.CommandApply,
		From: root('1'), To: root('2'), StartedAt: now.Add(-time.Second)}))

	eventually(t, "runs recorded", func() (bool, string) {
		runs, err := h.client.Runs(ctx, "docs", "replica-a")
		if err != nil || len(runs) != 2 {
			return false, jsonString(runs, err)
		}
		r2, r1 := runs[0], runs[1]
		return r2.ID == "run-2" && r2.State == inventoryapi.RunRunning && r2.FinishedAt == nil &&
			r1.ID == "run-1" && r1.State == inventoryapi.RunDone && r1.Result == "COMPLETED" && r1.FinishedAt != nil &&
			r1.DurationMS == 1500, jsonString(runs, nil)
	})
	var vs []inventoryapi.Version
	eventually(t, "versions recorded", func() (bool, string) {
		vs, err = h.client.Versions(ctx, "docs")
		return err == nil && len(vs) == 2 && vs[0].Root == root('2') && vs[1].Root == root('1'), jsonString(vs, err)
	})

	rows, err := h.client.Overview(ctx)
	mustOK(t, err)
	if len(rows) != 3 {
		t.Fatalf("overview = %s", jsonString(rows, nil))
	}
	origin, a, b := rows[0], rows[1], rows[2]
	if origin.Role != "origin" || origin.Site != "origin" || origin.Version != root('2') || origin.LagSeconds != 0 || origin.State != "NEVER_SYNCED" {
		t.Errorf("origin row = %+v", origin)
	}
	// replica-a serves v1 and misses v2, published 40 s ago.
	if a.Site != "replica-a" || a.Role != "replica" || a.Version != root('1') || a.LatestVersion != root('2') ||
		a.State != "RUNNING" || a.LastRunAt == nil || a.LagSeconds < 40 || a.LagSeconds > 40+30 {
		t.Errorf("replica-a row = %+v", a)
	}
	// replica-b serves nothing: lag since v1, 100 s ago; paused, never ran.
	if b.Site != "replica-b" || b.Version != "" || !b.Paused || b.State != "DISABLED" || b.LagSeconds < 100 || b.LagSeconds > 100+30 {
		t.Errorf("replica-b row = %+v", b)
	}

	// replica-a finishes: it serves v2 and has no lag left.
	mustOK(t, events.Publish(ctx, bus.EntitySync, bus.ActionFinished, bus.About{Tree: "docs", Site: "replica-a"}, bus.SyncFinished{
		RunID: "run-2", TriggerID: "t2", Site: "replica-a", Tree: "docs", Kind: bus.CommandApply, From: root('1'), To: root('2'),
		Result: bus.ResultCompleted, Files: 2, Bytes: 20, DurationMS: 800, FinishedAt: time.Now().UTC()}))
	eventually(t, "replica-a up to date", func() (bool, string) {
		rows, err := h.client.Overview(ctx)
		if err != nil || len(rows) != 3 {
			return false, jsonString(rows, err)
		}
		a := rows[1]
		return a.Version == root('2') && a.State == "COMPLETED" && a.LagSeconds == 0, jsonString(a, nil)
	})
	code, body := h.do(t, http.MethodGet, "/api/v1/runs/run-2", "")
	if code != http.StatusOK || !strings.Contains(body, `"state":"DONE"`) || !strings.Contains(body, `"duration_ms":800`) {
		t.Fatalf("GET run-2: %d %s", code, body)
	}
}

func jsonString(v any, err error) string {
	if err != nil {
		return err.Error()
	}
	b, _ := json.Marshal(v) // only for failure messages
	return string(b)
}

func TestEventRedeliveryIsIdempotent(t *testing.T) {
	h := start(t, databases[0].url(t))
	ctx := context.Background()
	seed(t, h)
	snap := func(files int64) bus.Snapshot {
		return bus.Snapshot{V: 1, TriggerID: "t", Tree: "docs", Site: "origin", Root: root('1'), Files: files, Bytes: 1, PublishedAt: time.Now().UTC()}
	}
	// sentinel publishes a sync.started for a fresh run and waits until it
	// is recorded: the consumer handles events in order, so everything
	// published before it has been handled too.
	sentinel := func() {
		t.Helper()
		id := uuid.NewString()
		publishEvent(t, h.js, uuid.NewString(), bus.EntitySync, bus.ActionStarted,
			bus.SyncStarted{RunID: id, Site: "replica-a", Tree: "docs", Kind: bus.CommandApply, StartedAt: time.Now().UTC()})
		eventually(t, "sentinel "+id, func() (bool, string) {
			code, body := h.do(t, http.MethodGet, "/api/v1/runs/"+id, "")
			return code == http.StatusOK, body
		})
	}
	files := func() int64 {
		t.Helper()
		vs, err := h.client.Versions(ctx, "docs")
		mustOK(t, err)
		if len(vs) != 1 {
			t.Fatalf("versions = %+v", vs)
		}
		return vs[0].Files
	}

	publishEvent(t, h.js, "event-a", bus.EntitySnapshot, bus.ActionPublished, snap(10))
	publishEvent(t, h.js, "event-b", bus.EntitySnapshot, bus.ActionPublished, snap(20))
	sentinel()
	if got := files(); got != 20 {
		t.Fatalf("files = %d, want 20", got)
	}
	// event-a again (a redelivery, or a publisher retrying past the
	// duplicate window) must not bring back its figures.
	publishEvent(t, h.js, "event-a", bus.EntitySnapshot, bus.ActionPublished, snap(10))
	// Undecodable and invalid events are refused without blocking the rest.
	publishRaw(t, h.js, bus.EventSubject(bus.EntitySync, bus.ActionFinished, bus.About{}), []byte("not json"))
	publishEvent(t, h.js, uuid.NewString(), bus.EntitySync, bus.ActionFinished, bus.SyncFinished{RunID: "x", Site: "BAD", Tree: "docs", Result: "COMPLETED"})
	publishEvent(t, h.js, uuid.NewString(), bus.EntitySnapshot, bus.ActionPublished, bus.Snapshot{V: 1, Tree: "ghost", Site: "origin", Root: root('9')})
	// Events the inventory does not record are acknowledged.
	publishEvent(t, h.js, uuid.NewString(), bus.EntityDelta, bus.ActionComputed, bus.DeltaComputed{Tree: "docs"})
	// A run's result is counted once in the metrics, however often its
	// event comes.
	fin := bus.SyncFinished{RunID: "run-c", TriggerID: "t", Site: "replica-a", Tree: "docs", Kind: bus.CommandApply,
		To: root('1'), Result: bus.ResultCompleted, Bytes: 7, FinishedAt: time.Now().UTC()}
	publishEvent(t, h.js, "event-c", bus.EntitySync, bus.ActionFinished, fin)
	publishEvent(t, h.js, "event-c", bus.EntitySync, bus.ActionFinished, fin)
	sentinel()
	if got := files(); got != 20 {
		t.Fatalf("files after redelivery = %d, want 20", got)
	}
	code, body := h.do(t, http.MethodGet, "/metrics", "")
	for _, want := range []string{
		`pulpdist_sync_results_total{kind="apply",result="COMPLETED",site="replica-a",tree="docs"} 1` + "\n",
		`pulpdist_sync_received_bytes_total{site="replica-a",tree="docs"} 7` + "\n",
		`pulpdist_inventory_database_up 1` + "\n",
	} {
		if code != http.StatusOK || !strings.Contains(body, want) {
			t.Errorf("metrics (%d) lack %q:\n%s", code, want, body)
		}
	}
	eventually(t, "events stream consumed", func() (bool, string) {
		c, err := h.js.Consumer(ctx, bus.StreamEvents, "inventory")
		if err != nil {
			return false, err.Error()
		}
		info, err := c.Info(ctx)
		if err != nil {
			return false, err.Error()
		}
		return info.NumPending == 0 && info.NumAckPending == 0 && info.NumRedelivered == 0, jsonString(info, nil)
	})
}

func TestReadiness(t *testing.T) {
	other := health.NewProbe("scheduler")
	natsURL := natstest.Start(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cfg := inventory.Config{NATSURL: natsURL, DatabaseURL: databases[0].url(t), HTTPAddr: "127.0.0.1:0", LogFormat: "json", LogLevel: "debug", Migrate: true,
		ExtraProbes: []*health.Probe{other}}
	svc, err := inventory.New(ctx, cfg, slog.New(slog.DiscardHandler))
	mustOK(t, err)
	h := &harness{url: svc.URL()}
	// Bound but not yet serving: nobody answers, and the probe says so.
	if svc.Probe().Ready() {
		t.Fatal("inventory ready before Run")
	}
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	eventually(t, "only the scheduler missing", func() (bool, string) {
		code, body := h.do(t, http.MethodGet, "/readyz", "")
		return code == http.StatusServiceUnavailable && strings.TrimSpace(body) == "not ready: scheduler", body
	})
	other.SetReady(true)
	if code, body := h.do(t, http.MethodGet, "/readyz", ""); code != http.StatusOK {
		t.Fatalf("readyz: %d %s", code, body)
	}
	if code, _ := h.do(t, http.MethodGet, "/healthz", ""); code != http.StatusOK {
		t.Fatalf("healthz: %d", code)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run after cancel: %v", err)
	}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, h.url+"/healthz", nil)
	mustOK(t, err)
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
		t.Fatal("still serving after shutdown")
	}
}

func TestNewFails(t *testing.T) {
	natsURL := natstest.Start(t)
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)
	good := inventory.Config{NATSURL: natsURL, DatabaseURL: databases[0].url(t), HTTPAddr: "127.0.0.1:0", LogFormat: "text", LogLevel: "info", Migrate: true}
	for _, tc := range []struct {
		name string
		edit func(*inventory.Config)
		want string
	}{
		{"unreachable nats", func(c *inventory.Config) { c.NATSURL = "nats://127.0.0.1:1" }, "connect nats"},
		{"unreachable database", func(c *inventory.Config) { c.DatabaseURL = "postgres://postgres@127.0.0.1:1/x?sslmode=disable" }, "connect postgres database"},
		{"address in use", func(c *inventory.Config) { c.HTTPAddr = strings.TrimPrefix(natsURL, "nats://") }, "listen"},
		{"invalid config", func(c *inventory.Config) { c.LogLevel = "loud" }, "inventory config"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := good
			tc.edit(&cfg)
			svc, err := inventory.New(ctx, cfg, log)
			if err == nil {
				mustOK(t, svc.Close())
				t.Fatal("New succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

// TestMigrateIsExplicit: without Migrate the inventory changes no schema:
// it refuses an empty database with a message saying what to do, and
// starts on one a migrating start brought up to date.
func TestMigrateIsExplicit(t *testing.T) {
	for _, db := range databases {
		t.Run(db.name, func(t *testing.T) {
			natsURL := natstest.Start(t)
			log := slog.New(slog.DiscardHandler)
			cfg := inventory.Config{NATSURL: natsURL, DatabaseURL: db.url(t), HTTPAddr: "127.0.0.1:0", LogFormat: "text", LogLevel: "info"}
			svc, err := inventory.New(t.Context(), cfg, log)
			if err == nil {
				mustOK(t, svc.Close())
				t.Fatal("New without Migrate succeeded on an empty database")
			}
			if !errors.Is(err, store.ErrSchema) || !strings.Contains(err.Error(), "PULPDIST_MIGRATE=true") {
				t.Fatalf("err = %v, want ErrSchema naming PULPDIST_MIGRATE", err)
			}
			cfg.Migrate = true
			svc, err = inventory.New(t.Context(), cfg, log)
			mustOK(t, err)
			mustOK(t, svc.Close())
			cfg.Migrate = false
			svc, err = inventory.New(t.Context(), cfg, log)
			mustOK(t, err)
			mustOK(t, svc.Close())
		})
	}
}
