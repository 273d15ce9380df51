package catalog

import (
	"context"
	"fmt"
	"time"
)

// Lists ordered by a time (runs by start, the audit log by when, deltas by
// first sight, event problems by arrival) share one way of paging: a time
// range, an order, and a key that says where the last page ended, so
// entries added meanwhile neither repeat nor skip others.

// TimeKey is where an entry stands in a list ordered by a time, then an
// id.
type TimeKey struct {
	At time.Time
	ID string
}

// Range is the time range, order and start of one page of such a list:
// Since <= time < Until (zero: unbounded), newest first unless
// Ascending, after the entry at After (nil: from the start).
type Range struct {
	Since, Until time.Time
	Ascending    bool
	After        *TimeKey
}

// Page is one page of a list ordered by time.
type Page[T any] struct {
	Items []T
	// Next is the key of the last item when more follow, nil otherwise.
	Next *TimeKey
}

// checkRange validates rg.
func checkRange(rg Range) error {
	if !rg.Since.IsZero() && !rg.Until.IsZero() && !rg.Until.After(rg.Since) {
		return invalidf("until %s is not after since %s", rg.Until.Format(time.RFC3339Nano), rg.Since.Format(time.RFC3339Nano))
	}
	if rg.After != nil && rg.After.ID == "" {
		return invalidf("cursor names no entry")
	}
	return nil
}

// pageOf reads one page: it checks rg and limit (0 means def, at most
// max), asks fetch for up to one item more than the limit and, when that
// one came, cuts it off and names the last item kept as Next.
func pageOf[T any](ctx context.Context, rg Range, limit, def, max int, fetch func(ctx context.Context, limit int) ([]T, error), key func(T) TimeKey) (Page[T], error) {
	if err := checkRange(rg); err != nil {
		return Page[T]{}, err
	}
	n := limit
	if n == 0 {
		n = def
	}
	if n < 1 || n > max {
		return Page[T]{}, invalidf("limit %d out of range 1..%d", n, max)
	}
	items, err := fetch(ctx, n+1)
	if err != nil {
		return Page[T]{}, err
	}
	p := Page[T]{Items: items}
	if len(items) > n {
		p.Items = items[:n]
		k := key(p.Items[n-1])
		p.Next = &k
	}
	if p.Items == nil {
		p.Items = []T{}
	}
	return p, nil
}

// checkText checks an optional filter value: printable, bounded.
func checkText(what, v string) error {
	if len(v) > maxEventText {
		return invalidf("%s longer than %d bytes", what, maxEventText)
	}
	for _, r := range v {
		if r < ' ' || r == 0x7f {
			return invalidf("%s holds control characters", what)
		}
	}
	return nil
}

func wrapList(what string, err error) error {
	if err != nil {
		return fmt.Errorf("list %s: %w", what, err)
	}
	return nil
}
