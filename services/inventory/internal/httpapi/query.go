package httpapi

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/pulpdist/pulpdist/libs/inventoryapi"
)

// Query parameters shared by lists.
var (
	pageParams = []string{"limit", "cursor"}
	timeParams = []string{"since", "until", "sort", "limit", "cursor"}
)

// queryParams are the query parameters each route reads. A request with
// any other is refused (400) before it is decoded, so that a misspelt
// filter (?tee=docs) is an error instead of the whole list. Routes not
// named take none. api/openapi.yaml declares the same parameters (checked
// by the inventory's conformance test through QueryParams).
var queryParams = map[string][]string{
	"GET /api/v1/sites":                      pageParams,
	"GET /api/v1/trees":                      pageParams,
	"GET /api/v1/trees/{name}/subscriptions": pageParams,
	"GET /api/v1/trees/{name}/versions":      timeParams,
	"GET /api/v1/trees/{name}/history":       timeParams,
	"GET /api/v1/subscriptions":              append([]string{"site", "tree"}, pageParams...),
	"GET /api/v1/overview":                   append([]string{"site", "tree", "sort"}, pageParams...),
	"GET /api/v1/failing":                    append([]string{"site", "tree"}, pageParams...),
	"GET /api/v1/alarms":                     append([]string{"site", "tree", "sort"}, pageParams...),
	"GET /api/v1/runs":                       append([]string{"site", "tree", "result"}, timeParams...),
	"GET /api/v1/sites/{name}/history":       append([]string{"tree", "result"}, timeParams...),
	"GET /api/v1/audit":                      append([]string{"entity", "name", "action", "actor"}, timeParams...),
	"GET /api/v1/deltas":                     append([]string{"tree"}, timeParams...),
	"GET /api/v1/problems":                   append([]string{"type"}, timeParams...),
	"GET /api/v1/tokens":                     append([]string{"role", "site", "revoked"}, pageParams...),
}

// QueryParams lists the query parameters the route pattern ("GET
// /api/v1/runs") takes, sorted.
func QueryParams(pattern string) []string {
	ps := slices.Clone(queryParams[pattern])
	slices.Sort(ps)
	return ps
}

// checkQuery refuses a request whose query string does not parse or
// names a parameter the route does not take, and a parameter given twice
// (every one takes a single value).
func checkQuery(pattern string, next http.Handler) http.Handler {
	allowed := QueryParams(pattern)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := queryError(pattern, r.URL.RawQuery, allowed); err != "" {
			writeProblem(w, inventoryapi.Problem{Title: http.StatusText(http.StatusBadRequest), Status: http.StatusBadRequest, Detail: err})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// namedInPath reports whether the path of pattern names the k already:
// {site} in it, or /sites/{name} for k "site".
func namedInPath(pattern, k string) bool {
	return strings.Contains(pattern, "{"+k+"}") || strings.Contains(pattern, "/"+k+"s/{")
}

func queryError(pattern, raw string, allowed []string) string {
	if raw == "" {
		return ""
	}
	q, err := url.ParseQuery(raw)
	if err != nil {
		return fmt.Sprintf("%s: query string: %v", errMalformed, err)
	}
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		switch {
		case !slices.Contains(allowed, k) && namedInPath(pattern, k):
			return fmt.Sprintf("%s: the %s is named in the path, not with ?%s=", errMalformed, k, k)
		case !slices.Contains(allowed, k) && len(allowed) == 0:
			return fmt.Sprintf("%s: unknown query parameter %.64q: this route takes none", errMalformed, k)
		case !slices.Contains(allowed, k):
			return fmt.Sprintf("%s: unknown query parameter %.64q: this route takes %s", errMalformed, k, strings.Join(allowed, ", "))
		case len(q[k]) > 1:
			return fmt.Sprintf("%s: query parameter %q is given %d times, want once", errMalformed, k, len(q[k]))
		}
	}
	return ""
}
