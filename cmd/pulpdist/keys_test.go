package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/zeebo/blake3"

	"github.com/pulpdist/pulpdist/cmd/pulpdist/internal/devstack"
	"github.com/pulpdist/pulpdist/libs/bus"
	"github.com/pulpdist/pulpdist/libs/inventoryapi"
	"github.com/pulpdist/pulpdist/libs/natstest"
	"github.com/pulpdist/pulpdist/libs/poll"
	"github.com/pulpdist/pulpdist/services/inventory"
)

// testToken is the bootstrap admin token of the tests' inventories.
const testToken = "pulpdist-test-admin-token-0123456789abcdef"

// cli runs pulpdist with args and returns what it printed. It sends
// testToken unless args hold --token.
func cli(t *testing.T, args ...string) (string, error) {
	t.Helper()
	out, _, err := cliStreams(t, args...)
	return out, err
}

// runner returns a function that runs the CLI against api and fails the
// test when the command fails.
func runner(t *testing.T, api string) func(args ...string) string {
	return func(args ...string) string {
		t.Helper()
		out, err := cli(t, append([]string{"--api", api}, args...)...)
		if err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		return out
	}
}

// cliStreams is cli returning stderr too.
func cliStreams(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	root := newRoot(&out, &errOut)
	if !slices.ContainsFunc(args, func(a string) bool { return a == "--token" || strings.HasPrefix(a, "--token=") }) {
		args = append([]string{"--token", testToken}, args...)
	}
	root.SetArgs(args)
	err = root.ExecuteContext(t.Context())
	return out.String(), errOut.String(), err
}

// ready waits until an API's /readyz answers 200.
func ready(t *testing.T, api string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	if err := waitReady(ctx, api); err != nil {
		t.Fatalf("%s not ready: %v", api, err)
	}
}

// startInventory runs an inventory on SQLite and an embedded NATS server
// until the test ends, and returns its URL.
func startInventory(t *testing.T) string {
	t.Helper()
	api, _ := startInventoryBus(t)
	return api
}

// startInventoryBus is startInventory returning the NATS server's URL too.
func startInventoryBus(t *testing.T) (api, natsURL string) {
	t.Helper()
	natsURL = natstest.Start(t)
	ctx, cancel := context.WithCancel(context.Background())
	svc, err := inventory.New(ctx, inventory.Config{
		NATSURL: natsURL, DatabaseURL: "sqlite://" + filepath.Join(t.TempDir(), "inventory.db"),
		HTTPAddr: "127.0.0.1:0", LogFormat: "text", LogLevel: "info", AdminToken: testToken, Migrate: true,
	}, slog.New(slog.DiscardHandler))
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("inventory: %v", err)
		}
	})
	ready(t, svc.URL())
	return svc.URL(), natsURL
}

func listKeys(t *testing.T, api string) []inventoryapi.SigningKey {
	t.Helper()
	out, err := cli(t, "--api", api, "--json", "keys", "list")
	if err != nil {
		t.Fatalf("keys list: %v", err)
	}
	var ks []inventoryapi.SigningKey
	if err := json.Unmarshal([]byte(out), &ks); err != nil {
		t.Fatalf("keys list --json printed %q: %v", out, err)
	}
	return ks
}

func TestKeysCommands(t *testing.T) {
	api := startInventory(t)
	dir := t.TempDir()
	prefix := filepath.Join(dir, "signer")
	if _, err := cli(t, "keygen", "-o", prefix); err != nil {
		t.Fatal(err)
	}
	if ks := listKeys(t, api); len(ks) != 0 {
		t.Fatalf("keys of a new inventory: %+v", ks)
	}
	out, err := cli(t, "--api", api, "keys", "list")
	if err != nil || strings.TrimSpace(out) != "ID  NAME  CREATED  REVOKED" {
		t.Fatalf("keys list of none: %q, %v", out, err)
	}

	out, err = cli(t, "--api", api, "keys", "add", "signer", prefix+".pub")
	if err != nil {
		t.Fatalf("keys add: %v", err)
	}
	ks := listKeys(t, api)
	if len(ks) != 1 || ks[0].Name != "signer" || ks[0].RevokedAt != nil {
		t.Fatalf("keys after add: %+v", ks)
	}
	id := ks[0].ID
	if !strings.Contains(out, id) || !strings.Contains(out, "signer") {
		t.Fatalf("keys add printed %q, want the key's id %s", out, id)
	}
	// Again: nothing changes.
	if _, err := cli(t, "--api", api, "keys", "add", "signer", prefix+".pub"); err != nil {
		t.Fatalf("keys add again: %v", err)
	}
	if ks := listKeys(t, api); len(ks) != 1 {
		t.Fatalf("keys after adding again: %+v", ks)
	}

	junk := filepath.Join(dir, "junk.pub")
	if err := os.WriteFile(junk, []byte("ssh-ed25519 AAAA me@host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big.pub")
	if err := os.WriteFile(big, bytes.Repeat([]byte("A"), maxKeyFile+1), 0o644); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(dir, "other")
	if _, err := cli(t, "keygen", "-o", other); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"keys", "add", "signer-2", prefix + ".key"}, "holds a private key"},
		{[]string{"keys", "add", "signer-2", filepath.Join(dir, "missing.pub")}, "no such file"},
		{[]string{"keys", "add", "signer-2", big}, "larger than"},
		{[]string{"keys", "add", "signer-2", junk}, "Bad Request: invalid: public_key: invalid signing key: not PEM"},
		{[]string{"keys", "add", "Signer", other + ".pub"}, "invalid name"},
		{[]string{"keys", "add", "signer", other + ".pub"}, "Conflict"},
		{[]string{"keys", "add", "signer"}, "accepts 2 arg(s)"},
		{[]string{"keys", "revoke", "nope"}, "32 lower-case hex digits"},
		{[]string{"keys", "revoke", strings.Repeat("0", 32)}, "Not Found"},
		{[]string{"keys", "revoke"}, "accepts 1 arg(s)"},
	} {
		if _, err := cli(t, append([]string{"--api", api}, tc.args...)...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: err = %v, want %q", tc.args, err, tc.want)
		}
	}
	if ks := listKeys(t, api); len(ks) != 1 {
		t.Fatalf("keys after refused adds: %+v", ks)
	}

	out, err = cli(t, "--api", api, "keys", "revoke", id)
	if err != nil {
		t.Fatalf("keys revoke: %v", err)
	}
	if ks := listKeys(t, api); len(ks) != 1 || ks[0].RevokedAt == nil {
		t.Fatalf("keys after revoke: %+v", ks)
	}
	if strings.Contains(out, "  -\n") || !strings.Contains(out, id) {
		t.Fatalf("keys revoke printed %q, want the key with its revocation time", out)
	}
	if _, err := cli(t, "--api", api, "keys", "add", "signer", prefix+".pub"); err == nil || !strings.Contains(err.Error(), "revoked") {
		t.Fatalf("adding a revoked key: %v", err)
	}
}

// TestKeysReachTheAgents runs the dev stack, whose site-agents have no key
// file: the only keys they trust are those the inventory hands them. A pack
// signed by a key the inventory does not know is refused; once `keys add`
// registers it, it is applied; once `keys revoke` revokes it, it is refused
// again, all without restarting anything.
func TestKeysReachTheAgents(t *testing.T) {
	dir := t.TempDir()
	ctx := t.Context()
	st := startStack(t, devstack.Options{
		DataDir: filepath.Join(dir, "stack"), NATSPort: -1, APIAddr: "127.0.0.1:0", Sites: []string{"site-a"}, AdminToken: testToken,
	})
	ready(t, st.APIURL)
	api := st.APIURL
	// The stack registered its own key through the inventory.
	if ks := listKeys(t, api); len(ks) != 1 || ks[0].ID != st.SigningKeyID || ks[0].Name != devstack.KeyName || ks[0].RevokedAt != nil {
		t.Fatalf("keys of the dev stack: %+v, want %s", ks, st.SigningKeyID)
	}

	rogue := filepath.Join(dir, "rogue")
	if _, err := cli(t, "keygen", "-o", rogue); err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(dir, "src")
	writeFile(t, src, "hello.txt", "hello\n", 0o644)
	js := connectJetStream(t, st.NATSURL)
	deltas, err := js.ObjectStore(ctx, bus.BucketDeltas)
	if err != nil {
		t.Fatal(err)
	}
	c := inventoryapi.NewClient(api, nil).WithToken(testToken)
	const keysOrigin = "keys-origin"
	if _, err := c.CreateSite(ctx, inventoryapi.Site{Name: keysOrigin}); err != nil {
		t.Fatal(err)
	}
	n := 0
	// apply sends site-a a full pack of src signed with the key file, as
	// a new tree, and returns how the run ended.
	apply := func(keyFile string) inventoryapi.Run {
		t.Helper()
		n++
		tree := fmt.Sprint("keys-", n)
		// Declared, so that the inventory records its runs.
		if _, err := c.CreateTree(ctx, inventoryapi.Tree{Name: tree, OriginSite: keysOrigin, Source: "/srv/" + tree}); err != nil {
			t.Fatal(err)
		}
		packFile := filepath.Join(dir, tree+".pack")
		if _, err := cli(t, "pack", src, "-o", packFile, "--tree", tree, "--key", keyFile); err != nil {
			t.Fatal(err)
		}
		out, err := cli(t, "snapshot", src)
		if err != nil {
			t.Fatal(err)
		}
		root := strings.TrimSpace(out)
		data, err := os.ReadFile(packFile)
		if err != nil {
			t.Fatal(err)
		}
		name := bus.DeltaID(tree, "", root)
		if _, err := deltas.PutBytes(ctx, name, data); err != nil {
			t.Fatal(err)
		}
		cmd := bus.SyncCommand{V: bus.MessageVersion, RunID: "run-" + tree, TriggerID: "keys-test", Kind: bus.CommandApply,
			Site: "site-a", Tree: tree, To: root, Pack: name, PackHash: fmt.Sprintf("%x", blake3.Sum256(data))}
		if err := bus.Publish(ctx, js, bus.SyncSubject(cmd.Site, tree), cmd.RunID, cmd); err != nil {
			t.Fatal(err)
		}
		var run inventoryapi.Run
		poll.Until(t, 60*time.Second, func() error {
			runs, err := c.Runs(ctx, tree, "site-a")
			if err != nil {
				return err
			}
			if len(runs) != 1 || runs[0].ID != cmd.RunID || runs[0].State != inventoryapi.RunDone {
				return fmt.Errorf("runs of %s: %+v", tree, runs)
			}
			run = runs[0]
			return nil
		})
		return run
	}
	refused := func(r inventoryapi.Run) error {
		switch {
		case r.Result == string(bus.ResultCompleted):
			return fmt.Errorf("run on %s completed", r.Tree)
		case r.Result != string(bus.ResultFailed) || !strings.Contains(r.Error, "signature"):
			t.Fatalf("run on %s: %s (%s), want COMPLETED or a signature refusal", r.Tree, r.Result, r.Error)
		}
		return nil
	}

	if r := apply(filepath.Join(st.DataDir, "keys", "deltacache.key")); r.Result != string(bus.ResultCompleted) {
		t.Fatalf("a pack signed by the stack's key: %s (%s)", r.Result, r.Error)
	}
	if err := refused(apply(rogue + ".key")); err != nil {
		t.Fatalf("a pack signed by an unknown key: %v", err)
	}
	if _, err := cli(t, "--api", api, "keys", "add", "rogue", rogue+".pub"); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 60*time.Second, func() error {
		if r := apply(rogue + ".key"); r.Result != string(bus.ResultCompleted) {
			return fmt.Errorf("a pack signed by the added key: %s (%s)", r.Result, r.Error)
		}
		return nil
	})
	var rogueID string
	for _, k := range listKeys(t, api) {
		if k.Name == "rogue" {
			rogueID = k.ID
		}
	}
	if _, err := cli(t, "--api", api, "keys", "revoke", rogueID); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 60*time.Second, func() error { return refused(apply(rogue + ".key")) })
}
