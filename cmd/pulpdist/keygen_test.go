package main

import (
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/pulpdist/pulpdist/libs/pack"
)

func TestKeygen(t *testing.T) {
	prefix := filepath.Join(t.TempDir(), "signer")
	run := func(args ...string) error {
		root := newRoot(io.Discard, io.Discard)
		root.SetArgs(args)
		return root.ExecuteContext(t.Context())
	}
	if err := run("keygen", "-o", prefix); err != nil {
		t.Fatal(err)
	}
	priv, err := pack.LoadPrivateKey(prefix + ".key")
	if err != nil {
		t.Fatal(err)
	}
	pubs, err := pack.LoadPublicKeys(prefix + ".pub")
	if err != nil || len(pubs) != 1 || !pubs[0].Equal(priv.Public()) {
		t.Fatalf("public key %v (%v) is not the private key's", pubs, err)
	}
	if info, err := os.Stat(prefix + ".key"); err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("private key mode %v (%v), want 0600", info.Mode(), err)
	}
	if err := run("keygen", "-o", prefix); err == nil {
		t.Fatal("keygen overwrote an existing key")
	}
	if err := run("keygen"); err == nil {
		t.Fatal("keygen without -o accepted")
	}
}
