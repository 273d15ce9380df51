package httpapi

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strings"

	httptransport "github.com/go-kit/kit/transport/http"

	"github.com/pulpdist/pulpdist/services/inventory/internal/catalog"
)

// The views built in memory from the whole catalog (the overview, the
// alarms) sort by one of a few keys, named by ?sort=; the first is the
// default. The cursor names the sort it belongs to, so a page of one sort
// never continues another.

// sortKey is one sort of a view: its name in ?sort= and the key rows are
// ordered by (compared as strings, element by element).
type sortKey[T any] struct {
	name string
	key  func(T) []string
}

func sortNames[T any](keys []sortKey[T]) []string {
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = k.name
	}
	return out
}

// decodeSortedList decodes ?sort= (one of keys, the first by default),
// the page and the filter of a view.
func decodeSortedList[T, F any](keys []sortKey[T], filter func(*http.Request) (F, error)) httptransport.DecodeRequestFunc {
	names := sortNames(keys)
	return func(_ context.Context, r *http.Request) (any, error) {
		q, err := parseQuery(r)
		if err != nil {
			return nil, err
		}
		order := cmp.Or(q.Get("sort"), names[0])
		if !slices.Contains(names, order) {
			return nil, fmt.Errorf("%w: sort %q: want one of %s", errMalformed, order, strings.Join(names, ", "))
		}
		p, err := parsePage(q, order)
		if err != nil {
			return nil, err
		}
		f, err := filter(r)
		if err != nil {
			return nil, err
		}
		return listRequest[F]{filter: f, page: p, sort: order}, nil
	}
}

// sortedPage orders items by the sort named order and cuts the page p
// asks for.
func sortedPage[T, W any](ctx context.Context, items []T, keys []sortKey[T], order string, conv func(T) W, p pageQuery) page {
	k := keys[0]
	for _, sk := range keys {
		if sk.name == order {
			k = sk
		}
	}
	slices.SortStableFunc(items, func(a, b T) int { return slices.Compare(k.key(a), k.key(b)) })
	return paginate(ctx, items, k.name, k.key, conv, p)
}

// descending writes n ≥ 0 so that larger values sort first as strings.
func descending(n int64) string { return fmt.Sprintf("%019d", math.MaxInt64-max(n, 0)) }

// roleKey puts a tree's origin before its replicas.
func roleKey(role string) string {
	if role == catalog.RoleOrigin {
		return "0"
	}
	return "1"
}

// overviewSorts: by tree (origin first, then site; the default), by site,
// or the longest behind first.
var overviewSorts = []sortKey[catalog.OverviewRow]{
	{"tree", func(r catalog.OverviewRow) []string { return []string{r.Tree, roleKey(r.Role), r.Site} }},
	{"site", func(r catalog.OverviewRow) []string { return []string{r.Site, r.Tree} }},
	{"-lag", func(r catalog.OverviewRow) []string {
		return []string{descending(r.LagSeconds), r.Tree, roleKey(r.Role), r.Site}
	}},
}

// alarmSorts: by tree, then site (the default), by site, or the longest
// behind first.
var alarmSorts = []sortKey[catalog.Alarm]{
	{"tree", func(a catalog.Alarm) []string { return []string{a.Tree, a.Site} }},
	{"site", func(a catalog.Alarm) []string { return []string{a.Site, a.Tree} }},
	{"-lag", func(a catalog.Alarm) []string { return []string{descending(a.LagSeconds), a.Tree, a.Site} }},
}
