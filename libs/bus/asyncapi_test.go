package bus_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"gopkg.in/yaml.v3"

	"github.com/pulpdist/pulpdist/libs/bus"
	"github.com/pulpdist/pulpdist/libs/control"
	"github.com/pulpdist/pulpdist/libs/inventoryapi"
	"github.com/pulpdist/pulpdist/libs/natstest"
)

// asyncAPIPath is the contract these tests hold the code to.
const asyncAPIPath = "../../api/asyncapi.yaml"

func loadAsyncAPI(t *testing.T) map[string]any {
	t.Helper()
	b, err := os.ReadFile(asyncAPIPath)
	if err != nil {
		t.Fatalf("read asyncapi: %v", err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("parse %s: %v", asyncAPIPath, err)
	}
	if v, _ := doc["asyncapi"].(string); !strings.HasPrefix(v, "3.") {
		t.Fatalf("%s: asyncapi version %q, want 3.x", asyncAPIPath, v)
	}
	return doc
}

// node walks a decoded YAML document by map keys; nil when a key is missing.
func node(v any, path ...string) any {
	for _, k := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

// resolve follows a local "$ref" ("#/a/b") until it reaches a non-ref node.
func resolve(t *testing.T, doc, v any) any {
	t.Helper()
	for range 10 {
		ref, ok := node(v, "$ref").(string)
		if !ok {
			return v
		}
		if !strings.HasPrefix(ref, "#/") {
			t.Fatalf("non-local $ref %q", ref)
		}
		parts := strings.Split(strings.TrimPrefix(ref, "#/"), "/")
		for i, p := range parts {
			parts[i] = strings.ReplaceAll(strings.ReplaceAll(p, "~1", "/"), "~0", "~")
		}
		v = node(doc, parts...)
		if v == nil {
			t.Fatalf("dangling $ref %q", ref)
		}
	}
	t.Fatalf("$ref loop")
	return nil
}

func keys(v any) []string {
	m, _ := v.(map[string]any)
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func strs(v any) []string {
	l, _ := v.([]any)
	out := make([]string, 0, len(l))
	for _, e := range l {
		out = append(out, toString(e))
	}
	slices.Sort(out)
	return out
}

func toString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case nil:
		return ""
	default:
		b, _ := json.Marshal(x)
		return string(b)
	}
}

// jsonTags returns the JSON names of a struct's fields, and the names of
// those always present in its encoding (no omitempty/omitzero).
func jsonTags(typ reflect.Type) (all, always []string) {
	for f := range typ.Fields() {
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct {
			a, r := jsonTags(f.Type)
			all, always = append(all, a...), append(always, r...)
			continue
		}
		if name == "" {
			name = f.Name
		}
		all = append(all, name)
		optional := slices.ContainsFunc(strings.Split(opts, ","), func(o string) bool {
			return o == "omitempty" || o == "omitzero"
		})
		if !optional {
			always = append(always, name)
		}
	}
	slices.Sort(all)
	slices.Sort(always)
	return all, always
}

func channelByAddress(t *testing.T, doc map[string]any, addr string) (string, map[string]any) {
	t.Helper()
	for name, ch := range node(doc, "channels").(map[string]any) {
		if a, _ := node(ch, "address").(string); a == addr {
			m, _ := ch.(map[string]any)
			return name, m
		}
	}
	return "", nil
}

func docStream(doc map[string]any, name string) map[string]any {
	for _, s := range node(doc, "x-pulpdist-jetstream", "streams").([]any) {
		if node(s, "name") == name {
			m, _ := s.(map[string]any)
			return m
		}
	}
	return nil
}

// TestAsyncAPISubjects checks that every subject the bus functions build has
// a channel, held by the right stream with the documented retention.
func TestAsyncAPISubjects(t *testing.T) {
	doc := loadAsyncAPI(t)
	cases := []struct {
		subject, stream, message string
	}{
		{bus.TriggerSubject("{tree}"), bus.StreamTriggers, "Trigger"},
		{bus.SyncSubject("{site}", "{tree}"), bus.StreamSync, "SyncCommand"},
		{bus.UrgentSyncSubject("{site}", "{tree}"), bus.StreamSync, "SyncCommand"},
		{bus.SnapshotSubject("{tree}"), bus.StreamSnapshots, "Snapshot"},
		{bus.DeltaRequestSubject("{tree}"), bus.StreamDeltaReq, "DeltaRequest"},
		{bus.DeltaReadySubject("{tree}"), bus.StreamDeltaReady, "DeltaReady"},
		{bus.EventSubject("{entity}", "{action}", bus.About{Tree: "{tree}", Site: "{site}"}), bus.StreamEvents, ""},
		{bus.DeadLetterSubject("{stream}"), bus.StreamDead, ""},
	}
	for _, c := range cases {
		t.Run(c.subject, func(t *testing.T) {
			name, ch := channelByAddress(t, doc, c.subject)
			if ch == nil {
				t.Fatalf("no channel with address %q", c.subject)
			}
			if got := node(ch, "x-pulpdist-stream"); got != c.stream {
				t.Errorf("channel %s: x-pulpdist-stream = %v, want %s", name, got, c.stream)
			}
			st := docStream(doc, c.stream)
			if st == nil {
				t.Fatalf("stream %s not in x-pulpdist-jetstream.streams", c.stream)
			}
			if got, want := node(ch, "x-pulpdist-retention"), node(st, "retention"); got != want {
				t.Errorf("channel %s: retention %v, stream %s says %v", name, got, c.stream, want)
			}
			if node(ch, "x-pulpdist-msg-id") == nil {
				t.Errorf("channel %s: no x-pulpdist-msg-id (dedup rule)", name)
			}
			for _, p := range placeholders(c.subject) {
				if node(ch, "parameters", p) == nil {
					t.Errorf("channel %s: parameter %q not declared", name, p)
				}
			}
			if c.message == "" {
				return
			}
			var found bool
			for _, m := range node(ch, "messages").(map[string]any) {
				payload := node(resolve(t, doc, m), "payload", "$ref")
				found = found || payload == "#/components/schemas/"+c.message
			}
			if !found {
				t.Errorf("channel %s: no message with payload schema %s", name, c.message)
			}
		})
	}

	// The site-agent's consumer filter is documented on the sync channel.
	_, sync := channelByAddress(t, doc, bus.SyncSubject("{site}", "{tree}"))
	var filters []string
	for _, c := range node(sync, "x-pulpdist-consumers").([]any) {
		filters = append(filters, toString(node(c, "filter")))
	}
	if want := bus.SyncFilter("{site}"); !slices.Contains(filters, want) {
		t.Errorf("sync channel consumer filters %v lack %q", filters, want)
	}
	_, urgent := channelByAddress(t, doc, bus.UrgentSyncSubject("{site}", "{tree}"))
	filters = nil
	for _, c := range node(urgent, "x-pulpdist-consumers").([]any) {
		filters = append(filters, toString(node(c, "filter")))
	}
	if want := bus.UrgentSyncFilter("{site}"); !slices.Contains(filters, want) {
		t.Errorf("urgent sync channel consumer filters %v lack %q", filters, want)
	}
}

func placeholders(subject string) []string {
	var out []string
	for tok := range strings.SplitSeq(subject, ".") {
		if strings.HasPrefix(tok, "{") && strings.HasSuffix(tok, "}") {
			out = append(out, strings.Trim(tok, "{}"))
		}
	}
	return out
}

// Shapes of what an event is about, as channel parameters.
var (
	aboutTree     = bus.About{Tree: "{tree}"}
	aboutSite     = bus.About{Site: "{site}"}
	aboutTreeSite = bus.About{Tree: "{tree}", Site: "{site}"}
	aboutNothing  = bus.About{}
)

// eventCases are the events the services publish: what each is about and
// the schema of its data.
var eventCases = []struct {
	entity, action string
	about          bus.About
	data           string
}{
	{bus.EntitySync, bus.ActionRequested, aboutTree, "SyncRequested"},
	{bus.EntitySync, bus.ActionStarted, aboutTreeSite, "SyncStarted"},
	{bus.EntitySync, bus.ActionFinished, aboutTreeSite, "SyncFinished"},
	{bus.EntitySync, bus.ActionProgress, aboutTreeSite, "SyncProgress"},
	{bus.EntitySnapshot, bus.ActionPublished, aboutTreeSite, "Snapshot"},
	{bus.EntityDelta, bus.ActionRequested, aboutTree, "DeltaRequest"},
	{bus.EntityDelta, bus.ActionComputed, aboutTree, "DeltaComputed"},
	{bus.EntityGuard, bus.ActionTripped, aboutTreeSite, "GuardTripped"},
	{bus.EntityDelta, bus.ActionDeleted, aboutTree, "DeltaDeleted"},
	{bus.EntityAlarm, bus.ActionRaised, aboutTreeSite, "FreshnessAlarm"},
	{bus.EntityAlarm, bus.ActionCleared, aboutTreeSite, "FreshnessAlarm"},
	{bus.EntityDelta, bus.ActionReady, aboutTree, "DeltaReady"},
	{bus.EntityDelta, bus.ActionServed, aboutTreeSite, "DeltaServed"},
	{bus.EntityTree, bus.ActionCreated, aboutTree, "Tree"},
	{bus.EntitySite, bus.ActionCreated, aboutSite, "Site"},
	{bus.EntitySubscription, bus.ActionCreated, aboutTreeSite, "Subscription"},
	{bus.EntitySubscription, bus.ActionUpdated, aboutTreeSite, "Subscription"},
	{bus.EntityTree, bus.ActionUpdated, aboutTree, "Tree"},
	{bus.EntitySite, bus.ActionUpdated, aboutSite, "Site"},
	{bus.EntityTree, bus.ActionDeleted, aboutTree, "Tree"},
	{bus.EntitySite, bus.ActionDeleted, aboutSite, "Site"},
	{bus.EntitySubscription, bus.ActionDeleted, aboutTreeSite, "Subscription"},
	{bus.EntityKey, bus.ActionAdded, aboutNothing, "SigningKey"},
	{bus.EntityKey, bus.ActionRevoked, aboutNothing, "SigningKey"},
	{bus.EntityAgent, bus.ActionOnline, aboutSite, "AgentOnline"},
	{bus.EntityAgent, bus.ActionOffline, aboutSite, "AgentOffline"},
	{bus.EntityAgent, bus.ActionHeartbeat, aboutSite, "AgentHeartbeat"},
	// About what the original subject names: a tree, a site, both or
	// neither; the channel names both.
	{bus.EntityMessage, bus.ActionDeadLettered, aboutTreeSite, "DeadLettered"},
}

// TestAsyncAPIEvents checks each event the services publish: a channel on
// its subject, its CloudEvents type and the schema of its data.
func TestAsyncAPIEvents(t *testing.T) {
	doc := loadAsyncAPI(t)
	_, all := channelByAddress(t, doc, bus.EventSubject("{entity}", "{action}", bus.About{Tree: "{tree}", Site: "{site}"}))
	if all == nil {
		t.Fatal("no wildcard events channel")
	}
	entities := strs(node(doc, "components", "parameters", "entity", "enum"))
	actions := strs(node(doc, "components", "parameters", "action", "enum"))
	for _, c := range eventCases {
		subject := bus.EventSubject(c.entity, c.action, c.about)
		t.Run(subject, func(t *testing.T) {
			if !slices.Contains(entities, c.entity) || !slices.Contains(actions, c.action) {
				t.Errorf("%s.%s not in the entity/action parameter enums %v %v", c.entity, c.action, entities, actions)
			}
			name, ch := channelByAddress(t, doc, subject)
			if ch == nil {
				t.Fatalf("no channel with address %q", subject)
			}
			if got := node(ch, "x-pulpdist-stream"); got != bus.StreamEvents {
				t.Errorf("channel %s: stream %v, want %s", name, got, bus.StreamEvents)
			}
			msgs := node(ch, "messages").(map[string]any)
			if len(msgs) != 1 {
				t.Fatalf("channel %s: %d messages, want 1", name, len(msgs))
			}
			for _, m := range msgs {
				ref := toString(node(m, "$ref"))
				inAll := false
				for _, am := range node(all, "messages").(map[string]any) {
					inAll = inAll || node(am, "$ref") == ref
				}
				if !inAll {
					t.Errorf("message %s is not listed on the wildcard events channel", ref)
				}
				msg := resolve(t, doc, m)
				if got := node(msg, "contentType"); got != bus.ContentTypeCloudEvents {
					t.Errorf("message %s: contentType %v, want %s", ref, got, bus.ContentTypeCloudEvents)
				}
				parts, _ := node(msg, "payload", "allOf").([]any)
				if len(parts) != 2 || node(parts[0], "$ref") != "#/components/schemas/CloudEvent" {
					t.Fatalf("message %s: payload must be allOf [CloudEvent, {type, data}]", ref)
				}
				if got, want := node(parts[1], "properties", "type", "const"), bus.EventType(c.entity, c.action); got != want {
					t.Errorf("message %s: type const %v, want %s", ref, got, want)
				}
				if got, want := node(parts[1], "properties", "data", "$ref"), "#/components/schemas/"+c.data; got != want {
					t.Errorf("message %s: data %v, want %s", ref, got, want)
				}
			}
		})
	}
}

// TestAsyncAPIResources checks that every stream, bucket and object store
// is documented, with the key and object-name patterns the code builds.
func TestAsyncAPIResources(t *testing.T) {
	doc := loadAsyncAPI(t)
	js := node(doc, "x-pulpdist-jetstream")
	names := func(list string) []string {
		var out []string
		for _, e := range node(js, list).([]any) {
			out = append(out, toString(node(e, "name")))
		}
		slices.Sort(out)
		return out
	}
	wantStreams := []string{bus.StreamTriggers, bus.StreamSync, bus.StreamSnapshots, bus.StreamDeltaReq, bus.StreamDeltaReady, bus.StreamEvents, bus.StreamDead}
	wantKV := []string{bus.BucketSites, bus.BucketDeltaClaims, bus.BucketSigningKeys, bus.BucketScans}
	wantObj := []string{bus.BucketBlobs, bus.BucketManifests, bus.BucketDeltas}
	for _, w := range [][]string{wantStreams, wantKV, wantObj} {
		slices.Sort(w)
	}
	if got := names("streams"); !slices.Equal(got, wantStreams) {
		t.Errorf("streams %v, want %v", got, wantStreams)
	}
	if got := names("keyValue"); !slices.Equal(got, wantKV) {
		t.Errorf("kv buckets %v, want %v", got, wantKV)
	}
	if got := names("objectStores"); !slices.Equal(got, wantObj) {
		t.Errorf("object stores %v, want %v", got, wantObj)
	}
	if got := node(js, "duplicateWindow"); got != bus.DuplicateWindow.String() {
		t.Errorf("duplicateWindow %v, want %s", got, bus.DuplicateWindow)
	}

	patterns := func(list, bucket, field string) []string {
		for _, e := range node(js, list).([]any) {
			if node(e, "name") == bucket {
				var out []string
				for _, k := range node(e, field).([]any) {
					out = append(out, toString(node(k, "pattern")))
				}
				return out
			}
		}
		return nil
	}
	cases := []struct {
		list, bucket, field, want string
	}{
		{"keyValue", bus.BucketSites, "keys", bus.SiteVersionKey("{site}", "{tree}")},
		{"keyValue", bus.BucketDeltaClaims, "keys", bus.DeltaClaimKey("{tree}", "{from}", "{to}")},
		{"keyValue", bus.BucketSigningKeys, "keys", "{id}"},
		{"keyValue", bus.BucketScans, "keys", bus.ScanKey("{tree}")},
		{"objectStores", bus.BucketManifests, "objects", bus.ManifestObject("{tree}", "{root}")},
		{"objectStores", bus.BucketDeltas, "objects", bus.DeltaID("{tree}", "{from}", "{to}")},
		{"objectStores", bus.BucketBlobs, "objects", "{blake3}"},
	}
	for _, c := range cases {
		if got := patterns(c.list, c.bucket, c.field); !slices.Contains(got, c.want) {
			t.Errorf("%s %s: patterns %v lack %q", c.list, c.bucket, got, c.want)
		}
	}
}

// TestAsyncAPISchemas checks that each message schema has exactly the JSON
// fields of its Go type, and requires exactly those always encoded.
func TestAsyncAPISchemas(t *testing.T) {
	doc := loadAsyncAPI(t)
	types := map[string]any{
		"Trigger":        bus.Trigger{},
		"SyncCommand":    bus.SyncCommand{},
		"Snapshot":       bus.Snapshot{},
		"DeltaRequest":   bus.DeltaRequest{},
		"DeltaReady":     bus.DeltaReady{},
		"SiteVersion":    bus.SiteVersion{},
		"SyncRequested":  bus.SyncRequested{},
		"SyncStarted":    bus.SyncStarted{},
		"SyncFinished":   bus.SyncFinished{},
		"SyncProgress":   bus.SyncProgress{},
		"AgentOnline":    bus.AgentOnline{},
		"AgentOffline":   bus.AgentOffline{},
		"AgentHeartbeat": bus.AgentHeartbeat{},
		"AgentTree":      bus.AgentTree{},
		"DeltaComputed":  bus.DeltaComputed{},
		"GuardTripped":   bus.GuardTripped{},
		"DeltaDeleted":   bus.DeltaDeleted{},
		"DeltaServed":    bus.DeltaServed{},
		"FreshnessAlarm": bus.FreshnessAlarm{},
		"DeadLettered":   bus.DeadLettered{},
		"Tree":           inventoryapi.Tree{},
		"Site":           inventoryapi.Site{},
		"Subscription":   inventoryapi.Subscription{},
		"SigningKey":     inventoryapi.SigningKey{},

		"ServiceStatus":    bus.ServiceStatus{},
		"InventoryStatus":  bus.InventoryStatus{},
		"SchedulerStatus":  bus.SchedulerStatus{},
		"ScheduledTree":    bus.ScheduledTree{},
		"ScanInFlight":     bus.ScanInFlight{},
		"DeltaCacheStatus": bus.DeltaCacheStatus{},
		"DeltaInFlight":    bus.DeltaInFlight{},
		"AgentStatus":      bus.AgentStatus{},
		"HeldTree":         bus.HeldTree{},
		"AgentRun":         bus.AgentRun{},
		"TriggerRequest":   bus.TriggerRequest{},
		"TriggerReply":     bus.TriggerReply{},
		"VerifyRequest":    bus.VerifyRequest{},
		"VerifyReply":      bus.VerifyReply{},
		"ControlError":     bus.ControlError{},
	}
	for name, v := range types {
		t.Run(name, func(t *testing.T) {
			schema := node(doc, "components", "schemas", name)
			if schema == nil {
				t.Fatalf("no components.schemas.%s", name)
			}
			all, always := jsonTags(reflect.TypeOf(v))
			if got := keys(node(schema, "properties")); !slices.Equal(got, all) {
				t.Errorf("%s properties %v, Go JSON fields %v", name, got, all)
			}
			if got := strs(node(schema, "required")); !slices.Equal(got, always) {
				t.Errorf("%s required %v, Go fields without omitempty %v", name, got, always)
			}
		})
	}

	results := []string{
		string(bus.ResultUpToDate), string(bus.ResultCompleted), string(bus.ResultPartial),
		string(bus.ResultFailed), string(bus.ResultDisabled),
	}
	slices.Sort(results)
	got := strs(node(doc, "components", "schemas", "Result", "enum"))
	if !slices.Equal(got, results) {
		t.Errorf("Result enum %v, want %v", got, results)
	}
	for _, r := range got {
		if !bus.Result(r).Valid() {
			t.Errorf("Result %q is documented but not valid", r)
		}
	}
	kinds := []string{string(bus.CommandApply), string(bus.CommandSnapshot)}
	if got := strs(node(doc, "components", "schemas", "CommandKind", "enum")); !slices.Equal(got, kinds) {
		t.Errorf("CommandKind enum %v, want %v", got, kinds)
	}
	if got := node(doc, "components", "schemas", "MessageVersion", "const"); got != bus.MessageVersion {
		t.Errorf("MessageVersion const %v, want %d", got, bus.MessageVersion)
	}
}

// TestAsyncAPIMatchesServer creates the layout on a real JetStream server
// and compares it, and a published event, with the document.
func TestAsyncAPIMatchesServer(t *testing.T) {
	doc := loadAsyncAPI(t)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	nc, js, err := bus.Connect(ctx, natstest.Start(t), "asyncapi-test", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if _, err := bus.Ensure(ctx, js); err != nil {
		t.Fatal(err)
	}

	retention := map[string]jetstream.RetentionPolicy{"workqueue": jetstream.WorkQueuePolicy, "limits": jetstream.LimitsPolicy}
	for _, s := range node(doc, "x-pulpdist-jetstream", "streams").([]any) {
		name := toString(node(s, "name"))
		st, err := js.Stream(ctx, name)
		if err != nil {
			t.Errorf("stream %s documented but not created: %v", name, err)
			continue
		}
		cfg := st.CachedInfo().Config
		if got, want := cfg.Subjects, strs(node(s, "subjects")); !slices.Equal(slices.Sorted(slices.Values(got)), want) {
			t.Errorf("stream %s subjects %v, documented %v", name, got, want)
		}
		if want, ok := retention[toString(node(s, "retention"))]; !ok || cfg.Retention != want {
			t.Errorf("stream %s retention %s, documented %v", name, cfg.Retention, node(s, "retention"))
		}
		if want := mustDuration(t, node(s, "maxAge")); cfg.MaxAge != want {
			t.Errorf("stream %s max age %s, documented %s", name, cfg.MaxAge, want)
		}
		if got, want := cfg.MaxMsgsPerSubject, node(s, "maxMsgsPerSubject"); toString(got) != toString(want) {
			t.Errorf("stream %s max msgs per subject %d, documented %v", name, got, want)
		}
		if want := mustDuration(t, node(doc, "x-pulpdist-jetstream", "duplicateWindow")); cfg.Duplicates != want {
			t.Errorf("stream %s duplicate window %s, documented %s", name, cfg.Duplicates, want)
		}
		if want := node(s, "allowMsgTTL") == true; cfg.AllowMsgTTL != want {
			t.Errorf("stream %s allows message TTLs: %t, documented %t", name, cfg.AllowMsgTTL, want)
		}
	}
	for _, b := range node(doc, "x-pulpdist-jetstream", "keyValue").([]any) {
		name := toString(node(b, "name"))
		kv, err := js.KeyValue(ctx, name)
		if err != nil {
			t.Errorf("kv %s documented but not created: %v", name, err)
			continue
		}
		st, err := kv.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := st.History(), node(b, "history"); toString(got) != toString(want) {
			t.Errorf("kv %s history %d, documented %v", name, got, want)
		}
		if want := mustDuration(t, node(b, "ttl")); st.TTL() != want {
			t.Errorf("kv %s ttl %s, documented %s", name, st.TTL(), want)
		}
	}
	for _, o := range node(doc, "x-pulpdist-jetstream", "objectStores").([]any) {
		if _, err := js.ObjectStore(ctx, toString(node(o, "name"))); err != nil {
			t.Errorf("object store %v documented but not created: %v", node(o, "name"), err)
		}
	}

	// A published event, signed as a site-agent's are, has exactly the
	// envelope the document describes.
	ev := bus.SyncRequested{TriggerID: "t1", Tree: "demo", Reason: "manual"}
	signed := bus.NewEvents(js, "/pulpdist/test").SignReportsWith("0123456789ab", bus.ReportKey("pdt_0123456789ab_x"))
	// Within a trace, as a handler publishes: the event carries it.
	before := otel.GetTracerProvider()
	otel.SetTracerProvider(sdktrace.NewTracerProvider())
	defer otel.SetTracerProvider(before)
	traced, span := otel.Tracer("test").Start(ctx, "handler")
	defer span.End()
	if err := signed.Publish(traced, bus.EntitySync, bus.ActionRequested, bus.About{Tree: "demo"}, ev); err != nil {
		t.Fatal(err)
	}
	st, err := js.Stream(ctx, bus.StreamEvents)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := st.GetLastMsgForSubject(ctx, bus.EventSubject(bus.EntitySync, bus.ActionRequested, bus.About{Tree: "demo"}))
	if err != nil {
		t.Fatal(err)
	}
	var envelope map[string]any
	if err := json.Unmarshal(raw.Data, &envelope); err != nil {
		t.Fatal(err)
	}
	schema := node(doc, "components", "schemas", "CloudEvent")
	// tracestate is passed on only from traces that have vendor state.
	if got, want := keys(envelope), slices.DeleteFunc(keys(node(schema, "properties")), func(k string) bool { return k == "tracestate" }); !slices.Equal(got, want) {
		t.Errorf("event envelope fields %v, CloudEvent schema %v", got, want)
	}
	for _, k := range []string{"specversion", "datacontenttype"} {
		if got, want := envelope[k], node(schema, "properties", k, "const"); got != want {
			t.Errorf("event %s = %v, documented %v", k, got, want)
		}
	}
	if got, want := raw.Header.Get("Content-Type"), node(doc, "components", "schemas", "EventHeaders", "properties", "Content-Type", "const"); got != want {
		t.Errorf("event Content-Type %q, documented %v", got, want)
	}
	if got := raw.Header.Get("Nats-Msg-Id"); got == "" || got != envelope["id"] {
		t.Errorf("event Nats-Msg-Id %q, want the CloudEvents id %v", got, envelope["id"])
	}
}

func mustDuration(t *testing.T, v any) time.Duration {
	t.Helper()
	d, err := time.ParseDuration(toString(v))
	if err != nil {
		t.Fatalf("documented duration %v: %v", v, err)
	}
	return d
}

// instanceSubject is bus.InstanceSubject with the {instance} or {site}
// placeholder the document uses (InstanceToken would rewrite the braces).
func instanceSubject(service, placeholder, endpoint string) string {
	return strings.Replace(bus.InstanceSubject(service, "PLACEHOLDER", endpoint), "PLACEHOLDER", placeholder, 1)
}

// TestAsyncAPIControl checks each request-reply endpoint the services
// register (libs/control): a channel on the subject bus builds, naming
// the micro service, endpoint and queue group; its request message; and
// a receive operation whose reply is the endpoint's reply or the error.
func TestAsyncAPIControl(t *testing.T) {
	doc := loadAsyncAPI(t)
	cases := []struct {
		subject, service, endpoint, request, reply string
	}{
		{bus.ServiceSubject(bus.ServiceInventory, bus.EndpointStatus), bus.ServiceInventory, bus.EndpointStatus, "", "InventoryStatus"},
		{bus.ServiceSubject(bus.ServiceScheduler, bus.EndpointStatus), bus.ServiceScheduler, bus.EndpointStatus, "", "SchedulerStatus"},
		{bus.ServiceSubject(bus.ServiceScheduler, bus.EndpointTrigger), bus.ServiceScheduler, bus.EndpointTrigger, "TriggerRequest", "TriggerReply"},
		{instanceSubject(bus.ServiceDeltaCache, "{instance}", bus.EndpointStatus), bus.ServiceDeltaCache, bus.EndpointStatus, "", "DeltaCacheStatus"},
		{instanceSubject(bus.ServiceSiteAgent, "{site}", bus.EndpointStatus), bus.ServiceSiteAgent, bus.EndpointStatus, "", "AgentStatus"},
		{instanceSubject(bus.ServiceSiteAgent, "{site}", bus.EndpointVerify), bus.ServiceSiteAgent, bus.EndpointVerify, "VerifyRequest", "VerifyReply"},
	}
	documented := 0
	for name, ch := range node(doc, "channels").(map[string]any) {
		if a, _ := node(ch, "address").(string); strings.HasPrefix(a, bus.ServicePrefix+".") {
			documented++
		} else if node(ch, "x-pulpdist-micro") != nil {
			t.Errorf("channel %s: x-pulpdist-micro on a subject outside %s", name, bus.ServicePrefix)
		}
	}
	if documented != len(cases) {
		t.Errorf("%d channels under %s documented, the services have %d endpoints", documented, bus.ServicePrefix, len(cases))
	}
	for _, c := range cases {
		t.Run(c.subject, func(t *testing.T) {
			name, ch := channelByAddress(t, doc, c.subject)
			if ch == nil {
				t.Fatalf("no channel with address %q", c.subject)
			}
			micro := node(ch, "x-pulpdist-micro")
			if got, want := node(micro, "service"), "pulpdist-"+c.service; got != want {
				t.Errorf("channel %s: service %v, want %s", name, got, want)
			}
			if got := node(micro, "endpoint"); got != c.endpoint {
				t.Errorf("channel %s: endpoint %v, want %s", name, got, c.endpoint)
			}
			if got, want := node(micro, "queueGroup"), "pulpdist-"+c.service; got != want {
				t.Errorf("channel %s: queue group %v, want %s", name, got, want)
			}
			for _, p := range placeholders(c.subject) {
				if node(ch, "parameters", p) == nil {
					t.Errorf("channel %s: parameter %q not declared", name, p)
				}
			}
			msgs, _ := node(ch, "messages").(map[string]any)
			if len(msgs) != 1 {
				t.Fatalf("channel %s: %d request messages, want 1", name, len(msgs))
			}
			for _, m := range msgs {
				msg := resolve(t, doc, m)
				if c.request == "" {
					if node(msg, "name") != "StatusRequest" {
						t.Errorf("channel %s: request %v, want StatusRequest", name, node(msg, "name"))
					}
				} else if got := node(msg, "payload", "$ref"); got != "#/components/schemas/"+c.request {
					t.Errorf("channel %s: request payload %v, want %s", name, got, c.request)
				}
				if node(msg, "headers") == nil {
					t.Errorf("channel %s: request without headers (traceparent)", name)
				}
			}
			var ops int
			for opName, op := range node(doc, "operations").(map[string]any) {
				if node(op, "channel", "$ref") != "#/channels/"+name {
					continue
				}
				ops++
				if node(op, "action") != "receive" {
					t.Errorf("operation %s: action %v, want receive", opName, node(op, "action"))
				}
				var replies []string
				for _, r := range node(op, "reply", "messages").([]any) {
					replies = append(replies, toString(node(resolve(t, doc, r), "payload", "$ref")))
				}
				slices.Sort(replies)
				want := []string{"#/components/schemas/ControlError", "#/components/schemas/" + c.reply}
				slices.Sort(want)
				if !slices.Equal(replies, want) {
					t.Errorf("operation %s: replies %v, want %v", opName, replies, want)
				}
			}
			if ops != 1 {
				t.Errorf("channel %s: %d operations, want 1", name, ops)
			}
		})
	}
	codes := []string{control.CodeInvalid, control.CodeNotFound, control.CodeBusy, control.CodeInternal, control.CodeUnavailable}
	slices.Sort(codes)
	if got := strs(node(doc, "components", "schemas", "ControlError", "properties", "code", "enum")); !slices.Equal(got, codes) {
		t.Errorf("ControlError codes %v, want %v", got, codes)
	}
}
