package inventory_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/pulpdist/pulpdist/libs/inventoryapi"
)

// openAPIPath is the API description the access matrix walks.
const openAPIPath = "../../api/openapi.yaml"

// apiRoute is one documented operation: "GET /api/v1/sites/{name}".
type apiRoute struct{ method, path string }

func (r apiRoute) String() string { return r.method + " " + r.path }

// documentedRoutes reads the /api/v1 operations of api/openapi.yaml: each
// path is a two-space indented key under paths, each operation a
// four-space indented HTTP method under it.
func documentedRoutes(t *testing.T) []apiRoute {
	t.Helper()
	f, err := os.Open(openAPIPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []apiRoute
	inPaths, path := false, ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), " ")
		switch {
		case line == "paths:":
			inPaths = true
		case !inPaths || line == "" || strings.HasPrefix(strings.TrimSpace(line), "#"):
		case !strings.HasPrefix(line, " "):
			inPaths = false
		case strings.HasPrefix(line, "  /") && strings.HasSuffix(line, ":"):
			path = strings.TrimSuffix(strings.TrimSpace(line), ":")
		case strings.HasPrefix(line, "    ") && !strings.HasPrefix(line, "     ") && strings.HasPrefix(path, "/api/v1/"):
			m := strings.TrimSuffix(strings.TrimSpace(line), ":")
			if slices.Contains([]string{"get", "put", "post", "delete", "patch"}, m) {
				out = append(out, apiRoute{strings.ToUpper(m), path})
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(out) < 20 {
		t.Fatalf("read only %d operations from %s", len(out), openAPIPath)
	}
	return out
}

// who is a kind of caller in the access matrix.
type who string

const (
	viewer   who = "viewer"
	operator who = "operator"
	admin    who = "admin"
	// agent is the agent token of site "replica-a".
	agent who = "agent"
)

// access is who may call a route. agentSite says that an agent may call
// it for its own site, named by the path parameter {name} or by ?site=.
type access struct {
	min       who
	agentSite bool
}

// matrix is the expected access of every documented route, written out
// here rather than read from the code: a new route fails the test until
// it is added.
var matrix = map[string]access{
	"POST /api/v1/sites":                              {min: admin},
	"GET /api/v1/sites":                               {min: viewer},
	"GET /api/v1/sites/{name}":                        {min: viewer, agentSite: true},
	"POST /api/v1/trees":                              {min: admin},
	"GET /api/v1/trees":                               {min: viewer},
	"GET /api/v1/trees/{name}":                        {min: viewer},
	"GET /api/v1/trees/{name}/subscriptions":          {min: viewer},
	"POST /api/v1/trees/{name}/sync":                  {min: operator},
	"GET /api/v1/trees/{name}/versions":               {min: viewer},
	"POST /api/v1/subscriptions":                      {min: admin},
	"GET /api/v1/subscriptions":                       {min: viewer, agentSite: true},
	"GET /api/v1/runs":                                {min: viewer, agentSite: true},
	"GET /api/v1/runs/{id}":                           {min: viewer},
	"GET /api/v1/overview":                            {min: viewer},
	"GET /api/v1/keys":                                {min: viewer},
	"POST /api/v1/keys":                               {min: admin},
	"POST /api/v1/keys/{id}/revoke":                   {min: admin},
	"GET /api/v1/tokens":                              {min: admin},
	"POST /api/v1/tokens":                             {min: admin},
	"POST /api/v1/tokens/{id}/revoke":                 {min: admin},
	"PATCH /api/v1/trees/{name}":                      {min: admin},
	"PATCH /api/v1/sites/{name}":                      {min: admin},
	"GET /api/v1/trees/{name}/history":                {min: viewer},
	"GET /api/v1/sites/{name}/history":                {min: viewer, agentSite: true},
	"GET /api/v1/failing":                             {min: viewer},
	"GET /api/v1/alarms":                              {min: viewer},
	"POST /api/v1/sites/{name}/pause":                 {min: operator},
	"POST /api/v1/sites/{name}/resume":                {min: operator},
	"POST /api/v1/trees/{name}/pause":                 {min: operator},
	"POST /api/v1/trees/{name}/resume":                {min: operator},
	"GET /api/v1/audit":                               {min: admin},
	"GET /api/v1/deltas":                              {min: viewer},
	"GET /api/v1/problems":                            {min: viewer},
	"GET /api/v1/subscriptions/{site}/{tree}":         {min: viewer, agentSite: true},
	"GET /api/v1/subscriptions/{site}/{tree}/dry-run": {min: viewer, agentSite: true},
	"POST /api/v1/subscriptions/{site}/{tree}/sync":   {min: operator},
	"DELETE /api/v1/trees/{name}":                     {min: admin},
	"DELETE /api/v1/sites/{name}":                     {min: admin},
	"DELETE /api/v1/subscriptions/{site}/{tree}":      {min: admin},
}

var rank = map[who]int{viewer: 1, operator: 2, admin: 3}

// testAdminToken is the bootstrap admin token of the test inventories.
const testAdminToken = "test-admin-token-0123456789abcdefghijklmnop"

// call sends a request with the given Authorization header values.
func call(t *testing.T, h *harness, method, path string, auth ...string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, h.url+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range auth {
		req.Header.Add("Authorization", a)
	}
	return roundTrip(t, req)
}

// wantRefusal checks a 401 or 403 problem+json answer.
func wantRefusal(t *testing.T, what string, status int, code int, hdr http.Header, body string) {
	t.Helper()
	if code != status {
		t.Errorf("%s: %d %s, want %d", what, code, body, status)
		return
	}
	var p inventoryapi.Problem
	if hdr.Get("Content-Type") != "application/problem+json" || json.Unmarshal([]byte(body), &p) != nil || p.Status != status || p.Detail == "" {
		t.Errorf("%s: %s %q is not a problem+json %d", what, hdr.Get("Content-Type"), body, status)
	}
	if auth := hdr.Get("WWW-Authenticate"); (status == http.StatusUnauthorized) != strings.HasPrefix(auth, "Bearer ") {
		t.Errorf("%s: %d with WWW-Authenticate %q", what, status, auth)
	}
}

func TestAccessMatrix(t *testing.T) {
	for _, db := range databases {
		t.Run(db.name, func(t *testing.T) {
			h := start(t, db.url(t))
			testAccessMatrix(t, h)
		})
	}
}

func testAccessMatrix(t *testing.T, h *harness) {
	ctx := context.Background()
	seed(t, h)
	tokens := map[who]string{admin: testAdminToken}
	ids := map[who]string{}
	for _, r := range []inventoryapi.TokenCreate{
		{Role: "viewer", Name: "matrix viewer"}, {Role: "operator"}, {Role: "admin"}, {Role: "agent", Site: "replica-a"},
	} {
		tc, err := h.client.CreateToken(ctx, r)
		mustOK(t, err)
		if tc.Secret == "" || tc.ID == "" || !strings.Contains(tc.Secret, tc.ID) || tc.Role != r.Role || tc.Site != r.Site {
			t.Fatalf("created token = %+v for %+v", tc, r)
		}
		tokens[who(r.Role)], ids[who(r.Role)] = tc.Secret, tc.ID
		if r.Role == "admin" {
			tokens["stored admin"] = tc.Secret
		}
	}
	revoked, err := h.client.CreateToken(ctx, inventoryapi.TokenCreate{Role: "admin", Name: "to revoke"})
	mustOK(t, err)
	if _, err := h.client.RevokeToken(ctx, revoked.ID); err != nil {
		t.Fatal(err)
	}

	routes := documentedRoutes(t)
	seen := map[string]bool{}
	for _, r := range routes {
		want, ok := matrix[r.String()]
		if !ok {
			t.Errorf("%s is documented but has no expected access in the matrix", r)
			continue
		}
		seen[r.String()] = true
		// Path parameters name the agent's own site, so that the agent
		// is allowed exactly where its site is in the request.
		// A DELETE names what does not exist, so that the allowed calls
		// leave the seeded sites and trees for the routes after it; the
		// refusals are the same either way (remove_test.go checks it).
		tree := "docs"
		if r.method == http.MethodDelete {
			tree = "no-such-tree"
		}
		path := strings.NewReplacer("{name}", "replica-a", "{site}", "replica-a", "{tree}", tree, "{id}", "000000000000").Replace(r.path)
		own, other := path, strings.NewReplacer("{name}", "replica-b", "{site}", "replica-b", "{tree}", tree, "{id}", "000000000000").Replace(r.path)
		if r.method == http.MethodDelete {
			own = strings.ReplaceAll(own, "/replica-a", "/no-such-site")
		}
		sitePath := strings.Contains(r.path, "/sites/{name}") || strings.Contains(r.path, "{site}")
		if want.agentSite && !sitePath {
			own, other = path+"?site=replica-a", path+"?site=replica-b"
		}
		for _, w := range []who{viewer, operator, admin, "stored admin"} {
			code, hdr, body := call(t, h, r.method, own, "Bearer "+tokens[w])
			role := w
			if w == "stored admin" {
				role = admin
			}
			if rank[role] >= rank[want.min] {
				// Allowed: the route answers as it would anyone (a 404
				// for what does not exist, a 409 for a repeat), never a
				// refusal nor a server error.
				if code == http.StatusUnauthorized || code == http.StatusForbidden || code >= 500 {
					t.Errorf("%s as %s: %d %s, want it allowed", r, w, code, body)
				}
			} else {
				wantRefusal(t, string(w)+" "+r.String(), http.StatusForbidden, code, hdr, body)
			}
		}
		code, hdr, body := call(t, h, r.method, own, "Bearer "+tokens[agent])
		if want.agentSite {
			if code == http.StatusUnauthorized || code == http.StatusForbidden || code >= 500 {
				t.Errorf("%s as the agent of its own site: %d %s, want it allowed", r, code, body)
			}
			code, hdr, body = call(t, h, r.method, other, "Bearer "+tokens[agent])
			wantRefusal(t, "agent "+r.String()+" for another site", http.StatusForbidden, code, hdr, body)
			if !sitePath {
				code, hdr, body = call(t, h, r.method, path, "Bearer "+tokens[agent])
				wantRefusal(t, "agent "+r.String()+" without ?site=", http.StatusForbidden, code, hdr, body)
			}
		} else {
			wantRefusal(t, "agent "+r.String(), http.StatusForbidden, code, hdr, body)
		}
		for name, auth := range map[string][]string{
			"no token":      nil,
			"unknown token": {"Bearer pdt_0123456789ab_" + strings.Repeat("A", 43)},
			"revoked token": {"Bearer " + revoked.Secret},
		} {
			code, hdr, body := call(t, h, r.method, own, auth...)
			wantRefusal(t, name+" "+r.String(), http.StatusUnauthorized, code, hdr, body)
		}
	}
	for route := range matrix {
		if !seen[route] {
			t.Errorf("%s has an expected access but is not documented in %s", route, openAPIPath)
		}
	}

	// A refusal does not tell whether the thing exists: the agent of
	// replica-a gets the same answer for replica-b, which exists, and for
	// a site that does not; an unauthenticated caller too.
	for _, auth := range [][]string{{"Bearer " + tokens[agent]}, nil} {
		c1, _, b1 := call(t, h, http.MethodGet, "/api/v1/sites/replica-b", auth...)
		c2, _, b2 := call(t, h, http.MethodGet, "/api/v1/sites/nowhere", auth...)
		if c1 != c2 || c1 < 400 || strings.ReplaceAll(b1, "replica-b", "X") != strings.ReplaceAll(b2, "nowhere", "X") {
			t.Errorf("refusals differ: %d %s vs %d %s", c1, b1, c2, b2)
		}
	}
	// A viewer may not trigger a sync, whether or not the tree exists.
	for _, tree := range []string{"docs", "no-such-tree"} {
		code, hdr, body := call(t, h, http.MethodPost, "/api/v1/trees/"+tree+"/sync", "Bearer "+tokens[viewer])
		wantRefusal(t, "viewer sync "+tree, http.StatusForbidden, code, hdr, body)
	}
	// Unknown routes need a token, then answer 404.
	code, hdr, body := call(t, h, http.MethodGet, "/api/v1/nothing")
	wantRefusal(t, "unknown route without a token", http.StatusUnauthorized, code, hdr, body)
	if code, _, body := call(t, h, http.MethodGet, "/api/v1/nothing", "Bearer "+tokens[agent]); code != http.StatusNotFound {
		t.Errorf("unknown route with a token: %d %s", code, body)
	}
	// The audit log names the token that made a change.
	if code, _, body := call(t, h, http.MethodPost, "/api/v1/trees/docs/sync", "Bearer "+tokens[operator]); code != http.StatusAccepted {
		t.Fatalf("sync as operator: %d %s", code, body)
	}
	code, _, body = call(t, h, http.MethodGet, "/api/v1/audit", "Bearer "+tokens[admin])
	var log []inventoryapi.AuditEntry
	mustOK(t, json.Unmarshal([]byte(body), &log))
	if code != http.StatusOK || !slices.ContainsFunc(log, func(e inventoryapi.AuditEntry) bool {
		return e.Action == "trigger" && e.Name == "docs" && e.Actor == "token "+ids[operator]
	}) || !slices.ContainsFunc(log, func(e inventoryapi.AuditEntry) bool {
		return e.Action == "create" && e.Entity == "token" && e.Name == ids[viewer] && e.Actor == "PULPDIST_ADMIN_TOKEN (token bootstrap)"
	}) {
		t.Errorf("audit log %d %s lacks the operator's trigger or the viewer token's creation", code, body)
	}
	// Health and the dashboard stay open.
	for _, p := range []string{"/healthz", "/readyz"} {
		if code, _, body := call(t, h, http.MethodGet, p); code != http.StatusOK {
			t.Errorf("GET %s without a token: %d %s", p, code, body)
		}
	}
}

func TestBadTokens(t *testing.T) {
	h := start(t, databases[0].url(t))
	ctx := context.Background()
	good, err := h.client.CreateToken(ctx, inventoryapi.TokenCreate{Role: "viewer"})
	mustOK(t, err)
	for _, tc := range []struct {
		name string
		auth []string
	}{
		{"empty header", []string{""}},
		{"scheme only", []string{"Bearer"}},
		{"empty token", []string{"Bearer "}},
		{"basic", []string{"Basic dXNlcjpwYXNz"}},
		{"no scheme", []string{good.Secret}},
		{"two spaces", []string{"Bearer  " + good.Secret}},
		{"trailing junk", []string{"Bearer " + good.Secret + " x"}},
		{"two headers", []string{"Bearer " + good.Secret, "Bearer " + good.Secret}},
		{"very long", []string{"Bearer " + strings.Repeat("a", 1<<16)}},
		{"token with a byte changed", []string{"Bearer " + good.Secret[:len(good.Secret)-1] + flip(good.Secret[len(good.Secret)-1])}},
		{"token truncated", []string{"Bearer " + good.Secret[:len(good.Secret)-1]}},
		{"admin token prefix", []string{"Bearer " + testAdminToken[:len(testAdminToken)-1]}},
	} {
		code, hdr, body := call(t, h, http.MethodGet, "/api/v1/trees", tc.auth...)
		wantRefusal(t, tc.name, http.StatusUnauthorized, code, hdr, body)
	}
	// The scheme is case-insensitive (RFC 9110).
	if code, _, body := call(t, h, http.MethodGet, "/api/v1/trees", "bearer "+good.Secret); code != http.StatusOK {
		t.Errorf("lower-case scheme: %d %s", code, body)
	}

	for _, tc := range []struct {
		in   inventoryapi.TokenCreate
		want string
	}{
		{inventoryapi.TokenCreate{Role: "root"}, `role "root"`},
		{inventoryapi.TokenCreate{}, `role ""`},
		{inventoryapi.TokenCreate{Role: "agent"}, "an agent token needs a site"},
		{inventoryapi.TokenCreate{Role: "agent", Site: "Bad Site!"}, "site"},
		{inventoryapi.TokenCreate{Role: "viewer", Site: "replica-a"}, "only agent tokens are bound to a site"},
		{inventoryapi.TokenCreate{Role: "viewer", Name: strings.Repeat("n", 201)}, "at most 200 bytes"},
		{inventoryapi.TokenCreate{Role: "viewer", Name: "a\nb"}, "without control characters"},
	} {
		_, err := h.client.CreateToken(ctx, tc.in)
		var p *inventoryapi.Problem
		if !errors.As(err, &p) || p.Status != http.StatusBadRequest || !strings.Contains(p.Detail, tc.want) {
			t.Errorf("create %+v: err = %v, want 400 %q", tc.in, err, tc.want)
		}
	}
	for _, body := range []string{`{"role":"viewer","secret":"x"}`, `{"role":1}`, ``} {
		code, b := h.do(t, http.MethodPost, "/api/v1/tokens", body)
		if code != http.StatusBadRequest {
			t.Errorf("create token %q: %d %s", body, code, b)
		}
	}
	for id, status := range map[string]int{"nothex": 400, "0123456789AB": 400, "000000000000": 404, strings.Repeat("0", 13): 400} {
		if _, err := h.client.RevokeToken(ctx, id); problem(err) == nil || problem(err).Status != status {
			t.Errorf("revoke %q: err = %v, want %d", id, err, status)
		}
	}

	// Revocation takes effect at once and is listed; the secret is never.
	v := h.client.WithToken(good.Secret)
	if _, err := v.Trees(ctx); err != nil {
		t.Fatal(err)
	}
	r, err := h.client.RevokeToken(ctx, good.ID)
	mustOK(t, err)
	if r.RevokedAt == nil || r.ID != good.ID {
		t.Fatalf("revoked = %+v", r)
	}
	if _, err := v.Trees(ctx); problem(err) == nil || problem(err).Status != http.StatusUnauthorized {
		t.Fatalf("revoked token: err = %v, want 401", err)
	}
	code, body := h.do(t, http.MethodGet, "/api/v1/tokens", "")
	if code != http.StatusOK || !strings.Contains(body, good.ID) || strings.Contains(body, good.Secret) || !strings.Contains(body, `"revoked_at"`) {
		t.Fatalf("token list: %d %s", code, body)
	}

	// The list filters by role, site and revocation, and pages.
	for _, site := range []string{"replica-a", "replica-b", "replica-a"} {
		_, err := h.client.CreateToken(ctx, inventoryapi.TokenCreate{Role: "agent", Site: site})
		mustOK(t, err)
	}
	ids := func(query string, n int) []string {
		t.Helper()
		var out []string
		for _, tk := range pages[inventoryapi.Token](t, h, "/api/v1/tokens", query, n, nil) {
			out = append(out, tk.Role+"/"+tk.Site+"/"+strconv.FormatBool(tk.RevokedAt != nil))
		}
		return out
	}
	for _, tc := range []struct {
		query string
		want  []string
	}{
		{"&role=agent&site=replica-a", []string{"agent/replica-a/false", "agent/replica-a/false"}},
		{"&role=agent", []string{"agent/replica-a/false", "agent/replica-b/false", "agent/replica-a/false"}},
		{"&revoked=true", []string{"viewer//true"}},
		{"&role=viewer&revoked=false", nil},
	} {
		if got := ids(tc.query, 1); !slices.Equal(got, tc.want) {
			t.Errorf("tokens%s in pages of 1 = %v, want %v", tc.query, got, tc.want)
		}
	}
	for query, want := range map[string]string{"?role=root": "role", "?site=Bad_Site": "site", "?revoked=maybe": "true or false"} {
		code, body := h.do(t, http.MethodGet, "/api/v1/tokens"+query, "")
		if code != http.StatusBadRequest || !strings.Contains(body, want) {
			t.Errorf("tokens%s: %d %s, want 400 about %s", query, code, body, want)
		}
	}
}

func flip(c byte) string {
	if c == 'A' {
		return "B"
	}
	return "A"
}
