package siteagent

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/pulpdist/pulpdist/libs/bus"
	"github.com/pulpdist/pulpdist/libs/natstest"
	"github.com/pulpdist/pulpdist/libs/poll"
)

func testKey(t *testing.T) (ed25519.PublicKey, []byte) {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	text, err := bus.EncodeSigningKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return pub, text
}

// TestKeyringFollowsTheBucket: entries that are not a valid key under its
// own id are not trusted; deletions are followed; the file's keys always
// stay; a watch that ends is an error, a cancelled one is not.
func TestKeyringFollowsTheBucket(t *testing.T) {
	ctx := t.Context()
	nc, js, err := bus.Connect(ctx, natstest.Start(t), "test", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	l, err := bus.Ensure(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	filePub, _ := testKey(t)
	pub1, pem1 := testKey(t)
	pub2, pem2 := testKey(t)
	id1, id2 := bus.SigningKeyID(pub1), bus.SigningKeyID(pub2)
	put := func(key string, value []byte) {
		t.Helper()
		if _, err := l.SigningKeys.Put(ctx, key, value); err != nil {
			t.Fatal(err)
		}
	}
	put(id1, pem1)
	put("junk", []byte("not a key"))
	put(id2, pem1) // a valid key under another key's id

	k := newKeyring([]ed25519.PublicKey{filePub}, slog.New(slog.DiscardHandler))
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w, err := k.watch(wctx, l.SigningKeys)
	if err != nil {
		t.Fatal(err)
	}
	// Loaded before watch returns: no waiting.
	if got := k.ids(); !slices.Equal(got, []string{id1}) {
		t.Fatalf("keys after load %v, want only %s", got, id1)
	}
	trusts := func(pub ed25519.PublicKey) bool {
		return slices.ContainsFunc(k.trusted(), func(p ed25519.PublicKey) bool { return p.Equal(pub) })
	}
	if !trusts(filePub) || !trusts(pub1) || len(k.trusted()) != 2 {
		t.Fatalf("trusted %x", k.trusted())
	}
	done := make(chan error, 1)
	go func() { done <- k.follow(wctx, w) }()

	put(id2, pem2) // repaired entry: trusted
	if err := l.SigningKeys.Delete(ctx, id1); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 10*time.Second, func() error {
		if got := k.ids(); !slices.Equal(got, []string{id2}) {
			return fmt.Errorf("keys %v, want only %s", got, id2)
		}
		return nil
	})
	if trusts(pub1) || !trusts(pub2) || !trusts(filePub) {
		t.Fatalf("trusted %x after the change", k.trusted())
	}
	put(id2, []byte("broken")) // a key whose entry breaks is not trusted
	poll.Until(t, 10*time.Second, func() error {
		if got := k.ids(); len(got) != 0 {
			return fmt.Errorf("keys %v, want none", got)
		}
		return nil
	})
	if got := k.trusted(); len(got) != 1 || !got[0].Equal(filePub) {
		t.Fatalf("trusted %x, want the file's key only", got)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("follow after cancel: %v", err)
	}

	// Without any key, nothing is required.
	if got := newKeyring(nil, slog.New(slog.DiscardHandler)).trusted(); got != nil {
		t.Fatalf("empty keyring trusts %x", got)
	}

	// A watch that ends under the agent (connection closed) is an error.
	w, err = k.watch(ctx, l.SigningKeys)
	if err != nil {
		t.Fatal(err)
	}
	go func() { done <- k.follow(ctx, w) }()
	nc.Close()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("follow returned nil after the connection closed")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("follow still running after the connection closed")
	}
}
