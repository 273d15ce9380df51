package inventoryapi

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Lists ordered by a time (runs, a site's history, the audit log, deltas
// and event problems) are read a page at a time: each answer names the
// next page in its X-Next-Cursor header, absent on the last page. The
// page methods return that cursor; give it back as TimeQuery.Cursor, with
// the same filters and order, for the next page.

// HeaderNextCursor is the response header naming the next page of a list.
const HeaderNextCursor = "X-Next-Cursor"

// TimeQuery is the range, order and page of a list ordered by a time.
type TimeQuery struct {
	// Since and Until bound the list to Since <= time < Until; zero is
	// unbounded.
	Since, Until time.Time
	// Ascending lists oldest first; the default is newest first.
	Ascending bool
	// Limit is the page size, 1..1000; 0 is the server's default (100).
	Limit int
	// Cursor is the next cursor of the previous page; "" for the first.
	Cursor string
}

// values adds q to v for a list ordered by the time field sortField.
func (q TimeQuery) values(v url.Values, sortField string) url.Values {
	for _, b := range []struct {
		name string
		t    time.Time
	}{{"since", q.Since}, {"until", q.Until}} {
		if !b.t.IsZero() {
			v.Set(b.name, b.t.Format(time.RFC3339Nano))
		}
	}
	if q.Ascending {
		v.Set("sort", sortField)
	}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	if q.Cursor != "" {
		v.Set("cursor", q.Cursor)
	}
	return v
}

// setGiven sets each name of kv to its value when that is not "".
func setGiven(v url.Values, kv ...[2]string) url.Values {
	for _, p := range kv {
		if p[1] != "" {
			v.Set(p[0], p[1])
		}
	}
	return v
}

// RunQuery selects runs: those of a tree, a site and with a result (each
// "" for any), in a TimeQuery by start time.
type RunQuery struct {
	Tree, Site string
	// Result is UP_TO_DATE, COMPLETED, PARTIAL, FAILED or DISABLED.
	Result string
	TimeQuery
}

// AuditQuery selects audit entries; empty fields match all.
type AuditQuery struct {
	// Entity is site, tree, subscription, key or token; Name the one
	// entity ("paris", "paris/docs" for a subscription, a key or token id).
	Entity, Name string
	// Action is create, update, delete, trigger, pause, resume or revoke.
	Action string
	// Actor is who made the change, as the log names it.
	Actor string
	TimeQuery
}

// DeltaQuery selects the deltas of a tree ("" for every tree), in a
// TimeQuery by first sight.
type DeltaQuery struct {
	Tree string
	TimeQuery
}

// ProblemQuery selects the event problems of a CloudEvents type ("" for
// every type), in a TimeQuery by arrival.
type ProblemQuery struct {
	Type string
	TimeQuery
}

// getPage GETs one page of a list at path with query v into a []T and
// returns it with the cursor of the next page ("" on the last).
func getPage[T any](ctx context.Context, c *Client, path string, v url.Values) ([]T, string, error) {
	if len(v) > 0 {
		path += "?" + v.Encode()
	}
	var out []T
	h, err := c.doHeader(ctx, http.MethodGet, path, nil, nil, &out)
	if err != nil {
		return nil, "", err
	}
	return out, h.Get(HeaderNextCursor), nil
}

// RunPage lists one page of runs, newest first unless q.Ascending.
func (c *Client) RunPage(ctx context.Context, q RunQuery) ([]Run, string, error) {
	v := setGiven(url.Values{}, [2]string{"tree", q.Tree}, [2]string{"site", q.Site}, [2]string{"result", q.Result})
	return getPage[Run](ctx, c, "/api/v1/runs", q.values(v, "started_at"))
}

// SiteHistory lists one page of the runs of a site, as RunPage; the path
// names the site, so q.Site must be "" or the same site.
func (c *Client) SiteHistory(ctx context.Context, site string, q RunQuery) ([]Run, string, error) {
	if q.Site != "" && q.Site != site {
		return nil, "", fmt.Errorf("history of site %s: the query names site %s", site, q.Site)
	}
	v := setGiven(url.Values{}, [2]string{"tree", q.Tree}, [2]string{"result", q.Result})
	return getPage[Run](ctx, c, sitePath(site)+"/history", q.values(v, "started_at"))
}

// AuditPage lists one page of the audit log (admin), newest first unless
// q.Ascending.
func (c *Client) AuditPage(ctx context.Context, q AuditQuery) ([]AuditEntry, string, error) {
	v := setGiven(url.Values{}, [2]string{"entity", q.Entity}, [2]string{"name", q.Name},
		[2]string{"action", q.Action}, [2]string{"actor", q.Actor})
	return getPage[AuditEntry](ctx, c, "/api/v1/audit", q.values(v, "at"))
}

// DeltaPage lists one page of deltas, newest first unless q.Ascending.
func (c *Client) DeltaPage(ctx context.Context, q DeltaQuery) ([]Delta, string, error) {
	v := setGiven(url.Values{}, [2]string{"tree", q.Tree})
	return getPage[Delta](ctx, c, "/api/v1/deltas", q.values(v, "first_seen_at"))
}

// ProblemPage lists one page of event problems, newest first unless
// q.Ascending.
func (c *Client) ProblemPage(ctx context.Context, q ProblemQuery) ([]EventProblem, string, error) {
	v := setGiven(url.Values{}, [2]string{"type", q.Type})
	return getPage[EventProblem](ctx, c, "/api/v1/problems", q.values(v, "received_at"))
}
