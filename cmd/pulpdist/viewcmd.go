package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/pulpdist/pulpdist/libs/bus"
	"github.com/pulpdist/pulpdist/libs/inventoryapi"
)

// The read commands: `pulpdist runs`, `dry-run`, `alarms`, `failing`,
// `audit`, `problems` and `deltas`, and `tree history` and `site history`
// (added to the catalog commands).
//
// The lists ordered by a time (runs, a site's history, the audit log,
// problems, deltas) share their flags: --since and --until (RFC 3339,
// checked before any request), --asc, and how much to read. --limit N
// (default 100) shows the first N, following the API's cursor over as
// many pages as that takes; --all reads every page; --page-size bounds
// each request. When --limit stops before the end, a note on stderr says
// so.

const (
	// defaultListLimit is what a list shows without --limit or --all.
	defaultListLimit = 100
	// maxPageSize is the most items the API gives in one page.
	maxPageSize = 1000
)

// pageFlags are the range, order and extent of a list ordered by a time.
type pageFlags struct {
	since, until    string
	asc, all        bool
	limit, pageSize int
}

// bind adds the flags; what says what the times are of ("runs started").
func (f *pageFlags) bind(fs *pflag.FlagSet, what string) {
	fs.StringVar(&f.since, "since", "", "only "+what+" at or after this time (RFC 3339, such as 2025-03-01T09:00:00Z)")
	fs.StringVar(&f.until, "until", "", "only "+what+" before this time (RFC 3339)")
	fs.BoolVar(&f.asc, "asc", false, "oldest first (default: newest first)")
	fs.IntVar(&f.limit, "limit", defaultListLimit, "show at most this many, reading as many pages as that takes")
	fs.BoolVar(&f.all, "all", false, "show every one, reading every page")
	fs.IntVar(&f.pageSize, "page-size", maxPageSize, fmt.Sprintf("ask for at most this many per request (1..%d)", maxPageSize))
}

// query checks the flags and returns the first page's query (without
// its limit, which collect sets).
func (f *pageFlags) query(fs *pflag.FlagSet) (inventoryapi.TimeQuery, error) {
	var q inventoryapi.TimeQuery
	for _, b := range []struct {
		name, value string
		t           *time.Time
	}{{"since", f.since, &q.Since}, {"until", f.until, &q.Until}} {
		if b.value == "" {
			continue
		}
		t, err := time.Parse(time.RFC3339, b.value)
		if err != nil {
			return q, fmt.Errorf("--%s %q is not an RFC 3339 time such as 2025-03-01T09:00:00Z or 2025-03-01T10:00:00+01:00", b.name, b.value)
		}
		*b.t = t
	}
	switch {
	case !q.Since.IsZero() && !q.Until.IsZero() && !q.Until.After(q.Since):
		return q, fmt.Errorf("--until %s is not after --since %s", f.until, f.since)
	case f.all && fs.Changed("limit"):
		return q, errors.New("give --limit or --all, not both")
	case !f.all && f.limit < 1:
		return q, fmt.Errorf("--limit %d: give at least 1, or --all", f.limit)
	case f.pageSize < 1 || f.pageSize > maxPageSize:
		return q, fmt.Errorf("--page-size %d out of range 1..%d", f.pageSize, maxPageSize)
	}
	q.Ascending = f.asc
	return q, nil
}

// pager reads one page of a list: the items and the next page's cursor.
type pager[T any] func(context.Context, inventoryapi.TimeQuery) ([]T, string, error)

// collect reads a list page by page from first, following each page's
// cursor, until it has f.limit items or, with --all, to the last page.
// more reports that items were left unread.
func collect[T any](ctx context.Context, f *pageFlags, first inventoryapi.TimeQuery, page pager[T]) (items []T, more bool, err error) {
	q := first
	for {
		q.Limit = f.pageSize
		if !f.all {
			q.Limit = min(f.pageSize, f.limit-len(items))
		}
		got, next, err := page(ctx, q)
		if err != nil {
			return nil, false, err
		}
		items = append(items, got...)
		switch {
		case next == "":
			return items, false, nil
		case len(got) == 0 || next == q.Cursor:
			return nil, false, fmt.Errorf("the API named a next page that does not move on (cursor %.40q)", next)
		case !f.all && len(items) >= f.limit:
			return items, true, nil
		}
		q.Cursor = next
	}
}

// listCommand makes the RunE of a list command: read checks the other
// flags and args and returns the list's pager, and show renders what
// was read; a note on stderr tells of the items --limit left out.
func listCommand[T any](stdout, stderr io.Writer, asJSON *bool, pf *pageFlags, noun string,
	read func(args []string) (pager[T], error), show func(w io.Writer, asJSON bool, items []T) error,
) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		q, err := pf.query(cmd.Flags())
		if err != nil {
			return err
		}
		page, err := read(args)
		if err != nil {
			return err
		}
		items, more, err := collect(cmd.Context(), pf, q, page)
		if err != nil {
			return err
		}
		if items == nil {
			items = []T{} // --json prints [] for none, as the API does
		}
		if err := show(stdout, *asJSON, items); err != nil {
			return err
		}
		if more {
			fmt.Fprintf(stderr, "(more %s follow: raise --limit, or give --all)\n", noun)
		}
		return nil
	}
}

// resultFlag checks --result: one of the run results, in any case.
func resultFlag(s string) (string, error) {
	if s == "" {
		return "", nil
	}
	r := bus.Result(strings.ToUpper(s))
	if !r.Valid() {
		return "", fmt.Errorf("--result %q: want %s, %s, %s, %s or %s", s,
			bus.ResultUpToDate, bus.ResultCompleted, bus.ResultPartial, bus.ResultFailed, bus.ResultDisabled)
	}
	return string(r), nil
}

func renderRuns(w io.Writer, asJSON bool, rs []inventoryapi.Run) error {
	return render(w, asJSON, rs, "STARTED\tSITE\tTREE\tKIND\tTO\tRESULT\tFILES\tBYTES", func(w io.Writer) {
		for _, r := range rs {
			res := r.Result
			if res == "" {
				res = r.State
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\n", localTime(r.StartedAt), r.Site, r.Tree, r.Kind, dash(short(r.To)), res, r.Files, r.Bytes)
		}
	})
}

func localTime(t time.Time) string { return t.Local().Format(time.DateTime) }

// runFilterFlags are the filters of a run list besides the site.
type runFilterFlags struct {
	tree, result string
	page         pageFlags
}

func (f *runFilterFlags) bind(fs *pflag.FlagSet) {
	fs.StringVar(&f.tree, "tree", "", "only runs of this tree")
	fs.StringVar(&f.result, "result", "", "only finished runs with this result: UP_TO_DATE, COMPLETED, PARTIAL, FAILED or DISABLED")
	f.page.bind(fs, "runs started")
}

// query is the run query of the flags, without its TimeQuery.
func (f *runFilterFlags) query(site string) (inventoryapi.RunQuery, error) {
	res, err := resultFlag(f.result)
	return inventoryapi.RunQuery{Tree: f.tree, Site: site, Result: res}, err
}

func newRuns(stdout, stderr io.Writer, client func() *inventoryapi.Client, asJSON *bool) *cobra.Command {
	var f runFilterFlags
	var site string
	runs := &cobra.Command{
		Use:   "runs [--tree TREE] [--site SITE] [--result RESULT] [--since TIME] [--until TIME] [--limit N | --all]",
		Short: "List sync runs, newest first",
		Args:  cobra.NoArgs,
	}
	runs.RunE = listCommand(stdout, stderr, asJSON, &f.page, "runs",
		func(_ []string) (pager[inventoryapi.Run], error) {
			q, err := f.query(site)
			if err != nil {
				return nil, err
			}
			c := client()
			return func(ctx context.Context, tq inventoryapi.TimeQuery) ([]inventoryapi.Run, string, error) {
				q.TimeQuery = tq
				return c.RunPage(ctx, q)
			}, nil
		}, renderRuns)
	f.bind(runs.Flags())
	runs.Flags().StringVar(&site, "site", "", "only runs of this site")
	return runs
}

// siteHistoryCommand is `site history NAME`.
func siteHistoryCommand(stdout, stderr io.Writer, client func() *inventoryapi.Client, asJSON *bool) *cobra.Command {
	var f runFilterFlags
	history := &cobra.Command{
		Use:   "history NAME [--tree TREE] [--result RESULT] [--since TIME] [--until TIME] [--limit N | --all]",
		Short: "List a site's runs, newest first",
		Long: `List the runs of a site, newest first (GET /api/v1/sites/{name}/history):
its applies and, at an origin, its scans. An unknown site is an error.`,
		Args: cobra.ExactArgs(1),
	}
	history.RunE = listCommand(stdout, stderr, asJSON, &f.page, "runs",
		func(args []string) (pager[inventoryapi.Run], error) {
			q, err := f.query("")
			if err != nil {
				return nil, err
			}
			c := client()
			return func(ctx context.Context, tq inventoryapi.TimeQuery) ([]inventoryapi.Run, string, error) {
				q.TimeQuery = tq
				return c.SiteHistory(ctx, args[0], q)
			}, nil
		}, renderRuns)
	f.bind(history.Flags())
	return history
}

// treeHistoryCommand is `tree history NAME`.
func treeHistoryCommand(stdout io.Writer, client func() *inventoryapi.Client, asJSON *bool) *cobra.Command {
	return &cobra.Command{
		Use:   "history NAME",
		Short: "List a tree's versions, newest first, with when each site got each",
		Long: `List the versions of a tree, newest first (GET /api/v1/trees/{name}/history),
each with the sites that got it and when: a site got a version when a run
that left it serving that version first finished. "-" is no site yet.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			hs, err := client().TreeHistory(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return render(stdout, *asJSON, hs, "PUBLISHED\tVERSION\tFILES\tBYTES\tARRIVED", func(w io.Writer) {
				for _, h := range hs {
					var arrived []string
					for _, a := range h.Arrivals {
						arrived = append(arrived, a.Site+" "+localTime(a.ArrivedAt))
					}
					fmt.Fprintf(w, "%s\t%s\t%d\t%d\t%s\n", localTime(h.PublishedAt), short(h.Root), h.Files, h.Bytes, dash(strings.Join(arrived, ", ")))
				}
			})
		},
	}
}

// newViewCommands are the read commands at the top level.
func newViewCommands(stdout, stderr io.Writer, client func() *inventoryapi.Client, asJSON *bool) []*cobra.Command {
	var alarmsOf, failingOf inventoryapi.Place
	cmds := []*cobra.Command{
		newRuns(stdout, stderr, client, asJSON),
		newDryRun(stdout, client, asJSON),
		{
			Use:   "alarms",
			Short: "List the subscriptions behind longer than their tree allows",
			Long: `List the subscriptions, not paused, that have lacked the latest version of
their tree for longer than its allowed lag (GET /api/v1/alarms). BEHIND is
the number of versions missing, LAG how long since the oldest of them was
published, ALLOWED the tree's allowed lag.`,
			Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				as, err := client().AlarmsOf(cmd.Context(), alarmsOf)
				if err != nil {
					return err
				}
				return render(stdout, *asJSON, as, "SITE\tTREE\tVERSION\tLATEST\tBEHIND\tLAG\tALLOWED\tSTATE", func(w io.Writer) {
					for _, a := range as {
						fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", a.Site, a.Tree, dash(short(a.Version)), dash(short(a.LatestVersion)),
							a.VersionsBehind, seconds(a.LagSeconds), seconds(a.AllowedLagSeconds), a.State)
					}
				})
			},
		},
		{
			Use:   "failing",
			Short: "List the subscriptions (and origins) whose newest run failed",
			Long: `List the newest run of each subscription, and of each tree's origin, whose
result is FAILED or PARTIAL (GET /api/v1/failing), by tree, then site, with its error.`,
			Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				rs, err := client().FailingOf(cmd.Context(), failingOf)
				if err != nil {
					return err
				}
				return render(stdout, *asJSON, rs, "STARTED\tSITE\tTREE\tKIND\tTO\tERROR", func(w io.Writer) {
					for _, r := range rs {
						fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", localTime(r.StartedAt), r.Site, r.Tree, r.Kind, dash(short(r.To)),
							dash(strings.Join(strings.Fields(r.Error), " ")))
					}
				})
			},
		},
		newAudit(stdout, stderr, client, asJSON),
		newProblems(stdout, stderr, client, asJSON),
		newDeltas(stdout, stderr, client, asJSON),
	}
	placeFlags(cmds[2], &alarmsOf)
	sortFlag(cmds[2], &alarmsOf)
	placeFlags(cmds[3], &failingOf)
	return cmds
}

// sortFlag adds --sort to the overview and the alarms.
func sortFlag(cmd *cobra.Command, p *inventoryapi.Place) {
	cmd.Flags().StringVar(&p.Sort, "sort", "", "order: tree (the default), site, or -lag (the longest behind first)")
}

// placeFlags adds --site and --tree, which keep the rows of one site
// and/or one tree.
func placeFlags(cmd *cobra.Command, p *inventoryapi.Place) {
	cmd.Flags().StringVar(&p.Site, "site", "", "only the rows of this site")
	cmd.Flags().StringVar(&p.Tree, "tree", "", "only the rows of this tree")
}

func seconds(s int64) string { return (time.Duration(s) * time.Second).String() }

func newDryRun(stdout io.Writer, client func() *inventoryapi.Client, asJSON *bool) *cobra.Command {
	return &cobra.Command{
		Use:   "dry-run SITE TREE",
		Short: "Show what syncing a subscription to the latest version would change at the site",
		Long: `Show what a sync of SITE's replica of TREE to the tree's latest version would
change at the site, from the manifests of the version the site serves and of
the latest one (GET /api/v1/subscriptions/{site}/{tree}/dry-run). Nothing is
sent to the site. "entries to write" are the new or changed entries, of which
"files to write" are regular files holding "bytes to write"; "paths to
delete" are removed. A site in sync, or a tree without versions, gets zeros.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			d, err := client().DryRun(cmd.Context(), args[0], args[1])
			if err != nil {
				return err
			}
			from, to := d.From, d.To
			if from == "" {
				from = "- (serves no version)"
			}
			if to == "" {
				to = "- (no version published)"
			}
			return render(stdout, *asJSON, d, "FIELD\tVALUE", func(w io.Writer) {
				for _, kv := range [][2]string{
					{"site", d.Site}, {"tree", d.Tree}, {"from", from}, {"to", to},
					{"entries to write", fmt.Sprint(d.Set)}, {"files to write", fmt.Sprint(d.Files)},
					{"bytes to write", fmt.Sprint(d.Bytes)}, {"paths to delete", fmt.Sprint(d.Remove)},
				} {
					fmt.Fprintf(w, "%s\t%s\n", kv[0], kv[1])
				}
			})
		},
	}
}

func newAudit(stdout, stderr io.Writer, client func() *inventoryapi.Client, asJSON *bool) *cobra.Command {
	var f pageFlags
	var q inventoryapi.AuditQuery
	audit := &cobra.Command{
		Use:   "audit [--entity KIND] [--name NAME] [--action ACTION] [--actor ACTOR] [--since TIME] [--until TIME] [--asc] [--limit N | --all]",
		Short: "Show who changed what, newest first (admin)",
		Long: `Show the audit log (GET /api/v1/audit): every create, update, delete, sync
trigger, pause, resume and revocation, with who made it and the fields it
set, newest first. The filters combine; an empty one matches all.`,
		Example: `  pulpdist audit --entity tree --name docs --action update
  pulpdist audit --actor alice --since 2025-03-01T00:00:00Z --all`,
		Args: cobra.NoArgs,
	}
	audit.RunE = listCommand(stdout, stderr, asJSON, &f, "entries",
		func(_ []string) (pager[inventoryapi.AuditEntry], error) {
			c := client()
			return func(ctx context.Context, tq inventoryapi.TimeQuery) ([]inventoryapi.AuditEntry, string, error) {
				q.TimeQuery = tq
				return c.AuditPage(ctx, q)
			}, nil
		},
		func(w io.Writer, asJSON bool, es []inventoryapi.AuditEntry) error {
			return render(w, asJSON, es, "AT\tACTOR\tACTION\tENTITY\tNAME\tSUMMARY", func(w io.Writer) {
				for _, e := range es {
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", localTime(e.At), e.Actor, e.Action, e.Entity, e.Name, compactJSON(e.Summary))
				}
			})
		})
	fs := audit.Flags()
	fs.StringVar(&q.Entity, "entity", "", "only entries about this kind of entity: site, tree, subscription, key or token")
	fs.StringVar(&q.Name, "name", "", `only entries about the entity of this name ("docs", "paris/docs" for a subscription, a key or token id)`)
	fs.StringVar(&q.Action, "action", "", "only entries of this action: create, update, delete, trigger, pause, resume or revoke")
	fs.StringVar(&q.Actor, "actor", "", "only entries by this actor, as the log names it")
	f.bind(fs, "entries written")
	return audit
}

// compactJSON is raw on one line, or "-" when empty.
func compactJSON(raw json.RawMessage) string {
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return dash(strings.Join(strings.Fields(string(raw)), " "))
	}
	return dash(b.String())
}

func newProblems(stdout, stderr io.Writer, client func() *inventoryapi.Client, asJSON *bool) *cobra.Command {
	var f pageFlags
	var q inventoryapi.ProblemQuery
	problems := &cobra.Command{
		Use:   "problems [--type TYPE] [--since TIME] [--until TIME] [--asc] [--limit N | --all]",
		Short: "List the bus events the inventory kept but could not apply, newest first",
		Long: `List the bus events the inventory kept but could not apply (GET
/api/v1/problems), such as a snapshot of a tree it does not know, each with
the reason, newest first.`,
		Args: cobra.NoArgs,
	}
	problems.RunE = listCommand(stdout, stderr, asJSON, &f, "problems",
		func(_ []string) (pager[inventoryapi.EventProblem], error) {
			c := client()
			return func(ctx context.Context, tq inventoryapi.TimeQuery) ([]inventoryapi.EventProblem, string, error) {
				q.TimeQuery = tq
				return c.ProblemPage(ctx, q)
			}, nil
		},
		func(w io.Writer, asJSON bool, ps []inventoryapi.EventProblem) error {
			return render(w, asJSON, ps, "RECEIVED\tTYPE\tSUBJECT\tREASON", func(w io.Writer) {
				for _, p := range ps {
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", localTime(p.ReceivedAt), p.Type, dash(p.Subject), p.Reason)
				}
			})
		})
	problems.Flags().StringVar(&q.Type, "type", "", "only problems of events of this CloudEvents type, such as org.pulpdist.snapshot.published.v1")
	f.bind(problems.Flags(), "problems received")
	return problems
}

func newDeltas(stdout, stderr io.Writer, client func() *inventoryapi.Client, asJSON *bool) *cobra.Command {
	var f pageFlags
	var q inventoryapi.DeltaQuery
	deltas := &cobra.Command{
		Use:   "deltas [--tree TREE] [--since TIME] [--until TIME] [--asc] [--limit N | --all]",
		Short: "List the delta packs the delta-caches announced, newest first",
		Long: `List the delta packs the delta-caches announced (GET /api/v1/deltas), newest
first: each turns version FROM of a tree into TO ("-": from the empty tree),
with its size, how often completed runs applied it and which delta-cache
built it.`,
		Args: cobra.NoArgs,
	}
	deltas.RunE = listCommand(stdout, stderr, asJSON, &f, "deltas",
		func(_ []string) (pager[inventoryapi.Delta], error) {
			c := client()
			return func(ctx context.Context, tq inventoryapi.TimeQuery) ([]inventoryapi.Delta, string, error) {
				q.TimeQuery = tq
				return c.DeltaPage(ctx, q)
			}, nil
		},
		func(w io.Writer, asJSON bool, ds []inventoryapi.Delta) error {
			return render(w, asJSON, ds, "FIRST SEEN\tTREE\tFROM\tTO\tSIZE\tSERVED\tCOMPUTED BY", func(w io.Writer) {
				for _, d := range ds {
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%d\t%d\t%s\n", localTime(d.FirstSeenAt), d.Tree, dash(short(d.From)), short(d.To), d.Size, d.TimesServed, dash(d.ComputedBy))
				}
			})
		})
	deltas.Flags().StringVar(&q.Tree, "tree", "", "only the deltas of this tree")
	f.bind(deltas.Flags(), "deltas first seen")
	return deltas
}
