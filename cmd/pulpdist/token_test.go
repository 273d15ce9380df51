package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/pulpdist/pulpdist/libs/inventoryapi"
)

var tokenLine = regexp.MustCompile(`^pdt_([0-9a-f]{12})_[A-Za-z0-9_-]{43}\n$`)

// TestTokenCommands makes, uses, lists and revokes tokens through the CLI
// against a real inventory, with each role's limits.
func TestTokenCommands(t *testing.T) {
	api := startInventory(t)
	out, err := cli(t, "--api", api, "token", "create", "--role", "viewer", "--name", "night shift")
	if err != nil {
		t.Fatal(err)
	}
	m := tokenLine.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("token create printed %q, want the token alone on its line", out)
	}
	viewer, id := strings.TrimSpace(out), m[1]

	// A viewer reads, and may not trigger a sync.
	if _, err := cli(t, "--api", api, "--token", viewer, "trees"); err != nil {
		t.Fatalf("trees as viewer: %v", err)
	}
	if _, err := cli(t, "--api", api, "--token", viewer, "sync", "demo"); err == nil || !strings.Contains(err.Error(), "Forbidden") {
		t.Fatalf("sync as viewer: err = %v, want 403", err)
	}
	if _, err := cli(t, "--api", api, "--token", viewer, "token", "list"); err == nil || !strings.Contains(err.Error(), "Forbidden") {
		t.Fatalf("token list as viewer: err = %v, want 403", err)
	}
	// PULPDIST_TOKEN is read when --token is empty.
	t.Setenv("PULPDIST_TOKEN", viewer)
	if _, err := cli(t, "--api", api, "--token=", "overview"); err != nil {
		t.Fatalf("overview with PULPDIST_TOKEN: %v", err)
	}
	t.Setenv("PULPDIST_TOKEN", "")
	if _, err := cli(t, "--api", api, "--token=", "trees"); err == nil || !strings.Contains(err.Error(), "no bearer token") {
		t.Fatalf("trees without a token: err = %v, want 401", err)
	}

	out, err = cli(t, "--api", api, "--json", "token", "create", "--role", "agent", "--site", "site-a")
	if err != nil {
		t.Fatal(err)
	}
	var agent inventoryapi.TokenCreated
	if err := json.Unmarshal([]byte(out), &agent); err != nil || agent.Role != "agent" || agent.Site != "site-a" || tokenLine.FindString(agent.Secret+"\n") == "" {
		t.Fatalf("token create --json printed %q: %v", out, err)
	}

	out, err = cli(t, "--api", api, "token", "list")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, id) || !strings.Contains(out, "night shift") || !strings.Contains(out, "site-a") ||
		strings.Contains(out, viewer) || strings.Contains(out, agent.Secret) {
		t.Fatalf("token list:\n%s", out)
	}

	if _, err := cli(t, "--api", api, "token", "revoke", id); err != nil {
		t.Fatal(err)
	}
	if _, err := cli(t, "--api", api, "--token", viewer, "trees"); err == nil || !strings.Contains(err.Error(), "Unauthorized") {
		t.Fatalf("trees with a revoked token: err = %v, want 401", err)
	}
	out, err = cli(t, "--api", api, "--json", "token", "list")
	if err != nil {
		t.Fatal(err)
	}
	var ts []inventoryapi.Token
	if err := json.Unmarshal([]byte(out), &ts); err != nil || len(ts) != 2 || ts[0].ID != id || ts[0].RevokedAt == nil || ts[1].RevokedAt != nil {
		t.Fatalf("token list --json: %q: %v", out, err)
	}
	out, err = cli(t, "--api", api, "--json", "token", "list", "--live", "--site", "site-a")
	if err != nil {
		t.Fatal(err)
	}
	var live []inventoryapi.Token
	if err := json.Unmarshal([]byte(out), &live); err != nil || len(live) != 1 || live[0].Site != "site-a" || live[0].RevokedAt != nil {
		t.Fatalf("token list --live --site site-a: %q: %v", out, err)
	}
	if _, err := cli(t, "--api", api, "token", "list", "--role", "root"); err == nil || !strings.Contains(err.Error(), "role") {
		t.Fatalf("token list --role root: err = %v, want 400 about the role", err)
	}
}

func TestTokenCommandsRefuseBadInput(t *testing.T) {
	api := startInventory(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"token", "create"}, "--role is required"},
		{[]string{"token", "create", "--role", "root"}, `role "root": want viewer, operator, admin or agent`},
		{[]string{"token", "create", "--role", "agent"}, "an agent token needs a site"},
		{[]string{"token", "create", "--role", "agent", "--site", "Not A Site"}, "site"},
		{[]string{"token", "create", "--role", "admin", "--site", "site-a"}, "only agent tokens are bound to a site"},
		{[]string{"token", "create", "--role", "viewer", "--name", strings.Repeat("n", 201)}, "at most 200 bytes"},
		{[]string{"token", "create", "--role", "viewer", "extra"}, "unknown command"},
		{[]string{"token", "revoke"}, "accepts 1 arg"},
		{[]string{"token", "revoke", "not-an-id"}, "token id"},
		{[]string{"token", "revoke", "000000000000"}, "not found"},
		{[]string{"--token", "pdt_000000000000_" + strings.Repeat("A", 43), "token", "list"}, "Unauthorized"},
		{[]string{"--token", strings.Repeat("x", 600), "token", "list"}, "longer than 512 bytes"},
	} {
		if _, err := cli(t, append([]string{"--api", api}, tc.args...)...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: err = %v, want %q", tc.args, err, tc.want)
		}
	}
}

// TestTokenProvision: provision makes one agent token file per site, keeps
// live ones on later runs, and replaces a revoked token or one of another
// site.
func TestTokenProvision(t *testing.T) {
	api := startInventory(t)
	dir := filepath.Join(t.TempDir(), "keys")
	read := func(site string) string {
		t.Helper()
		p := filepath.Join(dir, site+".token")
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", p, fi.Mode().Perm())
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if tokenLine.Find(b) == nil {
			t.Fatalf("%s holds %q, want one token line", p, b)
		}
		return strings.TrimSpace(string(b))
	}
	provision := func(want string, sites ...string) {
		t.Helper()
		out, err := cli(t, append([]string{"--api", api, "token", "provision", "--dir", dir}, sites...)...)
		if err != nil {
			t.Fatalf("provision %v: %v", sites, err)
		}
		if out != want {
			t.Fatalf("provision %v printed %q, want %q", sites, out, want)
		}
	}
	agentTokens := func() []inventoryapi.Token {
		t.Helper()
		out, err := cli(t, "--api", api, "--json", "token", "list")
		if err != nil {
			t.Fatal(err)
		}
		var ts []inventoryapi.Token
		if err := json.Unmarshal([]byte(out), &ts); err != nil {
			t.Fatal(err)
		}
		var live []inventoryapi.Token
		for _, tk := range ts {
			if tk.Role == "agent" && tk.RevokedAt == nil {
				live = append(live, tk)
			}
		}
		return live
	}

	provision("created "+filepath.Join(dir, "origin.token")+"\ncreated "+filepath.Join(dir, "site-a.token")+"\n", "origin", "site-a")
	origin, siteA := read("origin"), read("site-a")
	if ts := agentTokens(); len(ts) != 2 || ts[0].Site != "origin" || ts[1].Site != "site-a" {
		t.Fatalf("agent tokens = %+v", ts)
	}
	provision("kept "+filepath.Join(dir, "origin.token")+"\nkept "+filepath.Join(dir, "site-a.token")+"\n", "origin", "site-a")
	if read("origin") != origin || read("site-a") != siteA || len(agentTokens()) != 2 {
		t.Fatal("a second provision changed live tokens")
	}

	// A revoked token is replaced; so is another site's token.
	id := tokenLine.FindStringSubmatch(siteA + "\n")[1]
	if _, err := cli(t, "--api", api, "token", "revoke", id); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "site-b.token"), []byte(origin+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	provision("kept "+filepath.Join(dir, "origin.token")+"\ncreated "+filepath.Join(dir, "site-a.token")+"\ncreated "+filepath.Join(dir, "site-b.token")+"\n",
		"origin", "site-a", "site-b")
	if read("site-a") == siteA || read("site-b") == origin || read("origin") != origin {
		t.Fatal("the revoked or foreign token was kept, or the live one replaced")
	}
	if ts := agentTokens(); len(ts) != 3 {
		t.Fatalf("live agent tokens = %+v, want origin, site-a and site-b", ts)
	}

	// A viewer token for a scheduler: kept while it is a live viewer
	// token, replaced when the file holds an agent's.
	viewer := filepath.Join(dir, "scheduler.token")
	provision("kept "+filepath.Join(dir, "origin.token")+"\ncreated "+viewer+"\n", "origin", "--viewer", "scheduler")
	sched := read("scheduler")
	if _, err := cli(t, "--api", api, "--token", sched, "trees"); err != nil {
		t.Fatalf("trees with the provisioned viewer token: %v", err)
	}
	if _, err := cli(t, "--api", api, "--token", sched, "token", "list"); err == nil || !strings.Contains(err.Error(), "Forbidden") {
		t.Fatalf("token list with the viewer token: err = %v, want 403", err)
	}
	provision("kept "+viewer+"\n", "--viewer", "scheduler")
	if err := os.WriteFile(viewer, []byte(origin+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	provision("created "+viewer+"\n", "--viewer", "scheduler")
	if read("scheduler") == origin {
		t.Fatal("an agent token was kept as the viewer's")
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"token", "provision", "origin"}, "--dir is required"},
		{[]string{"token", "provision", "--dir", dir}, "at least one site or --viewer"},
		{[]string{"token", "provision", "--dir", dir, "origin", "--viewer", "origin"}, "origin.token named twice"},
		{[]string{"token", "provision", "--dir", dir, "--viewer", "Bad Name"}, "viewer"},
		{[]string{"token", "provision", "--dir", dir, "Bad_Site"}, "[a-z0-9][a-z0-9-]{0,62}"},
		{[]string{"--api", "http://127.0.0.1:1", "token", "provision", "--dir", t.TempDir(), "origin"}, "connection refused"},
	} {
		args := tc.args
		if args[0] != "--api" {
			args = append([]string{"--api", api}, args...)
		}
		if _, err := cli(t, args...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: err = %v, want %q", tc.args, err, tc.want)
		}
	}
}
