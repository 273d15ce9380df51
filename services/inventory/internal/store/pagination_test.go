package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/pulpdist/pulpdist/services/inventory/internal/catalog"
)

// TestRunPages pages through runs in both orders, with filters, while
// runs are added between pages, on both databases.
func TestRunPages(t *testing.T) {
	for _, db := range databases {
		t.Run(db.name, func(t *testing.T) { testRunPages(t, open(t, db.url(t))) })
	}
}

func addRun(t *testing.T, s *Store, id, site, result string, started time.Time) {
	t.Helper()
	fin := started.Add(time.Second)
	if _, err := s.RecordEvent(context.Background(), "ev-"+id, catalog.Change{RunFinished: &catalog.Run{
		ID: id, Site: site, Tree: "docs", Kind: "apply", Result: result, StartedAt: started, FinishedAt: &fin,
	}}); err != nil {
		t.Fatal(err)
	}
}

func ids(rs []catalog.Run) []string {
	out := []string{}
	for _, r := range rs {
		out = append(out, r.ID)
	}
	return out
}

func testRunPages(t *testing.T, s *Store) {
	ctx := context.Background()
	seed(t, s)
	base := time.Date(2025, 3, 1, 9, 0, 0, 123456000, time.UTC)
	// r0..r5, one a minute; r2 and r3 start at the same instant, so the id
	// breaks the tie.
	for i := range 6 {
		at := base.Add(time.Duration(i) * time.Minute)
		if i == 3 {
			at = base.Add(2 * time.Minute)
		}
		result := "COMPLETED"
		if i%2 == 1 {
			result = "FAILED"
		}
		addRun(t, s, fmt.Sprintf("r%d", i), []string{"paris", "lyon"}[i%2], result, at)
	}

	walk := func(f catalog.RunFilter, between func(page int)) []string {
		t.Helper()
		var got []string
		for page := 0; ; page++ {
			f.Limit = 3 // two plus one: as RunPage asks
			rs, err := s.Runs(ctx, f)
			if err != nil {
				t.Fatal(err)
			}
			if len(rs) > 2 {
				rs = rs[:2]
			}
			got = append(got, ids(rs)...)
			if len(rs) < 2 {
				return got
			}
			last := rs[len(rs)-1]
			f.After = &catalog.TimeKey{At: last.StartedAt, ID: last.ID}
			if between != nil {
				between(page)
			}
			if page > 10 {
				t.Fatal("no end of pages")
			}
		}
	}
	if got, want := walk(catalog.RunFilter{}, nil), []string{"r5", "r4", "r3", "r2", "r1", "r0"}; !slices.Equal(got, want) {
		t.Errorf("newest first: %v, want %v", got, want)
	}
	if got, want := walk(catalog.RunFilter{Range: catalog.Range{Ascending: true}}, nil), []string{"r0", "r1", "r2", "r3", "r4", "r5"}; !slices.Equal(got, want) {
		t.Errorf("oldest first: %v, want %v", got, want)
	}
	if got, want := walk(catalog.RunFilter{Site: "lyon", Result: "FAILED"}, nil), []string{"r5", "r3", "r1"}; !slices.Equal(got, want) {
		t.Errorf("lyon failed: %v, want %v", got, want)
	}
	f := catalog.RunFilter{Range: catalog.Range{Since: base.Add(time.Minute), Until: base.Add(4 * time.Minute)}}
	if got, want := walk(f, nil), []string{"r3", "r2", "r1"}; !slices.Equal(got, want) {
		t.Errorf("since/until: %v, want %v", got, want)
	}
	// Runs added while paging, newer than the first page and older than
	// the last, neither repeat nor shift what the pages give: the new
	// old one shows up at its place, the new newest one does not.
	got := walk(catalog.RunFilter{}, func(page int) {
		if page == 0 {
			addRun(t, s, "new-newest", "paris", "COMPLETED", base.Add(time.Hour))
			addRun(t, s, "new-oldest", "paris", "COMPLETED", base.Add(-time.Hour))
		}
	})
	if want := []string{"r5", "r4", "r3", "r2", "r1", "r0", "new-oldest"}; !slices.Equal(got, want) {
		t.Errorf("while adding: %v, want %v", got, want)
	}
}

// TestUpdatesAndPause checks UpdateTree, UpdateSite and SetPaused on
// both databases, and that a refused update changes nothing.
func TestUpdatesAndPause(t *testing.T) {
	for _, db := range databases {
		t.Run(db.name, func(t *testing.T) { testUpdatesAndPause(t, open(t, db.url(t))) })
	}
}

func testUpdatesAndPause(t *testing.T, s *Store) {
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Microsecond)
	for _, name := range []string{"origin", "paris", "lyon"} {
		if err := s.CreateSite(ctx, catalog.Site{Name: name, CreatedAt: now}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CreateTree(ctx, catalog.Tree{Name: "docs", OriginSite: "origin", Source: "/srv", Keep: 2, Type: catalog.TreeSimple, AllowedLag: catalog.DefaultAllowedLag, CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	for _, site := range []string{"paris", "lyon"} {
		if err := s.CreateSubscription(ctx, catalog.Subscription{Site: site, Tree: "docs", CreatedAt: now}); err != nil {
			t.Fatal(err)
		}
	}

	refused := errors.New("refused")
	if _, err := s.UpdateTree(ctx, "docs", func(tr catalog.Tree) (catalog.Tree, error) {
		tr.Schedule = "0 1 * * *"
		return tr, refused
	}); !errors.Is(err, refused) {
		t.Fatalf("refused update: %v", err)
	}
	if tr, err := s.Tree(ctx, "docs"); err != nil || tr.Schedule != "" {
		t.Fatalf("after a refused update: %+v, %v", tr, err)
	}
	up, err := s.UpdateTree(ctx, "docs", func(tr catalog.Tree) (catalog.Tree, error) {
		tr.Schedule, tr.Filters, tr.Keep, tr.Disabled, tr.AllowedLag = "0 1 * * *", []string{"- *.tmp"}, 5, true, time.Hour
		return tr, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Tree(ctx, "docs")
	if err != nil || got.Schedule != "0 1 * * *" || !slices.Equal(got.Filters, []string{"- *.tmp"}) || got.Keep != 5 ||
		!got.Disabled || got.AllowedLag != time.Hour || got.Schedule != up.Schedule {
		t.Fatalf("updated tree: %+v, %v", got, err)
	}
	if _, err := s.UpdateTree(ctx, "nope", func(tr catalog.Tree) (catalog.Tree, error) { return tr, nil }); !errors.Is(err, catalog.ErrTreeNotFound) {
		t.Errorf("update unknown tree: %v", err)
	}
	if _, err := s.UpdateSite(ctx, "paris", func(st catalog.Site) (catalog.Site, error) {
		st.Description = "Paris"
		return st, nil
	}); err != nil {
		t.Fatal(err)
	}
	if st, err := s.Site(ctx, "paris"); err != nil || st.Description != "Paris" {
		t.Fatalf("updated site: %+v, %v", st, err)
	}

	subs, err := s.SetPaused(ctx, catalog.SubscriptionFilter{Site: "paris"}, true)
	if err != nil || len(subs) != 1 || !subs[0].Paused || subs[0].Site != "paris" {
		t.Fatalf("pause paris: %+v, %v", subs, err)
	}
	subs, err = s.SetPaused(ctx, catalog.SubscriptionFilter{Tree: "docs"}, true)
	if err != nil || len(subs) != 2 || !subs[0].Paused || !subs[1].Paused {
		t.Fatalf("pause docs: %+v, %v", subs, err)
	}
	subs, err = s.SetPaused(ctx, catalog.SubscriptionFilter{Site: "lyon", Tree: "docs"}, false)
	if err != nil || len(subs) != 1 || subs[0].Paused {
		t.Fatalf("resume lyon/docs: %+v, %v", subs, err)
	}
	if all, err := s.Subscriptions(ctx, catalog.SubscriptionFilter{}); err != nil || len(all) != 2 || all[0].Paused || !all[1].Paused {
		t.Fatalf("subscriptions: %+v, %v", all, err) // lyon, then paris
	}
	for _, tc := range []struct {
		f    catalog.SubscriptionFilter
		want error
	}{
		{catalog.SubscriptionFilter{Site: "nope"}, catalog.ErrSiteNotFound},
		{catalog.SubscriptionFilter{Tree: "nope"}, catalog.ErrTreeNotFound},
		{catalog.SubscriptionFilter{Site: "origin", Tree: "docs"}, catalog.ErrSubscriptionNotFound},
		{catalog.SubscriptionFilter{}, catalog.ErrInvalid},
	} {
		if _, err := s.SetPaused(ctx, tc.f, true); !errors.Is(err, tc.want) {
			t.Errorf("SetPaused(%+v): %v, want %v", tc.f, err, tc.want)
		}
	}

	// Every change is in the audit log, a refused one is not.
	log, err := s.AuditLog(ctx, catalog.AuditFilter{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, e := range log {
		if e.Action != catalog.AuditCreate {
			actions = append(actions, e.Action+" "+e.Entity+" "+e.Name)
		}
	}
	slices.Sort(actions)
	if want := []string{"pause site paris", "pause tree docs", "resume subscription lyon/docs", "update site paris", "update tree docs"}; !slices.Equal(actions, want) {
		t.Errorf("audited %v, want %v", actions, want)
	}

	// Arrivals: the first successful run to each version, per site.
	for i, r := range []struct {
		id, site, to, result string
		at                   time.Duration
	}{
		{"a1", "paris", "v1", "COMPLETED", 0},
		{"a2", "paris", "v1", "UP_TO_DATE", time.Hour},
		{"a3", "lyon", "v1", "FAILED", 0},
		{"a4", "lyon", "v1", "COMPLETED", 2 * time.Hour},
		{"a5", "lyon", "v2", "PARTIAL", 3 * time.Hour},
	} {
		fin := now.Add(r.at)
		if _, err := s.RecordEvent(ctx, fmt.Sprintf("arr-%d", i), catalog.Change{RunFinished: &catalog.Run{
			ID: r.id, Site: r.site, Tree: "docs", To: r.to, Result: r.result, StartedAt: fin.Add(-time.Minute), FinishedAt: &fin,
		}}); err != nil {
			t.Fatal(err)
		}
	}
	as, err := s.Arrivals(ctx, "docs", []string{"v1", "v2"})
	if err != nil {
		t.Fatal(err)
	}
	// Only the versions asked for.
	if v2, err := s.Arrivals(ctx, "docs", []string{"v2"}); err != nil || len(v2) != 0 {
		t.Fatalf("arrivals of v2 (only a PARTIAL run) = %+v, %v", v2, err)
	}
	if none, err := s.Arrivals(ctx, "docs", nil); err != nil || len(none) != 0 {
		t.Fatalf("arrivals of no version = %+v, %v", none, err)
	}
	want := []catalog.Arrival{{Site: "lyon", Version: "v1", At: now.Add(2 * time.Hour)}, {Site: "paris", Version: "v1", At: now}}
	if len(as) != len(want) {
		t.Fatalf("arrivals %+v, want %+v", as, want)
	}
	for i := range want {
		if as[i].Site != want[i].Site || as[i].Version != want[i].Version || !as[i].At.Equal(want[i].At) {
			t.Errorf("arrival %d: %+v, want %+v", i, as[i], want[i])
		}
	}
}

func TestDeltaPages(t *testing.T) {
	for _, db := range databases {
		t.Run(db.name, func(t *testing.T) { testDeltaPages(t, open(t, db.url(t))) })
	}
}

// testDeltaPages pages through deltas seen at the same instant: the key
// of each (catalog.DeltaKey) orders them, and the rows after a key are
// the ones not given yet, in both orders.
func testDeltaPages(t *testing.T, s *Store) {
	ctx := context.Background()
	seed(t, s)
	for i, d := range []catalog.Delta{
		{Tree: "docs", To: root('a')}, {Tree: "docs", From: root('a'), To: root('b')}, {Tree: "isos", To: root('c')},
		{Tree: "docs", From: root('b'), To: root('c')},
	} {
		d.FirstSeenAt = t0
		if i == 3 {
			d.FirstSeenAt = t0.Add(time.Second)
		}
		_, err := s.RecordEvent(ctx, "d"+strconv.Itoa(i), catalog.Change{Delta: &d})
		must(t, err)
	}
	for _, asc := range []bool{false, true} {
		var got []string
		rg := catalog.Range{Ascending: asc}
		for range 10 {
			ds, err := s.Deltas(ctx, catalog.DeltaFilter{Range: rg, Limit: 1})
			must(t, err)
			if len(ds) == 0 {
				break
			}
			k := catalog.DeltaKey(ds[0])
			got = append(got, k.ID)
			rg.After = &k
		}
		if len(got) != 4 || len(uniq(got)) != 4 {
			t.Fatalf("ascending=%t: pages %v, want 4 distinct deltas", asc, got)
		}
		if first := got[0]; (first == "docs/"+root('b')+"/"+root('c')) == asc {
			t.Errorf("ascending=%t: first %s", asc, first)
		}
	}
	ds, err := s.Deltas(ctx, catalog.DeltaFilter{Tree: "docs", Range: catalog.Range{Since: t0.Add(time.Second)}, Limit: 10})
	must(t, err)
	if len(ds) != 1 || ds[0].From != root('b') {
		t.Fatalf("deltas of docs since t0+1s: %+v", ds)
	}
}

func uniq(ss []string) map[string]bool {
	m := map[string]bool{}
	for _, s := range ss {
		m[s] = true
	}
	return m
}
