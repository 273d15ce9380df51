package inventory_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"

	"github.com/pulpdist/pulpdist/libs/bus"
	"github.com/pulpdist/pulpdist/libs/health"
	"github.com/pulpdist/pulpdist/services/inventory/internal/catalog"
	"github.com/pulpdist/pulpdist/services/inventory/internal/httpapi"
)

// openAPIFile is the contract of the REST API.
const openAPIFile = "../../api/openapi.yaml"

// loadSpec loads and validates api/openapi.yaml and returns it with a
// router that matches requests to its operations whatever the host.
func loadSpec(t *testing.T) (*openapi3.T, routers.Router) {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromFile(openAPIFile)
	if err != nil {
		t.Fatalf("load %s: %v", openAPIFile, err)
	}
	if !doc.IsOpenAPI31OrLater() {
		t.Fatalf("%s: openapi %s, want 3.1", openAPIFile, doc.OpenAPI)
	}
	if err := doc.Validate(t.Context()); err != nil {
		t.Fatalf("%s does not validate: %v", openAPIFile, err)
	}
	doc.Servers = nil // match any host: the test's server
	router, err := legacy.NewRouter(doc)
	if err != nil {
		t.Fatalf("router: %v", err)
	}
	return doc, router
}

// paramValue is a value of a path parameter that passes the spec's
// patterns: names, a key id, a run id.
var paramValue = map[string]string{"name": "docs", "site": "paris", "tree": "docs", "id": "0123456789abcdef0123456789abcdef"}

// registered lists the patterns Register adds ("METHOD /path"), and a mux
// holding them.
func registered(t *testing.T) ([]string, *http.ServeMux) {
	t.Helper()
	mux := http.NewServeMux()
	log := slog.New(slog.DiscardHandler)
	svc := catalog.New(nil, nil, log) // routes only: no request is served
	auth := httpapi.NewAuth(svc, "", log)
	httpapi.Register(mux, httpapi.MakeEndpoints(svc), auth, log)
	health.Register(mux, health.NewProbe("test"))
	return auth.Guarded(), mux
}

// TestOpenAPIRoutesServed checks both directions: every operation of the
// spec reaches a handler of its own (not the catch-all 404), and every
// route Register adds is an operation of the spec.
func TestOpenAPIRoutesServed(t *testing.T) {
	doc, _ := loadSpec(t)
	patterns, mux := registered(t)
	documented := map[string]bool{}
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			documented[method+" "+path] = true
			target := regexp.MustCompile(`\{[^}]+\}`).ReplaceAllStringFunc(path, func(p string) string {
				v, ok := paramValue[strings.Trim(p, "{}")]
				if !ok {
					t.Fatalf("%s %s: no sample value for %s", method, path, p)
				}
				return v
			})
			_, pattern := mux.Handler(httptest.NewRequestWithContext(t.Context(), method, target, nil))
			if pattern != method+" "+path {
				t.Errorf("%s %s is documented but served by %q", method, path, pattern)
			}
		}
	}
	if len(documented) < 20 {
		t.Fatalf("only %d documented operations: the spec did not load as expected", len(documented))
	}
	for _, p := range patterns {
		if p == "/api/v1/" {
			continue // the catch-all 404
		}
		if !documented[p] {
			t.Errorf("route %q is served but not in %s", p, openAPIFile)
		}
	}
}

// conformance drives a running inventory and checks every request and
// response against the spec.
type conformance struct {
	t      *testing.T
	h      *harness
	router routers.Router
}

// call sends a request with the admin token and checks the response
// against the spec, the request too when want is a success. It returns the
// status, headers and body.
func (c *conformance) call(method, path, body string, header http.Header, want int) (http.Header, string) {
	t := c.t
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, c.h.url+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if req.Header.Get("Authorization") == "" {
		req.Header.Set("Authorization", "Bearer "+testAdminToken)
	}
	route, params, err := c.router.FindRoute(req)
	if err != nil {
		t.Fatalf("%s %s: no operation in the spec: %v", method, path, err)
	}
	in := &openapi3filter.RequestValidationInput{
		Request: req, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc},
	}
	if want < 300 {
		if err := openapi3filter.ValidateRequest(t.Context(), in); err != nil {
			t.Errorf("%s %s: request does not match the spec: %v", method, path, err)
		}
		req.Body = io.NopCloser(strings.NewReader(body)) // ValidateRequest read it
	}
	code, hdr, b := roundTrip(t, req)
	if code != want {
		t.Fatalf("%s %s: status %d, want %d: %s", method, path, code, want, b)
	}
	out := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in, Status: code, Header: hdr,
		Body:    io.NopCloser(strings.NewReader(b)),
		Options: &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	if err := openapi3filter.ValidateResponse(t.Context(), out); err != nil {
		t.Errorf("%s %s: %d response does not match the spec: %v\n%s", method, path, code, err, b)
	}
	return hdr, b
}

// TestOpenAPIConformance runs a scripted session against a real inventory
// (SQLite, embedded NATS) and validates every exchange against the spec.
func TestOpenAPIConformance(t *testing.T) {
	_, router := loadSpec(t)
	h := start(t, "sqlite://"+filepath.Join(t.TempDir(), "inventory.db"))
	c := &conformance{t: t, h: h, router: router}
	ctx := context.Background()

	for _, s := range []string{"origin", "paris", "lyon"} {
		c.call("POST", "/api/v1/sites", `{"name":"`+s+`","description":"site `+s+`"}`, nil, 201)
	}
	c.call("POST", "/api/v1/trees", `{"name":"docs","origin_site":"origin","source":"/srv/docs","schedule":"0 2 * * *","filters":["- *.tmp"],"keep":2}`, nil, 201)
	c.call("POST", "/api/v1/trees", `{"name":"blank","origin_site":"origin","source":"/srv/blank"}`, nil, 201)
	for _, s := range []string{"paris/docs", "lyon/docs", "paris/blank"} {
		site, tree, _ := strings.Cut(s, "/")
		c.call("POST", "/api/v1/subscriptions", `{"site":"`+site+`","tree":"`+tree+`"}`, nil, 201)
	}
	events := bus.NewEvents(h.js, "/test")
	now := time.Now().UTC()
	mustOK(t, events.Publish(ctx, bus.EntitySnapshot, bus.ActionPublished, "docs", bus.Snapshot{
		V: 1, TriggerID: "t0", Tree: "docs", Site: "origin", Root: root('1'), Files: 7, Bytes: 700, PublishedAt: now.Add(-72 * time.Hour)}))
	mustOK(t, events.Publish(ctx, bus.EntitySnapshot, bus.ActionPublished, "docs", bus.Snapshot{
		V: 1, TriggerID: "t1", Tree: "docs", Site: "origin", Root: root('2'), Files: 8, Bytes: 800, PublishedAt: now.Add(-48 * time.Hour)}))
	mustOK(t, events.Publish(ctx, bus.EntitySync, bus.ActionFinished, "docs", bus.SyncFinished{
		RunID: "run-1", TriggerID: "t1", Site: "paris", Tree: "docs", Kind: bus.CommandApply, To: root('2'),
		Result: bus.ResultCompleted, Files: 8, Bytes: 800, DurationMS: 1500, FinishedAt: now.Add(-47 * time.Hour)}))
	mustOK(t, events.Publish(ctx, bus.EntitySync, bus.ActionFinished, "docs", bus.SyncFinished{
		RunID: "run-2", TriggerID: "t1", Site: "lyon", Tree: "docs", Kind: bus.CommandApply, To: root('2'),
		Result: bus.ResultFailed, Error: "disk full", DurationMS: 10, FinishedAt: now.Add(-47 * time.Hour)}))
	eventually(t, "runs recorded", func() (bool, string) {
		_, body := c.call("GET", "/api/v1/runs", "", nil, 200)
		return strings.Count(body, `"id"`) == 2, body
	})

	// Reads, with every list paged.
	for _, path := range []string{
		"/api/v1/sites", "/api/v1/sites?limit=1", "/api/v1/sites/paris",
		"/api/v1/trees", "/api/v1/trees?limit=1", "/api/v1/trees/docs",
		"/api/v1/trees/docs/subscriptions?limit=1", "/api/v1/trees/docs/versions?limit=1",
		"/api/v1/subscriptions?site=paris", "/api/v1/subscriptions?tree=docs&limit=1",
		"/api/v1/runs?tree=docs&site=paris&result=COMPLETED", "/api/v1/runs?sort=started_at&limit=1",
		"/api/v1/runs?since=" + url.QueryEscape(now.Add(-96*time.Hour).Format(time.RFC3339)) + "&until=" + url.QueryEscape(now.Format(time.RFC3339)),
		"/api/v1/runs/run-1", "/api/v1/overview", "/api/v1/keys",
		"/api/v1/trees/docs/history", "/api/v1/sites/lyon/history?limit=1",
		"/api/v1/failing", "/api/v1/alarms",
		"/api/v1/audit?entity=site&limit=1", "/api/v1/audit?sort=at&action=create&since=" + url.QueryEscape(now.Add(-time.Hour).Format(time.RFC3339)),
		"/api/v1/deltas?tree=docs&limit=1", "/api/v1/problems?sort=received_at&type=x", "/api/v1/subscriptions/paris/blank/dry-run", "/healthz", "/readyz",
	} {
		c.call("GET", path, "", nil, 200)
	}
	hdr, _ := c.call("GET", "/api/v1/sites?limit=2", "", nil, 200)
	next := hdr.Get(httpapi.HeaderNextCursor)
	if next == "" || !strings.Contains(hdr.Get("Link"), `rel="next"`) {
		t.Fatalf("no next page after 2 of 3 sites: %v", hdr)
	}
	c.call("GET", "/api/v1/sites?limit=2&cursor="+next, "", nil, 200)

	// Conditional requests and updates.
	hdr, _ = c.call("GET", "/api/v1/trees/docs", "", nil, 200)
	tag := hdr.Get("ETag")
	c.call("GET", "/api/v1/trees/docs", "", http.Header{"If-None-Match": {tag}}, 304)
	c.call("PATCH", "/api/v1/trees/docs", `{"schedule":"30 3 * * *","enabled":false,"allowed_lag":"6h"}`, http.Header{"If-Match": {tag}}, 200)
	c.call("PATCH", "/api/v1/trees/docs", `{"keep":3}`, http.Header{"If-Match": {tag}}, 412)
	c.call("PATCH", "/api/v1/trees/docs", `{"keep":3}`, nil, 428)
	hdr, _ = c.call("GET", "/api/v1/subscriptions/paris/docs", "", nil, 200)
	c.call("GET", "/api/v1/subscriptions/paris/docs", "", http.Header{"If-None-Match": {hdr.Get("ETag")}}, 304)
	c.call("GET", "/api/v1/subscriptions/origin/docs", "", nil, 404)
	hdr, _ = c.call("GET", "/api/v1/sites/paris", "", nil, 200)
	hdr, _ = c.call("PATCH", "/api/v1/sites/paris", `{"description":"Paris, bldg 2"}`, http.Header{"If-Match": {hdr.Get("ETag")}}, 200)
	hdr, _ = c.call("PATCH", "/api/v1/sites/paris", `{"location":"Paris","wan_link":"1 Gbit/s","bandwidth_limit":2500000,"bandwidth_windows":["Mon-Fri 22:00-06:00"],"agent_identity":"UAPARIS"}`,
		http.Header{"If-Match": {hdr.Get("ETag")}}, 200)
	c.call("PATCH", "/api/v1/sites/paris", `{"bandwidth_windows":["22:00"]}`, http.Header{"If-Match": {hdr.Get("ETag")}}, 400)
	hdr, _ = c.call("GET", "/api/v1/trees/blank", "", nil, 200)
	c.call("PATCH", "/api/v1/trees/blank", `{"source":"/srv/blank2","type":"versioned","max_deletions":100,"protected_paths":["/keep/**"]}`,
		http.Header{"If-Match": {hdr.Get("ETag")}}, 200)

	// Control.
	for _, path := range []string{"/api/v1/sites/paris/pause", "/api/v1/sites/paris/resume", "/api/v1/trees/docs/pause", "/api/v1/trees/docs/resume", "/api/v1/trees/docs/sync"} {
		want := 200
		if strings.HasSuffix(path, "/sync") {
			want = 202
		}
		c.call("POST", path, "", nil, want)
	}

	// Deletions, conditional when If-Match is given.
	hdr, _ = c.call("GET", "/api/v1/subscriptions/lyon/docs", "", nil, 200)
	c.call("DELETE", "/api/v1/subscriptions/lyon/docs", "", http.Header{"If-Match": {`"stale"`}}, 412)
	c.call("DELETE", "/api/v1/subscriptions/lyon/docs", "", http.Header{"If-Match": {hdr.Get("ETag")}}, 200)
	c.call("DELETE", "/api/v1/subscriptions/lyon/docs", "", nil, 404)
	c.call("DELETE", "/api/v1/sites/origin", "", nil, 409)
	c.call("DELETE", "/api/v1/trees/blank", "", nil, 200)
	c.call("DELETE", "/api/v1/sites/lyon", "", nil, 200)

	// Errors are problem+json with a documented status.
	c.call("GET", "/api/v1/trees/nope", "", nil, 404)
	c.call("GET", "/api/v1/subscriptions/lyon/docs/dry-run", "", nil, 404) // no manifest stored
	c.call("GET", "/api/v1/runs?sort=size", "", nil, 400)
	c.call("GET", "/api/v1/runs?since=yesterday", "", nil, 400)
	c.call("GET", "/api/v1/audit?sort=-received_at", "", nil, 400)
	c.call("GET", "/api/v1/problems?until=soon", "", nil, 400)
	c.call("GET", "/api/v1/sites?cursor=bm9wZQ", "", nil, 400)
	c.call("POST", "/api/v1/sites", `{"name":"paris"}`, nil, 409)
	c.call("GET", "/api/v1/overview", "", http.Header{"Authorization": {"Bearer nope"}}, 401)
}
