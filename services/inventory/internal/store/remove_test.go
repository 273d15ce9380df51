package store

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/pulpdist/pulpdist/services/inventory/internal/catalog"
)

func TestRemovals(t *testing.T) {
	for _, db := range databases {
		t.Run(db.name, func(t *testing.T) {
			t.Run("delete", func(t *testing.T) { testRemovals(t, open(t, db.url(t))) })
			t.Run("failure mid-way", func(t *testing.T) { testRemovalFailsWhole(t, open(t, db.url(t)), db.name) })
		})
	}
}

// seedRemovals is seed plus subscriptions of both replicas to docs, a
// version of docs served by replica-a, a delta, a run and an agent token.
func seedRemovals(t *testing.T, s *Store) {
	t.Helper()
	ctx := context.Background()
	seed(t, s)
	for _, site := range []string{"replica-a", "replica-b"} {
		must(t, s.CreateSubscription(ctx, catalog.Subscription{Site: site, Tree: "docs", CreatedAt: t0}))
	}
	must(t, s.CreateSubscription(ctx, catalog.Subscription{Site: "replica-a", Tree: "isos", CreatedAt: t0}))
	v := version("docs", 'a', t0)
	run := finished("run-1", "replica-a", "docs", t0, "COMPLETED")
	run.To = root('a')
	_, err := s.RecordEvent(ctx, "e1", catalog.Change{
		Version: &v, RunFinished: run,
		SiteVersion: &catalog.SiteVersion{Site: "replica-a", Tree: "docs", Root: root('a'), UpdatedAt: t0},
		Delta:       &catalog.Delta{Tree: "docs", To: root('a'), Pack: "docs/none/" + root('a'), Size: 9, FirstSeenAt: t0},
	})
	must(t, err)
	_, err = s.RecordEvent(ctx, "e2", catalog.Change{
		SiteVersion: &catalog.SiteVersion{Site: "replica-a", Tree: "isos", Root: root('b'), UpdatedAt: t0},
	})
	must(t, err)
	must(t, s.CreateToken(ctx, catalog.Token{ID: "aaaaaaaaaaaa", Role: catalog.RoleAgent, Site: "replica-a", CreatedAt: t0}, root('1')))
	must(t, s.CreateToken(ctx, catalog.Token{ID: "bbbbbbbbbbbb", Role: catalog.RoleAgent, Site: "replica-b", CreatedAt: t0}, root('2')))
}

// counts is how many rows each table holds.
func counts(t *testing.T, s *Store) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, table := range []string{"sites", "trees", "subscriptions", "versions", "deltas", "site_versions", "runs", "audit_log"} {
		var n int
		must(t, s.db.QueryRowContext(context.Background(), `SELECT COUNT(*) FROM `+table).Scan(&n))
		out[table] = n
	}
	var n int
	must(t, s.db.QueryRowContext(context.Background(), `SELECT COUNT(*) FROM api_tokens WHERE revoked_at IS NULL`).Scan(&n))
	out["live tokens"] = n
	return out
}

func testRemovals(t *testing.T, s *Store) {
	ctx := context.Background()
	seedRemovals(t, s)
	before := counts(t, s)

	// The origin of trees cannot go; nothing changes.
	_, err := s.DeleteSite(ctx, "origin", nil)
	wantErr(t, err, catalog.ErrInUse)
	// A check that refuses (a stale If-Match) changes nothing either.
	stale := errors.New("stale")
	_, err = s.DeleteTree(ctx, "docs", func(catalog.Tree) error { return stale })
	wantErr(t, err, stale)
	_, err = s.DeleteSubscription(ctx, "replica-b", "docs", func(catalog.Subscription) error { return stale })
	wantErr(t, err, stale)
	_, err = s.DeleteSite(ctx, "replica-a", func(catalog.Site) error { return stale })
	wantErr(t, err, stale)
	if got := counts(t, s); !reflect.DeepEqual(got, before) {
		t.Fatalf("refused deletions changed rows: %v, before %v", got, before)
	}
	_, err = s.DeleteTree(ctx, "ghost", nil)
	wantErr(t, err, catalog.ErrTreeNotFound)
	_, err = s.DeleteSite(ctx, "ghost", nil)
	wantErr(t, err, catalog.ErrSiteNotFound)
	_, err = s.DeleteSubscription(ctx, "origin", "docs", nil)
	wantErr(t, err, catalog.ErrSubscriptionNotFound)

	// The tree goes with everything that is only its own; runs stay.
	var seen catalog.Tree
	r, err := s.DeleteTree(ctx, "docs", func(t catalog.Tree) error { seen = t; return nil })
	must(t, err)
	if seen.Name != "docs" || r.Entity.Name != "docs" || r.Entity.Source != "/srv/docs" {
		t.Fatalf("check saw %+v, removed %+v", seen, r.Entity)
	}
	want := map[string]int64{"subscriptions": 2, "versions": 1, "deltas": 1, "site_versions": 1}
	if !reflect.DeepEqual(r.Also, want) {
		t.Fatalf("removed %v, want %v", r.Also, want)
	}
	after := counts(t, s)
	if after["trees"] != before["trees"]-1 || after["subscriptions"] != 1 || after["versions"] != 0 || after["deltas"] != 0 ||
		after["site_versions"] != 1 || after["runs"] != before["runs"] || after["audit_log"] != before["audit_log"]+1 {
		t.Fatalf("rows after deleting docs: %v (before %v)", after, before)
	}
	_, err = s.Tree(ctx, "docs")
	wantErr(t, err, catalog.ErrTreeNotFound)
	log, err := s.AuditLog(ctx, catalog.AuditFilter{Limit: 1})
	must(t, err)
	if len(log) != 1 || log[0].Action != catalog.AuditDelete || log[0].Entity != "tree" || log[0].Name != "docs" ||
		log[0].Summary != `{"removed":{"deltas":1,"site_versions":1,"subscriptions":2,"versions":1}}` {
		t.Fatalf("audit = %+v", log)
	}
	// The name is free again, with no history of the old tree but runs.
	must(t, s.CreateTree(ctx, catalog.Tree{Name: "docs", OriginSite: "origin", Source: "/srv/docs2", Keep: 2, CreatedAt: t0.Add(time.Hour)}))
	if vs, err := s.Versions(ctx, catalog.VersionFilter{Tree: "docs", Limit: 100}); err != nil || len(vs) != 0 {
		t.Fatalf("versions of the new docs: %v, %v", vs, err)
	}

	// One subscription, and the version its site was recorded as serving.
	rs, err := s.DeleteSubscription(ctx, "replica-a", "isos", nil)
	must(t, err)
	if rs.Entity.Site != "replica-a" || rs.Entity.Tree != "isos" || !reflect.DeepEqual(rs.Also, map[string]int64{"site_versions": 1}) {
		t.Fatalf("removed %+v", rs)
	}
	if subs, err := s.Subscriptions(ctx, catalog.SubscriptionFilter{}); err != nil || len(subs) != 0 {
		t.Fatalf("subscriptions left: %v, %v", subs, err)
	}

	// A site that is no origin goes with its agent tokens revoked.
	rsite, err := s.DeleteSite(ctx, "replica-a", nil)
	must(t, err)
	if !reflect.DeepEqual(rsite.Also, map[string]int64{"subscriptions": 0, "site_versions": 0, "agent_tokens_revoked": 1}) {
		t.Fatalf("removed %v", rsite.Also)
	}
	tok, err := s.TokenByHash(ctx, root('1'))
	if err == nil && tok.RevokedAt == nil {
		t.Fatalf("agent token of the deleted site still live: %+v", tok)
	}
	if tok, err := s.TokenByHash(ctx, root('2')); err != nil || tok.RevokedAt != nil {
		t.Fatalf("agent token of replica-b: %+v, %v", tok, err)
	}
	if got := counts(t, s)["live tokens"]; got != 1 {
		t.Fatalf("live tokens = %d, want 1", got)
	}
}

// testRemovalFailsWhole makes the database fail the last statement of a
// tree's deletion (a trigger on trees) after its subscriptions, versions
// and deltas were deleted in the same transaction: nothing is lost. On
// PostgreSQL the trigger ends the session itself, so the database goes
// away in the middle of the transaction.
func testRemovalFailsWhole(t *testing.T, s *Store, driver string) {
	ctx := context.Background()
	seedRemovals(t, s)
	before := counts(t, s)
	if driver == "postgres" {
		must(t, exec(ctx, s, `CREATE FUNCTION die() RETURNS trigger LANGUAGE plpgsql AS $$
			BEGIN PERFORM pg_terminate_backend(pg_backend_pid()); RETURN OLD; END $$`))
		must(t, exec(ctx, s, `CREATE TRIGGER trees_die BEFORE DELETE ON trees FOR EACH ROW EXECUTE FUNCTION die()`))
	} else {
		must(t, exec(ctx, s, `CREATE TRIGGER trees_die BEFORE DELETE ON trees BEGIN SELECT RAISE(ABORT, 'disk on fire'); END`))
	}
	_, err := s.DeleteTree(ctx, "docs", nil)
	if err == nil {
		t.Fatal("deletion succeeded despite the failing database")
	}
	if driver == "postgres" && !errors.Is(err, catalog.ErrUnavailable) {
		t.Errorf("err = %v, want it marked unavailable (503)", err)
	}
	if got := counts(t, s); !reflect.DeepEqual(got, before) {
		t.Fatalf("a failed deletion changed rows: %v, before %v", got, before)
	}
	if _, err := s.Tree(ctx, "docs"); err != nil {
		t.Fatalf("docs after the failed deletion: %v", err)
	}
}
