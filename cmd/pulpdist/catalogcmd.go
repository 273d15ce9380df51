package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/pulpdist/pulpdist/libs/inventoryapi"
)

// The catalog commands: `pulpdist tree|site create|show|set|history|pause|resume|delete`,
// `pulpdist sites`, `pulpdist subscribe` and `pulpdist unsubscribe`. A
// set reads the tree or site with its ETag and changes only the flags
// given, with If-Match, so that a change somebody made meanwhile is
// refused (412) rather than overwritten. A list flag given to set
// (--filter, --protect, --window) replaces the whole list; --clear-filters,
// --clear-protect and --clear-windows empty it. An empty value such as
// --filter '' is refused rather than taken to mean "clear": in a script,
// an unset variable would otherwise wipe the list.

// treeFlags are the settings of a tree as flags.
type treeFlags struct {
	origin, source, schedule, typ, lag, priority string
	filters, protect, canaries                   []string
	keep, syncLatest                             int
	maxDeletions                                 int64
	disabled                                     bool
	// clearFilters, clearProtect and clearCanaries (set only) empty the
	// lists.
	clearFilters, clearProtect, clearCanaries bool
}

func (f *treeFlags) bind(fs *pflag.FlagSet, create bool) {
	if create {
		fs.StringVar(&f.origin, "origin", "", "the origin site (required)")
	}
	fs.StringVar(&f.source, "source", "", "absolute path of the tree on the origin site")
	fs.StringVar(&f.schedule, "schedule", "", `five-field cron expression ("" for manual syncs only)`)
	fs.StringVar(&f.typ, "type", "", "simple, versioned or snapshot")
	fs.StringVar(&f.lag, "allowed-lag", "", "how far behind a site may be before the freshness alarm, such as 6h")
	filterHelp, protectHelp := "repeat", "repeat"
	if !create {
		filterHelp, protectHelp = "repeat; the rules given replace them all", "repeat; the patterns given replace them all"
		fs.BoolVar(&f.clearFilters, "clear-filters", false, "remove every filter rule")
		fs.BoolVar(&f.clearProtect, "clear-protect", false, "remove every protected path pattern")
		fs.BoolVar(&f.clearCanaries, "clear-canaries", false, "remove every canary site")
	}
	fs.StringArrayVar(&f.filters, "filter", nil, `rsync-style rule such as "- *.tmp" (`+filterHelp+`; docs/filters.md)`)
	fs.StringArrayVar(&f.protect, "protect", nil, "pattern of paths no sync deletes ("+protectHelp+")")
	fs.IntVar(&f.keep, "keep", 0, "versions kept at each site (retention)")
	fs.Int64Var(&f.maxDeletions, "max-deletions", 0, "refuse a sync that deletes more entries than this (0: no guard)")
	fs.BoolVar(&f.disabled, "disabled", false, "the scheduler does not fire the tree")
	fs.IntVar(&f.syncLatest, "sync-latest", 0, "versioned trees: publish only the newest N versions (0: all)")
	fs.StringArrayVar(&f.canaries, "canary", nil, "site that gets a new version before the others (repeat)")
	fs.StringVar(&f.priority, "priority", "", "normal or urgent (urgent transfers overtake normal ones on a link)")
}

// given is v when the flag name was given on the command line, nil
// otherwise: a patch changes only what was asked.
func given[T any](fs *pflag.FlagSet, name string, v *T) *T {
	if fs.Changed(name) {
		return v
	}
	return nil
}

// listFlag checks the values of the list flag name, whose clear flag
// (clearFlag: "" on create) empties the list, and returns the list to send:
// nil when neither flag was given, empty when cleared.
func listFlag(fs *pflag.FlagSet, name, clearFlag string, vals []string, cleared bool) (*[]string, error) {
	for _, v := range vals {
		if strings.TrimSpace(v) != "" {
			continue
		}
		if clearFlag == "" {
			return nil, fmt.Errorf("an empty --%s is not a value; leave the flag out", name)
		}
		return nil, fmt.Errorf("an empty --%s is not a value; --%s removes them all", name, clearFlag)
	}
	switch {
	case cleared && fs.Changed(name):
		return nil, fmt.Errorf("--%s and --%s contradict each other (--%s alone replaces the whole list)", name, clearFlag, name)
	case cleared:
		return &[]string{}, nil
	}
	return given(fs, name, &vals), nil
}

// patch is the TreePatch of the flags given on the command line.
func (f *treeFlags) patch(fs *pflag.FlagSet) (inventoryapi.TreePatch, error) {
	filters, err := listFlag(fs, "filter", "clear-filters", f.filters, f.clearFilters)
	if err != nil {
		return inventoryapi.TreePatch{}, err
	}
	protect, err := listFlag(fs, "protect", "clear-protect", f.protect, f.clearProtect)
	if err != nil {
		return inventoryapi.TreePatch{}, err
	}
	canaries, err := listFlag(fs, "canary", "clear-canaries", f.canaries, f.clearCanaries)
	if err != nil {
		return inventoryapi.TreePatch{}, err
	}
	p := inventoryapi.TreePatch{
		CanarySites: canaries, SyncLatest: given(fs, "sync-latest", &f.syncLatest), Priority: given(fs, "priority", &f.priority),
		Source: given(fs, "source", &f.source), Schedule: given(fs, "schedule", &f.schedule),
		Type: given(fs, "type", &f.typ), AllowedLag: given(fs, "allowed-lag", &f.lag),
		Filters: filters, ProtectedPaths: protect,
		Keep: given(fs, "keep", &f.keep), MaxDeletions: given(fs, "max-deletions", &f.maxDeletions),
	}
	if fs.Changed("disabled") {
		enabled := !f.disabled
		p.Enabled = &enabled
	}
	return p, nil
}

// checkCreate checks the list flags of a create.
func (f *treeFlags) checkCreate(fs *pflag.FlagSet) error {
	if _, err := listFlag(fs, "filter", "", f.filters, false); err != nil {
		return err
	}
	_, err := listFlag(fs, "protect", "", f.protect, false)
	return err
}

// siteFlags are the settings of a site as flags.
type siteFlags struct {
	description, location, wan, agent string
	windows                           []string
	bandwidth                         int64
	// clearWindows (set only) empties the bandwidth windows.
	clearWindows bool
}

func (f *siteFlags) bind(fs *pflag.FlagSet, create bool) {
	fs.StringVar(&f.description, "description", "", "free text")
	fs.StringVar(&f.location, "location", "", `where the site is, such as "Lyon, bldg 3"`)
	fs.StringVar(&f.wan, "wan-link", "", `the site's WAN link, such as "10 Mbit/s MPLS"`)
	fs.StringVar(&f.agent, "agent-identity", "", "the site-agent's NATS user or public key")
	windowHelp := "repeat"
	if !create {
		windowHelp = "repeat; the windows given replace them all"
		fs.BoolVar(&f.clearWindows, "clear-windows", false, "remove every bandwidth window: transfers may run at any time")
	}
	fs.StringArrayVar(&f.windows, "window", nil, `period transfers may run, "DAYS HH:MM-HH:MM" such as "Mon-Fri 22:00-06:00" (`+windowHelp+`)`)
	fs.Int64Var(&f.bandwidth, "bandwidth", 0, "bandwidth budget in bytes/s (0: unlimited)")
}

func (f *siteFlags) patch(fs *pflag.FlagSet) (inventoryapi.SitePatch, error) {
	windows, err := listFlag(fs, "window", "clear-windows", f.windows, f.clearWindows)
	if err != nil {
		return inventoryapi.SitePatch{}, err
	}
	return inventoryapi.SitePatch{
		Description: given(fs, "description", &f.description), Location: given(fs, "location", &f.location),
		WANLink: given(fs, "wan-link", &f.wan), AgentIdentity: given(fs, "agent-identity", &f.agent),
		BandwidthWindows: windows, BandwidthLimit: given(fs, "bandwidth", &f.bandwidth),
	}, nil
}

func renderTree(w io.Writer, asJSON bool, t inventoryapi.Tree) error {
	return render(w, asJSON, t, "FIELD\tVALUE", func(w io.Writer) {
		enabled := t.Enabled == nil || *t.Enabled
		for _, kv := range [][2]string{
			{"name", t.Name}, {"origin", t.OriginSite}, {"source", t.Source}, {"type", t.Type},
			{"schedule", dash(t.Schedule)}, {"filters", dash(strings.Join(t.Filters, "; "))},
			{"keep", fmt.Sprint(t.Keep)}, {"max deletions", fmt.Sprint(t.MaxDeletions)},
			{"protected", dash(strings.Join(t.ProtectedPaths, "; "))}, {"allowed lag", t.AllowedLag},
			{"sync latest", fmt.Sprint(t.SyncLatest)}, {"canaries", dash(strings.Join(t.CanarySites, ", "))},
			{"priority", t.Priority}, {"enabled", fmt.Sprint(enabled)}, {"paused", fmt.Sprint(t.Paused)},
		} {
			fmt.Fprintf(w, "%s\t%s\n", kv[0], kv[1])
		}
	})
}

func renderSites(w io.Writer, asJSON bool, v any, sites []inventoryapi.Site) error {
	return render(w, asJSON, v, "SITE\tLOCATION\tBANDWIDTH\tWINDOWS\tPAUSED\tLAST HEARTBEAT", func(w io.Writer) {
		for _, s := range sites {
			bw, hb := "unlimited", "never"
			if s.BandwidthLimit > 0 {
				bw = fmt.Sprintf("%d B/s", s.BandwidthLimit)
			}
			if s.LastHeartbeat != nil {
				hb = s.LastHeartbeat.Local().Format("2006-01-02 15:04:05")
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%t\t%s\n", s.Name, dash(s.Location), bw, dash(strings.Join(s.BandwidthWindows, ", ")), s.Paused, hb)
		}
	})
}

func renderDeletion(w io.Writer, asJSON bool, d inventoryapi.Deletion) error {
	return render(w, asJSON, d, "DELETED\tALSO REMOVED", func(w io.Writer) {
		var also []string
		for _, k := range []string{"subscriptions", "versions", "deltas", "site_versions", "agent_tokens_revoked"} {
			if n, ok := d.Removed[k]; ok {
				also = append(also, fmt.Sprintf("%s=%d", k, n))
			}
		}
		fmt.Fprintf(w, "%s %s\t%s\n", d.Entity, d.Name, dash(strings.Join(also, " ")))
	})
}

// pauseCommands are `pause NAME` and `resume NAME` of kind ("trees" or
// "sites").
func pauseCommands(stdout io.Writer, client func() *inventoryapi.Client, asJSON *bool, kind string) []*cobra.Command {
	var out []*cobra.Command
	for _, paused := range []bool{true, false} {
		verb, what := "resume", "Resume"
		if paused {
			verb, what = "pause", "Pause"
		}
		out = append(out, &cobra.Command{
			Use:   verb + " NAME",
			Short: what + " every sync of the " + strings.TrimSuffix(kind, "s") + " (operator)",
			Args:  cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				subs, err := client().SetPaused(cmd.Context(), kind, args[0], paused)
				if err != nil {
					return err
				}
				return render(stdout, *asJSON, subs, "SITE\tTREE\tPAUSED", func(w io.Writer) {
					for _, s := range subs {
						fmt.Fprintf(w, "%s\t%s\t%t\n", s.Site, s.Tree, s.Paused)
					}
				})
			},
		})
	}
	return out
}

// deleteCommand is `delete NAME --yes`.
func deleteCommand(stdout io.Writer, asJSON *bool, what, long string, del func(cmd *cobra.Command, name string) (inventoryapi.Deletion, error)) *cobra.Command {
	var yes bool
	c := &cobra.Command{
		Use:   "delete NAME --yes",
		Short: "Delete a " + what + " from the inventory (admin)",
		Long:  long,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !yes {
				return fmt.Errorf("%s delete %s: this removes its record for good; add --yes to go ahead", what, args[0])
			}
			d, err := del(cmd, args[0])
			if err != nil {
				return err
			}
			return renderDeletion(stdout, *asJSON, d)
		},
	}
	c.Flags().BoolVar(&yes, "yes", false, "really delete")
	return c
}

func newTreeCatalog(stdout io.Writer, client func() *inventoryapi.Client, asJSON *bool) *cobra.Command {
	tree := &cobra.Command{Use: "tree", Short: "Declare, show, change, pause and delete trees; list a tree's versions"}
	var cf treeFlags
	create := &cobra.Command{
		Use:   "create NAME --origin SITE --source PATH [settings]",
		Short: "Declare a tree (admin)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if cf.origin == "" || cf.source == "" {
				return fmt.Errorf("tree create %s: --origin and --source are required", args[0])
			}
			if err := cf.checkCreate(cmd.Flags()); err != nil {
				return fmt.Errorf("tree create %s: %w", args[0], err)
			}
			enabled := !cf.disabled
			t, err := client().CreateTree(cmd.Context(), inventoryapi.Tree{
				Name: args[0], OriginSite: cf.origin, Source: cf.source, Schedule: cf.schedule, Filters: cf.filters,
				Keep: cf.keep, Type: cf.typ, MaxDeletions: cf.maxDeletions, ProtectedPaths: cf.protect,
				Enabled: &enabled, AllowedLag: cf.lag, SyncLatest: cf.syncLatest, CanarySites: cf.canaries, Priority: cf.priority,
			})
			if err != nil {
				return err
			}
			return renderTree(stdout, *asJSON, t)
		},
	}
	cf.bind(create.Flags(), true)
	var sf treeFlags
	set := &cobra.Command{
		Use:   "set NAME [settings]",
		Short: "Change the settings given, keeping the others (admin)",
		Long: `Change the settings given, keeping the others. The tree is read with its
ETag and written back with If-Match: if somebody changed it in between, the
change is refused (412) and nothing is written; run the command again.

--filter and --protect replace the whole list with the values given (repeat
the flag for several); --clear-filters and --clear-protect empty the list.
An empty value (--filter '') is refused, so that an unset shell variable
cannot wipe the list by accident.`,
		Example: `  pulpdist tree set docs --filter '- *.tmp' --filter '- .cache/'   # these two rules, no others
  pulpdist tree set docs --clear-filters --clear-protect            # no filter rules, no protected paths`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := sf.patch(cmd.Flags())
			if err != nil {
				return fmt.Errorf("tree set %s: %w", args[0], err)
			}
			if p == (inventoryapi.TreePatch{}) {
				return fmt.Errorf("tree set %s: give at least one setting to change (see --help)", args[0])
			}
			c := client()
			_, tag, err := c.TreeTagged(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			t, _, err := c.UpdateTree(cmd.Context(), args[0], tag, p)
			if err != nil {
				return err
			}
			return renderTree(stdout, *asJSON, t)
		},
	}
	sf.bind(set.Flags(), false)
	tree.AddCommand(create, set, &cobra.Command{
		Use:   "show NAME",
		Short: "Show a tree's settings",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			t, err := client().Tree(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return renderTree(stdout, *asJSON, t)
		},
	}, deleteCommand(stdout, asJSON, "tree", `Delete a tree with its subscriptions, versions and deltas from the
inventory, in one transaction. Runs stay in the record. Nothing is removed at
the sites, and stored packs stay in the object store until collected.`,
		func(cmd *cobra.Command, name string) (inventoryapi.Deletion, error) {
			return client().DeleteTree(cmd.Context(), name, "")
		}))
	tree.AddCommand(pauseCommands(stdout, client, asJSON, "trees")...)
	tree.AddCommand(treeHistoryCommand(stdout, client, asJSON))
	return tree
}

func newSiteCatalog(stdout, stderr io.Writer, client func() *inventoryapi.Client, asJSON *bool) []*cobra.Command {
	site := &cobra.Command{Use: "site", Short: "Declare, show, change, pause and delete sites; list a site's runs"}
	var cf siteFlags
	create := &cobra.Command{
		Use:   "create NAME [settings]",
		Short: "Declare a site (admin)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := listFlag(cmd.Flags(), "window", "", cf.windows, false); err != nil {
				return fmt.Errorf("site create %s: %w", args[0], err)
			}
			s, err := client().CreateSite(cmd.Context(), inventoryapi.Site{
				Name: args[0], Description: cf.description, Location: cf.location, WANLink: cf.wan,
				BandwidthLimit: cf.bandwidth, BandwidthWindows: cf.windows, AgentIdentity: cf.agent,
			})
			if err != nil {
				return err
			}
			return renderSites(stdout, *asJSON, s, []inventoryapi.Site{s})
		},
	}
	cf.bind(create.Flags(), true)
	var sf siteFlags
	set := &cobra.Command{
		Use:   "set NAME [settings]",
		Short: "Change the settings given, keeping the others (admin; refused if changed meanwhile)",
		Long: `Change the settings given, keeping the others. The site is read with its
ETag and written back with If-Match: if somebody changed it in between, the
change is refused (412) and nothing is written; run the command again.

--window replaces every bandwidth window with the ones given (repeat the
flag for several); --clear-windows removes them all, so that transfers may
run at any time. An empty --window '' is refused.`,
		Example: `  pulpdist site set lab-1 --window 'Mon-Fri 22:00-06:00' --window 'Sat-Sun 00:00-24:00'
  pulpdist site set lab-1 --clear-windows`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := sf.patch(cmd.Flags())
			if err != nil {
				return fmt.Errorf("site set %s: %w", args[0], err)
			}
			if p == (inventoryapi.SitePatch{}) {
				return fmt.Errorf("site set %s: give at least one setting to change (see --help)", args[0])
			}
			c := client()
			_, tag, err := c.SiteTagged(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			s, _, err := c.UpdateSite(cmd.Context(), args[0], tag, p)
			if err != nil {
				return err
			}
			return renderSites(stdout, *asJSON, s, []inventoryapi.Site{s})
		},
	}
	sf.bind(set.Flags(), false)
	site.AddCommand(create, set, &cobra.Command{
		Use:   "show NAME",
		Short: "Show a site's settings",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := client().Site(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return renderSites(stdout, *asJSON, s, []inventoryapi.Site{s})
		},
	}, deleteCommand(stdout, asJSON, "site", `Delete a site with its subscriptions from the inventory and revoke its
agent tokens, in one transaction. Refused while the site is the origin of a
tree. Nothing is removed at the site.`,
		func(cmd *cobra.Command, name string) (inventoryapi.Deletion, error) {
			return client().DeleteSite(cmd.Context(), name, "")
		}))
	site.AddCommand(pauseCommands(stdout, client, asJSON, "sites")...)
	site.AddCommand(siteHistoryCommand(stdout, stderr, client, asJSON))

	var paused bool
	subscribe := &cobra.Command{
		Use:   "subscribe SITE TREE [--paused]",
		Short: "Make a site a replica of a tree (admin)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := client().Subscribe(cmd.Context(), inventoryapi.Subscription{Site: args[0], Tree: args[1], Paused: paused})
			if err != nil {
				return err
			}
			return render(stdout, *asJSON, s, "SITE\tTREE\tPAUSED", func(w io.Writer) {
				fmt.Fprintf(w, "%s\t%s\t%t\n", s.Site, s.Tree, s.Paused)
			})
		},
	}
	subscribe.Flags().BoolVar(&paused, "paused", false, "subscribe paused")
	return []*cobra.Command{site, subscribe, {
		Use:   "unsubscribe SITE TREE",
		Short: "End a site's replica of a tree in the inventory; its files stay (admin)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			d, err := client().DeleteSubscription(cmd.Context(), args[0], args[1], "")
			if err != nil {
				return err
			}
			return renderDeletion(stdout, *asJSON, d)
		},
	}, {
		Use:   "sites",
		Short: "List sites",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ss, err := client().Sites(cmd.Context())
			if err != nil {
				return err
			}
			return renderSites(stdout, *asJSON, ss, ss)
		},
	}}
}
