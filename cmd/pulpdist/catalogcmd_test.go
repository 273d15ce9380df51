package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/pulpdist/pulpdist/libs/inventoryapi"
)

// TestCatalogCommands declares, changes, pauses and deletes sites, trees
// and subscriptions through the CLI against a real inventory.
func TestCatalogCommands(t *testing.T) {
	api := startInventory(t)
	run := runner(t, api)
	run("site", "create", "hq", "--location", "Paris")
	run("site", "create", "lab-1", "--bandwidth", "2000000", "--window", "mon-fri 22:00-06:00", "--wan-link", "10 Mbit/s")
	out := run("--json", "tree", "create", "builds", "--origin", "hq", "--source", "/srv/builds",
		"--schedule", "0 2 * * *", "--filter", "- *.tmp", "--type", "snapshot", "--max-deletions", "50", "--protect", "/keep/**", "--allowed-lag", "6h")
	var tr inventoryapi.Tree
	if err := json.Unmarshal([]byte(out), &tr); err != nil || tr.Type != "snapshot" || tr.MaxDeletions != 50 || tr.AllowedLag != "6h" ||
		len(tr.Filters) != 1 || len(tr.ProtectedPaths) != 1 {
		t.Fatalf("tree create --json: %q: %v", out, err)
	}
	run("subscribe", "lab-1", "builds")

	// set changes what is given and keeps the rest.
	out = run("--json", "tree", "set", "builds", "--keep", "4", "--schedule", "")
	tr = inventoryapi.Tree{}
	if err := json.Unmarshal([]byte(out), &tr); err != nil || tr.Keep != 4 || tr.Schedule != "" || tr.Type != "snapshot" || tr.MaxDeletions != 50 {
		t.Fatalf("tree set: %q: %v", out, err)
	}
	out = run("--json", "site", "set", "lab-1", "--bandwidth", "0", "--location", "Brno")
	var site inventoryapi.Site
	if err := json.Unmarshal([]byte(out), &site); err != nil || site.BandwidthLimit != 0 || site.Location != "Brno" ||
		site.WANLink != "10 Mbit/s" || len(site.BandwidthWindows) != 1 || site.BandwidthWindows[0] != "Mon-Fri 22:00-06:00" {
		t.Fatalf("site set: %q: %v", out, err)
	}
	if out := run("tree", "show", "builds"); !strings.Contains(out, "/keep/**") || !strings.Contains(out, "snapshot") {
		t.Fatalf("tree show:\n%s", out)
	}
	if out := run("sites"); !strings.Contains(out, "lab-1") || !strings.Contains(out, "Brno") || !strings.Contains(out, "Mon-Fri 22:00-06:00") {
		t.Fatalf("sites:\n%s", out)
	}
	if out := run("site", "pause", "lab-1"); !strings.Contains(out, "builds") || !strings.Contains(out, "true") {
		t.Fatalf("site pause:\n%s", out)
	}
	run("site", "resume", "lab-1")
	if out := run("sync", "builds", "--site", "lab-1"); !strings.Contains(out, "lab-1") {
		t.Fatalf("sync --site:\n%s", out)
	}
	if out := run("sync", "builds", "--confirm-deletions"); !strings.Contains(out, "builds") {
		t.Fatalf("sync --confirm-deletions:\n%s", out)
	}
	out = run("--json", "tree", "set", "builds", "--canary", "lab-1", "--priority", "urgent")
	tr = inventoryapi.Tree{}
	if err := json.Unmarshal([]byte(out), &tr); err != nil || len(tr.CanarySites) != 1 || tr.CanarySites[0] != "lab-1" || tr.Priority != "urgent" {
		t.Fatalf("tree set --canary --priority: %q: %v", out, err)
	}
	out = run("--json", "tree", "set", "builds", "--clear-canaries", "--type", "versioned", "--sync-latest", "2")
	tr = inventoryapi.Tree{}
	if err := json.Unmarshal([]byte(out), &tr); err != nil || len(tr.CanarySites) != 0 || tr.SyncLatest != 2 || tr.Priority != "urgent" {
		t.Fatalf("tree set --clear-canaries --sync-latest: %q: %v", out, err)
	}

	// Bad input is refused with the API's reason, and nothing changes.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"tree", "create", "x"}, "--origin and --source are required"},
		{[]string{"tree", "create", "Bad_Name", "--origin", "hq", "--source", "/srv/x"}, "tree"},
		{[]string{"tree", "set", "builds"}, "give at least one setting"},
		{[]string{"tree", "set", "builds", "--schedule", "every day"}, "schedule"},
		{[]string{"tree", "set", "builds", "--filter", "nonsense"}, "filter"},
		{[]string{"tree", "set", "builds", "--type", "weekly"}, "type"},
		{[]string{"tree", "set", "nope", "--keep", "2"}, "Not Found"},
		{[]string{"site", "set", "lab-1", "--window", "nights"}, "bandwidth window"},
		{[]string{"site", "set", "lab-1", "--bandwidth", "-1"}, "negative"},
		{[]string{"tree", "delete", "builds"}, "add --yes"},
		{[]string{"site", "delete", "hq", "--yes"}, "origin of tree builds"},
		{[]string{"unsubscribe", "hq", "builds"}, "Not Found"},
		{[]string{"sync", "builds", "--site", "hq"}, "Not Found"},
		{[]string{"sync", "builds", "--site", "lab-1", "--confirm-deletions"}, "whole tree"},
		{[]string{"tree", "set", "builds", "--priority", "asap"}, "priority"},
		{[]string{"tree", "set", "builds", "--type", "simple"}, "sync_latest applies to a versioned tree"},
	} {
		if _, err := cli(t, append([]string{"--api", api}, tc.args...)...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: err = %v, want %q", tc.args, err, tc.want)
		}
	}
	out = run("--json", "tree", "show", "builds")
	tr = inventoryapi.Tree{}
	if err := json.Unmarshal([]byte(out), &tr); err != nil || tr.Keep != 4 || tr.Schedule != "" {
		t.Fatalf("tree after refused changes: %q: %v", out, err)
	}

	if out := run("unsubscribe", "lab-1", "builds"); !strings.Contains(out, "subscription lab-1/builds") {
		t.Fatalf("unsubscribe:\n%s", out)
	}
	if out := run("tree", "delete", "builds", "--yes"); !strings.Contains(out, "tree builds") || !strings.Contains(out, "subscriptions=0") {
		t.Fatalf("tree delete:\n%s", out)
	}
	run("site", "delete", "hq", "--yes")
	if out := run("--json", "sites"); strings.Contains(out, `"hq"`) || !strings.Contains(out, `"lab-1"`) {
		t.Fatalf("sites after deleting hq: %s", out)
	}
}
