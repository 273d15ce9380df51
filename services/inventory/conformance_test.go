package inventory_test

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
	"github.com/lib/pq"

	"github.com/pulpdist/pulpdist/libs/bus"
	"github.com/pulpdist/pulpdist/libs/health"
	"github.com/pulpdist/pulpdist/libs/inventoryapi"
	"github.com/pulpdist/pulpdist/libs/pgtest"
	"github.com/pulpdist/pulpdist/libs/tree"
	"github.com/pulpdist/pulpdist/services/inventory/internal/catalog"
	"github.com/pulpdist/pulpdist/services/inventory/internal/httpapi"
	"github.com/pulpdist/pulpdist/services/inventory/internal/store"
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

// fill puts values in the {parameters} of path.
func fill(t *testing.T, path string, values map[string]string) string {
	t.Helper()
	return regexp.MustCompile(`\{[^}]+\}`).ReplaceAllStringFunc(path, func(p string) string {
		v, ok := values[strings.Trim(p, "{}")]
		if !ok {
			t.Fatalf("%s: no sample value for %s", path, p)
		}
		return v
	})
}

// present are path parameters of things the walk of
// TestOpenAPIConformance makes: paramValue, with an id of the route's kind.
func present(path string) map[string]string {
	v := maps.Clone(paramValue)
	switch {
	case strings.HasPrefix(path, "/api/v1/tokens/"):
		v["id"] = "0123456789ab"
	case strings.HasPrefix(path, "/api/v1/runs/"):
		v["id"] = "run-1"
	}
	return v
}

// missing are path parameters that name nothing: for an id, that of the
// route's kind, so that it passes the route's pattern.
func missing(path string) map[string]string {
	id := "no-such-run"
	switch {
	case strings.HasPrefix(path, "/api/v1/keys/"):
		id = strings.Repeat("f", 32)
	case strings.HasPrefix(path, "/api/v1/tokens/"):
		id = strings.Repeat("f", 12)
	}
	return map[string]string{"name": "nope", "site": "nope", "tree": "nope", "id": id}
}

// operation is one operation of the spec.
type operation struct {
	method, path string
	op           *openapi3.Operation
}

// apiOperations lists the operations of the spec under /api/v1, in order.
func apiOperations(doc *openapi3.T) []operation {
	var out []operation
	for path, item := range doc.Paths.Map() {
		if !strings.HasPrefix(path, "/api/v1/") {
			continue
		}
		for method, op := range item.Operations() {
			out = append(out, operation{method: method, path: path, op: op})
		}
	}
	slices.SortFunc(out, func(a, b operation) int { return cmp.Or(cmp.Compare(a.path, b.path), cmp.Compare(a.method, b.method)) })
	return out
}

// sampleBody is a valid body of an operation that takes one ("" for the
// others): a new operation with a body needs one here.
func sampleBody(t *testing.T, o operation, key signer) string {
	t.Helper()
	if o.op.RequestBody == nil {
		return ""
	}
	switch o.method + " " + o.path {
	case "POST /api/v1/sites":
		return `{"name":"nantes","description":"site nantes"}`
	case "PATCH /api/v1/sites/{name}":
		return `{"description":"another description"}`
	case "POST /api/v1/trees":
		return `{"name":"isos","origin_site":"origin","source":"/srv/isos"}`
	case "PATCH /api/v1/trees/{name}":
		return `{"keep":4}`
	case "POST /api/v1/trees/{name}/sync":
		return `{"confirm_deletions":true}`
	case "POST /api/v1/subscriptions":
		return `{"site":"lyon","tree":"blank"}`
	case "POST /api/v1/keys":
		pem, err := json.Marshal(key.pem)
		mustOK(t, err)
		return `{"name":"deltacache-2026","public_key":` + string(pem) + `}`
	case "POST /api/v1/tokens":
		return `{"role":"viewer","name":"sample"}`
	}
	t.Fatalf("%s %s takes a body: give a sample in sampleBody", o.method, o.path)
	return ""
}

// preconditions are the headers an operation needs: If-Match for a PATCH.
func preconditions(o operation) http.Header {
	if o.method == http.MethodPatch {
		return http.Header{"If-Match": {`"0123"`}}
	}
	return nil
}

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
			target := fill(t, path, paramValue)
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
	url    string
	router routers.Router
	// token is the bearer token of requests that set no Authorization;
	// "" sends none.
	token string
}

// as is c sending token instead ("" for none).
func (c *conformance) as(token string) *conformance {
	d := *c
	d.token = token
	return &d
}

// call sends a request (with c's token unless header has Authorization)
// and checks the response against the spec, the request too when want is
// a success. It returns the headers and body.
func (c *conformance) call(method, path, body string, header http.Header, want int) (http.Header, string) {
	c.t.Helper()
	return c.exchange(method, path, body, header, want, want < 300)
}

// exchange is call, checking the request against the spec when valid is
// set: a request the spec allows, whatever its answer.
func (c *conformance) exchange(method, path, body string, header http.Header, want int, valid bool) (http.Header, string) {
	t := c.t
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, c.url+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if _, ok := header["Authorization"]; !ok && c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	route, params, err := c.router.FindRoute(req)
	if err != nil {
		t.Fatalf("%s %s: no operation in the spec: %v", method, path, err)
	}
	in := &openapi3filter.RequestValidationInput{
		Request: req, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc},
	}
	if valid {
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
	doc, router := loadSpec(t)
	h := start(t, "sqlite://"+filepath.Join(t.TempDir(), "inventory.db"))
	c := &conformance{t: t, url: h.url, router: router, token: testAdminToken}
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
	mustOK(t, events.Publish(ctx, bus.EntitySnapshot, bus.ActionPublished, bus.About{Tree: "docs", Site: "origin"}, bus.Snapshot{
		V: 1, TriggerID: "t0", Tree: "docs", Site: "origin", Root: root('1'), Files: 7, Bytes: 700, PublishedAt: now.Add(-72 * time.Hour)}))
	mustOK(t, events.Publish(ctx, bus.EntitySnapshot, bus.ActionPublished, bus.About{Tree: "docs", Site: "origin"}, bus.Snapshot{
		V: 1, TriggerID: "t1", Tree: "docs", Site: "origin", Root: root('2'), Files: 8, Bytes: 800, PublishedAt: now.Add(-48 * time.Hour)}))
	mustOK(t, events.Publish(ctx, bus.EntitySync, bus.ActionFinished, bus.About{Tree: "docs", Site: "paris"}, bus.SyncFinished{
		RunID: "run-1", TriggerID: "t1", Site: "paris", Tree: "docs", Kind: bus.CommandApply, To: root('2'),
		Result: bus.ResultCompleted, Files: 8, Bytes: 800, DurationMS: 1500, FinishedAt: now.Add(-47 * time.Hour)}))
	mustOK(t, events.Publish(ctx, bus.EntitySync, bus.ActionFinished, bus.About{Tree: "docs", Site: "lyon"}, bus.SyncFinished{
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

	// Tokens: made, used, refused and revoked.
	token := func(body string) inventoryapi.TokenCreated {
		t.Helper()
		_, b := c.call("POST", "/api/v1/tokens", body, nil, 201)
		return decodeAs[inventoryapi.TokenCreated](t, b)
	}
	viewer := token(`{"role":"viewer","name":"dashboard"}`)
	operator := token(`{"role":"operator"}`)
	lyonAgent := token(`{"role":"agent","site":"lyon","name":"site-agent lyon"}`)
	c.call("POST", "/api/v1/tokens", `{"role":"agent"}`, nil, 400)
	c.call("POST", "/api/v1/tokens", `{"role":"root"}`, nil, 400)
	c.call("GET", "/api/v1/tokens", "", nil, 200)
	c.as(viewer.Secret).call("GET", "/api/v1/overview", "", nil, 200)
	c.as(viewer.Secret).call("GET", "/api/v1/tokens", "", nil, 403)
	c.as(viewer.Secret).call("POST", "/api/v1/trees/docs/sync", "", nil, 403)
	c.as(operator.Secret).call("POST", "/api/v1/tokens/"+viewer.ID+"/revoke", "", nil, 403)
	c.as(lyonAgent.Secret).call("GET", "/api/v1/runs?site=lyon", "", nil, 200)
	c.as(lyonAgent.Secret).call("GET", "/api/v1/runs?site=paris", "", nil, 403)
	c.call("POST", "/api/v1/tokens/"+viewer.ID+"/revoke", "", nil, 200)
	c.call("POST", "/api/v1/tokens/"+viewer.ID+"/revoke", "", nil, 200) // again: nothing changes
	c.as(viewer.Secret).call("GET", "/api/v1/overview", "", nil, 401)
	c.call("POST", "/api/v1/tokens/not-an-id/revoke", "", nil, 400)

	// Signing keys: added (again: 200), refused, revoked.
	key, other := newSigner(t), newSigner(t)
	keyBody := func(name, pem string) string {
		b, err := json.Marshal(inventoryapi.SigningKeyCreate{Name: name, PublicKey: pem})
		mustOK(t, err)
		return string(b)
	}
	c.call("POST", "/api/v1/keys", keyBody("deltacache-2025", key.pem), nil, 201)
	c.call("POST", "/api/v1/keys", keyBody("deltacache-2025", key.pem), nil, 200)
	c.call("POST", "/api/v1/keys", keyBody("deltacache-2024", key.pem), nil, 409)
	c.call("POST", "/api/v1/keys", keyBody("broken", "not a key"), nil, 400)
	c.as(operator.Secret).call("POST", "/api/v1/keys/"+key.id+"/revoke", "", nil, 403)
	c.call("POST", "/api/v1/keys/"+key.id+"/revoke", "", nil, 200)
	c.call("POST", "/api/v1/keys/"+key.id+"/revoke", "", nil, 200) // again: nothing changes
	c.call("GET", "/api/v1/keys", "", nil, 200)
	c.call("POST", "/api/v1/keys/not-an-id/revoke", "", nil, 400)

	// One subscription synced.
	c.as(operator.Secret).call("POST", "/api/v1/subscriptions/paris/docs/sync", "", nil, 202)
	c.call("POST", "/api/v1/subscriptions/origin/docs/sync", "", nil, 404) // the origin does not subscribe
	c.call("POST", "/api/v1/subscriptions/paris/Docs/sync", "", nil, 400)

	// Preconditions of sites and deletions.
	c.call("PATCH", "/api/v1/sites/paris", `{"description":"x"}`, nil, 428)
	c.call("PATCH", "/api/v1/sites/paris", `{"description":"x"}`, http.Header{"If-Match": {`"stale"`}}, 412)
	c.call("DELETE", "/api/v1/trees/blank", "", http.Header{"If-Match": {`"stale"`}}, 412)
	c.call("DELETE", "/api/v1/sites/lyon", "", http.Header{"If-Match": {`"stale"`}}, 412)
	c.call("POST", "/api/v1/trees", `{"name":"isos","origin_site":"nope","source":"/srv/isos"}`, nil, 404)
	c.call("POST", "/api/v1/subscriptions", `{"site":"nope","tree":"docs"}`, nil, 404)

	// Every operation refuses a request without a token (401) and one of
	// the agent of a site it does not name (403); with names that name
	// nothing it answers 404, and to a body too large, 413.
	big := `{"name":"` + strings.Repeat("a", httpapi.MaxBody) + `"}`
	ops := apiOperations(doc)
	if len(ops) < 20 {
		t.Fatalf("only %d operations under /api/v1", len(ops))
	}
	for _, o := range ops {
		target := fill(t, o.path, present(o.path))
		c.as("").call(o.method, target, "", nil, 401)
		c.as(lyonAgent.Secret).call(o.method, target, "", nil, 403)
		if strings.Contains(o.path, "{") {
			c.call(o.method, fill(t, o.path, missing(o.path)), sampleBody(t, o, other), preconditions(o), 404)
		}
		if o.op.RequestBody != nil {
			c.call(o.method, target, big, preconditions(o), 413)
		}
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

// noManifests is an object store without manifests.
type noManifests struct{}

func (noManifests) Manifest(context.Context, string, string) (*tree.Manifest, error) {
	return nil, catalog.ErrManifestNotFound
}

// dropDatabase drops the PostgreSQL database at dbURL under its users.
func dropDatabase(t *testing.T, dbURL string) {
	t.Helper()
	admin := os.Getenv(pgtest.EnvAdminURL)
	if admin == "" {
		admin = pgtest.DefaultAdminURL
	}
	db, err := sql.Open("postgres", admin)
	mustOK(t, err)
	defer db.Close()
	u, err := url.Parse(dbURL)
	mustOK(t, err)
	_, err = db.ExecContext(t.Context(), "DROP DATABASE "+pq.QuoteIdentifier(strings.TrimPrefix(u.Path, "/"))+" WITH (FORCE)")
	mustOK(t, err)
}

// TestOpenAPIUnavailable takes the database away under a running API
// (SQLite: closed; PostgreSQL: dropped). Every operation under /api/v1,
// sent a request the spec allows, answers 503 as the spec declares it,
// and so does the authentication of a stored token.
func TestOpenAPIUnavailable(t *testing.T) {
	doc, router := loadSpec(t)
	for _, db := range []struct {
		name string
		url  func(t *testing.T) string
		away func(t *testing.T, st *store.Store, dbURL string)
	}{
		{"sqlite", func(t *testing.T) string { return "sqlite://" + filepath.Join(t.TempDir(), "inventory.db") },
			func(t *testing.T, st *store.Store, _ string) { mustOK(t, st.Close()) }},
		{"postgres", func(t *testing.T) string { return pgtest.NewDatabase(t) },
			func(t *testing.T, _ *store.Store, dbURL string) { dropDatabase(t, dbURL) }},
	} {
		t.Run(db.name, func(t *testing.T) {
			dbURL := db.url(t)
			st, err := store.Open(t.Context(), dbURL)
			mustOK(t, err)
			t.Cleanup(func() { _ = st.Close() }) // closed or dropped already: nothing to report
			log := slog.New(slog.DiscardHandler)
			svc := catalog.New(st, nil, log) // no request gets as far as the bus
			svc.UseManifests(noManifests{})
			mux := http.NewServeMux()
			httpapi.Register(mux, httpapi.MakeEndpoints(svc), httpapi.NewAuth(svc, testAdminToken, log), log)
			srv := httptest.NewServer(mux)
			t.Cleanup(srv.Close)
			c := &conformance{t: t, url: srv.URL, router: router, token: testAdminToken}
			c.call("GET", "/api/v1/sites", "", nil, 200)

			db.away(t, st, dbURL)
			key := newSigner(t)
			ops := apiOperations(doc)
			if len(ops) < 20 {
				t.Fatalf("only %d operations under /api/v1", len(ops))
			}
			for _, o := range ops {
				c.exchange(o.method, fill(t, o.path, present(o.path)), sampleBody(t, o, key), preconditions(o), 503, true)
			}
			stored := "pdt_0123456789ab_" + base64.RawURLEncoding.EncodeToString(make([]byte, 32))
			c.as(stored).call("GET", "/api/v1/overview", "", nil, 503)
		})
	}
}
