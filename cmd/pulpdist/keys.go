package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/pulpdist/pulpdist/libs/inventoryapi"
)

// maxKeyFile bounds what `keys add` reads: a public key takes 113 bytes.
const maxKeyFile = 64 << 10

// newKeys makes `pulpdist keys list|add|revoke`: the pack-signing public
// keys the inventory holds and hands to every site-agent.
func newKeys(stdout io.Writer, client func() *inventoryapi.Client, asJSON *bool) *cobra.Command {
	keys := &cobra.Command{
		Use:   "keys",
		Short: "List, add and revoke the pack-signing keys site-agents trust",
		Long: `The inventory holds the public keys whose signatures on packs the site-agents
accept, and hands the ones not revoked to every agent over NATS: adding or
revoking a key here takes effect at every site without a restart. Rotate a
delta-cache key by adding the new one, deploying its private half, then
revoking the old one (docs/operations.md).`,
	}
	render := func(ks []inventoryapi.SigningKey) error {
		return render(stdout, *asJSON, ks, "ID\tNAME\tCREATED\tREVOKED", func(w io.Writer) {
			for _, k := range ks {
				revoked := "-"
				if k.RevokedAt != nil {
					revoked = k.RevokedAt.Local().Format(time.DateTime)
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", k.ID, k.Name, k.CreatedAt.Local().Format(time.DateTime), revoked)
			}
		})
	}
	keys.AddCommand(&cobra.Command{
		Use:   "list",
		Short: "List every key, revoked ones included, oldest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ks, err := client().SigningKeys(cmd.Context())
			if err != nil {
				return err
			}
			return render(ks)
		},
	})
	keys.AddCommand(&cobra.Command{
		Use:   "add NAME FILE.pub",
		Short: "Register a public key (PEM, from pulpdist keygen) under NAME",
		Long: `Register the public key in FILE.pub (one PEM "PUBLIC KEY" block holding an
ed25519 key, as pulpdist keygen writes it) under NAME. Site-agents trust packs
signed by it from then on. Adding the same key again under the same name
changes nothing.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			text, err := readPublicKey(args[1])
			if err != nil {
				return err
			}
			k, err := client().AddSigningKey(cmd.Context(), args[0], text)
			if err != nil {
				return err
			}
			return render([]inventoryapi.SigningKey{k})
		},
	})
	keys.AddCommand(&cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke a key: site-agents stop trusting it at once",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			k, err := client().RevokeSigningKey(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return render([]inventoryapi.SigningKey{k})
		},
	})
	return keys
}

// readPublicKey reads a public key file for `keys add`. The inventory
// checks the key; a file holding a private key is refused here, so that it
// never leaves the machine.
func readPublicKey(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("keys add: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFile+1))
	if err != nil {
		return "", fmt.Errorf("keys add: %s: %w", path, err)
	}
	if len(data) > maxKeyFile {
		return "", fmt.Errorf("keys add: %s is larger than %d bytes: not a public key", path, maxKeyFile)
	}
	// Whatever the form (PKCS #8, OpenSSH, encrypted), a private key's PEM
	// armour says PRIVATE KEY.
	if bytes.Contains(data, []byte("PRIVATE KEY-----")) {
		return "", fmt.Errorf("keys add: %s holds a private key: give the public key (PREFIX.pub from pulpdist keygen), and keep this file secret", path)
	}
	return string(data), nil
}
