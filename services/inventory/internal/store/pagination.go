package store

import (
	"strconv"
	"strings"

	"github.com/pulpdist/pulpdist/services/inventory/internal/catalog"
)

// runsQuery builds the query of a run list: the filters of f, then the
// rows after f.After in the list's order (keyset pagination: a page
// starts where the last one ended, whatever was added meanwhile), at
// most f.Limit of them. Runs are ordered by start time, then id.
func runsQuery(f catalog.RunFilter) (string, []any) {
	var conds []string
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	for _, c := range [][2]string{{"site", f.Site}, {"tree", f.Tree}, {"result", f.Result}} {
		if c[1] != "" {
			conds = append(conds, c[0]+" = "+arg(c[1]))
		}
	}
	if !f.Since.IsZero() {
		conds = append(conds, "started_at >= "+arg(ts(f.Since)))
	}
	if !f.Until.IsZero() {
		conds = append(conds, "started_at < "+arg(ts(f.Until)))
	}
	cmp, order := "<", "DESC"
	if f.Ascending {
		cmp, order = ">", "ASC"
	}
	if k := f.After; k != nil {
		at := arg(ts(k.StartedAt))
		id := arg(k.ID)
		conds = append(conds, "(started_at "+cmp+" "+at+" OR (started_at = "+at+" AND id "+cmp+" "+id+"))")
	}
	q := `SELECT ` + runColumns + ` FROM runs`
	if len(conds) > 0 {
		q += " WHERE " + strings.Join(conds, " AND ")
	}
	q += " ORDER BY started_at " + order + ", id " + order + " LIMIT " + arg(f.Limit)
	return q, args
}
