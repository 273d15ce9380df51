package inventory_test

import (
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pulpdist/pulpdist/libs/inventoryapi"
)

func TestTimeOrderedLists(t *testing.T) {
	for _, db := range databases {
		t.Run(db.name, func(t *testing.T) { testTimeOrderedLists(t, start(t, db.url(t))) })
	}
}

// pages reads a list page by page (query holds the filters), calling
// between once after the first page; every page names the next in both
// X-Next-Cursor and Link.
func pages[T any](t *testing.T, h *harness, path, query string, n int, between func()) []T {
	t.Helper()
	var got []T
	next := ""
	for range 50 {
		p := path + "?limit=" + strconv.Itoa(n) + query
		if next != "" {
			p += "&cursor=" + url.QueryEscape(next)
		}
		code, hdr, body := h.send(t, "GET", p, "", nil)
		if code != 200 {
			t.Fatalf("GET %s: %d %s", p, code, body)
		}
		page := decodeAs[[]T](t, body)
		if len(page) > n {
			t.Fatalf("GET %s: %d items", p, len(page))
		}
		got = append(got, page...)
		next = hdr.Get("X-Next-Cursor")
		if link := hdr.Get("Link"); (next == "") != (link == "") || (link != "" && !strings.Contains(link, "cursor="+url.QueryEscape(next))) {
			t.Fatalf("GET %s: X-Next-Cursor %q, Link %q", p, next, link)
		}
		if next == "" {
			return got
		}
		if between != nil {
			between()
			between = nil
		}
	}
	t.Fatal("no last page")
	return nil
}

func testTimeOrderedLists(t *testing.T, h *harness) {
	create := func(names ...string) {
		t.Helper()
		for _, s := range names {
			if code, _, body := h.send(t, "POST", "/api/v1/sites", `{"name":"`+s+`"}`, nil); code != 201 {
				t.Fatalf("create %s: %d %s", s, code, body)
			}
		}
	}
	create("a1", "a2", "a3", "a4", "a5")
	if code, _, body := h.send(t, "POST", "/api/v1/trees", `{"name":"docs","origin_site":"a1","source":"/srv/docs"}`, nil); code != 201 {
		t.Fatalf("create tree: %d %s", code, body)
	}
	mid := time.Now().UTC()
	create("b1", "b2")

	names := func(es []inventoryapi.AuditEntry) []string {
		out := make([]string, 0, len(es))
		for _, e := range es {
			out = append(out, e.Name)
		}
		return out
	}
	// Newest first, by pages of 2, filtered to sites: entries written
	// after the first page are newer than the cursor, so they are not
	// given, and none is given twice.
	got := names(pages[inventoryapi.AuditEntry](t, h, "/api/v1/audit", "&entity=site&action=create", 2, func() { create("c1") }))
	if want := []string{"b2", "b1", "a5", "a4", "a3", "a2", "a1"}; !slices.Equal(got, want) {
		t.Errorf("audit pages %v, want %v", got, want)
	}
	// Oldest first, from a time on: the sites made after mid, then c1.
	since := "&sort=at&entity=site&since=" + url.QueryEscape(mid.Format(time.RFC3339Nano))
	if got := names(pages[inventoryapi.AuditEntry](t, h, "/api/v1/audit", since, 1, nil)); !slices.Equal(got, []string{"b1", "b2", "c1"}) {
		t.Errorf("audit since %s: %v", mid, got)
	}
	// Filters by name and until.
	until := "&name=docs&until=" + url.QueryEscape(mid.Format(time.RFC3339Nano))
	if got := names(pages[inventoryapi.AuditEntry](t, h, "/api/v1/audit", until, 5, nil)); !slices.Equal(got, []string{"docs"}) {
		t.Errorf("audit of docs until %s: %v", mid, got)
	}
	if got := pages[inventoryapi.AuditEntry](t, h, "/api/v1/audit", "&actor=nobody", 5, nil); len(got) != 0 {
		t.Errorf("audit by nobody: %v", got)
	}
	// A cursor of one list order is refused in the other; bad values are 400s.
	_, hdr, _ := h.send(t, "GET", "/api/v1/audit?limit=1", "", nil)
	desc := hdr.Get("X-Next-Cursor")
	for _, tc := range []struct{ path, detail string }{
		{"/api/v1/audit?sort=at&cursor=" + url.QueryEscape(desc), "sorted by"},
		{"/api/v1/deltas?cursor=" + url.QueryEscape(desc), "sorted by"},
		{"/api/v1/audit?sort=name", "sort"},
		{"/api/v1/audit?limit=1001", "limit"},
		{"/api/v1/audit?since=2025-03-02T00:00:00Z&until=2025-03-01T00:00:00Z", "not after"},
		{"/api/v1/audit?name=" + url.QueryEscape("a\nb"), "control characters"},
		{"/api/v1/audit?actor=" + strings.Repeat("x", 1025), "longer"},
		{"/api/v1/deltas?tree=Not_A_Tree", "tree"},
		{"/api/v1/deltas?since=now", "since"},
		{"/api/v1/problems?sort=-at", "sort"},
		{"/api/v1/problems?cursor=eyJzIjoiLXJlY2VpdmVkX2F0IiwiayI6WyJ4IiwieSJdfQ", "cursor"},
	} {
		code, hdr, body := h.send(t, "GET", tc.path, "", nil)
		if code != 400 || hdr.Get("Content-Type") != "application/problem+json" || !strings.Contains(body, tc.detail) {
			t.Errorf("GET %s: %d %s, want 400 about %s", tc.path, code, body, tc.detail)
		}
	}
}
