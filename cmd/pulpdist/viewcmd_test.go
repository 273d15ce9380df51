package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pulpdist/pulpdist/libs/bus"
	"github.com/pulpdist/pulpdist/libs/inventoryapi"
	"github.com/pulpdist/pulpdist/libs/poll"
	"github.com/pulpdist/pulpdist/libs/tree"
)

// decodeJSON decodes the output of a --json command.
func decodeJSON[T any](t *testing.T, out string) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("decode %q: %v", out, err)
	}
	return v
}

func runIDs(rs []inventoryapi.Run) []string {
	ids := make([]string, 0, len(rs))
	for _, r := range rs {
		ids = append(ids, r.ID)
	}
	return ids
}

// TestViewCommands reads runs, histories, dry runs, alarms, failures,
// the audit log, problems and deltas through the CLI from a real
// inventory fed by events on a real bus, as site-agents and delta-caches
// would feed it.
func TestViewCommands(t *testing.T) {
	api, natsURL := startInventoryBus(t)
	run := runner(t, api)
	for _, s := range []string{"hq", "paris", "lyon"} {
		run("site", "create", s)
	}
	run("tree", "create", "docs", "--origin", "hq", "--source", "/srv/docs")
	run("subscribe", "paris", "docs")
	run("subscribe", "lyon", "docs")

	// Two versions with their manifests, as the origin stores them: v1
	// published 72 h ago, v2 48 h ago. lyon got v1 and failed towards
	// v2 an hour ago; paris got v2.
	js := connectJetStream(t, natsURL)
	manifests, err := js.ObjectStore(t.Context(), bus.BucketManifests)
	if err != nil {
		t.Fatal(err)
	}
	version := func(files map[string]string) string {
		dir := t.TempDir()
		for p, body := range files {
			if err := os.WriteFile(filepath.Join(dir, p), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		m := scan(t, dir)
		var buf bytes.Buffer
		if err := tree.Encode(&buf, m); err != nil {
			t.Fatal(err)
		}
		if _, err := manifests.PutBytes(t.Context(), bus.ManifestObject("docs", m.Root()), buf.Bytes()); err != nil {
			t.Fatal(err)
		}
		return m.Root()
	}
	v1 := version(map[string]string{"a.txt": "aaaaa", "b.txt": "bbb"})
	v2 := version(map[string]string{"a.txt": "aaaaaaa", "c.txt": "cccc"})
	// Each site's reports come from its agent, signed with an agent token
	// of the site as the inventory requires; deltas from a delta-cache.
	agents := map[string]*bus.Events{}
	for _, s := range []string{"hq", "paris", "lyon"} {
		tok := strings.TrimSpace(run("token", "create", "--role", "agent", "--site", s, "--name", "agent-"+s))
		id, err := bus.ReportTokenID(tok)
		if err != nil {
			t.Fatalf("agent token of %s %q: %v", s, tok, err)
		}
		agents[s] = bus.NewEvents(js, "/pulpdist/siteagent/"+s).SignReportsWith(id, bus.ReportKey(tok))
	}
	deltaCache := bus.NewEvents(js, "/pulpdist/deltacache/dc-1")
	now := time.Now().UTC()
	publishAs := func(from *bus.Events, entity, action string, about bus.About, data any) {
		t.Helper()
		if err := from.Publish(t.Context(), entity, action, about, data); err != nil {
			t.Fatal(err)
		}
	}
	for _, v := range []struct {
		root string
		ago  time.Duration
	}{{v1, 72 * time.Hour}, {v2, 48 * time.Hour}} {
		publishAs(agents["hq"], bus.EntitySnapshot, bus.ActionPublished, bus.About{Tree: "docs", Site: "hq"}, bus.Snapshot{
			V: 1, TriggerID: "t", Tree: "docs", Site: "hq", Root: v.root, Files: 2, Bytes: 8, PublishedAt: now.Add(-v.ago)})
	}
	for _, r := range []struct {
		id, site, from, to string
		result             bus.Result
		err                string
		ago                time.Duration
	}{
		{"r1", "lyon", "", v1, bus.ResultCompleted, "", 70 * time.Hour},
		{"r2", "paris", "", v2, bus.ResultCompleted, "", 47 * time.Hour},
		{"r3", "lyon", v1, v2, bus.ResultFailed, "disk\nfull", time.Hour},
	} {
		publishAs(agents[r.site], bus.EntitySync, bus.ActionFinished, bus.About{Tree: "docs", Site: r.site}, bus.SyncFinished{
			RunID: r.id, TriggerID: "t", Site: r.site, Tree: "docs", Kind: bus.CommandApply, From: r.from, To: r.to,
			Result: r.result, Error: r.err, Files: 2, Bytes: 11, FinishedAt: now.Add(-r.ago)})
	}
	// Three deltas, and a snapshot of a tree the inventory does not know.
	for _, d := range [][2]string{{"", v1}, {v1, v2}, {"", v2}} {
		publishAs(deltaCache, bus.EntityDelta, bus.ActionComputed, bus.About{Tree: "docs"}, bus.DeltaComputed{
			Tree: "docs", From: d[0], To: d[1], Pack: "docs/" + d[1], Size: 100, Parts: 1, Instance: "dc-1", DurationMS: 5, Effort: "default", Sites: 1})
	}
	publishAs(agents["hq"], bus.EntitySnapshot, bus.ActionPublished, bus.About{Tree: "ghost", Site: "hq"}, bus.Snapshot{
		V: 1, TriggerID: "t", Tree: "ghost", Site: "hq", Root: v1, Files: 2, Bytes: 8, PublishedAt: now})
	c := inventoryapi.NewClient(api, nil).WithToken(testToken)
	poll.Until(t, 30*time.Second, func() error {
		rs, err := c.Runs(t.Context(), "docs", "")
		if err != nil {
			return err
		}
		ds, err := c.Deltas(t.Context(), "docs", 0)
		if err != nil {
			return err
		}
		ps, err := c.Problems(t.Context(), 0)
		if err != nil {
			return err
		}
		if len(rs) != 3 || len(ds) != 3 || len(ps) != 1 {
			return fmt.Errorf("%d runs, %d deltas, %d problems recorded", len(rs), len(ds), len(ps))
		}
		return nil
	})

	t.Run("runs", func(t *testing.T) {
		for _, tc := range []struct {
			args []string
			want []string
		}{
			{[]string{"--tree", "docs"}, []string{"r3", "r2", "r1"}},
			{[]string{"--tree", "docs", "--asc"}, []string{"r1", "r2", "r3"}},
			{[]string{"--site", "lyon"}, []string{"r3", "r1"}},
			{[]string{"--result", "failed"}, []string{"r3"}},
			{[]string{"--result", "COMPLETED", "--site", "paris"}, []string{"r2"}},
			{[]string{"--since", now.Add(-2 * time.Hour).Format(time.RFC3339)}, []string{"r3"}},
			{[]string{"--until", now.Add(-60 * time.Hour).Format(time.RFC3339)}, []string{"r1"}},
			{[]string{"--since", now.Add(-60 * time.Hour).In(time.FixedZone("", 3600)).Format(time.RFC3339), "--until", now.Add(-2 * time.Hour).Format(time.RFC3339)}, []string{"r2"}},
			{[]string{"--all", "--page-size", "1", "--asc"}, []string{"r1", "r2", "r3"}},
			{[]string{"--limit", "2", "--page-size", "1"}, []string{"r3", "r2"}},
		} {
			got := runIDs(decodeJSON[[]inventoryapi.Run](t, run(append([]string{"--json", "runs"}, tc.args...)...)))
			if !slices.Equal(got, tc.want) {
				t.Errorf("runs %v: %v, want %v", tc.args, got, tc.want)
			}
		}
		out := run("runs", "--result", "failed")
		if !strings.Contains(out, "lyon") || !strings.Contains(out, "FAILED") || !strings.Contains(out, short(v2)) || strings.Contains(out, "paris") {
			t.Errorf("runs --result failed:\n%s", out)
		}
		if out := run("--json", "runs", "--result", "partial"); strings.TrimSpace(out) != "[]" {
			t.Errorf("runs --result partial --json: %q, want []", out)
		}
	})

	t.Run("site history", func(t *testing.T) {
		if got := runIDs(decodeJSON[[]inventoryapi.Run](t, run("--json", "site", "history", "lyon"))); !slices.Equal(got, []string{"r3", "r1"}) {
			t.Errorf("site history lyon: %v", got)
		}
		if got := runIDs(decodeJSON[[]inventoryapi.Run](t, run("--json", "site", "history", "lyon", "--result", "completed", "--tree", "docs"))); !slices.Equal(got, []string{"r1"}) {
			t.Errorf("site history lyon --result completed: %v", got)
		}
		out, errOut, err := cliStreams(t, "--api", api, "site", "history", "lyon", "--limit", "1")
		if err != nil || !strings.Contains(out, "lyon") || !strings.Contains(out, "FAILED") || strings.Contains(out, "COMPLETED") ||
			!strings.Contains(errOut, "more runs follow") {
			t.Errorf("site history lyon --limit 1: %v\n%s\nstderr: %s", err, out, errOut)
		}
		if _, errOut, _ := cliStreams(t, "--api", api, "site", "history", "lyon", "--limit", "2"); errOut != "" {
			t.Errorf("site history with every run shown: stderr %q", errOut)
		}
	})

	t.Run("tree history", func(t *testing.T) {
		hs := decodeJSON[[]inventoryapi.VersionHistory](t, run("--json", "tree", "history", "docs"))
		if len(hs) != 2 || hs[0].Root != v2 || len(hs[0].Arrivals) != 1 || hs[0].Arrivals[0].Site != "paris" ||
			hs[1].Root != v1 || len(hs[1].Arrivals) != 1 || hs[1].Arrivals[0].Site != "lyon" {
			t.Fatalf("tree history docs: %+v", hs)
		}
		out := run("tree", "history", "docs")
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != 3 || !strings.Contains(lines[1], short(v2)) || !strings.Contains(lines[1], "paris "+localTime(hs[0].Arrivals[0].ArrivedAt)) ||
			!strings.Contains(lines[2], short(v1)) || !strings.Contains(lines[2], "lyon ") {
			t.Errorf("tree history docs:\n%s", out)
		}
	})

	t.Run("dry-run", func(t *testing.T) {
		// lyon serves v1: a.txt changes, c.txt is new (11 bytes), b.txt goes.
		d := decodeJSON[inventoryapi.DryRun](t, run("--json", "dry-run", "lyon", "docs"))
		if d.From != v1 || d.To != v2 || d.Set != 2 || d.Files != 2 || d.Bytes != 11 || d.Remove != 1 {
			t.Errorf("dry-run lyon docs: %+v", d)
		}
		out := run("dry-run", "lyon", "docs")
		for _, want := range []string{v1, v2, "entries to write  2", "files to write    2", "bytes to write    11", "paths to delete   1"} {
			if !strings.Contains(out, want) {
				t.Errorf("dry-run lyon docs: no %q in\n%s", want, out)
			}
		}
		if d := decodeJSON[inventoryapi.DryRun](t, run("--json", "dry-run", "paris", "docs")); d.From != v2 || d.Set != 0 || d.Remove != 0 || d.Bytes != 0 {
			t.Errorf("dry-run of a site in sync: %+v", d)
		}
	})

	t.Run("alarms and failing", func(t *testing.T) {
		// lyon lacks v2, published 48 h ago; docs allows 24 h.
		as := decodeJSON[[]inventoryapi.Alarm](t, run("--json", "alarms"))
		if len(as) != 1 || as[0].Site != "lyon" || as[0].Tree != "docs" || as[0].AllowedLagSeconds != 86400 || as[0].VersionsBehind != 1 {
			t.Errorf("alarms: %+v", as)
		}
		out := run("alarms")
		if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 2 || !strings.Contains(lines[1], "lyon") ||
			!strings.Contains(lines[1], "24h0m0s") || !strings.Contains(lines[1], short(v1)) || !strings.Contains(lines[1], short(v2)) {
			t.Errorf("alarms:\n%s", out)
		}
		fs := decodeJSON[[]inventoryapi.Run](t, run("--json", "failing"))
		if got := runIDs(fs); !slices.Equal(got, []string{"r3"}) {
			t.Errorf("failing: %v", got)
		}
		if out := run("failing"); !strings.Contains(out, "lyon") || !strings.Contains(out, "disk full") {
			t.Errorf("failing:\n%s", out)
		}
		// --site and --tree keep one place's rows.
		if as := decodeJSON[[]inventoryapi.Alarm](t, run("--json", "alarms", "--site", "paris")); len(as) != 0 {
			t.Errorf("alarms --site paris: %+v", as)
		}
		if fs := decodeJSON[[]inventoryapi.Run](t, run("--json", "failing", "--site", "lyon", "--tree", "docs")); !slices.Equal(runIDs(fs), []string{"r3"}) {
			t.Errorf("failing --site lyon --tree docs: %v", runIDs(fs))
		}
		if fs := decodeJSON[[]inventoryapi.Run](t, run("--json", "failing", "--tree", "isos")); len(fs) != 0 {
			t.Errorf("failing --tree isos: %v", runIDs(fs))
		}
		if _, err := cli(t, "--api", api, "alarms", "--sort", "lag"); err == nil || !strings.Contains(err.Error(), "-lag") {
			t.Errorf("alarms --sort lag: err = %v, want 400 naming the sorts", err)
		}
		if as := decodeJSON[[]inventoryapi.Alarm](t, run("--json", "alarms", "--sort", "-lag")); len(as) != 1 || as[0].Site != "lyon" {
			t.Errorf("alarms --sort -lag: %+v", as)
		}
		rows := decodeJSON[[]inventoryapi.OverviewRow](t, run("--json", "overview", "--site", "lyon", "--sort", "site"))
		if len(rows) == 0 {
			t.Error("overview --site lyon: no rows")
		}
		for _, r := range rows {
			if r.Site != "lyon" {
				t.Errorf("overview --site lyon has a row of %s/%s", r.Site, r.Tree)
			}
		}
	})

	t.Run("audit", func(t *testing.T) {
		names := func(es []inventoryapi.AuditEntry) []string {
			var out []string
			for _, e := range es {
				out = append(out, e.Entity+":"+e.Action+":"+e.Name)
			}
			return out
		}
		for _, tc := range []struct {
			args []string
			want []string
		}{
			{[]string{"--entity", "site"}, []string{"site:create:lyon", "site:create:paris", "site:create:hq"}},
			// Two pages of two, then one.
			{[]string{"--entity", "site", "--asc", "--all", "--page-size", "2"}, []string{"site:create:hq", "site:create:paris", "site:create:lyon"}},
			{[]string{"--entity", "subscription", "--name", "paris/docs"}, []string{"subscription:create:paris/docs"}},
			{[]string{"--action", "create", "--entity", "tree"}, []string{"tree:create:docs"}},
			{[]string{"--action", "delete"}, nil},
			{[]string{"--entity", "site", "--until", now.Add(-time.Hour).Format(time.RFC3339)}, nil},
		} {
			if got := names(decodeJSON[[]inventoryapi.AuditEntry](t, run(append([]string{"--json", "audit"}, tc.args...)...))); !slices.Equal(got, tc.want) {
				t.Errorf("audit %v: %v, want %v", tc.args, got, tc.want)
			}
		}
		out, errOut, err := cliStreams(t, "--api", api, "audit", "--entity", "site", "--limit", "2", "--page-size", "1")
		if lines := strings.Split(strings.TrimSpace(out), "\n"); err != nil || len(lines) != 3 || !strings.Contains(lines[1], "lyon") ||
			!strings.Contains(lines[2], "paris") || !strings.Contains(errOut, "more entries follow") {
			t.Errorf("audit --limit 2 --page-size 1: %v\n%s\nstderr: %s", err, out, errOut)
		}
	})

	t.Run("problems and deltas", func(t *testing.T) {
		ps := decodeJSON[[]inventoryapi.EventProblem](t, run("--json", "problems", "--type", "org.pulpdist.snapshot.published.v1"))
		if len(ps) != 1 || !strings.Contains(ps[0].Reason, "ghost") {
			t.Errorf("problems --type snapshot: %+v", ps)
		}
		if out := run("problems"); !strings.Contains(out, "org.pulpdist.snapshot.published.v1") || !strings.Contains(out, "ghost") {
			t.Errorf("problems:\n%s", out)
		}
		if ps := decodeJSON[[]inventoryapi.EventProblem](t, run("--json", "problems", "--type", "org.pulpdist.delta.computed.v1")); len(ps) != 0 {
			t.Errorf("problems of another type: %+v", ps)
		}
		newest := decodeJSON[[]inventoryapi.Delta](t, run("--json", "deltas", "--tree", "docs"))
		oldest := decodeJSON[[]inventoryapi.Delta](t, run("--json", "deltas", "--tree", "docs", "--asc", "--all", "--page-size", "2"))
		if len(newest) != 3 || len(oldest) != 3 {
			t.Fatalf("deltas: %d newest first, %d oldest first", len(newest), len(oldest))
		}
		for i := range newest {
			if newest[i].From != oldest[2-i].From || newest[i].To != oldest[2-i].To {
				t.Errorf("deltas --asc is not the reverse: %+v, %+v", newest, oldest)
			}
		}
		if ds := decodeJSON[[]inventoryapi.Delta](t, run("--json", "deltas", "--tree", "ghost")); len(ds) != 0 {
			t.Errorf("deltas of another tree: %+v", ds)
		}
		if out := run("deltas", "--tree", "docs"); !strings.Contains(out, short(v1)) || !strings.Contains(out, "dc-1") || !strings.Contains(out, "100") {
			t.Errorf("deltas:\n%s", out)
		}
	})

	t.Run("refused by the inventory", func(t *testing.T) {
		for _, tc := range []struct {
			args []string
			want string
		}{
			{[]string{"site", "history", "nope"}, "Not Found"},
			{[]string{"tree", "history", "nope"}, "Not Found"},
			{[]string{"dry-run", "hq", "docs"}, "Not Found"},
			{[]string{"dry-run", "paris", "nope"}, "Not Found"},
		} {
			if _, err := cli(t, append([]string{"--api", api}, tc.args...)...); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%v: err = %v, want %q", tc.args, err, tc.want)
			}
		}
	})
}

// TestViewCommandsBadInput checks that bad flags and arguments are refused
// with a clear reason before any request is sent.
func TestViewCommandsBadInput(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("request %s %s sent for bad input", r.Method, r.URL)
		http.Error(w, "no", http.StatusTeapot)
	}))
	defer srv.Close()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"runs", "--since", "yesterday"}, `--since "yesterday" is not an RFC 3339 time`},
		{[]string{"runs", "--until", "2025-03-01"}, `--until "2025-03-01" is not an RFC 3339 time`},
		{[]string{"runs", "--since", "2025-13-01T00:00:00Z"}, "is not an RFC 3339 time"},
		{[]string{"runs", "--since", "2025-03-02T00:00:00Z", "--until", "2025-03-01T00:00:00Z"}, "--until 2025-03-01T00:00:00Z is not after --since 2025-03-02T00:00:00Z"},
		{[]string{"runs", "--result", "done"}, `--result "done": want UP_TO_DATE, COMPLETED, PARTIAL, FAILED or DISABLED`},
		{[]string{"runs", "extra"}, "unknown command"},
		{[]string{"site", "history", "lyon", "--since", "noon"}, `--since "noon"`},
		{[]string{"site", "history", "lyon", "--result", "ok"}, `--result "ok"`},
		{[]string{"site", "history"}, "accepts 1 arg(s), received 0"},
		{[]string{"tree", "history"}, "accepts 1 arg(s), received 0"},
		{[]string{"dry-run", "lyon"}, "accepts 2 arg(s), received 1"},
		{[]string{"alarms", "docs"}, "unknown command"},
		{[]string{"failing", "docs"}, "unknown command"},
		{[]string{"audit", "--since", "2025-03-01 09:00"}, "is not an RFC 3339 time"},
		{[]string{"audit", "--limit", "0"}, "--limit 0: give at least 1, or --all"},
		{[]string{"audit", "--limit", "5", "--all"}, "give --limit or --all, not both"},
		{[]string{"audit", "--page-size", "1001"}, "--page-size 1001 out of range 1..1000"},
		{[]string{"problems", "--until", "tomorrow"}, `--until "tomorrow"`},
		{[]string{"deltas", "--page-size", "0"}, "--page-size 0 out of range"},
	} {
		if _, err := cli(t, append([]string{"--api", srv.URL}, tc.args...)...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: err = %v, want %q", tc.args, err, tc.want)
		}
	}
}

// TestSetClearsLists empties and replaces list settings with tree set and
// site set, and refuses an empty value.
func TestSetClearsLists(t *testing.T) {
	api := startInventory(t)
	run := runner(t, api)
	run("site", "create", "hq", "--window", "Mon-Fri 22:00-06:00", "--window", "Sat-Sun 00:00-24:00")
	run("tree", "create", "builds", "--origin", "hq", "--source", "/srv/builds", "--filter", "- *.tmp", "--filter", "- *.log", "--protect", "/keep/**")
	treeNow := func(args ...string) inventoryapi.Tree {
		t.Helper()
		return decodeJSON[inventoryapi.Tree](t, run(append([]string{"--json", "tree"}, args...)...))
	}

	// A list flag replaces the whole list.
	if tr := treeNow("set", "builds", "--filter", "- *.bak"); !slices.Equal(tr.Filters, []string{"- *.bak"}) || !slices.Equal(tr.ProtectedPaths, []string{"/keep/**"}) {
		t.Errorf("set --filter: filters %q, protected %q", tr.Filters, tr.ProtectedPaths)
	}
	if tr := treeNow("set", "builds", "--clear-filters"); len(tr.Filters) != 0 || !slices.Equal(tr.ProtectedPaths, []string{"/keep/**"}) {
		t.Errorf("set --clear-filters: filters %q, protected %q", tr.Filters, tr.ProtectedPaths)
	}
	if tr := treeNow("set", "builds", "--clear-protect", "--keep", "3"); len(tr.ProtectedPaths) != 0 || tr.Keep != 3 {
		t.Errorf("set --clear-protect: protected %q, keep %d", tr.ProtectedPaths, tr.Keep)
	}
	if tr := treeNow("show", "builds"); len(tr.Filters) != 0 || len(tr.ProtectedPaths) != 0 {
		t.Errorf("tree after clearing: %+v", tr)
	}
	if out := run("tree", "show", "builds"); !strings.Contains(out, "filters        -") || !strings.Contains(out, "protected      -") {
		t.Errorf("tree show after clearing:\n%s", out)
	}
	treeNow("set", "builds", "--filter", "- *.tmp", "--protect", "/a/**")
	if tr := treeNow("set", "builds", "--clear-filters", "--clear-protect"); len(tr.Filters) != 0 || len(tr.ProtectedPaths) != 0 {
		t.Errorf("set --clear-filters --clear-protect: %+v", tr)
	}

	site := decodeJSON[inventoryapi.Site](t, run("--json", "site", "set", "hq", "--clear-windows"))
	if len(site.BandwidthWindows) != 0 {
		t.Errorf("site set --clear-windows: windows %q", site.BandwidthWindows)
	}
	site = decodeJSON[inventoryapi.Site](t, run("--json", "site", "set", "hq", "--window", "Mon 01:00-02:00"))
	if !slices.Equal(site.BandwidthWindows, []string{"Mon 01:00-02:00"}) {
		t.Errorf("site set --window: windows %q", site.BandwidthWindows)
	}

	// Empty values and contradictions are refused, and nothing changes.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"tree", "set", "builds", "--filter", ""}, "an empty --filter is not a value; --clear-filters removes them all"},
		{[]string{"tree", "set", "builds", "--filter=", "--keep", "1"}, "--clear-filters removes them all"},
		{[]string{"tree", "set", "builds", "--protect", " "}, "--clear-protect removes them all"},
		{[]string{"tree", "set", "builds", "--filter", "- *.x", "--clear-filters"}, "--filter and --clear-filters contradict each other"},
		{[]string{"tree", "create", "other", "--origin", "hq", "--source", "/srv/o", "--filter", ""}, "an empty --filter is not a value"},
		{[]string{"tree", "create", "other", "--origin", "hq", "--source", "/srv/o", "--clear-filters"}, "unknown flag: --clear-filters"},
		{[]string{"site", "set", "hq", "--window", ""}, "an empty --window is not a value; --clear-windows removes them all"},
		{[]string{"site", "set", "hq", "--window", "Mon 01:00-02:00", "--clear-windows"}, "contradict each other"},
		{[]string{"site", "create", "lab", "--window", ""}, "an empty --window is not a value"},
	} {
		if _, err := cli(t, append([]string{"--api", api}, tc.args...)...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: err = %v, want %q", tc.args, err, tc.want)
		}
	}
	if tr := treeNow("show", "builds"); len(tr.Filters) != 0 || tr.Keep != 3 {
		t.Errorf("tree after refused changes: %+v", tr)
	}
	if s := decodeJSON[inventoryapi.Site](t, run("--json", "site", "show", "hq")); !slices.Equal(s.BandwidthWindows, []string{"Mon 01:00-02:00"}) {
		t.Errorf("site after refused changes: %+v", s)
	}
	if out, _ := cli(t, "--api", api, "--json", "sites"); strings.Contains(out, `"lab"`) {
		t.Errorf("site lab created despite the empty window: %s", out)
	}
}
