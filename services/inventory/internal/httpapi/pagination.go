package httpapi

import (
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	httptransport "github.com/go-kit/kit/transport/http"

	"github.com/pulpdist/pulpdist/services/inventory/internal/catalog"
)

// Lists are pages. A list answers a JSON array, as it always did, and
// when more items follow it names the next page in two headers:
// X-Next-Cursor (the cursor alone) and Link (rel="next", the whole URL).
// A request without limit gets every item (runs: catalog.DefaultRunLimit),
// so clients that read whole lists keep working.
//
// A cursor is opaque to clients: the base64url of a JSON object holding
// the sort order and the sort key of the last item given. The next page
// starts after that key, so items added or removed meanwhile neither
// repeat nor skip the ones that stay.

// Headers naming the next page of a list.
const (
	HeaderNextCursor = "X-Next-Cursor"
	headerLink       = "Link"
)

// MaxPageLimit bounds ?limit= of every list.
const MaxPageLimit = catalog.MaxRunLimit

// cursor is the decoded ?cursor=.
type cursor struct {
	// Sort is the list order the key belongs to.
	Sort string `json:"s"`
	// Key is the sort key of the last item given.
	Key []string `json:"k"`
}

func (c cursor) encode() string {
	b, err := json.Marshal(c)
	if err != nil { // strings always encode
		return ""
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// maxCursor bounds the ?cursor= accepted.
const maxCursor = 1024

// pageQuery is the paging part of a list request.
type pageQuery struct {
	// limit is 0 when not given.
	limit int
	// after is nil on the first page.
	after []string
}

// parsePage reads ?limit= and ?cursor= for a list in order sortOrder.
func parsePage(q url.Values, sortOrder string) (pageQuery, error) {
	var p pageQuery
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		switch {
		case err != nil || n < 1:
			return p, fmt.Errorf("%w: limit %q is not a positive integer", errMalformed, s)
		case n > MaxPageLimit:
			return p, fmt.Errorf("%w: limit %d out of range 1..%d", errMalformed, n, MaxPageLimit)
		}
		p.limit = n
	}
	s := q.Get("cursor")
	if s == "" {
		return p, nil
	}
	var c cursor
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err == nil && len(s) <= maxCursor {
		err = json.Unmarshal(b, &c)
	}
	if err != nil || len(s) > maxCursor || len(c.Key) == 0 {
		return p, fmt.Errorf("%w: cursor %.40q is not one this API gave", errMalformed, s)
	}
	if c.Sort != sortOrder {
		return p, fmt.Errorf("%w: the cursor belongs to a list sorted by %q, not %q", errMalformed, c.Sort, sortOrder)
	}
	p.after = c.Key
	return p, nil
}

// page is a list response: the items and, when more follow, the cursor
// of the next page. encodeJSON writes items as the body.
type page struct {
	items any
	next  string
	// uri is the request URI, for the Link header.
	uri string
}

// body is what encodeJSON encodes.
func (p page) body() any { return p.items }

// Headers implements httptransport.Headerer.
func (p page) Headers() http.Header {
	h := http.Header{}
	if p.next == "" {
		return h
	}
	h.Set(HeaderNextCursor, p.next)
	if u, err := url.ParseRequestURI(p.uri); err == nil {
		q := u.Query()
		q.Set("cursor", p.next)
		u.RawQuery = q.Encode()
		h.Set(headerLink, "<"+u.RequestURI()+`>; rel="next"`)
	}
	return h
}

// requestURI is the URI of the request being served.
func requestURI(ctx context.Context) string {
	s, _ := ctx.Value(httptransport.ContextKeyRequestURI).(string)
	return s
}

// listRequest is a list request: a filter and the page asked for.
type listRequest[F any] struct {
	filter F
	page   pageQuery
	// sort is the order asked for, for the lists that have several.
	sort string
}

// decodeList decodes the page of a list in order sortOrder, and its filter.
func decodeList[F any](sortOrder string, filter func(*http.Request) (F, error)) httptransport.DecodeRequestFunc {
	return func(_ context.Context, r *http.Request) (any, error) {
		q, err := parseQuery(r)
		if err != nil {
			return nil, err
		}
		p, err := parsePage(q, sortOrder)
		if err != nil {
			return nil, err
		}
		f, err := filter(r)
		if err != nil {
			return nil, err
		}
		return listRequest[F]{filter: f, page: p}, nil
	}
}

// parseQuery reads the query string of r, refusing one that is not
// URL-encoded (r.URL.Query drops what it cannot decode).
func parseQuery(r *http.Request) (url.Values, error) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, fmt.Errorf("%w: query string: %w", errMalformed, err)
	}
	return q, nil
}

// noFilter is the filter of lists without one.
func noFilter(*http.Request) (noRequest, error) { return noRequest{}, nil }

// pathName is the filter of lists of what a path names: the path value.
func pathName(name string) func(*http.Request) (string, error) {
	return func(r *http.Request) (string, error) { return r.PathValue(name), nil }
}

// subscriptionFilter reads ?site= and ?tree=.
func subscriptionFilter(r *http.Request) (catalog.SubscriptionFilter, error) {
	q := r.URL.Query()
	return catalog.SubscriptionFilter{Site: q.Get("site"), Tree: q.Get("tree")}, nil
}

// paginate cuts the page p asks for out of items, which are sorted by
// key. It is for the short lists the inventory reads whole anyway (sites,
// trees, subscriptions and the views built from them); lists that grow
// with time page in SQL (timeList in the store).
func paginate[T, W any](ctx context.Context, items []T, sortOrder string, key func(T) []string, conv func(T) W, p pageQuery) page {
	if p.after != nil {
		i := 0
		for i < len(items) && slices.Compare(key(items[i]), p.after) <= 0 {
			i++
		}
		items = items[i:]
	}
	var next string
	if p.limit > 0 && len(items) > p.limit {
		items = items[:p.limit]
		next = cursor{Sort: sortOrder, Key: key(items[len(items)-1])}.encode()
	}
	out := make([]W, 0, len(items))
	for _, v := range items {
		out = append(out, conv(v))
	}
	return page{items: out, next: next, uri: requestURI(ctx)}
}

// Sort orders and keys of the lists paginated in memory.
const (
	sortName    = "name"
	sortTreeSit = "tree,site"
)

func siteKey(s catalog.Site) []string { return []string{s.Name} }
func treeKey(t catalog.Tree) []string { return []string{t.Name} }
func subscriptionKey(s catalog.Subscription) []string {
	return []string{s.Tree, s.Site}
}
func runPlaceKey(r catalog.Run) []string { return []string{r.Tree, r.Site} }

// timeListRequest is a decoded list request of a list ordered by time.
type timeListRequest[F any] struct {
	filter F
	sort   string
}

// decodeTimeList reads the range, order and page of a list ordered by
// the time column timeCol: since and until (RFC 3339), sort (timeCol or
// -timeCol, the default), limit and cursor; filter builds the catalog's
// filter from them and the other query parameters.
func decodeTimeList[F any](r *http.Request, timeCol string, filter func(q url.Values, rg catalog.Range, limit int) F) (any, error) {
	q, err := parseQuery(r)
	if err != nil {
		return nil, err
	}
	sortOrder := cmp.Or(q.Get("sort"), "-"+timeCol)
	if sortOrder != timeCol && sortOrder != "-"+timeCol {
		return nil, fmt.Errorf("%w: sort %q: want -%s or %s", errMalformed, sortOrder, timeCol, timeCol)
	}
	p, err := parsePage(q, sortOrder)
	if err != nil {
		return nil, err
	}
	rg := catalog.Range{Ascending: sortOrder == timeCol}
	if err := parseTimes(q, &rg.Since, &rg.Until); err != nil {
		return nil, err
	}
	if p.after != nil {
		k, err := timeKey(p.after)
		if err != nil {
			return nil, err
		}
		rg.After = &k
	}
	return timeListRequest[F]{filter: filter(q, rg, p.limit), sort: sortOrder}, nil
}

// parseTimes reads ?since= and ?until=.
func parseTimes(q url.Values, since, until *time.Time) error {
	for _, b := range []struct {
		name string
		t    *time.Time
	}{{"since", since}, {"until", until}} {
		if s := q.Get(b.name); s != "" {
			t, err := time.Parse(time.RFC3339Nano, s)
			if err != nil {
				return fmt.Errorf("%w: %s %q is not an RFC 3339 time such as 2025-03-01T09:00:00Z", errMalformed, b.name, s)
			}
			*b.t = t
		}
	}
	return nil
}

// timeKey reads the key of a cursor of a list ordered by time.
func timeKey(key []string) (catalog.TimeKey, error) {
	if len(key) != 2 {
		return catalog.TimeKey{}, fmt.Errorf("%w: cursor is not one of this list", errMalformed)
	}
	at, err := time.Parse(time.RFC3339Nano, key[0])
	if err != nil {
		return catalog.TimeKey{}, fmt.Errorf("%w: cursor is not one of this list", errMalformed)
	}
	return catalog.TimeKey{At: at, ID: key[1]}, nil
}

// timePage is the response of a list ordered by time.
func timePage[T, W any](ctx context.Context, p catalog.Page[T], sortOrder string, conv func(T) W) page {
	out := make([]W, 0, len(p.Items))
	for _, v := range p.Items {
		out = append(out, conv(v))
	}
	var next string
	if p.Next != nil {
		next = cursor{Sort: sortOrder, Key: []string{p.Next.At.UTC().Format(time.RFC3339Nano), p.Next.ID}}.encode()
	}
	return page{items: out, next: next, uri: requestURI(ctx)}
}

// decodeRunList reads the filters of a run list (site, tree, result)
// and, as decodeTimeList, its range, order and page by start time
// (catalog.SortStartedDesc, the default, or catalog.SortStartedAsc).
func decodeRunList(_ context.Context, r *http.Request) (any, error) {
	return decodeTimeList(r, catalog.SortStartedAsc, func(q url.Values, rg catalog.Range, limit int) catalog.RunFilter {
		return catalog.RunFilter{Site: q.Get("site"), Tree: q.Get("tree"), Result: q.Get("result"), Range: rg, Limit: limit}
	})
}

// decodeVersionList reads a page of the versions of the tree the path
// names (its versions or its history), by publication time.
func decodeVersionList(_ context.Context, r *http.Request) (any, error) {
	return decodeTimeList(r, "published_at", func(_ url.Values, rg catalog.Range, limit int) catalog.VersionFilter {
		return catalog.VersionFilter{Tree: r.PathValue("name"), Range: rg, Limit: limit}
	})
}

// runListRequest is a decoded run list request.
type runListRequest = timeListRequest[catalog.RunFilter]
