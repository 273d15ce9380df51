package inventory_test

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/pulpdist/pulpdist/libs/inventoryapi"
	"github.com/pulpdist/pulpdist/services/inventory/internal/httpapi"
)

// TestQueryParamsMatchSpec: the query parameters each route accepts are
// exactly those api/openapi.yaml declares for its operation.
func TestQueryParamsMatchSpec(t *testing.T) {
	doc, _ := loadSpec(t)
	for path, item := range doc.Paths.Map() {
		if !strings.HasPrefix(path, "/api/v1/") {
			continue
		}
		for method, op := range item.Operations() {
			var declared []string
			for _, p := range append(item.Parameters, op.Parameters...) {
				if p.Value.In == "query" {
					declared = append(declared, p.Value.Name)
				}
			}
			slices.Sort(declared)
			pattern := method + " " + path
			if got := httpapi.QueryParams(pattern); !slices.Equal(got, declared) {
				t.Errorf("%s accepts query parameters %q, the spec declares %q", pattern, got, declared)
			}
		}
	}
}

// TestQueryParamsRefused: a parameter a route does not take, or one given
// twice, is a 400 problem, not an unfiltered answer; the ones it takes
// filter and page.
func TestQueryParamsRefused(t *testing.T) {
	h := start(t, databases[0].url(t))
	seed(t, h)
	ctx := context.Background()
	_, err := h.client.CreateTree(ctx, inventoryapi.Tree{Name: "isos", OriginSite: "origin", Source: "/srv/isos"})
	mustOK(t, err)
	for _, s := range [][2]string{{"replica-a", "docs"}, {"replica-b", "docs"}, {"replica-a", "isos"}} {
		_, err := h.client.Subscribe(ctx, inventoryapi.Subscription{Site: s[0], Tree: s[1]})
		mustOK(t, err)
	}
	for _, tc := range []struct{ path, detail string }{
		{"/api/v1/overview?tee=docs", `unknown query parameter "tee": this route takes cursor, limit, site, sort, tree`},
		{"/api/v1/runs?site=origin&sites=x", `unknown query parameter "sites"`},
		{"/api/v1/sites/origin?verbose=1", `unknown query parameter "verbose": this route takes none`},
		{"/api/v1/alarms?site=a&site=b", `query parameter "site" is given 2 times`},
		{"/api/v1/failing?tree=%zz", "query string"},
		{"/api/v1/overview?site=Bad_Name", "site"},
		{"/api/v1/overview?limit=0", "limit"},
	} {
		code, hdr, body := h.send(t, http.MethodGet, tc.path, "", nil)
		if code != http.StatusBadRequest || hdr.Get("Content-Type") != httpapi.ContentTypeProblem ||
			!strings.Contains(decodeAs[inventoryapi.Problem](t, body).Detail, tc.detail) {
			t.Errorf("GET %s = %d %s %s, want 400 saying %q", tc.path, code, hdr.Get("Content-Type"), body, tc.detail)
		}
	}
	// POST routes take none either: nothing is triggered.
	if code, _, body := h.send(t, http.MethodPost, "/api/v1/trees/docs/sync?site=replica-a", "", nil); code != http.StatusBadRequest {
		t.Errorf("sync with ?site= = %d %s, want 400 (a subscription sync is POST /subscriptions/{site}/{tree}/sync)", code, body)
	}

	type place struct {
		Site string `json:"site"`
		Tree string `json:"tree"`
	}
	rows := func(ps []place) []string {
		out := make([]string, len(ps))
		for i, p := range ps {
			out[i] = p.Site + "/" + p.Tree
		}
		return out
	}
	if got, want := rows(pages[place](t, h, "/api/v1/overview", "", 2, nil)),
		[]string{"origin/docs", "replica-a/docs", "replica-b/docs", "origin/isos", "replica-a/isos"}; !slices.Equal(got, want) {
		t.Errorf("overview in pages of 2 = %v, want %v", got, want)
	}
	if got, want := rows(pages[place](t, h, "/api/v1/overview", "&site=replica-a", 1, nil)), []string{"replica-a/docs", "replica-a/isos"}; !slices.Equal(got, want) {
		t.Errorf("overview of replica-a = %v, want %v", got, want)
	}
	if got, want := rows(pages[place](t, h, "/api/v1/overview", "&tree=isos&site=origin", 5, nil)), []string{"origin/isos"}; !slices.Equal(got, want) {
		t.Errorf("overview of origin/isos = %v, want %v", got, want)
	}
	// failing and alarms filter the same way: control_test.go.
}
