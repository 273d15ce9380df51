package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/pulpdist/pulpdist/cmd/pulpdist/internal/devstack"
	"github.com/pulpdist/pulpdist/libs/bus"
	"github.com/pulpdist/pulpdist/libs/inventoryapi"
	"github.com/pulpdist/pulpdist/libs/natstest"
	"github.com/pulpdist/pulpdist/libs/pack"
	"github.com/pulpdist/pulpdist/libs/pgtest"
	"github.com/pulpdist/pulpdist/libs/poll"
	"github.com/pulpdist/pulpdist/libs/tree"
)

// eventLog is an independent subscriber to pulpdist.evt.>: it sees what any
// outside tool would.
type eventLog struct {
	mu     sync.Mutex
	events []seenEvent
}

type seenEvent struct {
	Type    string
	Subject string
	Data    []byte
}

// connectJetStream opens a client of its own on the bus, closed when the
// test ends.
func connectJetStream(t *testing.T, url string) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

func subscribeEvents(t *testing.T, url string) *eventLog {
	t.Helper()
	js := connectJetStream(t, url)
	l := &eventLog{}
	var cons jetstream.Consumer
	poll.Until(t, 10*time.Second, func() error { // the stream exists once a service has started
		var err error
		cons, err = js.OrderedConsumer(t.Context(), bus.StreamEvents, jetstream.OrderedConsumerConfig{FilterSubjects: []string{"pulpdist.evt.>"}})
		return err
	})
	cc, err := cons.Consume(func(m jetstream.Msg) {
		ev, _, err := bus.DecodeEvent[map[string]any](m.Data())
		if err != nil {
			t.Errorf("undecodable event on %s: %v", m.Subject(), err)
			return
		}
		// Each as documented: api/events schema, subject.
		if err := natstest.CheckEvent(m.Subject(), m.Data()); err != nil {
			t.Errorf("event on %s: %v", m.Subject(), err)
		}
		l.mu.Lock()
		l.events = append(l.events, seenEvent{Type: ev.Type(), Subject: m.Subject(), Data: ev.Data()})
		l.mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cc.Stop)
	return l
}

// assertOneTrace checks that the first sync of tree demo, asked for by a
// caller in trace traceID (its span parentID), is one connected trace in
// it: from the inventory's handling of the REST request and the
// publication of the trigger from its outbox, through the scheduler's
// taking of the trigger, the origin's snapshot, the delta-cache's
// computation, each site's fetch and apply, to the inventory's recording
// of each result.
func assertOneTrace(t *testing.T, rec *tracetest.SpanRecorder, traceID, parentID string) {
	t.Helper()
	const request = "POST /api/v1/trees/{name}/sync"
	want := []string{
		request, "publish pulpdist.trigger.demo",
		"scheduler-triggers: process pulpdist.trigger.demo",
		"siteagent-origin: process pulpdist.sync.origin.demo", "snapshot",
		"scheduler-snapshots: process pulpdist.snapshot.demo",
		"deltacache: process pulpdist.delta.req.demo", "compute delta",
		"scheduler-deltas: process pulpdist.delta.ready.demo",
		"siteagent-site-a: process pulpdist.sync.site-a.demo", "siteagent-site-b: process pulpdist.sync.site-b.demo",
		"fetch", "apply",
		"inventory: process pulpdist.evt.sync.finished.demo.site-a", "inventory: process pulpdist.evt.sync.finished.demo.site-b",
	}
	name := func(s sdktrace.ReadOnlySpan) string {
		for _, a := range s.Attributes() {
			if a.Key == "messaging.consumer.group.name" {
				return a.Value.AsString() + ": " + s.Name()
			}
		}
		return s.Name()
	}
	var trace []sdktrace.ReadOnlySpan
	poll.Until(t, 30*time.Second, func() error {
		trace = trace[:0]
		seen := map[string]bool{}
		for _, s := range rec.Ended() {
			if s.SpanContext().TraceID().String() == traceID {
				trace = append(trace, s)
				seen[name(s)] = true
			}
		}
		for _, w := range want {
			if !seen[w] {
				return fmt.Errorf("trace %s has no span %q (%d spans)", traceID, w, len(trace))
			}
		}
		return nil
	})
	// Connected: every span's parent is in the trace, bar the request's,
	// which is the caller's span.
	ids := map[string]bool{}
	for _, s := range trace {
		ids[s.SpanContext().SpanID().String()] = true
	}
	entries := 0
	for _, s := range trace {
		switch {
		case !s.Parent().IsValid():
			t.Errorf("span %q of the sync's trace is a root: the caller's span is", name(s))
		case ids[s.Parent().SpanID().String()]:
		case name(s) == request && s.Parent().SpanID().String() == parentID && s.Parent().IsRemote():
			entries++
		default:
			t.Errorf("span %q of the sync's trace has a parent outside it", name(s))
		}
	}
	if entries != 1 {
		t.Errorf("the sync's trace enters %d times from the caller's span, want once, by the request", entries)
	}
}

// traceparentHeader sends every request with a W3C traceparent header:
// a caller in a trace of its own.
type traceparentHeader string

func (h traceparentHeader) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("traceparent", string(h))
	return http.DefaultTransport.RoundTrip(r)
}

// find returns the data of every event of a type, decoded as T.
func find[T any](t *testing.T, l *eventLog, typ string) []T {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []T
	for _, e := range l.events {
		if e.Type != typ {
			continue
		}
		var v T
		if err := json.Unmarshal(e.Data, &v); err != nil {
			t.Fatalf("event %s: %v", typ, err)
		}
		out = append(out, v)
	}
	return out
}

func writeFile(t *testing.T, root, rel, body string, mode os.FileMode) {
	t.Helper()
	p := filepath.Join(root, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(body), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil { // WriteFile keeps the mode of an existing file
		t.Fatal(err)
	}
}

func scan(t *testing.T, dir string) *tree.Manifest {
	t.Helper()
	m, err := tree.Scan(t.Context(), dir)
	if err != nil {
		t.Fatalf("scan %s: %v", dir, err)
	}
	return m
}

// waitRuns waits until every listed site has a finished run of the trigger
// and returns them by site.
func waitRuns(t *testing.T, c *inventoryapi.Client, triggerID string, sites ...string) map[string]inventoryapi.Run {
	t.Helper()
	got := map[string]inventoryapi.Run{}
	poll.Until(t, 60*time.Second, func() error {
		runs, err := c.Runs(t.Context(), "demo", "")
		if err != nil {
			return err
		}
		clear(got)
		for _, r := range runs {
			if r.TriggerID == triggerID && r.State == inventoryapi.RunDone {
				got[r.Site] = r
			}
		}
		for _, s := range sites {
			if _, ok := got[s]; !ok {
				return fmt.Errorf("no finished run of %s yet (have %v)", s, keys(got))
			}
		}
		return nil
	})
	return got
}

func keys[M ~map[string]V, V any](m M) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// startStack runs a dev stack with o until the test ends.
func startStack(t *testing.T, o devstack.Options) *devstack.Stack {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	st, err := devstack.New(ctx, o)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	stopped := make(chan error, 1)
	go func() { stopped <- st.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-stopped; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("stack stopped with %v", err)
		}
	})
	return st
}

// TestEndToEnd runs the whole flow with the four services as separate
// components wired only by an embedded JetStream and the inventory's REST
// API, on the machine's PostgreSQL: a tree travels from an origin to two
// sites, changes, travels again, and a run without change is UP_TO_DATE.
func TestEndToEnd(t *testing.T) {
	dbURL := pgtest.NewDatabase(t)
	dir := t.TempDir()
	src := filepath.Join(dir, "origin-tree")
	writeFile(t, src, "README.txt", "hello\n", 0o644)
	writeFile(t, src, "bin/run.sh", "#!/bin/sh\necho run\n", 0o755)
	writeFile(t, src, "data/a.bin", string(make([]byte, 100_000)), 0o644)
	writeFile(t, src, "data/same-as-readme.txt", "hello\n", 0o644)
	writeFile(t, src, "old/gone.txt", "to be deleted\n", 0o644)
	// A large file: stored in the content store as its chunks, and edited
	// in place below (only the chunks it changed travel, to the store and
	// in the pack).
	image := make([]byte, 6<<20)
	rng := rand.New(rand.NewPCG(3, 3))
	for i := range image {
		image[i] = byte(rng.Uint32())
	}
	writeFile(t, src, "images/disk.img", string(image), 0o644)
	if err := os.Symlink("README.txt", filepath.Join(src, "link")); err != nil {
		t.Fatal(err)
	}
	// Excluded by the tree's filters: never scanned, never mirrored.
	filters := []string{"- *.tmp", "- /scratch/"}
	writeFile(t, src, "data/partial.tmp", "being written", 0o644)
	writeFile(t, src, "scratch/notes.txt", "local only", 0o644)

	// Every service of the stack records its spans here.
	spans := tracetest.NewSpanRecorder()
	prev := otel.GetTracerProvider()
	otel.SetTracerProvider(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans)))
	t.Cleanup(func() { otel.SetTracerProvider(prev) })

	ctx := t.Context()
	st := startStack(t, devstack.Options{
		DataDir: filepath.Join(dir, "stack"), NATSPort: -1, DatabaseURL: dbURL, APIAddr: "127.0.0.1:0",
		Sites: []string{"origin", "site-a", "site-b"}, DeltaCaches: 2,
	})
	events := subscribeEvents(t, st.NATSURL)
	ready(t, st.APIURL)

	// The API wants the stack's token (made in its data directory).
	var p *inventoryapi.Problem
	if _, err := inventoryapi.NewClient(st.APIURL, nil).Trees(ctx); !errors.As(err, &p) || p.Status != http.StatusUnauthorized {
		t.Fatalf("trees without a token: %v, want 401", err)
	}
	c := inventoryapi.NewClient(st.APIURL, nil).WithToken(st.Token)
	for _, s := range []string{"origin", "site-a", "site-b", "site-c"} {
		if _, err := c.CreateSite(ctx, inventoryapi.Site{Name: s}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.CreateTree(ctx, inventoryapi.Tree{Name: "demo", OriginSite: "origin", Source: src, Keep: 2, Filters: filters}); err != nil {
		t.Fatal(err)
	}
	for _, sub := range []inventoryapi.Subscription{{Site: "site-a", Tree: "demo"}, {Site: "site-b", Tree: "demo"}, {Site: "site-c", Tree: "demo", Paused: true}} {
		if _, err := c.Subscribe(ctx, sub); err != nil {
			t.Fatal(err)
		}
	}

	// sync asks for a sync of demo with asker, and waits for its runs.
	sync := func(asker *inventoryapi.Client, want bus.Result) (string, map[string]inventoryapi.Run) {
		t.Helper()
		acc, err := asker.Sync(ctx, "demo")
		if err != nil {
			t.Fatal(err)
		}
		runs := waitRuns(t, c, acc.TriggerID, "origin", "site-a", "site-b", "site-c")
		for _, s := range []string{"site-a", "site-b"} {
			if r := runs[s]; r.Result != string(want) {
				t.Fatalf("%s: result %s (%s), want %s", s, r.Result, r.Error, want)
			}
		}
		if r := runs["site-c"]; r.Result != string(bus.ResultDisabled) {
			t.Fatalf("paused site-c: result %s, want DISABLED", r.Result)
		}
		return acc.TriggerID, runs
	}
	filter, err := tree.ParseFilter(filters)
	if err != nil {
		t.Fatal(err)
	}
	assertConverged := func() string {
		t.Helper()
		want, err := tree.ScanWith(ctx, src, tree.ScanOptions{Filter: filter})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range want.Entries {
			if strings.HasSuffix(e.Path, ".tmp") || strings.HasPrefix(e.Path, "scratch") {
				t.Fatalf("the filtered scan holds %s", e.Path)
			}
		}
		for _, s := range []string{"site-a", "site-b"} {
			got := scan(t, filepath.Join(st.SiteDir(s), "trees", "demo", "current"))
			if !reflect.DeepEqual(got.Entries, want.Entries) {
				t.Fatalf("%s differs from the origin:\n got %+v\nwant %+v", s, got.Entries, want.Entries)
			}
		}
		return want.Root()
	}

	// Run 1: both sites start empty. It is asked for by a caller in a
	// trace of its own, which the sync continues.
	const callerTrace, callerSpan = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
	traced := inventoryapi.NewClient(st.APIURL, &http.Client{Transport: traceparentHeader("00-" + callerTrace + "-" + callerSpan + "-01")}).WithToken(st.Token)
	_, runs := sync(traced, bus.ResultCompleted)
	v1 := assertConverged()
	assertOneTrace(t, spans, callerTrace, callerSpan)
	// Computed once, fanned out: each site fetched the whole pack, once.
	first := bus.DeltaID("demo", "", v1)
	poll.Until(t, 10*time.Second, func() error {
		served := map[string]bus.DeltaServed{}
		for _, d := range find[bus.DeltaServed](t, events, "org.pulpdist.delta.served.v1") {
			if d.Pack == first {
				if _, twice := served[d.Site]; twice {
					t.Fatalf("%s served %s twice", d.Site, first)
				}
				served[d.Site] = d
			}
		}
		if len(served) != 2 {
			return fmt.Errorf("delta.served of %s to %v, want site-a and site-b", first, keys(served))
		}
		for s, d := range served {
			if d.Size == 0 || d.FetchedBytes != d.Size || d.ResumedBytes != 0 || d.To != v1 || (s != "site-a" && s != "site-b") {
				t.Fatalf("delta.served %+v: want the whole pack fetched by site-a or site-b", d)
			}
		}
		return nil
	})
	if runs["origin"].Result != string(bus.ResultCompleted) || runs["origin"].To != v1 {
		t.Fatalf("origin run %+v, want COMPLETED at %s", runs["origin"], v1)
	}

	// Change everything a tree can change, then run 2.
	writeFile(t, src, "README.txt", "hello, world\n", 0o644)        // modified
	writeFile(t, src, "new/dir/file.txt", "brand new\n", 0o600)     // added in new dirs
	writeFile(t, src, "bin/run.sh", "#!/bin/sh\necho run\n", 0o700) // mode only
	copy(image[3<<20:], "an edit in the middle of the image")
	writeFile(t, src, "images/disk.img", string(image), 0o644)      // large, edited in place
	if err := os.RemoveAll(filepath.Join(src, "old")); err != nil { // deleted
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(src, "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("bin/run.sh", filepath.Join(src, "link")); err != nil { // retargeted
		t.Fatal(err)
	}
	_, runs = sync(c, bus.ResultCompleted)
	v2 := assertConverged()
	if v2 == v1 {
		t.Fatal("the version did not change")
	}
	if runs["site-a"].Bytes == 0 || runs["site-a"].From != v1 || runs["site-a"].Bytes > 1<<20 {
		t.Fatalf("site-a run 2 %+v: want a pack from %s of less than the image's edited chunks", runs["site-a"], v1)
	}
	if b := runs["origin"].Bytes; b == 0 || b > 2*tree.ChunkMaxSize {
		t.Fatalf("origin run 2 uploaded %d bytes: want the changed contents, the image's changed chunks only", b)
	}

	// Run 3: nothing changed; nothing is computed or transferred, and the
	// sites that serve the version are not even asked (paused site-c is
	// recorded DISABLED as on every run).
	packsBefore := countObjects(t, st.NATSURL, bus.BucketDeltas)
	acc3, err := c.Sync(ctx, "demo")
	if err != nil {
		t.Fatal(err)
	}
	trig3 := acc3.TriggerID
	runs = waitRuns(t, c, trig3, "origin", "site-c")
	if runs["origin"].Result != string(bus.ResultUpToDate) {
		t.Errorf("origin run 3: %s, want UP_TO_DATE", runs["origin"].Result)
	}
	// Asking one site by name gets its answer: UP_TO_DATE, nothing
	// transferred. The scheduler takes snapshots in order, so once this
	// run is in, run 3's plan is done too.
	accA, err := c.SyncSubscription(ctx, "site-a", "demo")
	if err != nil {
		t.Fatal(err)
	}
	// Runs of a subscription's sync carry "<trigger_id>~<site>" (api/openapi.yaml).
	runA := waitRuns(t, c, accA.TriggerID+"~site-a", "site-a")["site-a"]
	if runA.Result != string(bus.ResultUpToDate) || runA.Bytes != 0 || runA.To != v2 {
		t.Errorf("site-a asked by name: %+v, want UP_TO_DATE at %s without bytes", runA, v2)
	}
	all, err := c.Runs(ctx, "demo", "")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range all {
		if r.TriggerID == trig3 && (r.Site == "site-a" || r.Site == "site-b") {
			t.Errorf("run 3 contacted %s, which serves the version: %+v", r.Site, r)
		}
	}
	for _, r := range find[bus.DeltaRequest](t, events, "org.pulpdist.delta.requested.v1") {
		if r.TriggerID == trig3 {
			t.Errorf("run 3 requested a delta %+v", r)
		}
	}
	if n := countObjects(t, st.NATSURL, bus.BucketDeltas); n != packsBefore {
		t.Errorf("packs stored: %d before run 3, %d after", packsBefore, n)
	}

	// Packs are signed, by the key the stack registered in the inventory:
	// the site-agents have no key file, they trust what the inventory
	// hands them over NATS.
	obj, err := objectStore(t, st.NATSURL, bus.BucketDeltas).GetBytes(ctx, bus.DeltaID("demo", v1, v2))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(obj, []byte(pack.SignatureMagic)) {
		t.Fatalf("the pack %s→%s is not signed", v1, v2)
	}
	keys, err := c.SigningKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 || keys[0].ID != st.SigningKeyID || keys[0].RevokedAt != nil {
		t.Fatalf("inventory keys %+v, want the stack's key %s", keys, st.SigningKeyID)
	}
	trusted, err := pack.ParsePublicKeys([]byte(keys[0].PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	pr, err := pack.Open(bytes.NewReader(obj), pack.Limits{}, trusted)
	if err != nil {
		t.Fatalf("the pack %s→%s does not verify with the inventory's key: %v", v1, v2, err)
	}
	mustClose(t, pr)
	kv, err := connectJetStream(t, st.NATSURL).KeyValue(ctx, bus.BucketSigningKeys)
	if err != nil {
		t.Fatal(err)
	}
	if e, err := kv.Get(ctx, st.SigningKeyID); err != nil || string(e.Value()) != keys[0].PublicKey {
		t.Fatalf("the signing-keys bucket lacks the stack's key: %v", err)
	}

	// Each (from, to) pair was computed exactly once although two sites
	// needed it and two delta-cache instances were serving.
	computed := map[string]int{}
	for _, d := range find[bus.DeltaComputed](t, events, "org.pulpdist.delta.computed.v1") {
		computed[d.From+"→"+d.To]++
	}
	if want := map[string]int{"→" + v1: 1, v1 + "→" + v2: 1}; !reflect.DeepEqual(computed, want) {
		t.Fatalf("deltas computed %v, want each pair once: %v", computed, want)
	}

	// Asking again for a stored pair — through the bus, served by either
	// instance — is answered from the store.
	nc, js, err := bus.Connect(ctx, st.NATSURL, "test", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	again := bus.DeltaRequest{V: 1, TriggerID: "again", Tree: "demo", From: v1, To: v2}
	if err := bus.Publish(ctx, js, bus.DeltaRequestSubject("demo"), "again", again); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 30*time.Second, func() error {
		for _, r := range readyMessages(t, js) {
			if r.TriggerID == "again" {
				if r.Computed {
					return errors.New("the stored pair was computed again")
				}
				return nil
			}
		}
		return errors.New("no answer to the repeated request yet")
	})
	if n := len(find[bus.DeltaComputed](t, events, "org.pulpdist.delta.computed.v1")); n != 2 {
		t.Fatalf("%d deltas computed after the repeated request, want still 2", n)
	}

	// Two triggers at once need a pair nobody has computed (a new site
	// joining at no version): the two instances may each take one request,
	// and the claim keeps the build to one of them.
	for _, trig := range []string{"race-1", "race-2"} {
		req := bus.DeltaRequest{V: 1, TriggerID: trig, Tree: "demo", To: v2}
		if err := bus.Publish(ctx, js, bus.DeltaRequestSubject("demo"), trig, req); err != nil {
			t.Fatal(err)
		}
	}
	poll.Until(t, 60*time.Second, func() error {
		answered := map[string]bool{}
		for _, r := range readyMessages(t, js) {
			answered[r.TriggerID] = true
		}
		if !answered["race-1"] || !answered["race-2"] {
			return fmt.Errorf("answered %v", answered)
		}
		return nil
	})
	full := 0
	for _, d := range storedEvents[bus.DeltaComputed](t, js, bus.EventFilter(bus.EntityDelta, bus.ActionComputed)) {
		if d.From == "" && d.To == v2 {
			full++
		}
	}
	if full != 1 {
		t.Fatalf("the pair (none → v2) was computed %d times for two concurrent requests, want once", full)
	}

	// The overview shows every site × tree, converged.
	rows, err := c.Overview(ctx)
	if err != nil {
		t.Fatal(err)
	}
	bySite := map[string]inventoryapi.OverviewRow{}
	for _, r := range rows {
		bySite[r.Site] = r
	}
	// site-a's last run is the one that asked it; site-b's the one that
	// brought it to v2.
	for s, state := range map[string]bus.Result{"site-a": bus.ResultUpToDate, "site-b": bus.ResultCompleted} {
		r := bySite[s]
		if r.Role != "replica" || r.Version != v2 || r.LatestVersion != v2 || r.State != string(state) || r.LagSeconds != 0 {
			t.Errorf("overview %s: %+v, want state %s", s, r, state)
		}
	}
	if r := bySite["origin"]; r.Role != "origin" || r.Version != v2 {
		t.Errorf("overview origin: %+v", r)
	}
	if r := bySite["site-c"]; r.State != string(bus.ResultDisabled) || r.Version != "" {
		t.Errorf("overview site-c: %+v", r)
	}

	// Every step was published as an event an outside tool could see.
	for _, typ := range []string{
		"tree.created", "site.created", "subscription.created", "sync.requested", "sync.started",
		"snapshot.published", "delta.requested", "delta.computed", "delta.ready", "delta.served", "sync.finished",
		"agent.online",
	} {
		if len(find[map[string]any](t, events, bus.EventTypePrefix+typ+"."+bus.EventTypeVersion)) == 0 {
			t.Errorf("no %s event seen", typ)
		}
	}
}

func objectStore(t *testing.T, url, bucket string) jetstream.ObjectStore {
	t.Helper()
	store, err := connectJetStream(t, url).ObjectStore(t.Context(), bucket)
	if err != nil {
		t.Fatal(err)
	}
	return store
}

func countObjects(t *testing.T, url, bucket string) int {
	t.Helper()
	list, err := objectStore(t, url, bucket).List(t.Context())
	if errors.Is(err, jetstream.ErrNoObjectsFound) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return len(list)
}

// storedEvents reads every event on subject from the events stream itself,
// whatever a subscriber has received so far.
func storedEvents[T any](t *testing.T, js jetstream.JetStream, subject string) []T {
	t.Helper()
	cons, err := js.OrderedConsumer(t.Context(), bus.StreamEvents, jetstream.OrderedConsumerConfig{FilterSubjects: []string{subject}})
	if err != nil {
		t.Fatal(err)
	}
	batch, err := cons.FetchNoWait(10000)
	if err != nil {
		t.Fatal(err)
	}
	var out []T
	for m := range batch.Messages() {
		_, data, err := bus.DecodeEvent[T](m.Data())
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, data)
	}
	return out
}

func readyMessages(t *testing.T, js jetstream.JetStream) []bus.DeltaReady {
	t.Helper()
	cons, err := js.OrderedConsumer(t.Context(), bus.StreamDeltaReady, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	var out []bus.DeltaReady
	batch, err := cons.FetchNoWait(1000)
	if err != nil {
		t.Fatal(err)
	}
	for m := range batch.Messages() {
		r, err := bus.Decode[bus.DeltaReady](m.Data())
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

func mustClose(t *testing.T, c io.Closer) {
	t.Helper()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
}
