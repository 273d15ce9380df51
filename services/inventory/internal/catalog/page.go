package catalog

import (
	"context"
)

// Run list sort orders.
const (
	SortStartedDesc = "-started_at"
	SortStartedAsc  = "started_at"
)

// checkRunFilter validates the names and result of f; pageOf checks its
// range and limit.
func checkRunFilter(f RunFilter) error {
	if err := checkGivenNames(f.Site, f.Tree); err != nil {
		return err
	}
	switch f.Result {
	case "", "UP_TO_DATE", "COMPLETED", "PARTIAL", "FAILED", "DISABLED":
	default:
		return invalidf("result %q: want UP_TO_DATE, COMPLETED, PARTIAL, FAILED or DISABLED", f.Result)
	}
	return nil
}

// RunPage lists one page of the runs f selects, in f's order: newest
// first unless f.Ascending. Limit 0 means DefaultRunLimit.
func (s *Service) RunPage(ctx context.Context, f RunFilter) (Page[Run], error) {
	if err := checkRunFilter(f); err != nil {
		return Page[Run]{}, err
	}
	p, err := pageOf(ctx, f.Range, f.Limit, DefaultRunLimit, MaxRunLimit,
		func(ctx context.Context, n int) ([]Run, error) { f.Limit = n; return s.repo.Runs(ctx, f) },
		func(r Run) TimeKey { return TimeKey{At: r.StartedAt, ID: r.ID} })
	return p, wrapList("runs", err)
}

// SiteHistory lists one page of the runs of a site that must exist.
func (s *Service) SiteHistory(ctx context.Context, site string, f RunFilter) (Page[Run], error) {
	if _, err := s.Site(ctx, site); err != nil {
		return Page[Run]{}, err
	}
	f.Site = site
	return s.RunPage(ctx, f)
}
