package httpapi

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"

	httptransport "github.com/go-kit/kit/transport/http"

	"github.com/pulpdist/pulpdist/services/inventory/internal/catalog"
)

func TestParsePage(t *testing.T) {
	valid := cursor{Sort: sortName, Key: []string{"paris"}}.encode()
	for _, tc := range []struct {
		query string
		limit int
		after []string
		err   string
	}{
		{query: ""},
		{query: "limit=1", limit: 1},
		{query: "limit=1000", limit: 1000},
		{query: "cursor=" + valid, after: []string{"paris"}},
		{query: "limit=0", err: "positive integer"},
		{query: "limit=-3", err: "positive integer"},
		{query: "limit=1.5", err: "positive integer"},
		{query: "limit=1001", err: "out of range"},
		{query: "cursor=paris", err: "not one this API gave"},
		{query: "cursor=" + cursor{Sort: sortName}.encode(), err: "not one this API gave"},
		{query: "cursor=" + cursor{Sort: "-published_at", Key: []string{"x"}}.encode(), err: `sorted by "-published_at"`},
		{query: "cursor=" + strings.Repeat("A", maxCursor+1), err: "not one this API gave"},
	} {
		q, err := url.ParseQuery(tc.query)
		if err != nil {
			t.Fatal(err)
		}
		p, err := parsePage(q, sortName)
		switch {
		case tc.err != "":
			if err == nil || !strings.Contains(err.Error(), tc.err) || Problem(err).Status != 400 {
				t.Errorf("%q: err %v, want 400 with %q", tc.query, err, tc.err)
			}
		case err != nil:
			t.Errorf("%q: %v", tc.query, err)
		case p.limit != tc.limit || !slices.Equal(p.after, tc.after):
			t.Errorf("%q: %+v, want limit %d after %v", tc.query, p, tc.limit, tc.after)
		}
	}
}

func TestPaginate(t *testing.T) {
	sites := []catalog.Site{{Name: "a"}, {Name: "b"}, {Name: "c"}, {Name: "e"}}
	name := func(s catalog.Site) string { return s.Name }
	ctx := context.WithValue(context.Background(), httptransport.ContextKeyRequestURI, "/api/v1/sites?limit=2&x=1")
	p := paginate(ctx, sites, sortName, siteKey, name, pageQuery{limit: 2})
	if got := p.items.([]string); !slices.Equal(got, []string{"a", "b"}) || p.next == "" {
		t.Fatalf("first page %v next %q", got, p.next)
	}
	link := p.Headers().Get("Link")
	if !strings.HasPrefix(link, "</api/v1/sites?cursor=") || !strings.Contains(link, "&x=1") || !strings.HasSuffix(link, `>; rel="next"`) {
		t.Errorf("Link %q", link)
	}
	// "d" sorts after the cursor's "b": a page resumes at the key, not at
	// an offset, so an item added meanwhile shows where it belongs.
	sites = slices.Insert(sites, 3, catalog.Site{Name: "d"})
	q, _ := parsePage(url.Values{"cursor": {p.next}, "limit": {"2"}}, sortName)
	p = paginate(ctx, sites, sortName, siteKey, name, q)
	if got := p.items.([]string); !slices.Equal(got, []string{"c", "d"}) || p.next == "" {
		t.Fatalf("second page %v next %q", got, p.next)
	}
	q, _ = parsePage(url.Values{"cursor": {p.next}, "limit": {"2"}}, sortName)
	p = paginate(ctx, sites, sortName, siteKey, name, q)
	if got := p.items.([]string); !slices.Equal(got, []string{"e"}) || p.next != "" || p.Headers().Get("Link") != "" {
		t.Fatalf("last page %v next %q", got, p.next)
	}
}

func TestMatches(t *testing.T) {
	for _, tc := range []struct {
		list         string
		weak, strong bool
	}{
		{`"abc"`, true, true}, {`W/"abc"`, true, false}, {`"x", "abc"`, true, true}, {`W/"x", W/"abc"`, true, false}, {`*`, true, true},
		{`"abd"`, false, false}, {`abc`, false, false}, {``, false, false}, {`"ab"`, false, false},
	} {
		if got := matches(tc.list, `"abc"`); got != tc.weak {
			t.Errorf("matches(%q) = %t (If-None-Match)", tc.list, got)
		}
		if got := matchesStrong(tc.list, `"abc"`); got != tc.strong {
			t.Errorf("matchesStrong(%q) = %t (If-Match)", tc.list, got)
		}
	}
}

func FuzzDecodeRunList(f *testing.F) {
	for _, s := range []string{"", "sort=started_at&limit=5", "since=2025-03-01T00:00:00Z&until=2025-03-02T00:00:00Z",
		"cursor=" + cursor{Sort: catalog.SortStartedDesc, Key: []string{"2025-03-01T00:00:00Z", "r1"}}.encode(), "cursor=%zz", "limit=99999999999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, query string) {
		r := httptest.NewRequestWithContext(t.Context(), http.MethodGet, "/api/v1/runs", nil)
		r.URL.RawQuery = query
		v, err := decodeRunList(r.Context(), r)
		if err != nil {
			if p := Problem(err); p.Status != 400 {
				t.Fatalf("decode %q: error maps to %d: %v", query, p.Status, err)
			}
			return
		}
		req := v.(runListRequest)
		if req.filter.Limit < 0 || req.filter.Limit > MaxPageLimit {
			t.Fatalf("decode %q: limit %d", query, req.filter.Limit)
		}
		if req.sort != catalog.SortStartedDesc && req.sort != catalog.SortStartedAsc {
			t.Fatalf("decode %q: sort %q", query, req.sort)
		}
	})
}
