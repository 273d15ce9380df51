package siteagent_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pulpdist/pulpdist/libs/bus"
	"github.com/pulpdist/pulpdist/libs/poll"
	"github.com/pulpdist/pulpdist/services/siteagent"
)

// keyPair is a signing key and its public half in PEM.
type keyPair struct {
	priv ed25519.PrivateKey
	pem  []byte
}

func newKeyPair(t *testing.T) keyPair {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	text, err := bus.EncodeSigningKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return keyPair{priv: priv, pem: text}
}

// publishKeys does what the inventory does when its keys change: it
// mirrors the keys into the signing-keys bucket.
func publishKeys(t *testing.T, natsURL string, keys ...keyPair) {
	t.Helper()
	ctx := context.Background()
	nc, js, err := bus.Connect(ctx, natsURL, "inventory-stand-in", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	l, err := bus.Ensure(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	pems := make([][]byte, len(keys))
	for i, k := range keys {
		pems[i] = k.pem
	}
	if err := bus.MirrorSigningKeys(ctx, l.SigningKeys, pems); err != nil {
		t.Fatal(err)
	}
}

// TestInventoryKeysAreFollowed: an agent trusts the keys of its file and
// of the signing-keys bucket, loaded before its first command; a key
// removed from the bucket (revoked in the inventory) stops being trusted
// while the agent runs, and a key added is trusted.
func TestInventoryKeysAreFollowed(t *testing.T) {
	fileKey, k1, k2 := newKeyPair(t), newKeyPair(t), newKeyPair(t)
	keyFile := filepath.Join(t.TempDir(), "trusted.pub")
	if err := os.WriteFile(keyFile, fileKey.pem, 0o644); err != nil {
		t.Fatal(err)
	}
	var natsURL string
	h := start(t, "site-a", func(c *siteagent.Config) {
		c.TrustedKeys = keyFile
		natsURL = c.NATSURL
		publishKeys(t, natsURL, k1) // before the agent starts
	})
	src := t.TempDir()
	write(t, src, "a.txt", "alpha")

	// apply sends a pack of src, signed by key (unsigned if nil), as a
	// new tree, and returns the result.
	n := 0
	apply := func(key ed25519.PrivateKey) bus.SyncFinished {
		t.Helper()
		n++
		tree := fmt.Sprint("tree-", n)
		name, hash, root := h.storeSignedPack(t, tree, src, nil, key)
		return h.run(t, bus.SyncCommand{RunID: fmt.Sprint("run-", n), TriggerID: "t", Kind: bus.CommandApply, Site: "site-a", Tree: tree, To: root, Pack: name, PackHash: hash})
	}
	expect := func(what string, fin bus.SyncFinished, want bus.Result) {
		t.Helper()
		if fin.Result != want {
			t.Fatalf("%s: %s (%s), want %s", what, fin.Result, fin.Error, want)
		}
		if want == bus.ResultFailed && !strings.Contains(fin.Error, "signature") {
			t.Fatalf("%s: refused for %q, want a signature error", what, fin.Error)
		}
	}
	expect("signed by the file's key", apply(fileKey.priv), bus.ResultCompleted)
	expect("signed by the bucket's key", apply(k1.priv), bus.ResultCompleted)
	expect("unsigned", apply(nil), bus.ResultFailed)
	expect("signed by a key not yet added", apply(k2.priv), bus.ResultFailed)

	// Rotation: k2 added, k1 revoked. The agent, still running, refuses
	// k1 once it has seen the change.
	publishKeys(t, natsURL, k2)
	poll.Until(t, 30*time.Second, func() error {
		return refused(t, apply(k1.priv))
	})
	// The bucket is read in order: k2 was added before k1 went.
	expect("signed by the added key", apply(k2.priv), bus.ResultCompleted)
	expect("signed by the revoked key, again", apply(k1.priv), bus.ResultFailed)

	// With no key left in the bucket, the file's key still holds: packs
	// must still be signed.
	publishKeys(t, natsURL)
	poll.Until(t, 30*time.Second, func() error {
		return refused(t, apply(k2.priv))
	})
	expect("unsigned, with only the file's key", apply(nil), bus.ResultFailed)
	expect("signed by the file's key, at the end", apply(fileKey.priv), bus.ResultCompleted)
}

// refused is nil for a run refused for its signature, an error for one
// that completed (the agent has not seen the change yet); any other
// outcome fails the test.
func refused(t *testing.T, fin bus.SyncFinished) error {
	t.Helper()
	switch {
	case fin.Result == bus.ResultCompleted:
		return fmt.Errorf("run %s completed", fin.RunID)
	case fin.Result != bus.ResultFailed || !strings.Contains(fin.Error, "signature"):
		t.Fatalf("run %s: %s (%s), want COMPLETED or a signature refusal", fin.RunID, fin.Result, fin.Error)
	}
	return nil
}
