package store

import (
	"strconv"
	"strings"

	"github.com/pulpdist/pulpdist/services/inventory/internal/catalog"
)

// timeList builds the query of a list ordered by a time column, then an
// id expression: the equality filters that are set, the window (time
// range, order, and the rows after its key: keyset pagination, so a page
// starts where the last one ended whatever was added meanwhile), at most
// limit rows.
type timeList struct {
	// selectFrom is "SELECT … FROM …".
	selectFrom string
	timeCol    string
	idExpr     string
	conds      []string
	args       []any
}

func (l *timeList) arg(v any) string {
	l.args = append(l.args, v)
	return "$" + strconv.Itoa(len(l.args))
}

// eq adds "col = v" unless v is "".
func (l *timeList) eq(col, v string) {
	if v != "" {
		l.conds = append(l.conds, col+" = "+l.arg(v))
	}
}

// query is the whole query for w and limit.
func (l *timeList) query(w catalog.Range, limit int) (string, []any) {
	if !w.Since.IsZero() {
		l.conds = append(l.conds, l.timeCol+" >= "+l.arg(ts(w.Since)))
	}
	if !w.Until.IsZero() {
		l.conds = append(l.conds, l.timeCol+" < "+l.arg(ts(w.Until)))
	}
	cmp, order := "<", "DESC"
	if w.Ascending {
		cmp, order = ">", "ASC"
	}
	if k := w.After; k != nil {
		at, id := l.arg(ts(k.At)), l.arg(k.ID)
		l.conds = append(l.conds, "("+l.timeCol+" "+cmp+" "+at+" OR ("+l.timeCol+" = "+at+" AND "+l.idExpr+" "+cmp+" "+id+"))")
	}
	q := l.selectFrom
	if len(l.conds) > 0 {
		q += " WHERE " + strings.Join(l.conds, " AND ")
	}
	q += " ORDER BY " + l.timeCol + " " + order + ", " + l.idExpr + " " + order + " LIMIT " + l.arg(limit)
	return q, l.args
}

// runsQuery builds the query of a run list, ordered by start time, then
// id.
func runsQuery(f catalog.RunFilter) (string, []any) {
	l := timeList{selectFrom: `SELECT ` + runColumns + ` FROM runs`, timeCol: "started_at", idExpr: "id"}
	l.eq("site", f.Site)
	l.eq("tree", f.Tree)
	l.eq("result", f.Result)
	return l.query(f.Range, f.Limit)
}
