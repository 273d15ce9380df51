package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/pulpdist/pulpdist/libs/pack"
)

// newKeygen makes `pulpdist keygen`: a pack-signing key pair, the private
// half for delta-caches (PULPDIST_SIGNING_KEY), the public half for the
// inventory (`pulpdist keys add`), which hands it to the site-agents.
func newKeygen(stdout io.Writer) *cobra.Command {
	var prefix string
	cmd := &cobra.Command{
		Use:   "keygen -o PREFIX",
		Short: "Make an ed25519 key pair for signing packs: PREFIX.key and PREFIX.pub",
		Args:  cobra.NoArgs,
		RunE: func(_ *cobra.Command, _ []string) error {
			if prefix == "" {
				return errors.New("keygen: -o PREFIX is required")
			}
			pub, priv, err := pack.GenerateKey()
			if err != nil {
				return err
			}
			privPEM, err := pack.EncodePrivateKey(priv)
			if err != nil {
				return err
			}
			pubPEM, err := pack.EncodePublicKey(pub)
			if err != nil {
				return err
			}
			// O_EXCL: never overwrite a key that may be in use.
			for _, f := range []struct {
				path string
				data []byte
				mode os.FileMode
			}{{prefix + ".key", privPEM, 0o600}, {prefix + ".pub", pubPEM, 0o644}} {
				out, err := os.OpenFile(f.path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, f.mode)
				if err != nil {
					return fmt.Errorf("keygen: %w", err)
				}
				if _, err := out.Write(f.data); err != nil {
					out.Close()
					return fmt.Errorf("keygen: %w", err)
				}
				if err := out.Close(); err != nil {
					return fmt.Errorf("keygen: %w", err)
				}
			}
			fmt.Fprintf(stdout, "private key: %s.key (PULPDIST_SIGNING_KEY of the delta-caches)\npublic key:  %s.pub (register it: pulpdist keys add NAME %s.pub)\n", prefix, prefix, prefix)
			return nil
		},
	}
	cmd.Flags().StringVarP(&prefix, "output", "o", "", "path prefix of the two key files")
	return cmd
}
