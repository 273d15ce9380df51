package catalog

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/pulpdist/pulpdist/libs/bus"
)

func TestValidateSource(t *testing.T) {
	for _, tc := range []struct {
		in, err string
	}{
		{in: "/srv/docs"},
		{in: "/"},
		{in: "/srv/with space/ünïcode"},
		{in: "", err: "required"},
		{in: "srv/docs", err: "absolute"},
		{in: "./docs", err: "absolute"},
		{in: "/srv/docs/", err: "clean"},
		{in: "/srv/../etc", err: "clean"},
		{in: "/srv//docs", err: "clean"},
		{in: "/srv/./docs", err: "clean"},
		{in: "/srv/\x00", err: "NUL"},
		{in: "/" + strings.Repeat("a", maxSource), err: "at most"},
		{in: "/srv/\xff", err: "UTF-8"},
		{in: "rsync://mirror.example.org/debian"},
		{in: "replica:fedora"},
		{in: "rsync://mirror.example.org", err: "no module"},
		{in: "rsync://u@h/m", err: "credentials"},
		{in: "replica:Bad", err: "invalid name"},
	} {
		err := ValidateSource(tc.in)
		check(t, "ValidateSource("+tc.in+")", err, tc.err)
	}
}

func TestValidateSchedule(t *testing.T) {
	for _, tc := range []struct {
		in, err string
	}{
		{in: ""},
		{in: "0 * * * *"},
		{in: "*/15 2-4 1,15 * mon-fri"},
		{in: "@daily", err: "want 5"},
		{in: "* * * *", err: "has 4 fields"},
		{in: "0 0 * * * *", err: "has 6 fields"},
		{in: "61 * * * *", err: "not a valid cron"},
		{in: "a b c d e", err: "not a valid cron"},
		{in: "* * 32 * *", err: "not a valid cron"},
	} {
		check(t, "ValidateSchedule("+tc.in+")", ValidateSchedule(tc.in), tc.err)
	}
}

func check(t *testing.T, what string, err error, want string) {
	t.Helper()
	if want == "" {
		if err != nil {
			t.Errorf("%s: %v", what, err)
		}
		return
	}
	if err == nil || !strings.Contains(err.Error(), want) || !errors.Is(err, ErrInvalid) {
		t.Errorf("%s: err = %v, want ErrInvalid containing %q", what, err, want)
	}
}

func FuzzValidateSchedule(f *testing.F) {
	for _, s := range []string{"0 * * * *", "*/5 1-3 L * 5#2", "* * * * 7W", "0 0 29 2 *", "1-100/0 * * * *"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		err := ValidateSchedule(s)
		if err != nil && !errors.Is(err, ErrInvalid) {
			t.Fatalf("error not marked invalid: %v", err)
		}
	})
}

func FuzzValidateSource(f *testing.F) {
	for _, s := range []string{"/srv", "a/b", "/a/../b", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if ValidateSource(s) != nil {
			return
		}
		kind, _, err := bus.ParseSource(s)
		if err != nil || (kind == bus.SourceDir && (strings.Contains(s, "/../") || strings.Contains(s, "//"))) {
			t.Fatalf("accepted %q", s)
		}
	})
}

func TestBuildOverview(t *testing.T) {
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	ago := func(s int) time.Time { return now.Add(-time.Duration(s) * time.Second) }
	r := func(c byte) string { return strings.Repeat(string(c), 64) }
	finishedAt := ago(5)
	d := OverviewData{
		Trees: []Tree{
			{Name: "docs", OriginSite: "origin"},
			{Name: "empty", OriginSite: "origin"},
		},
		Subscriptions: []Subscription{
			{Site: "current", Tree: "docs"},
			{Site: "behind", Tree: "docs"},
			{Site: "fresh", Tree: "docs"},
			{Site: "paused", Tree: "docs", Paused: true},
			{Site: "unknown", Tree: "docs"},
			{Site: "current", Tree: "empty"},
		},
		Versions: []Version{ // out of order on purpose
			{Tree: "docs", Root: r('c'), PublishedAt: ago(100)},
			{Tree: "docs", Root: r('a'), PublishedAt: ago(300)},
			{Tree: "docs", Root: r('b'), PublishedAt: ago(200)},
		},
		SiteVersions: []SiteVersion{
			{Site: "current", Tree: "docs", Root: r('c')},
			{Site: "behind", Tree: "docs", Root: r('a')},
			{Site: "unknown", Tree: "docs", Root: r('z')},
		},
		LatestRuns: []Run{
			{Site: "current", Tree: "docs", State: RunDone, Result: "COMPLETED", StartedAt: ago(10), FinishedAt: &finishedAt},
			{Site: "behind", Tree: "docs", State: RunRunning, StartedAt: ago(3)},
			{Site: "origin", Tree: "docs", State: RunDone, Result: "UP_TO_DATE", StartedAt: ago(100), FinishedAt: &finishedAt},
		},
	}
	got := buildOverview(d, now)
	type row struct {
		site, tree, role, version, state string
		lag                              int64
		lastRun                          *time.Time
	}
	want := []row{
		{"origin", "docs", RoleOrigin, r('c'), "UP_TO_DATE", 0, &finishedAt},
		{"behind", "docs", RoleReplica, r('a'), RunRunning, 200, ptr(ago(3))}, // misses b, published 200 s ago
		{"current", "docs", RoleReplica, r('c'), "COMPLETED", 0, &finishedAt},
		{"fresh", "docs", RoleReplica, "", StateNeverSynced, 300, nil}, // serves nothing: since the first version
		{"paused", "docs", RoleReplica, "", StateDisabled, 300, nil},
		{"unknown", "docs", RoleReplica, r('z'), StateNeverSynced, 300, nil},
		{"origin", "empty", RoleOrigin, "", StateNeverSynced, 0, nil},
		{"current", "empty", RoleReplica, "", StateNeverSynced, 0, nil},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d rows, want %d: %+v", len(got), len(want), got)
	}
	for i, w := range want {
		g := got[i]
		if g.Site != w.site || g.Tree != w.tree || g.Role != w.role || g.Version != w.version || g.State != w.state || g.LagSeconds != w.lag {
			t.Errorf("row %d = %+v, want %+v", i, g, w)
		}
		if (g.LastRunAt == nil) != (w.lastRun == nil) || (g.LastRunAt != nil && !g.LastRunAt.Equal(*w.lastRun)) {
			t.Errorf("row %d last run = %v, want %v", i, g.LastRunAt, w.lastRun)
		}
		if g.Tree == "docs" && g.LatestVersion != r('c') {
			t.Errorf("row %d latest = %q", i, g.LatestVersion)
		}
	}
}

func ptr(t time.Time) *time.Time { return &t }

// TestOverviewAfterTheOriginWentBack: an origin that publishes an earlier
// tree again (a → b → a) serves a; sites at a are current, sites at b are
// not, although b was first published later.
func TestOverviewAfterTheOriginWentBack(t *testing.T) {
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	a, b := strings.Repeat("a", 64), strings.Repeat("b", 64)
	d := OverviewData{
		Trees:         []Tree{{Name: "docs", OriginSite: "origin"}},
		Subscriptions: []Subscription{{Site: "at-a", Tree: "docs"}, {Site: "at-b", Tree: "docs"}},
		Versions: []Version{
			{Tree: "docs", Root: a, PublishedAt: now.Add(-300 * time.Second)},
			{Tree: "docs", Root: b, PublishedAt: now.Add(-200 * time.Second)},
		},
		SiteVersions: []SiteVersion{
			{Site: "origin", Tree: "docs", Root: a},
			{Site: "at-a", Tree: "docs", Root: a},
			{Site: "at-b", Tree: "docs", Root: b},
		},
	}
	rows := map[string]OverviewRow{}
	for _, r := range buildOverview(d, now) {
		rows[r.Site] = r
	}
	if r := rows["origin"]; r.Version != a || r.LatestVersion != a {
		t.Errorf("origin %+v, want serving and latest a", r)
	}
	if r := rows["at-a"]; r.LatestVersion != a || r.LagSeconds != 0 {
		t.Errorf("at-a %+v, want current", r)
	}
	if r := rows["at-b"]; r.LatestVersion != a || r.LagSeconds == 0 {
		t.Errorf("at-b %+v, want behind", r)
	}
}

// TestOverviewPausedSitesAndTrees: a paused site or tree shows its rows
// as paused and disabled even where the subscription itself is active,
// and they get no next run.
func TestOverviewPausedSitesAndTrees(t *testing.T) {
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	d := OverviewData{
		Sites: []Site{{Name: "origin"}, {Name: "quiet", Paused: true}, {Name: "busy"}},
		Trees: []Tree{
			{Name: "docs", OriginSite: "origin", Schedule: "*/5 * * * *"},
			{Name: "held", OriginSite: "origin", Schedule: "*/5 * * * *", Paused: true},
		},
		Subscriptions: []Subscription{
			{Site: "quiet", Tree: "docs"},
			{Site: "busy", Tree: "docs"},
			{Site: "busy", Tree: "held"},
		},
	}
	want := map[[2]string]bool{
		{"origin", "docs"}: false, {"quiet", "docs"}: true, {"busy", "docs"}: false,
		{"origin", "held"}: true, {"busy", "held"}: true,
	}
	rows := buildOverview(d, now)
	if len(rows) != len(want) {
		t.Fatalf("%d rows, want %d", len(rows), len(want))
	}
	for _, r := range rows {
		paused, ok := want[[2]string{r.Site, r.Tree}]
		if !ok {
			t.Fatalf("unexpected row %s/%s", r.Site, r.Tree)
		}
		if r.Paused != paused || (paused && (r.State != StateDisabled || r.NextRunAt != nil)) {
			t.Errorf("%s/%s: paused %t state %s next %v, want paused %t", r.Site, r.Tree, r.Paused, r.State, r.NextRunAt, paused)
		}
	}
}
