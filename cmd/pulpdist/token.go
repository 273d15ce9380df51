package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/pulpdist/pulpdist/libs/bus"
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
	var lq inventoryapi.TokenQuery
	list := &cobra.Command{
		Use:   "list [--role ROLE] [--site SITE] [--live]",
		Short: "List the tokens, revoked ones included, oldest first (never their secrets)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ts, err := client().TokensOf(cmd.Context(), lq)
			if err != nil {
				return err
			}
			return renderTokens(ts)
		},
	}
	list.Flags().StringVar(&lq.Role, "role", "", "only tokens of this role")
	list.Flags().StringVar(&lq.Site, "site", "", "only the agent tokens of this site")
	list.Flags().BoolVar(&lq.Live, "live", false, "only the tokens not revoked")
	token.AddCommand(list)
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
	token.AddCommand(newTokenProvision(stdout, client))
	return token
}

// newTokenProvision makes `pulpdist token provision`: the agent token
// files of a deployment, made once and kept while they are live.
func newTokenProvision(stdout io.Writer, client func() *inventoryapi.Client) *cobra.Command {
	var dir string
	var wait time.Duration
	var viewers []string
	cmd := &cobra.Command{
		Use:   "provision [SITE...] [--viewer NAME]... --dir DIR [--wait DURATION]",
		Short: "Make sure DIR/<site>.token holds a live agent token of each site (and DIR/<name>.token a viewer token)",
		Long: `For each site, keep the agent token in DIR/<site>.token when the inventory
still accepts it for that site, or make a new one (admin) and write it there
(mode 0600, replaced atomically); for each --viewer NAME, the same with a
viewer token in DIR/<NAME>.token (for a scheduler: PULPDIST_INVENTORY_TOKEN_FILE).
Run it at every start of a deployment: it changes nothing once the tokens
exist. Each site-agent then reads its file (PULPDIST_AGENT_TOKEN_FILE) and
signs its reports with it. With --wait, an inventory that is not answering
yet is tried again until the time is up. Prints "created PATH" or "kept
PATH" per token.`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, sites []string) error {
			if dir == "" {
				return fmt.Errorf("token provision: --dir is required")
			}
			if len(sites)+len(viewers) == 0 {
				return fmt.Errorf("token provision: name at least one site or --viewer")
			}
			type want struct {
				file string
				tc   inventoryapi.TokenCreate
			}
			var wants []want
			for _, site := range sites {
				if err := bus.ValidateName("site", site); err != nil {
					return fmt.Errorf("token provision: %w", err)
				}
				wants = append(wants, want{site, inventoryapi.TokenCreate{Role: "agent", Site: site, Name: "agent of " + site + " (pulpdist token provision)"}})
			}
			for _, name := range viewers {
				if err := bus.ValidateName("viewer", name); err != nil {
					return fmt.Errorf("token provision: %w", err)
				}
				wants = append(wants, want{name, inventoryapi.TokenCreate{Role: "viewer", Name: name + " (pulpdist token provision)"}})
			}
			seen := map[string]bool{}
			for _, w := range wants {
				if seen[w.file] {
					return fmt.Errorf("token provision: %s.token named twice", w.file)
				}
				seen[w.file] = true
			}
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return fmt.Errorf("token provision: %w", err)
			}
			deadline := time.Now().Add(wait)
			for _, w := range wants {
				path := filepath.Join(dir, w.file+".token")
				for {
					_, made, err := inventoryapi.ProvisionToken(cmd.Context(), client(), w.tc, path)
					if err != nil && retryable(err) && time.Now().Before(deadline) {
						select {
						case <-cmd.Context().Done():
							return cmd.Context().Err()
						case <-time.After(time.Second):
						}
						continue
					}
					if err != nil {
						return err
					}
					verb := "kept"
					if made {
						verb = "created"
					}
					fmt.Fprintln(stdout, verb, path)
					break
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "directory of the token files (required; made if missing)")
	cmd.Flags().StringArrayVar(&viewers, "viewer", nil, "also a viewer token in DIR/NAME.token (repeatable)")
	cmd.Flags().DurationVar(&wait, "wait", 0, "how long to keep trying while the inventory does not answer (0: fail at once)")
	return cmd
}

// retryable reports whether err says the inventory is not there yet (no
// connection, or 503), rather than refusing the request.
func retryable(err error) bool {
	var p *inventoryapi.Problem
	if errors.As(err, &p) {
		return p.Status == http.StatusServiceUnavailable
	}
	var ne net.Error
	var oe *net.OpError
	return errors.As(err, &oe) || errors.As(err, &ne)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
