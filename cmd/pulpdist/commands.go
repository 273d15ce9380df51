package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/pulpdist/pulpdist/libs/inventoryapi"
)

func envOr(name, def string) string {
	if v, ok := os.LookupEnv(name); ok {
		return v
	}
	return def
}

// defaultAPI is where `pulpdist dev` serves the API unless told otherwise;
// other subcommands talk to it by default.
const defaultAPI = "127.0.0.1:7480"

func newRoot(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:           "pulpdist",
		Short:         "Mirror filesystem trees to many sites, computing each delta once",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	api := root.PersistentFlags().String("api", envOr("PULPDIST_API_URL", "http://"+defaultAPI), "inventory API base URL (env PULPDIST_API_URL)")
	token := root.PersistentFlags().String("token", "", "inventory API bearer token (default: env PULPDIST_TOKEN, which keeps it out of ps and shell history)")
	asJSON := root.PersistentFlags().Bool("json", false, "print JSON instead of a table")
	client := func() *inventoryapi.Client {
		tok := *token
		if tok == "" {
			tok = os.Getenv("PULPDIST_TOKEN")
		}
		return inventoryapi.NewClient(*api, &http.Client{Timeout: 30 * time.Second}).WithToken(tok)
	}
	root.AddCommand(newDev(stdout, stderr))
	root.AddCommand(newKeygen(stdout))
	root.AddCommand(newKeys(stdout, client, asJSON))
	root.AddCommand(newToken(stdout, stderr, client, asJSON))
	root.AddCommand(newTreeCommands(stdout, stderr)...)
	root.AddCommand(newTreeCatalog(stdout, client, asJSON))
	root.AddCommand(newSiteCatalog(stdout, stderr, client, asJSON)...)
	var overviewOf inventoryapi.Place
	overview := &cobra.Command{
		Use:   "overview [--site SITE] [--tree TREE]",
		Short: "Show every site × tree with version, state and lag",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			rows, err := client().OverviewOf(cmd.Context(), overviewOf)
			if err != nil {
				return err
			}
			return render(stdout, *asJSON, rows, "SITE\tTREE\tROLE\tVERSION\tSTATE\tLAG", func(w io.Writer) {
				for _, r := range rows {
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", r.Site, r.Tree, r.Role, short(r.Version), r.State, time.Duration(r.LagSeconds)*time.Second)
				}
			})
		},
	}
	placeFlags(overview, &overviewOf)
	sortFlag(overview, &overviewOf)
	root.AddCommand(overview)
	var syncSite string
	var confirmDeletions bool
	syncCmd := &cobra.Command{
		Use:   "sync TREE [--site SITE] [--confirm-deletions]",
		Short: "Sync a tree now: every subscribed site, or only --site (operator)",
		Long: `Sync a tree now: the origin scans the source and every subscribed site
(or only --site) gets the new version.

A version that deletes more entries than the tree's max-deletions is not
published: the origin's run ends PARTIAL and a guard.tripped event lists the
first paths. Look at them (pulpdist runs --tree TREE --result PARTIAL), then
publish it with --confirm-deletions.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var acc inventoryapi.SyncAccepted
			var err error
			switch {
			case syncSite != "" && confirmDeletions:
				return errors.New("sync: --confirm-deletions applies to a whole tree's sync, not one --site")
			case syncSite != "":
				acc, err = client().SyncSubscription(cmd.Context(), syncSite, args[0])
			default:
				acc, err = client().SyncWith(cmd.Context(), args[0], inventoryapi.SyncRequest{ConfirmDeletions: confirmDeletions})
			}
			if err != nil {
				return err
			}
			return render(stdout, *asJSON, acc, "TREE\tSITE\tTRIGGER", func(w io.Writer) {
				fmt.Fprintf(w, "%s\t%s\t%s\n", acc.Tree, dash(acc.Site), acc.TriggerID)
			})
		},
	}
	syncCmd.Flags().StringVar(&syncSite, "site", "", "sync only this site's subscription")
	syncCmd.Flags().BoolVar(&confirmDeletions, "confirm-deletions", false, "publish the new version even if it deletes more than the tree's max-deletions")
	root.AddCommand(syncCmd)
	root.AddCommand(&cobra.Command{
		Use:   "trees",
		Short: "List trees",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			trees, err := client().Trees(cmd.Context())
			if err != nil {
				return err
			}
			return render(stdout, *asJSON, trees, "TREE\tORIGIN\tSOURCE\tSCHEDULE", func(w io.Writer) {
				for _, t := range trees {
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", t.Name, t.OriginSite, t.Source, t.Schedule)
				}
			})
		},
	})
	root.AddCommand(newViewCommands(stdout, stderr, client, asJSON)...)
	return root
}

func short(v string) string {
	if len(v) > 12 {
		return v[:12]
	}
	return v
}

func render(w io.Writer, asJSON bool, v any, header string, rows func(io.Writer)) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, header)
	rows(tw)
	return tw.Flush()
}
