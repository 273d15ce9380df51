package main

import (
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/pulpdist/pulpdist/libs/inventoryapi"
)

// newToken makes `pulpdist token create|list|revoke`: the bearer tokens of
// the inventory API (admin only).
func newToken(stdout, stderr io.Writer, client func() *inventoryapi.Client, asJSON *bool) *cobra.Command {
	token := &cobra.Command{
		Use:   "token",
		Short: "Create, list and revoke the inventory API's bearer tokens (admin)",
		Long: `Every call to the inventory API carries a bearer token (--token, or env
PULPDIST_TOKEN). Roles: viewer reads everything; operator also triggers
syncs; admin may do everything, tokens included; agent, bound to one site,
reads only what names its own site. The inventory keeps only a hash of each
token: create prints it once. The first admin token is the inventory's
PULPDIST_ADMIN_TOKEN (docs/operations.md).`,
	}
	renderTokens := func(ts []inventoryapi.Token) error {
		return render(stdout, *asJSON, ts, "ID\tROLE\tSITE\tNAME\tCREATED\tREVOKED", func(w io.Writer) {
			for _, t := range ts {
				revoked := "-"
				if t.RevokedAt != nil {
					revoked = t.RevokedAt.Local().Format(time.DateTime)
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, t.Role, dash(t.Site), dash(t.Name), t.CreatedAt.Local().Format(time.DateTime), revoked)
			}
		})
	}
	var in inventoryapi.TokenCreate
	create := &cobra.Command{
		Use:   "create --role ROLE [--site SITE] [--name NAME]",
		Short: "Make a token and print it (only this once)",
		Long: `Make a token and print it on stdout, alone on its line (with --json: the
token's record, the secret in "token"). The inventory keeps only its hash: it
cannot be shown again. An agent token needs --site, the one site it may act
for; the other roles take none.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if in.Role == "" {
				return fmt.Errorf("token create: --role is required: viewer, operator, admin or agent")
			}
			t, err := client().CreateToken(cmd.Context(), in)
			if err != nil {
				return err
			}
			if *asJSON {
				return render(stdout, true, t, "", nil)
			}
			fmt.Fprintln(stdout, t.Secret)
			fmt.Fprintf(stderr, "token %s (%s) created; it is shown only now, store it somewhere safe\n", t.ID, t.Role)
			return nil
		},
	}
	create.Flags().StringVar(&in.Role, "role", "", "viewer, operator, admin or agent (required)")
	create.Flags().StringVar(&in.Site, "site", "", "the site of an agent token")
	create.Flags().StringVar(&in.Name, "name", "", "who or what holds the token")
	token.AddCommand(create)
	token.AddCommand(&cobra.Command{
		Use:   "list",
		Short: "List every token, revoked ones included, oldest first (never their secrets)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ts, err := client().Tokens(cmd.Context())
			if err != nil {
				return err
			}
			return renderTokens(ts)
		},
	})
	token.AddCommand(&cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke a token by id: the inventory refuses it from the next request on",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			t, err := client().RevokeToken(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return renderTokens([]inventoryapi.Token{t})
		},
	})
	return token
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
