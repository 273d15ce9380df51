package store

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/golang-migrate/migrate/v4"

	"github.com/pulpdist/pulpdist/libs/bus"
	"github.com/pulpdist/pulpdist/services/inventory/internal/catalog"
)

// A tree or site stored without the entity fields reads back with their
// defaults, not with zero values the schema forbids.
func testEntityDefaults(t *testing.T, s *Store) {
	ctx := context.Background()
	seed(t, s)
	tr, err := s.Tree(ctx, "docs")
	must(t, err)
	if tr.Type != catalog.TreeSimple || tr.Disabled || tr.AllowedLag != catalog.DefaultAllowedLag ||
		tr.MaxDeletions != 0 || tr.ProtectedPaths == nil || len(tr.ProtectedPaths) != 0 {
		t.Fatalf("tree defaults = %+v", tr)
	}
	site, err := s.Site(ctx, "origin")
	must(t, err)
	if site.BandwidthWindows == nil || len(site.BandwidthWindows) != 0 || site.LastHeartbeat != nil || site.BandwidthLimit != 0 {
		t.Fatalf("site defaults = %+v", site)
	}
}

func testAuditLog(t *testing.T, s *Store) {
	ctx := catalog.WithActor(context.Background(), "token-ops")
	anon := context.Background()
	must(t, s.CreateSite(anon, catalog.Site{Name: "origin", CreatedAt: t0}))
	must(t, s.CreateSite(ctx, catalog.Site{Name: "paris", Location: "Paris", CreatedAt: t0.Add(time.Second)}))
	// A refused change leaves no entry.
	wantErr(t, s.CreateSite(ctx, catalog.Site{Name: "paris", CreatedAt: t0.Add(time.Hour)}), catalog.ErrAlreadyExists)
	must(t, s.CreateTree(ctx, catalog.Tree{Name: "docs", OriginSite: "origin", Source: "/srv/docs", Keep: 2,
		Type: catalog.TreeSimple, AllowedLag: 6 * time.Hour, CreatedAt: t0.Add(2 * time.Second)}))
	wantErr(t, s.CreateTree(ctx, catalog.Tree{Name: "ghost", OriginSite: "nowhere", Source: "/x", Keep: 1, CreatedAt: t0}), catalog.ErrSiteNotFound)
	must(t, s.CreateSubscription(ctx, catalog.Subscription{Site: "paris", Tree: "docs", CreatedAt: t0.Add(3 * time.Second)}))
	k := newSigningKey(strings.Repeat("a", 32), "signer", t0.Add(4*time.Second))
	_, _, err := s.AddSigningKey(ctx, k)
	must(t, err)
	_, _, err = s.AddSigningKey(ctx, k) // already there: no change, no entry
	must(t, err)
	_, _, err = s.RevokeSigningKey(ctx, k.ID, t0.Add(5*time.Second))
	must(t, err)
	_, _, err = s.RevokeSigningKey(ctx, k.ID, t0.Add(6*time.Second)) // revoked already
	must(t, err)
	// Two entries of one instant list in the order they were made, newest first.
	must(t, s.RecordAudit(ctx, catalog.AuditSyncRequested(ctx, bus.Trigger{Tree: "docs", TriggerID: "trig-1", Reason: "manual", RequestedAt: t0.Add(7 * time.Second)})))
	must(t, s.RecordAudit(ctx, catalog.AuditSyncRequested(ctx, bus.Trigger{Tree: "docs", TriggerID: "trig-2", Reason: "manual", RequestedAt: t0.Add(7 * time.Second)})))

	got, err := s.AuditLog(ctx, catalog.AuditFilter{Limit: 100})
	must(t, err)
	var lines []string
	for _, e := range got {
		lines = append(lines, e.Actor+" "+e.Action+" "+e.Entity+" "+e.Name)
	}
	want := []string{
		"token-ops trigger tree docs",
		"token-ops trigger tree docs",
		"token-ops revoke key " + k.ID,
		"token-ops create key " + k.ID,
		"token-ops create subscription paris/docs",
		"token-ops create tree docs",
		"token-ops create site paris",
		"anonymous create site origin",
	}
	if !reflect.DeepEqual(lines, want) {
		t.Fatalf("audit log:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
	if !strings.Contains(got[0].Summary, `"trigger_id":"trig-2"`) || !strings.Contains(got[1].Summary, `"trigger_id":"trig-1"`) {
		t.Fatalf("same-instant entries out of order: %s, %s", got[0].Summary, got[1].Summary)
	}
	if !strings.Contains(got[5].Summary, `"allowed_lag":"6h"`) || !strings.Contains(got[5].Summary, `"origin_site":"origin"`) {
		t.Fatalf("tree summary = %s", got[5].Summary)
	}
	if !got[6].At.Equal(t0.Add(time.Second)) || !strings.Contains(got[6].Summary, `"location":"Paris"`) {
		t.Fatalf("site entry = %+v", got[6])
	}
	got, err = s.AuditLog(ctx, catalog.AuditFilter{Limit: 2})
	must(t, err)
	if len(got) != 2 || got[0].Action != catalog.AuditTrigger {
		t.Fatalf("audit log limit 2 = %+v", got)
	}
}

func testDeltas(t *testing.T, s *Store) {
	ctx := context.Background()
	seed(t, s)
	record := func(id string, c catalog.Change) {
		t.Helper()
		_, err := s.RecordEvent(ctx, id, c)
		must(t, err)
	}
	computedAt := t0.Add(time.Minute)
	full := catalog.Delta{Tree: "docs", To: root('a'), Pack: "docs/none/" + root('a'), Size: 4096,
		ComputedAt: &computedAt, ComputedBy: "dc-1", ComputeMS: 1500, FirstSeenAt: computedAt}
	record("dc1", catalog.Change{Delta: &full})
	// A later delta.ready keeps what delta.computed said and the first sight.
	record("dr1", catalog.Change{Delta: &catalog.Delta{Tree: "docs", To: root('a'), Pack: full.Pack, Size: 4096, FirstSeenAt: t0.Add(time.Hour)}})
	// A delta.ready that arrives before its delta.computed.
	step := catalog.Delta{Tree: "docs", From: root('a'), To: root('b'), Pack: "docs/a/b", Size: 10, FirstSeenAt: t0.Add(2 * time.Hour)}
	record("dr2", catalog.Change{Delta: &step})
	stepAt := t0.Add(3 * time.Hour)
	record("dc2", catalog.Change{Delta: &catalog.Delta{Tree: "docs", From: root('a'), To: root('b'), Pack: "docs/a/b", Size: 10,
		ComputedAt: &stepAt, ComputedBy: "dc-2", ComputeMS: 20, FirstSeenAt: stepAt}})
	ghost := catalog.Delta{Tree: "ghost", To: root('a'), FirstSeenAt: t0}
	_, err := s.RecordEvent(ctx, "dc-ghost", catalog.Change{Delta: &ghost})
	wantErr(t, err, catalog.ErrTreeNotFound)

	// Served: completed (or partial) apply runs of the same from and to.
	apply := func(id, site, from, to, result string) *catalog.Run {
		r := finished(id, site, "docs", t0, result)
		r.From, r.To = from, to
		return r
	}
	record("r1", catalog.Change{RunFinished: apply("r1", "replica-a", "", root('a'), "COMPLETED")})
	record("r2", catalog.Change{RunFinished: apply("r2", "replica-b", "", root('a'), "PARTIAL")})
	record("r3", catalog.Change{RunFinished: apply("r3", "replica-b", "", root('a'), "FAILED")})
	record("r4", catalog.Change{RunStarted: started("r4", "replica-b", "docs", t0)})
	snap := apply("r5", "origin", "", root('a'), "COMPLETED")
	snap.Kind = "snapshot"
	record("r5", catalog.Change{RunFinished: snap})

	got, err := s.Deltas(ctx, catalog.DeltaFilter{Limit: 100})
	must(t, err)
	full.TimesServed = 2
	step.ComputedAt, step.ComputedBy, step.ComputeMS = &stepAt, "dc-2", 20
	if want := []catalog.Delta{step, full}; !reflect.DeepEqual(got, want) {
		t.Fatalf("deltas = %+v\nwant %+v", got, want)
	}
	got, err = s.Deltas(ctx, catalog.DeltaFilter{Limit: 1})
	must(t, err)
	if len(got) != 1 || got[0].From != root('a') {
		t.Fatalf("deltas limit 1 = %+v", got)
	}
	got, err = s.Deltas(ctx, catalog.DeltaFilter{Tree: "isos", Limit: 100})
	must(t, err)
	if len(got) != 0 {
		t.Fatalf("deltas of isos = %+v", got)
	}
}

func testProblems(t *testing.T, s *Store) {
	ctx := context.Background()
	p := catalog.EventProblem{EventID: "ev-1", Type: "org.pulpdist.snapshot.published.v1", Subject: "ghost", Reason: "tree not found", ReceivedAt: t0}
	ok, err := s.RecordProblem(ctx, p)
	must(t, err)
	if !ok {
		t.Fatal("first problem not recorded")
	}
	again := p
	again.Reason, again.ReceivedAt = "changed", t0.Add(time.Hour)
	ok, err = s.RecordProblem(ctx, again)
	must(t, err)
	if ok {
		t.Fatal("redelivered problem recorded twice")
	}
	// The event id is taken: the event cannot be recorded another way.
	ok, err = s.RecordEvent(ctx, "ev-1", catalog.Change{})
	must(t, err)
	if ok {
		t.Fatal("event of a problem recorded again")
	}
	p2 := catalog.EventProblem{EventID: "ev-2", Type: "org.pulpdist.delta.ready.v1", Reason: "tree not found", ReceivedAt: t0.Add(time.Minute)}
	_, err = s.RecordProblem(ctx, p2)
	must(t, err)
	got, err := s.Problems(ctx, catalog.ProblemFilter{Limit: 10})
	must(t, err)
	if want := []catalog.EventProblem{p2, p}; !reflect.DeepEqual(got, want) {
		t.Fatalf("problems = %+v, want %+v", got, want)
	}
	got, err = s.Problems(ctx, catalog.ProblemFilter{Limit: 1})
	must(t, err)
	if len(got) != 1 || got[0].EventID != "ev-2" {
		t.Fatalf("problems limit 1 = %+v", got)
	}
}

func testHeartbeats(t *testing.T, s *Store) {
	ctx := context.Background()
	seed(t, s)
	s.UseEncoder(testEncoder)
	var seen []catalog.AgentStatus
	keep := func(st catalog.AgentStatus) (catalog.AgentStatus, []catalog.Event) {
		seen = append(seen, st)
		return st, nil
	}
	must(t, s.RecordHeartbeat(ctx, "replica-a", t0.Add(time.Hour), keep))
	must(t, s.RecordHeartbeat(ctx, "replica-a", t0, keep)) // older news
	must(t, s.RecordHeartbeat(ctx, "ghost", t0, keep))     // an agent of a site not declared yet
	if len(seen) != 1 || seen[0].Site != "replica-a" || seen[0].State != "" || seen[0].Since != nil ||
		seen[0].LastHeartbeat == nil || !seen[0].LastHeartbeat.Equal(t0.Add(time.Hour)) {
		t.Fatalf("statuses seen = %+v, want replica-a's alone, never heard from before, heard at %s", seen, t0.Add(time.Hour))
	}
	a, err := s.Site(ctx, "replica-a")
	must(t, err)
	if a.LastHeartbeat == nil || !a.LastHeartbeat.Equal(t0.Add(time.Hour)) {
		t.Fatalf("heartbeat = %v", a.LastHeartbeat)
	}
	b, err := s.Site(ctx, "replica-b")
	must(t, err)
	if b.LastHeartbeat != nil {
		t.Fatalf("heartbeat of a silent site = %v", b.LastHeartbeat)
	}

	// A state that changes is stored with its events, in one transaction.
	at := t0.Add(2 * time.Hour)
	must(t, s.RecordHeartbeat(ctx, "replica-a", at, func(st catalog.AgentStatus) (catalog.AgentStatus, []catalog.Event) {
		st.State, st.Since = catalog.AgentStateOnline, &at
		return st, []catalog.Event{catalog.AgentOnlineEvent("replica-a", at)}
	}))
	all, err := s.Sites(ctx)
	must(t, err)
	if all[1].Name != "replica-a" || all[1].LastHeartbeat == nil || !all[1].LastHeartbeat.Equal(at) {
		t.Fatalf("sites = %+v", all)
	}
	if got := pending(t, s); len(got) != 1 || got[0] != "agent.online site/replica-a" {
		t.Fatalf("outbox = %q", got)
	}
	sts, err := s.AgentStatuses(ctx)
	must(t, err)
	want := catalog.AgentStatus{Site: "replica-a", State: catalog.AgentStateOnline, Since: &at, LastHeartbeat: &at}
	if len(sts) != 3 || !reflect.DeepEqual(sts[1], want) || sts[0].State != "" || sts[0].LastHeartbeat != nil {
		t.Fatalf("agent statuses = %+v, want replica-a %+v", sts, want)
	}

	// Lost: only while its heartbeat is older than the cutoff, once.
	lost := t0.Add(3 * time.Hour)
	gone := catalog.AgentStatus{State: catalog.AgentStateOffline, Reason: "heartbeat lost", Since: &lost}
	ev := catalog.AgentOfflineEvent("replica-a", lost, at)
	if ok, err := s.AgentLost(ctx, "replica-a", at, gone, ev); err != nil || ok {
		t.Fatalf("lost with a heartbeat at the cutoff: %t, %v", ok, err)
	}
	if ok, err := s.AgentLost(ctx, "replica-a", at.Add(time.Second), gone, ev); err != nil || !ok {
		t.Fatalf("lost with a heartbeat before the cutoff: %t, %v", ok, err)
	}
	if ok, err := s.AgentLost(ctx, "replica-a", at.Add(time.Minute), gone, ev); err != nil || ok {
		t.Fatalf("lost again: %t, %v", ok, err)
	}
	if ok, err := s.AgentLost(ctx, "replica-b", at.Add(time.Minute), gone, ev); err != nil || ok {
		t.Fatalf("a site never heard from lost: %t, %v", ok, err)
	}
	if got := pending(t, s); len(got) != 2 || got[1] != "agent.offline site/replica-a" {
		t.Fatalf("outbox = %q", got)
	}
	seen = nil
	must(t, s.RecordHeartbeat(ctx, "replica-a", lost.Add(time.Minute), keep))
	if len(seen) != 1 || seen[0].State != catalog.AgentStateOffline || seen[0].Reason != "heartbeat lost" || seen[0].Since == nil || !seen[0].Since.Equal(lost) {
		t.Fatalf("status after the loss = %+v", seen)
	}
}

// The entities migration keeps what exists: rows made before it read
// back with defaults, and stepping below it keeps them too.
func TestEntitiesMigrationKeepsData(t *testing.T) {
	for _, db := range databases {
		t.Run(db.name, func(t *testing.T) {
			url := db.url(t)
			s := open(t, url)
			ctx := context.Background()
			_, dsn, err := ParseURL(url)
			must(t, err)
			to := func(v uint) func(*migrate.Migrate) error {
				return func(m *migrate.Migrate) error { return m.Migrate(v) }
			}
			must(t, s.migrate(ctx, dsn, to(3)))
			must(t, exec(ctx, s, `INSERT INTO sites (name, description, created_at) VALUES ('origin', 'old', $1)`, ts(t0)))
			must(t, exec(ctx, s, `INSERT INTO trees (name, origin_site, source, keep, created_at) VALUES ('docs', 'origin', '/srv/docs', 3, $1)`, ts(t0)))
			must(t, s.migrate(ctx, dsn, (*migrate.Migrate).Up))
			tr, err := s.Tree(ctx, "docs")
			must(t, err)
			if tr.Keep != 3 || tr.Type != catalog.TreeSimple || tr.Disabled || tr.AllowedLag != catalog.DefaultAllowedLag {
				t.Fatalf("tree after up = %+v", tr)
			}
			site, err := s.Site(ctx, "origin")
			must(t, err)
			if site.Description != "old" || len(site.BandwidthWindows) != 0 {
				t.Fatalf("site after up = %+v", site)
			}
			must(t, s.RecordHeartbeat(ctx, "origin", t0, func(st catalog.AgentStatus) (catalog.AgentStatus, []catalog.Event) { return st, nil }))
			must(t, s.migrate(ctx, dsn, to(3)))
			var n int
			must(t, s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM trees WHERE name = 'docs' AND keep = 3`).Scan(&n))
			if n != 1 {
				t.Fatalf("tree lost by the down migration")
			}
			if err := exec(ctx, s, `SELECT last_heartbeat FROM sites`); err == nil {
				t.Fatal("sites.last_heartbeat survived the down migration")
			}
		})
	}
}

func exec(ctx context.Context, s *Store, query string, args ...any) error {
	_, err := s.db.ExecContext(ctx, query, args...)
	return err
}
