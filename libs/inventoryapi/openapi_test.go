package inventoryapi_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/pulpdist/pulpdist/libs/inventoryapi"
)

// openAPIPath is the contract these tests hold the code to.
const openAPIPath = "../../api/openapi.yaml"

func loadOpenAPI(t *testing.T) map[string]any {
	t.Helper()
	b, err := os.ReadFile(openAPIPath)
	if err != nil {
		t.Fatalf("read openapi: %v", err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("parse %s: %v", openAPIPath, err)
	}
	if v, _ := doc["openapi"].(string); !strings.HasPrefix(v, "3.1") {
		t.Fatalf("%s: openapi version %q, want 3.1.x", openAPIPath, v)
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
		if v = node(doc, parts...); v == nil {
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
		s, _ := e.(string)
		out = append(out, s)
	}
	slices.Sort(out)
	return out
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

// TestOpenAPISchemas checks that each wire type's schema has exactly its
// JSON fields, and requires exactly those always encoded.
func TestOpenAPISchemas(t *testing.T) {
	doc := loadOpenAPI(t)
	types := map[string]any{
		"Tree":         inventoryapi.Tree{},
		"Site":         inventoryapi.Site{},
		"Subscription": inventoryapi.Subscription{},
		"Run":          inventoryapi.Run{},
		"Version":      inventoryapi.Version{},
		"OverviewRow":  inventoryapi.OverviewRow{},
		"SyncAccepted": inventoryapi.SyncAccepted{},
		"Problem":      inventoryapi.Problem{},
		"SigningKey":   inventoryapi.SigningKey{},
		"AuditEntry":   inventoryapi.AuditEntry{},
		"Delta":        inventoryapi.Delta{},
		"EventProblem": inventoryapi.EventProblem{},
		"Token":        inventoryapi.Token{},
		"TokenCreated": inventoryapi.TokenCreated{},

		// Reads and updates of the overview and control routes.
		"TreePatch":      inventoryapi.TreePatch{},
		"SitePatch":      inventoryapi.SitePatch{},
		"Arrival":        inventoryapi.Arrival{},
		"VersionHistory": inventoryapi.VersionHistory{},
		"Alarm":          inventoryapi.Alarm{},
		"DryRun":         inventoryapi.DryRun{},
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
	// A create body may only hold fields of the type the client sends.
	bodies := map[string]any{
		"TreeCreate":         inventoryapi.Tree{},
		"SiteCreate":         inventoryapi.Site{},
		"SubscriptionCreate": inventoryapi.Subscription{},
		"SigningKeyCreate":   inventoryapi.SigningKeyCreate{},
		"TokenCreate":        inventoryapi.TokenCreate{},
	}
	for name, v := range bodies {
		all, _ := jsonTags(reflect.TypeOf(v))
		for _, p := range keys(node(doc, "components", "schemas", name, "properties")) {
			if !slices.Contains(all, p) {
				t.Errorf("%s property %q is not a JSON field of %T", name, p, v)
			}
		}
		for _, p := range all {
			if node(doc, "components", "schemas", name, "properties", p) == nil {
				t.Errorf("%s lacks %q, which the Go client sends (an unknown field is a 400)", name, p)
			}
		}
	}
	states := []string{inventoryapi.RunDone, inventoryapi.RunRunning}
	if got := strs(node(doc, "components", "schemas", "Run", "properties", "state", "enum")); !slices.Equal(got, states) {
		t.Errorf("Run.state enum %v, want %v", got, states)
	}
}

// route is one operation of the inventory API and its success status.
type route struct{ method, path, status string }

var routes = []route{
	{"post", "/api/v1/sites", "201"},
	{"get", "/api/v1/sites", "200"},
	{"get", "/api/v1/sites/{name}", "200"},
	{"post", "/api/v1/trees", "201"},
	{"get", "/api/v1/trees", "200"},
	{"get", "/api/v1/trees/{name}", "200"},
	{"post", "/api/v1/subscriptions", "201"},
	{"get", "/api/v1/subscriptions", "200"},
	{"get", "/api/v1/trees/{name}/subscriptions", "200"},
	{"post", "/api/v1/trees/{name}/sync", "202"},
	{"get", "/api/v1/runs", "200"},
	{"get", "/api/v1/runs/{id}", "200"},
	{"get", "/api/v1/trees/{name}/versions", "200"},
	{"get", "/api/v1/overview", "200"},
	{"get", "/api/v1/keys", "200"},
	{"post", "/api/v1/keys", "201"},
	{"post", "/api/v1/keys/{id}/revoke", "200"},
	{"get", "/api/v1/tokens", "200"},
	{"post", "/api/v1/tokens", "201"},
	{"post", "/api/v1/tokens/{id}/revoke", "200"},
	{"patch", "/api/v1/trees/{name}", "200"},
	{"patch", "/api/v1/sites/{name}", "200"},
	{"get", "/api/v1/trees/{name}/history", "200"},
	{"get", "/api/v1/sites/{name}/history", "200"},
	{"get", "/api/v1/failing", "200"},
	{"get", "/api/v1/alarms", "200"},
	{"post", "/api/v1/sites/{name}/pause", "200"},
	{"post", "/api/v1/sites/{name}/resume", "200"},
	{"post", "/api/v1/trees/{name}/pause", "200"},
	{"post", "/api/v1/trees/{name}/resume", "200"},
	{"get", "/api/v1/subscriptions/{site}/{tree}", "200"},
	{"get", "/api/v1/subscriptions/{site}/{tree}/dry-run", "200"},
	{"post", "/api/v1/subscriptions/{site}/{tree}/sync", "202"},
	{"get", "/api/v1/audit", "200"},
	{"get", "/api/v1/deltas", "200"},
	{"get", "/api/v1/problems", "200"},
	{"delete", "/api/v1/trees/{name}", "200"},
	{"delete", "/api/v1/sites/{name}", "200"},
	{"delete", "/api/v1/subscriptions/{site}/{tree}", "200"},
	{"get", "/healthz", "200"},
	{"get", "/readyz", "200"},
}

// TestOpenAPIRoutes checks that every route exists with its method, that
// nothing else is documented, and that errors are problem+json.
func TestOpenAPIRoutes(t *testing.T) {
	doc := loadOpenAPI(t)
	paths := node(doc, "paths")
	documented := map[route]bool{}
	for p, item := range paths.(map[string]any) {
		for m := range item.(map[string]any) {
			if slices.Contains([]string{"get", "put", "post", "delete", "patch", "head", "options", "trace"}, m) {
				documented[route{method: m, path: p}] = true
			}
		}
	}
	for _, r := range routes {
		op := node(paths, r.path, r.method)
		if op == nil {
			t.Errorf("%s %s not in paths", strings.ToUpper(r.method), r.path)
			continue
		}
		delete(documented, route{method: r.method, path: r.path})
		if node(op, "responses", r.status) == nil {
			t.Errorf("%s %s: no %s response", strings.ToUpper(r.method), r.path, r.status)
		}
		for code, resp := range node(op, "responses").(map[string]any) {
			if strings.HasPrefix(r.path, "/api/") && code[0] >= '4' {
				if node(resolve(t, doc, resp), "content", "application/problem+json", "schema", "$ref") != "#/components/schemas/Problem" {
					t.Errorf("%s %s: %s response is not a problem+json Problem", strings.ToUpper(r.method), r.path, code)
				}
			}
		}
		if strings.HasPrefix(r.path, "/api/") {
			for _, code := range []string{"401", "403", "500"} {
				if node(op, "responses", code) == nil {
					t.Errorf("%s %s: no %s response", strings.ToUpper(r.method), r.path, code)
				}
			}
		}
		// Every /api/ route needs the bearer token; health needs none.
		security, own := node(op, "security").([]any)
		if !own {
			security, _ = node(doc, "security").([]any)
		}
		bearer := slices.ContainsFunc(security, func(req any) bool { return node(req, "bearer") != nil })
		if bearer != strings.HasPrefix(r.path, "/api/") {
			t.Errorf("%s %s: security %v", strings.ToUpper(r.method), r.path, security)
		}
	}
	for r := range documented {
		t.Errorf("%s %s documented but not in the route list", strings.ToUpper(r.method), r.path)
	}
	if node(doc, "components", "securitySchemes", "bearer", "scheme") != "bearer" {
		t.Error("no http bearer security scheme")
	}
	if node(paths, "/readyz", "get", "responses", "503") == nil {
		t.Error("/readyz: no 503 response")
	}
}

// TestOpenAPIClient runs every client method against a recorder and checks
// that each request it sends is a documented operation with documented
// query parameters.
func TestOpenAPIClient(t *testing.T) {
	doc := loadOpenAPI(t)
	type request struct {
		method, path string
		query        url.Values
	}
	var (
		mu   sync.Mutex
		seen []request
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, request{r.Method, r.URL.Path, r.URL.Query()})
		if r.Header.Get("Authorization") != "Bearer pdt_0123456789ab_"+strings.Repeat("x", 43) {
			t.Errorf("%s %s: Authorization %q", r.Method, r.URL.Path, r.Header.Get("Authorization"))
		}
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte("null")) // decodes into any result type; a failed write fails the call
	}))
	defer srv.Close()

	c := inventoryapi.NewClient(srv.URL, srv.Client()).WithToken("pdt_0123456789ab_" + strings.Repeat("x", 43))
	ctx := t.Context()
	calls := map[string]func() error{
		"Trees":      func() error { _, err := c.Trees(ctx); return err },
		"Tree":       func() error { _, err := c.Tree(ctx, "demo"); return err },
		"CreateTree": func() error { _, err := c.CreateTree(ctx, inventoryapi.Tree{Name: "demo"}); return err },
		"CreateSite": func() error { _, err := c.CreateSite(ctx, inventoryapi.Site{Name: "a"}); return err },
		"Sites":      func() error { _, err := c.Sites(ctx); return err },
		"Subscribe": func() error {
			_, err := c.Subscribe(ctx, inventoryapi.Subscription{Site: "a", Tree: "demo"})
			return err
		},
		"Subscriptions": func() error { _, err := c.Subscriptions(ctx, "demo"); return err },
		"Sync":          func() error { _, err := c.Sync(ctx, "demo"); return err },
		"Runs":          func() error { _, err := c.Runs(ctx, "demo", "a"); return err },
		"Versions":      func() error { _, err := c.Versions(ctx, "demo"); return err },
		"Overview":      func() error { _, err := c.Overview(ctx); return err },
		"OverviewOf": func() error {
			_, err := c.OverviewOf(ctx, inventoryapi.Place{Site: "paris", Tree: "docs", Sort: "-lag"})
			return err
		},
		"SigningKeys":   func() error { _, err := c.SigningKeys(ctx); return err },
		"AddSigningKey": func() error { _, err := c.AddSigningKey(ctx, "signer", "PEM"); return err },
		"Tokens":        func() error { _, err := c.Tokens(ctx); return err },
		"TokensOf": func() error {
			_, err := c.TokensOf(ctx, inventoryapi.TokenQuery{Role: "agent", Site: "paris", Live: true})
			return err
		},
		"CreateToken": func() error {
			_, err := c.CreateToken(ctx, inventoryapi.TokenCreate{Role: "agent", Site: "a"})
			return err
		},
		"RevokeToken": func() error { _, err := c.RevokeToken(ctx, "0123456789ab"); return err },
		"AuditLog":    func() error { _, err := c.AuditLog(ctx, 10); return err },
		"Deltas":      func() error { _, err := c.Deltas(ctx, "demo", 10); return err },
		"Problems":    func() error { _, err := c.Problems(ctx, 10); return err },
		"TreeHistory": func() error { _, err := c.TreeHistory(ctx, "demo"); return err },
		"Failing":     func() error { _, err := c.Failing(ctx); return err },
		"Alarms":      func() error { _, err := c.Alarms(ctx); return err },
		"FailingOf":   func() error { _, err := c.FailingOf(ctx, inventoryapi.Place{Site: "paris", Tree: "docs"}); return err },
		"AlarmsOf": func() error {
			_, err := c.AlarmsOf(ctx, inventoryapi.Place{Site: "paris", Tree: "docs", Sort: "site"})
			return err
		},
		"PauseSite":  func() error { _, err := c.SetPaused(ctx, "sites", "a", true); return err },
		"ResumeTree": func() error { _, err := c.SetPaused(ctx, "trees", "demo", false); return err },
		"DryRun":     func() error { _, err := c.DryRun(ctx, "a", "demo"); return err },
		// The page methods with every parameter they can send.
		"RunPage": func() error {
			_, _, err := c.RunPage(ctx, inventoryapi.RunQuery{Tree: "demo", Site: "a", Result: "FAILED", TimeQuery: everyTimeParam})
			return err
		},
		"SiteHistory": func() error {
			_, _, err := c.SiteHistory(ctx, "a", inventoryapi.RunQuery{Tree: "demo", Result: "FAILED", TimeQuery: everyTimeParam})
			return err
		},
		"AuditPage": func() error {
			_, _, err := c.AuditPage(ctx, inventoryapi.AuditQuery{Entity: "tree", Name: "demo", Action: "update", Actor: "alice", TimeQuery: everyTimeParam})
			return err
		},
		"DeltaPage": func() error {
			_, _, err := c.DeltaPage(ctx, inventoryapi.DeltaQuery{Tree: "demo", TimeQuery: everyTimeParam})
			return err
		},
		"ProblemPage": func() error {
			_, _, err := c.ProblemPage(ctx, inventoryapi.ProblemQuery{Type: "org.pulpdist.snapshot.published.v1", TimeQuery: everyTimeParam})
			return err
		},
		"RevokeSigningKey": func() error {
			_, err := c.RevokeSigningKey(ctx, "630dcd2966c4336691125448bbb25b4f")
			return err
		},
	}
	for name, call := range calls {
		if err := call(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	if len(seen) != len(calls) {
		t.Fatalf("recorded %d requests for %d calls", len(seen), len(calls))
	}
	paths := node(doc, "paths").(map[string]any)
	for _, req := range seen {
		tmpl := matchPath(paths, req.path)
		if tmpl == "" {
			t.Errorf("client %s %s: no documented path", req.method, req.path)
			continue
		}
		op := node(paths, tmpl, strings.ToLower(req.method))
		if op == nil {
			t.Errorf("client %s %s: %s has no %s operation", req.method, req.path, tmpl, req.method)
			continue
		}
		params := map[string]any{} // name: schema
		opParams, _ := node(op, "parameters").([]any)
		for _, p := range opParams {
			if p := resolve(t, doc, p); node(p, "in") == "query" {
				params[node(p, "name").(string)] = resolve(t, doc, node(p, "schema"))
			}
		}
		for q, vs := range req.query {
			schema, ok := params[q]
			if !ok {
				t.Errorf("client %s %s: query parameter %q not documented (have %v)", req.method, req.path, q, keys(params))
				continue
			}
			// A value outside a documented enum (a sort order) is a 400.
			if enum := strs(node(schema, "enum")); len(enum) > 0 && !slices.Contains(enum, vs[0]) {
				t.Errorf("client %s %s: %s=%q, documented %v", req.method, req.path, q, vs[0], enum)
			}
		}
	}
}

// everyTimeParam sets every parameter of a list ordered by time.
var everyTimeParam = inventoryapi.TimeQuery{
	Since: time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC), Until: time.Date(2025, 3, 2, 0, 0, 0, 0, time.UTC),
	Ascending: true, Limit: 10, Cursor: "eyJzIjoiYXQiLCJrIjpbIngiXX0",
}

// matchPath returns the documented path template that path matches: each
// {param} matches one non-empty segment.
func matchPath(paths map[string]any, path string) string {
	segs := strings.Split(path, "/")
	for tmpl := range paths {
		tsegs := strings.Split(tmpl, "/")
		if len(tsegs) != len(segs) {
			continue
		}
		ok := true
		for i, ts := range tsegs {
			if strings.HasPrefix(ts, "{") && strings.HasSuffix(ts, "}") {
				ok = ok && segs[i] != ""
			} else {
				ok = ok && ts == segs[i]
			}
		}
		if ok {
			return tmpl
		}
	}
	return ""
}
