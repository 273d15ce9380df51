package main

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/pulpdist/pulpdist/cmd/pulpdist/internal/devstack"
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
	for _, s := range []string{"origin", "hub", "leaf"} {
		if _, err := c.CreateSite(ctx, inventoryapi.Site{Name: s}); err != nil {
			t.Fatal(err)
		}
	}
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
