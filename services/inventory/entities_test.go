package inventory_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/pulpdist/pulpdist/libs/bus"
	"github.com/pulpdist/pulpdist/libs/inventoryapi"
)

func TestEntities(t *testing.T) {
	for _, db := range databases {
		t.Run(db.name, func(t *testing.T) {
			h := start(t, db.url(t))
			testEntityFields(t, h)
			testEntityBadRequests(t, h)
			testEntityEvents(t, h)
		})
	}
}

func decode[T any](t *testing.T, body string) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		t.Fatalf("decode %T from %s: %v", v, body, err)
	}
	return v
}

func testEntityFields(t *testing.T, h *harness) {
	code, body := h.do(t, http.MethodPost, "/api/v1/sites", `{"name":"lyon","location":"Lyon, bldg 3","wan_link":"10 Mbit/s MPLS",
		"bandwidth_limit":1250000,"bandwidth_windows":["mon-fri 22:00-06:00","Sat,Sun 00:00-24:00"],"agent_identity":"UABC"}`)
	if code != http.StatusCreated {
		t.Fatalf("create site = %d %s", code, body)
	}
	site, err := h.client.CreateSite(t.Context(), inventoryapi.Site{Name: "origin"})
	mustOK(t, err)
	if site.LastHeartbeat != nil || site.BandwidthLimit != 0 || len(site.BandwidthWindows) != 0 {
		t.Fatalf("plain site = %+v", site)
	}
	_, body = h.do(t, http.MethodGet, "/api/v1/sites/lyon", "")
	lyon := decode[inventoryapi.Site](t, body)
	if lyon.Location != "Lyon, bldg 3" || lyon.WANLink != "10 Mbit/s MPLS" || lyon.BandwidthLimit != 1250000 ||
		lyon.AgentIdentity != "UABC" || strings.Join(lyon.BandwidthWindows, "|") != "Mon-Fri 22:00-06:00|Sat-Sun 00:00-24:00" {
		t.Fatalf("site = %+v", lyon)
	}

	code, body = h.do(t, http.MethodPost, "/api/v1/trees", `{"name":"docs","origin_site":"origin","source":"/srv/docs","keep":5,
		"type":"versioned","max_deletions":100,"protected_paths":["/etc/***","*.conf"],"enabled":false,"allowed_lag":"6h",
		"sync_latest":3,"canary_sites":["lyon"],"priority":"urgent"}`)
	if code != http.StatusCreated {
		t.Fatalf("create tree = %d %s", code, body)
	}
	docs, err := h.client.Tree(t.Context(), "docs")
	mustOK(t, err)
	if docs.Type != "versioned" || docs.Keep != 5 || docs.MaxDeletions != 100 || strings.Join(docs.ProtectedPaths, "|") != "/etc/***|*.conf" ||
		docs.Enabled == nil || *docs.Enabled || docs.AllowedLag != "6h" ||
		docs.SyncLatest != 3 || strings.Join(docs.CanarySites, "|") != "lyon" || docs.Priority != "urgent" {
		t.Fatalf("tree = %+v", docs)
	}
	plain, err := h.client.CreateTree(t.Context(), inventoryapi.Tree{Name: "isos", OriginSite: "origin", Source: "/srv/isos"})
	mustOK(t, err)
	if plain.Type != "simple" || plain.Enabled == nil || !*plain.Enabled || plain.AllowedLag != "24h" || plain.MaxDeletions != 0 ||
		plain.SyncLatest != 0 || len(plain.CanarySites) != 0 || plain.Priority != "normal" {
		t.Fatalf("tree with defaults = %+v", plain)
	}

	_, err = h.client.Sync(t.Context(), "isos")
	mustOK(t, err)
	entries, err := h.client.AuditLog(t.Context(), 0)
	mustOK(t, err)
	var got []string
	for _, e := range entries {
		got = append(got, e.Action+" "+e.Entity+" "+e.Name)
		if e.Actor == "" || !json.Valid(e.Summary) {
			t.Errorf("audit entry = %+v", e)
		}
	}
	want := "trigger tree isos|create tree isos|create tree docs|create site origin|create site lyon"
	if strings.Join(got, "|") != want {
		t.Fatalf("audit log = %q, want %q", strings.Join(got, "|"), want)
	}
	if !strings.Contains(string(entries[2].Summary), `"allowed_lag":"6h"`) {
		t.Fatalf("tree summary = %s", entries[2].Summary)
	}
	if entries, err = h.client.AuditLog(t.Context(), 1); err != nil || len(entries) != 1 {
		t.Fatalf("audit log limit 1 = %+v, %v", entries, err)
	}
}

func testEntityBadRequests(t *testing.T, h *harness) {
	tree := func(extra string) string {
		return `{"name":"bad","origin_site":"origin","source":"/srv/bad"` + extra + `}`
	}
	site := func(extra string) string { return `{"name":"bad"` + extra + `}` }
	for _, tc := range []struct {
		name, method, path, body, want string
	}{
		{"site name", "POST", "/api/v1/sites", `{"name":"Bad_Name"}`, "[a-z0-9][a-z0-9-]{0,62}"},
		{"window fields", "POST", "/api/v1/sites", site(`,"bandwidth_windows":["Mon-Fri"]`), `bandwidth window "Mon-Fri": 1 fields`},
		{"window day", "POST", "/api/v1/sites", site(`,"bandwidth_windows":["Mon-Fry 22:00-06:00"]`), `unknown day "Fry"`},
		{"window time", "POST", "/api/v1/sites", site(`,"bandwidth_windows":["Mon 22:00-25:00"]`), "not a time of day"},
		{"window empty", "POST", "/api/v1/sites", site(`,"bandwidth_windows":["Mon 06:00-06:00"]`), "empty window"},
		{"negative bandwidth", "POST", "/api/v1/sites", site(`,"bandwidth_limit":-1`), "bandwidth_limit -1 is negative"},
		{"heartbeat is read-only", "POST", "/api/v1/sites", site(`,"last_heartbeat":"not a time"`), "malformed"},
		{"tree name", "POST", "/api/v1/trees", `{"name":"-bad","origin_site":"origin","source":"/srv"}`, "[a-z0-9][a-z0-9-]{0,62}"},
		{"unknown type", "POST", "/api/v1/trees", tree(`,"type":"mirror"`), `type "mirror": want simple, versioned or snapshot`},
		{"negative max_deletions", "POST", "/api/v1/trees", tree(`,"max_deletions":-5`), "max_deletions -5 is negative"},
		{"protected path with sign", "POST", "/api/v1/trees", tree(`,"protected_paths":["- /etc"]`), "without"},
		{"protected path pattern", "POST", "/api/v1/trees", tree(`,"protected_paths":["/etc/[abc"]`), `protected path "/etc/[abc"`},
		{"protected path empty", "POST", "/api/v1/trees", tree(`,"protected_paths":[""]`), "empty pattern"},
		{"lag syntax", "POST", "/api/v1/trees", tree(`,"allowed_lag":"soon"`), `allowed_lag "soon"`},
		{"lag range", "POST", "/api/v1/trees", tree(`,"allowed_lag":"10s"`), "out of range"},
		{"lag negative", "POST", "/api/v1/trees", tree(`,"allowed_lag":"-6h"`), "out of range"},
		{"enabled not a bool", "POST", "/api/v1/trees", tree(`,"enabled":"yes"`), "malformed"},
		{"sync_latest of a simple tree", "POST", "/api/v1/trees", tree(`,"sync_latest":2`), "sync_latest applies to a versioned tree"},
		{"sync_latest negative", "POST", "/api/v1/trees", tree(`,"type":"versioned","sync_latest":-1`), "out of range"},
		{"canary name", "POST", "/api/v1/trees", tree(`,"canary_sites":["Lyon"]`), "[a-z0-9][a-z0-9-]{0,62}"},
		{"canary twice", "POST", "/api/v1/trees", tree(`,"canary_sites":["lyon","lyon"]`), `canary site "lyon" named twice`},
		{"priority", "POST", "/api/v1/trees", tree(`,"priority":"high"`), `priority "high": want normal or urgent`},
		{"sync body", "POST", "/api/v1/trees/isos/sync", `{"confirm":true}`, "malformed"},
		{"sync body type", "POST", "/api/v1/trees/isos/sync", `{"confirm_deletions":"yes"}`, "malformed"},
		{"audit limit", "GET", "/api/v1/audit?limit=0", "", "positive integer"},
		{"audit limit range", "GET", "/api/v1/audit?limit=5000", "", "out of range"},
		{"deltas tree", "GET", "/api/v1/deltas?tree=Bad", "", "[a-z0-9][a-z0-9-]{0,62}"},
		{"problems limit", "GET", "/api/v1/problems?limit=x", "", "positive integer"},
	} {
		code, body := h.do(t, tc.method, tc.path, tc.body)
		var p inventoryapi.Problem
		if code != http.StatusBadRequest || json.Unmarshal([]byte(body), &p) != nil || !strings.Contains(p.Detail, tc.want) {
			t.Errorf("%s: %s %s = %d %s, want 400 with %q", tc.name, tc.method, tc.path, code, body, tc.want)
		}
	}
	if _, err := h.client.Tree(t.Context(), "bad"); problem(err) == nil || problem(err).Status != http.StatusNotFound {
		t.Fatalf("a refused tree was stored: %v", err)
	}
}

// publishFrom publishes an event with the given id and source; each call
// is a new message, so the same id twice is a redelivery.
func publishFrom(t *testing.T, h *harness, id, source, entity, action string, data any) {
	t.Helper()
	ev := event.New()
	ev.SetID(id)
	ev.SetSource(source)
	ev.SetType(bus.EventType(entity, action))
	ev.SetTime(time.Now().UTC())
	about := aboutOf(t, data)
	ev.SetSubject(about.Subject())
	mustOK(t, ev.SetData("application/json", data))
	body, err := json.Marshal(ev)
	mustOK(t, err)
	publishRaw(t, h.js, bus.EventSubject(entity, action, about), body)
}

// aboutOf is what an event with data is about, as its publisher says on
// the subject: the data's tree and site.
func aboutOf(t *testing.T, data any) bus.About {
	t.Helper()
	b, err := json.Marshal(data)
	mustOK(t, err)
	var a struct{ Tree, Site string }
	_ = json.Unmarshal(b, &a) // data that is not an object is about nothing
	if bus.ValidateName("tree", a.Tree) != nil {
		a.Tree = ""
	}
	if bus.ValidateName("site", a.Site) != nil {
		a.Site = ""
	}
	return bus.About{Tree: a.Tree, Site: a.Site}
}

func testEntityEvents(t *testing.T, h *harness) {
	ctx := context.Background()
	ghost := bus.Snapshot{V: bus.MessageVersion, Tree: "ghost", Site: "lyon", Root: root('a'), PublishedAt: time.Now().UTC()}
	computed := bus.DeltaComputed{Tree: "docs", To: root('a'), Pack: "docs/none/" + root('a'), Size: 42, Instance: "dc-7", DurationMS: 5, Effort: "default", Sites: 1}
	for range 2 {
		publishFrom(t, h, "ghost-snap", "/pulpdist/siteagent/lyon", bus.EntitySnapshot, bus.ActionPublished, ghost)
		publishFrom(t, h, "delta-1", "/pulpdist/deltacache/dc-7", bus.EntityDelta, bus.ActionComputed, computed)
	}
	// A last event, recorded after the others: once it is seen, they are.
	publishFrom(t, h, "ghost-ready", "/pulpdist/deltacache/dc-7", bus.EntityDelta, bus.ActionReady,
		bus.DeltaReady{V: bus.MessageVersion, Tree: "ghost", To: root('b'), Pack: "ghost/none/" + root('b')})
	eventually(t, "problems recorded", func() (bool, string) {
		ps, err := h.client.Problems(ctx, 0)
		return err == nil && len(ps) == 2, jsonString(ps, err)
	})
	ps, err := h.client.Problems(ctx, 0)
	mustOK(t, err)
	if ps[0].EventID != "ghost-ready" || ps[1].EventID != "ghost-snap" || ps[1].Type != "org.pulpdist.snapshot.published.v1" ||
		!strings.Contains(ps[1].Reason, "tree not found") {
		t.Fatalf("problems = %+v", ps)
	}
	ds, err := h.client.Deltas(ctx, "docs", 0)
	mustOK(t, err)
	if len(ds) != 1 || ds[0].ComputedBy != "dc-7" || ds[0].Size != 42 || ds[0].ComputedAt == nil || ds[0].TimesServed != 0 {
		t.Fatalf("deltas = %+v", ds)
	}
	if ds, err = h.client.Deltas(ctx, "isos", 0); err != nil || len(ds) != 0 {
		t.Fatalf("deltas of isos = %+v, %v", ds, err)
	}
	// The delta-cache collected the pack: the inventory forgets it.
	publishFrom(t, h, "delta-1-gone", "/pulpdist/deltacache/dc-7", bus.EntityDelta, bus.ActionDeleted,
		bus.DeltaDeleted{Tree: "docs", To: root('a'), Pack: "docs/none/" + root('a'), Size: 42, Reason: "no site serves its base"})
	eventually(t, "delta forgotten", func() (bool, string) {
		ds, err := h.client.Deltas(ctx, "docs", 0)
		return err == nil && len(ds) == 0, jsonString(ds, err)
	})
	lyon, err := h.client.Sites(ctx)
	mustOK(t, err)
	for _, s := range lyon {
		if (s.Name == "lyon") != (s.LastHeartbeat != nil) {
			t.Errorf("site %s heartbeat %v", s.Name, s.LastHeartbeat)
		}
	}
}
