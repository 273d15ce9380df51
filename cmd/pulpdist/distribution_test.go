package main

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/pulpdist/pulpdist/cmd/pulpdist/internal/devstack"
	"github.com/pulpdist/pulpdist/libs/bus"
	"github.com/pulpdist/pulpdist/libs/inventoryapi"
	"github.com/pulpdist/pulpdist/libs/poll"
)

// doneRun waits for the newest finished run of tree at site that matches
// ok, and returns it.
func doneRun(t *testing.T, c *inventoryapi.Client, tree, site string, ok func(inventoryapi.Run) bool) inventoryapi.Run {
	t.Helper()
	var got inventoryapi.Run
	poll.Until(t, 60*time.Second, func() error {
		runs, err := c.Runs(t.Context(), tree, site)
		if err != nil {
			return err
		}
		for _, r := range runs {
			if r.State == inventoryapi.RunDone && ok(r) {
				got = r
				return nil
			}
		}
		return fmt.Errorf("no finished run of %s at %s yet (%d runs)", tree, site, len(runs))
	})
	return got
}

// createSites registers the sites in the inventory.
func createSites(t *testing.T, c *inventoryapi.Client, names ...string) {
	t.Helper()
	for _, s := range names {
		if _, err := c.CreateSite(t.Context(), inventoryapi.Site{Name: s}); err != nil {
			t.Fatal(err)
		}
	}
}

func completed(r inventoryapi.Run) bool { return r.Kind == "apply" && r.Result == "COMPLETED" }

// TestChainedMirrorsCanariesAndReverseFlow runs a network of three sites
// as one process: a tree goes from the origin to a hub first (its canary)
// and then to a leaf; the hub republishes a filtered part of its replica
// as a tree of its own, which the leaf gets as soon as the hub has the
// new version (chained mirrors); and the leaf is the origin of its own lab
// logs, which flow back to the origin.
func TestChainedMirrorsCanariesAndReverseFlow(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "upstream")
	writeFile(t, src, "iso/disk.img", string(make([]byte, 50_000)), 0o644)
	writeFile(t, src, "docs/README", "read me\n", 0o644)
	logs := filepath.Join(dir, "lab-logs")
	writeFile(t, logs, "run-1/result.txt", "PASS\n", 0o644)

	st := startStack(t, devstack.Options{
		DataDir: filepath.Join(dir, "stack"), NATSPort: -1, APIAddr: "127.0.0.1:0",
		Sites: []string{"origin", "hub", "leaf"}, DeltaCaches: 1,
	})
	ready(t, st.APIURL)
	ctx := t.Context()
	c := inventoryapi.NewClient(st.APIURL, nil).WithToken(st.Token)
	createSites(t, c, "origin", "hub", "leaf")
	for _, tr := range []inventoryapi.Tree{
		{Name: "upstream", OriginSite: "origin", Source: src, CanarySites: []string{"hub"}},
		{Name: "regional", OriginSite: "hub", Source: "replica:upstream", Filters: []string{"- /iso/"}},
		{Name: "lab-logs", OriginSite: "leaf", Source: logs},
	} {
		if _, err := c.CreateTree(ctx, tr); err != nil {
			t.Fatal(err)
		}
	}
	for _, sub := range []inventoryapi.Subscription{
		{Site: "hub", Tree: "upstream"}, {Site: "leaf", Tree: "upstream"}, {Site: "leaf", Tree: "regional"}, {Site: "origin", Tree: "lab-logs"},
	} {
		if _, err := c.Subscribe(ctx, sub); err != nil {
			t.Fatal(err)
		}
	}

	acc, err := c.Sync(ctx, "upstream")
	if err != nil {
		t.Fatal(err)
	}
	of := func(r inventoryapi.Run) bool { return completed(r) && r.TriggerID == acc.TriggerID }
	hub := doneRun(t, c, "upstream", "hub", of)
	leaf := doneRun(t, c, "upstream", "leaf", of)
	if leaf.StartedAt.Before(*hub.FinishedAt) {
		t.Errorf("the leaf started (%s) before the canary hub finished (%s)", leaf.StartedAt, *hub.FinishedAt)
	}
	// The hub's new replica triggered the regional tree: the leaf has it,
	// the filtered part of upstream.
	regional := doneRun(t, c, "regional", "leaf", completed)
	want := scan(t, src)
	var docs []string
	for _, e := range want.Entries {
		if e.Path != "iso" && filepath.Dir(e.Path) != "iso" {
			docs = append(docs, e.Path)
		}
	}
	served := scan(t, filepath.Join(st.SiteDir("leaf"), "trees", "regional", "current"))
	var got []string
	for _, e := range served.Entries {
		got = append(got, e.Path)
	}
	if fmt.Sprint(got) != fmt.Sprint(docs) {
		t.Errorf("the leaf's regional tree holds %q, want %q", got, docs)
	}
	if regional.To != served.Root() {
		t.Errorf("regional run to %s, the leaf serves %s", regional.To, served.Root())
	}
	if up := scan(t, filepath.Join(st.SiteDir("leaf"), "trees", "upstream", "current")); up.Root() != want.Root() {
		t.Errorf("the leaf's upstream is %s, the origin's %s", up.Root(), want.Root())
	}

	// The other way: the leaf is the origin of its lab logs.
	if _, err := c.Sync(ctx, "lab-logs"); err != nil {
		t.Fatal(err)
	}
	back := doneRun(t, c, "lab-logs", "origin", completed)
	if got := scan(t, filepath.Join(st.SiteDir("origin"), "trees", "lab-logs", "current")); got.Root() != scan(t, logs).Root() || back.To != got.Root() {
		t.Errorf("lab logs at the origin: %s (run to %s), want %s", got.Root(), back.To, scan(t, logs).Root())
	}
}

// TestFarBehindSiteFollowsTheChain: a site left at v1 while another went
// v1→v2→v3 is stepped along the two stored packs (bytes cost nothing at an
// unlimited link rate), one atomic switch each, and no v1→v3 delta is
// computed.
func TestFarBehindSiteFollowsTheChain(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	writeFile(t, src, "notes.txt", "version 1\n", 0o644)
	st := startStack(t, devstack.Options{
		DataDir: filepath.Join(dir, "stack"), NATSPort: -1, APIAddr: "127.0.0.1:0",
		Sites: []string{"origin", "near", "far"}, DeltaCaches: 1, DeltaLinkRate: "unlimited",
	})
	ready(t, st.APIURL)
	ctx := t.Context()
	c := inventoryapi.NewClient(st.APIURL, nil).WithToken(st.Token)
	createSites(t, c, "origin", "near", "far")
	if _, err := c.CreateTree(ctx, inventoryapi.Tree{Name: "demo", OriginSite: "origin", Source: src}); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"near", "far"} {
		if _, err := c.Subscribe(ctx, inventoryapi.Subscription{Site: s, Tree: "demo"}); err != nil {
			t.Fatal(err)
		}
	}
	acc, err := c.Sync(ctx, "demo")
	if err != nil {
		t.Fatal(err)
	}
	waitRuns(t, c, acc.TriggerID, "near", "far")
	v1 := scan(t, src).Root()
	// near alone goes to v2, then v3.
	var roots []string
	for i := 2; i <= 3; i++ {
		writeFile(t, src, "notes.txt", fmt.Sprintf("version %d\n", i), 0o644)
		root := scan(t, src).Root()
		if _, err := c.SyncSubscription(ctx, "near", "demo"); err != nil {
			t.Fatal(err)
		}
		doneRun(t, c, "demo", "near", func(r inventoryapi.Run) bool { return completed(r) && r.To == root })
		roots = append(roots, root)
	}
	if _, err := c.SyncSubscription(ctx, "far", "demo"); err != nil {
		t.Fatal(err)
	}
	last := doneRun(t, c, "demo", "far", func(r inventoryapi.Run) bool { return completed(r) && r.To == roots[1] })
	first := doneRun(t, c, "demo", "far", func(r inventoryapi.Run) bool { return completed(r) && r.To == roots[0] })
	if first.From != v1 || last.From != roots[0] || first.TriggerID != last.TriggerID {
		t.Fatalf("far's runs %+v then %+v: want v1→v2 and v2→v3 of one trigger", first, last)
	}
	if got := scan(t, filepath.Join(st.SiteDir("far"), "trees", "demo", "current")).Root(); got != roots[1] {
		t.Fatalf("far serves %s, want v3 %s", got, roots[1])
	}
	if _, err := objectStore(t, st.NATSURL, bus.BucketDeltas).GetInfo(ctx, bus.DeltaID("demo", v1, roots[1])); err == nil {
		t.Fatal("a direct v1→v3 pack was computed")
	}
}
