package catalog

import (
	"context"
	"fmt"
	"time"
)

// Run list sort orders.
const (
	SortStartedDesc = "-started_at"
	SortStartedAsc  = "started_at"
)

// RunKey is where a run stands in a run list: the list is ordered by
// start time, then id, so a key names one position even when runs are
// added while a client pages through.
type RunKey struct {
	StartedAt time.Time
	ID        string
}

// RunPage is one page of a run list.
type RunPage struct {
	Runs []Run
	// Next is the key of the last run when more follow, nil otherwise.
	Next *RunKey
}

// checkRunFilter validates f and fills in its defaults.
func checkRunFilter(f RunFilter) (RunFilter, error) {
	if err := checkGivenNames(f.Site, f.Tree); err != nil {
		return f, err
	}
	if f.Limit == 0 {
		f.Limit = DefaultRunLimit
	}
	if f.Limit < 1 || f.Limit > MaxRunLimit {
		return f, invalidf("limit %d out of range 1..%d", f.Limit, MaxRunLimit)
	}
	switch f.Result {
	case "", "UP_TO_DATE", "COMPLETED", "PARTIAL", "FAILED", "DISABLED":
	default:
		return f, invalidf("result %q: want UP_TO_DATE, COMPLETED, PARTIAL, FAILED or DISABLED", f.Result)
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && !f.Until.After(f.Since) {
		return f, invalidf("until %s is not after since %s", f.Until.Format(time.RFC3339Nano), f.Since.Format(time.RFC3339Nano))
	}
	if f.After != nil && f.After.ID == "" {
		return f, invalidf("cursor names no run")
	}
	return f, nil
}

// RunPage lists one page of the runs f selects, in f's order: newest
// first unless f.Ascending. Limit 0 means DefaultRunLimit.
func (s *Service) RunPage(ctx context.Context, f RunFilter) (RunPage, error) {
	f, err := checkRunFilter(f)
	if err != nil {
		return RunPage{}, err
	}
	limit := f.Limit
	f.Limit++ // one more tells whether a next page exists
	runs, err := s.repo.Runs(ctx, f)
	if err != nil {
		return RunPage{}, fmt.Errorf("list runs: %w", err)
	}
	p := RunPage{Runs: runs}
	if len(runs) > limit {
		p.Runs = runs[:limit]
		last := p.Runs[limit-1]
		p.Next = &RunKey{StartedAt: last.StartedAt, ID: last.ID}
	}
	return p, nil
}

// SiteHistory lists one page of the runs of a site that must exist.
func (s *Service) SiteHistory(ctx context.Context, site string, f RunFilter) (RunPage, error) {
	if _, err := s.Site(ctx, site); err != nil {
		return RunPage{}, err
	}
	f.Site = site
	return s.RunPage(ctx, f)
}
