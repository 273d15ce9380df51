package catalog

import (
	"testing"
	"time"
)

// TestOverviewBehind checks the versions behind, the time since and the
// next scheduled run of each cell.
func TestOverviewBehind(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 30, 0, 0, time.UTC)
	v := func(root string, ago time.Duration) Version {
		return Version{Tree: "docs", Root: root, PublishedAt: now.Add(-ago)}
	}
	d := OverviewData{
		Trees: []Tree{
			{Name: "docs", OriginSite: "origin", Schedule: "0 2 * * *"},
			{Name: "manual", OriginSite: "origin"},
			// Disabled: the scheduler does not fire it.
			{Name: "off", OriginSite: "origin", Schedule: "0 2 * * *", Disabled: true},
		},
		Subscriptions: []Subscription{
			{Site: "at-v1", Tree: "docs"}, {Site: "at-v2", Tree: "docs"}, {Site: "at-v3", Tree: "docs"},
			{Site: "none", Tree: "docs"}, {Site: "paused", Tree: "docs", Paused: true}, {Site: "m", Tree: "manual"},
			{Site: "d", Tree: "off"},
		},
		Versions: []Version{v("v1", 3*time.Hour), v("v2", 2*time.Hour), v("v3", time.Hour)},
		SiteVersions: []SiteVersion{
			// The origin went back to v2: it is the latest, v3 is not.
			{Site: "origin", Tree: "docs", Root: "v2"},
			{Site: "at-v1", Tree: "docs", Root: "v1"}, {Site: "at-v2", Tree: "docs", Root: "v2"},
			{Site: "at-v3", Tree: "docs", Root: "v3"}, {Site: "paused", Tree: "docs", Root: "v1"},
		},
		LatestRuns: []Run{{Site: "at-v1", Tree: "docs", State: RunDone, Result: "FAILED", StartedAt: now.Add(-time.Minute)}},
	}
	next := time.Date(2025, 3, 2, 2, 0, 0, 0, time.UTC)
	type want struct {
		behind int
		since  time.Duration // 0: nil
		next   bool
		result string
	}
	wants := map[string]want{
		"origin": {next: true},
		"at-v1":  {behind: 1, since: 2 * time.Hour, next: true, result: "FAILED"},
		"at-v2":  {next: true},
		"at-v3":  {behind: 0, since: 3 * time.Hour, next: true}, // ahead of the origin: lag from the first version
		"none":   {behind: 2, since: 3 * time.Hour, next: true},
		"paused": {behind: 1, since: 2 * time.Hour},
		"m":      {},
		"d":      {},
	}
	rows := buildOverview(d, now)
	if len(rows) != len(wants)+2 { // + the origins of manual and off
		t.Fatalf("%d rows", len(rows))
	}
	for _, r := range rows {
		w, ok := wants[r.Site]
		if r.Site == "origin" && r.Tree != "docs" {
			w, ok = want{}, true // no schedule, or a disabled one
		}
		if !ok {
			t.Fatalf("unexpected row %s/%s", r.Site, r.Tree)
		}
		if r.VersionsBehind != w.behind || r.LastResult != w.result {
			t.Errorf("%s/%s: behind %d result %q, want %d %q", r.Site, r.Tree, r.VersionsBehind, r.LastResult, w.behind, w.result)
		}
		switch {
		case w.since == 0 && r.BehindSince != nil, w.since != 0 && (r.BehindSince == nil || !r.BehindSince.Equal(now.Add(-w.since))):
			t.Errorf("%s/%s: behind since %v, want %s ago", r.Site, r.Tree, r.BehindSince, w.since)
		}
		if w.next != (r.NextRunAt != nil) || (r.NextRunAt != nil && !r.NextRunAt.Equal(next)) {
			t.Errorf("%s/%s: next run %v, want %t (%s)", r.Site, r.Tree, r.NextRunAt, w.next, next)
		}
	}
}
