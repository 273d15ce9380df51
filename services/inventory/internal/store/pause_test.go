package store

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/pulpdist/pulpdist/services/inventory/internal/catalog"
)

// TestPauseFlags checks on both databases that pausing a site or a tree
// marks the site or tree itself, so the pause still holds for a
// subscription made afterwards, and that resuming clears it.
func TestPauseFlags(t *testing.T) {
	for _, db := range databases {
		t.Run(db.name, func(t *testing.T) { testPauseFlags(t, open(t, db.url(t))) })
	}
}

func testPauseFlags(t *testing.T, s *Store) {
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Microsecond)
	for _, name := range []string{"origin", "paris", "lyon"} {
		if err := s.CreateSite(ctx, catalog.Site{Name: name, CreatedAt: now}); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"docs", "isos"} {
		if err := s.CreateTree(ctx, catalog.Tree{Name: name, OriginSite: "origin", Source: "/srv", Keep: 2, Type: catalog.TreeSimple, AllowedLag: catalog.DefaultAllowedLag, CreatedAt: now}); err != nil {
			t.Fatal(err)
		}
	}
	sitePaused := func(name string) bool {
		t.Helper()
		st, err := s.Site(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		return st.Paused
	}
	treePaused := func(name string) bool {
		t.Helper()
		tr, err := s.Tree(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		return tr.Paused
	}
	if sitePaused("paris") || treePaused("docs") {
		t.Fatal("a new site or tree is paused")
	}

	// Paused with no subscription at all: the flag is the only trace.
	if subs, err := s.SetPaused(ctx, catalog.SubscriptionFilter{Site: "paris"}, true); err != nil || len(subs) != 0 {
		t.Fatalf("pause paris: %+v, %v", subs, err)
	}
	if subs, err := s.SetPaused(ctx, catalog.SubscriptionFilter{Tree: "docs"}, true); err != nil || len(subs) != 0 {
		t.Fatalf("pause docs: %+v, %v", subs, err)
	}
	if !sitePaused("paris") || sitePaused("lyon") || !treePaused("docs") || treePaused("isos") {
		t.Fatal("pause flags not set, or set on the wrong site or tree")
	}
	sites, err := s.Sites(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range sites {
		if st.Paused != (st.Name == "paris") {
			t.Errorf("listed site %s paused=%t", st.Name, st.Paused)
		}
	}
	trees, err := s.Trees(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, tr := range trees {
		if tr.Paused != (tr.Name == "docs") {
			t.Errorf("listed tree %s paused=%t", tr.Name, tr.Paused)
		}
	}
	// A subscription made now is unpaused itself; the site's flag holds.
	if err := s.CreateSubscription(ctx, catalog.Subscription{Site: "paris", Tree: "isos", CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	if !sitePaused("paris") {
		t.Fatal("the site's pause did not survive a new subscription")
	}

	// One subscription, or a refused request, leaves the flags alone.
	if _, err := s.SetPaused(ctx, catalog.SubscriptionFilter{Site: "paris", Tree: "isos"}, false); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SetPaused(ctx, catalog.SubscriptionFilter{Site: "lyon", Tree: "docs"}, true); !errors.Is(err, catalog.ErrSubscriptionNotFound) {
		t.Fatalf("pause lyon/docs: %v", err)
	}
	if !sitePaused("paris") || sitePaused("lyon") || !treePaused("docs") {
		t.Fatal("a subscription's pause changed a site's or tree's flag")
	}
	// Updating a site or tree keeps its pause.
	if _, err := s.UpdateTree(ctx, "docs", func(tr catalog.Tree) (catalog.Tree, error) { tr.Keep = 3; return tr, nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UpdateSite(ctx, "paris", func(st catalog.Site) (catalog.Site, error) { st.Description = "P"; return st, nil }); err != nil {
		t.Fatal(err)
	}
	if !sitePaused("paris") || !treePaused("docs") {
		t.Fatal("an update resumed the site or tree")
	}

	if _, err := s.SetPaused(ctx, catalog.SubscriptionFilter{Site: "paris"}, false); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SetPaused(ctx, catalog.SubscriptionFilter{Tree: "docs"}, false); err != nil {
		t.Fatal(err)
	}
	if sitePaused("paris") || treePaused("docs") {
		t.Fatal("resume did not clear the flags")
	}
}
