package main

import (
	"encoding/json"
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
