package catalog

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/adhocore/gronx"

	"github.com/pulpdist/pulpdist/libs/bus"
)

// buildOverview computes one row per subscription (replica) and one per
// tree at its origin. A site's lag is 0 when it serves the latest version,
// otherwise the time since the oldest version it lacks was published: the
// first version published after the one it serves, or the tree's first
// version when it serves none (or one the inventory does not know).
// VersionsBehind counts the versions from that one to the latest.
func buildOverview(d OverviewData, now time.Time) []OverviewRow {
	type key struct{ site, tree string }
	versions := map[string][]Version{}
	for _, v := range d.Versions {
		versions[v.Tree] = append(versions[v.Tree], v)
	}
	for _, vs := range versions {
		slices.SortFunc(vs, func(a, b Version) int {
			return cmp.Or(a.PublishedAt.Compare(b.PublishedAt), cmp.Compare(a.Root, b.Root))
		})
	}
	serves := map[key]string{}
	for _, sv := range d.SiteVersions {
		serves[key{sv.Site, sv.Tree}] = sv.Root
	}
	runs := map[key]Run{}
	for _, r := range d.LatestRuns {
		runs[key{r.Site, r.Tree}] = r
	}
	// The latest version of a tree is what its origin serves now: the
	// version it published last, even when that one was first published
	// long ago (an origin that went back to an earlier tree). Without it,
	// the most recently first-published version.
	latestOf := map[string]string{}
	for _, t := range d.Trees {
		if v := serves[key{t.OriginSite, t.Name}]; v != "" {
			latestOf[t.Name] = v
		} else if vs := versions[t.Name]; len(vs) > 0 {
			latestOf[t.Name] = vs[len(vs)-1].Root
		}
	}

	// The next scheduled run of each enabled tree with a schedule, as
	// the scheduler fires it (UTC, the minute after now); the scheduler
	// skips disabled trees.
	nextRuns := map[string]*time.Time{}
	for _, t := range d.Trees {
		if t.Schedule == "" || t.Disabled {
			continue
		}
		if next, err := gronx.NextTickAfter(t.Schedule, now.UTC(), false); err == nil {
			nextRuns[t.Name] = &next
		}
	}

	row := func(site, tree, role string, paused bool, version string) OverviewRow {
		vs := versions[tree]
		o := OverviewRow{Site: site, Tree: tree, Role: role, Paused: paused, Version: version, State: StateNeverSynced}
		if paused {
			o.State = StateDisabled
		}
		o.LatestVersion = latestOf[tree]
		if r, ok := runs[key{site, tree}]; ok {
			o.LastResult = r.Result
			switch {
			case r.State == RunRunning:
				o.State = RunRunning
			case r.Result != "":
				o.State = r.Result
			}
			last := r.StartedAt
			if r.FinishedAt != nil {
				last = *r.FinishedAt
			}
			o.LastRunAt = &last
		}
		if o.Version != o.LatestVersion && len(vs) > 0 {
			// served is -1 when the site serves none we know.
			served, latest := -1, len(vs)-1
			for i, v := range vs {
				if v.Root == o.Version {
					served = i
				}
				if v.Root == o.LatestVersion {
					latest = i
				}
			}
			missing := vs[0] // the first version, when the site serves none we know
			if served >= 0 && served+1 < len(vs) {
				missing = vs[served+1]
			}
			o.LagSeconds = max(0, int64(now.Sub(missing.PublishedAt)/time.Second))
			o.VersionsBehind = max(0, latest-served)
			since := missing.PublishedAt
			o.BehindSince = &since
		}
		if !paused {
			o.NextRunAt = nextRuns[tree]
		}
		return o
	}

	pausedSite := map[string]bool{}
	for _, s := range d.Sites {
		pausedSite[s.Name] = s.Paused
	}
	pausedTree := map[string]bool{}
	for _, t := range d.Trees {
		pausedTree[t.Name] = t.Paused
	}
	var out []OverviewRow
	for _, t := range d.Trees {
		out = append(out, row(t.OriginSite, t.Name, RoleOrigin, t.Paused || pausedSite[t.OriginSite], latestOf[t.Name]))
	}
	for _, s := range d.Subscriptions {
		paused := s.Paused || pausedSite[s.Site] || pausedTree[s.Tree]
		out = append(out, row(s.Site, s.Tree, RoleReplica, paused, serves[key{s.Site, s.Tree}]))
	}
	slices.SortFunc(out, func(a, b OverviewRow) int {
		return cmp.Or(
			cmp.Compare(a.Tree, b.Tree),
			cmp.Compare(roleOrder(a.Role), roleOrder(b.Role)),
			cmp.Compare(a.Site, b.Site),
		)
	})
	return out
}

func roleOrder(role string) int {
	if role == RoleOrigin {
		return 0
	}
	return 1
}

// Counts says how much the catalog holds and how its subscriptions stand.
type Counts struct {
	Sites, Trees, Subscriptions, Versions int
	// Running counts the site × tree pairs whose newest run is running,
	// Failing those whose newest run failed, Behind the replicas that do
	// not serve their tree's latest version (of a tree that has one).
	Running, Failing, Behind int
}

// Counts reads the catalog's counts at once, from the overview's data.
func (s *Service) Counts(ctx context.Context) (Counts, error) {
	d, err := s.repo.OverviewData(ctx)
	if err != nil {
		return Counts{}, fmt.Errorf("counts: %w", err)
	}
	c := Counts{Sites: len(d.Sites), Trees: len(d.Trees), Subscriptions: len(d.Subscriptions), Versions: len(d.Versions)}
	for _, r := range buildOverview(d, s.now()) {
		switch {
		case r.State == RunRunning:
			c.Running++
		case r.LastResult == string(bus.ResultFailed):
			c.Failing++
		}
		if r.Role == RoleReplica && r.LatestVersion != "" && r.Version != r.LatestVersion {
			c.Behind++
		}
	}
	return c, nil
}
