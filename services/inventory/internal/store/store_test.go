package store

import (
	"context"
	"errors"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/golang-migrate/migrate/v4"

	"github.com/pulpdist/pulpdist/libs/pgtest"
	"github.com/pulpdist/pulpdist/services/inventory/internal/catalog"
)

// Compile-time check: the store is the catalog's repository.
var _ catalog.Repository = (*Store)(nil)

// databases are the two back ends every contract test runs against.
var databases = []struct {
	name string
	url  func(t *testing.T) string
}{
	{"postgres", func(t *testing.T) string { return pgtest.NewDatabase(t) }},
	{"sqlite", func(t *testing.T) string { return "sqlite://" + filepath.Join(t.TempDir(), "inventory.db") }},
}

// open returns a migrated store on a fresh database.
func open(t *testing.T, url string) *Store {
	t.Helper()
	s, err := Open(context.Background(), url)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close store: %v", err)
		}
	})
	return s
}

func TestRepositoryContract(t *testing.T) {
	tests := []struct {
		name string
		run  func(t *testing.T, s *Store)
	}{
		{"sites", testSites},
		{"trees", testTrees},
		{"subscriptions", testSubscriptions},
		{"versions", testVersions},
		{"runs", testRuns},
		{"site versions", testSiteVersions},
		{"idempotent events", testIdempotent},
		{"overview data", testOverviewData},
		{"signing keys", testSigningKeys},
		{"entity defaults", testEntityDefaults},
		{"audit log", testAuditLog},
		{"deltas", testDeltas},
		{"problems", testProblems},
		{"heartbeats", testHeartbeats},
		{"tokens", testTokens},
	}
	for _, db := range databases {
		t.Run(db.name, func(t *testing.T) {
			for _, tc := range tests {
				t.Run(tc.name, func(t *testing.T) { tc.run(t, open(t, db.url(t))) })
			}
		})
	}
}

var t0 = time.Date(2025, 3, 4, 5, 6, 7, 123456000, time.UTC)

func root(c byte) string { return strings.Repeat(string(c), 64) }

func wantErr(t *testing.T, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("err = %v, want %v", err, want)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func seed(t *testing.T, s *Store) {
	t.Helper()
	ctx := context.Background()
	for _, n := range []string{"origin", "replica-a", "replica-b"} {
		must(t, s.CreateSite(ctx, catalog.Site{Name: n, CreatedAt: t0}))
	}
	must(t, s.CreateTree(ctx, catalog.Tree{Name: "docs", OriginSite: "origin", Source: "/srv/docs", Keep: 2, CreatedAt: t0}))
	must(t, s.CreateTree(ctx, catalog.Tree{Name: "isos", OriginSite: "origin", Source: "/srv/isos", Schedule: "0 * * * *", Keep: 3, CreatedAt: t0}))
}

func testSites(t *testing.T, s *Store) {
	ctx := context.Background()
	in := catalog.Site{Name: "paris", Description: "Paris DC — rack 4", Location: "Paris, rack 4", WANLink: "10 Mbit/s MPLS",
		BandwidthLimit: 1 << 20, BandwidthWindows: []string{"Mon-Fri 22:00-06:00", "Sat-Sun 00:00-24:00"}, AgentIdentity: "UAGENTPARIS",
		CreatedAt: t0}
	must(t, s.CreateSite(ctx, in))
	must(t, s.CreateSite(ctx, catalog.Site{Name: "berlin", CreatedAt: t0.Add(time.Hour)}))
	wantErr(t, s.CreateSite(ctx, catalog.Site{Name: "paris", CreatedAt: t0}), catalog.ErrAlreadyExists)

	got, err := s.Site(ctx, "paris")
	must(t, err)
	if !reflect.DeepEqual(got, in) {
		t.Fatalf("site = %+v, want %+v", got, in)
	}
	_, err = s.Site(ctx, "nowhere")
	wantErr(t, err, catalog.ErrSiteNotFound)

	all, err := s.Sites(ctx)
	must(t, err)
	if len(all) != 2 || all[0].Name != "berlin" || all[1].Name != "paris" {
		t.Fatalf("sites = %+v, want berlin, paris", all)
	}
}

func testTrees(t *testing.T, s *Store) {
	ctx := context.Background()
	tree := catalog.Tree{Name: "docs", OriginSite: "origin", Source: "/srv/docs", Schedule: "*/5 * * * *", Filters: []string{"- *.tmp", "+ /keep/"}, Keep: 4,
		Type: catalog.TreeVersioned, MaxDeletions: 500, ProtectedPaths: []string{"/etc/***", "*.conf"}, Disabled: true, AllowedLag: 6 * time.Hour,
		SyncLatest: 3, CanarySites: []string{"lyon", "brno"}, Priority: catalog.PriorityUrgent, CreatedAt: t0}
	wantErr(t, s.CreateTree(ctx, tree), catalog.ErrSiteNotFound)
	must(t, s.CreateSite(ctx, catalog.Site{Name: "origin", CreatedAt: t0}))
	must(t, s.CreateTree(ctx, tree))
	wantErr(t, s.CreateTree(ctx, tree), catalog.ErrAlreadyExists)

	got, err := s.Tree(ctx, "docs")
	must(t, err)
	if !reflect.DeepEqual(got, tree) {
		t.Fatalf("tree = %+v, want %+v", got, tree)
	}
	_, err = s.Tree(ctx, "nothing")
	wantErr(t, err, catalog.ErrTreeNotFound)

	must(t, s.CreateTree(ctx, catalog.Tree{Name: "apps", OriginSite: "origin", Source: "/srv/apps", Keep: 1, CreatedAt: t0}))
	all, err := s.Trees(ctx)
	must(t, err)
	if len(all) != 2 || all[0].Name != "apps" || !reflect.DeepEqual(all[1], tree) {
		t.Fatalf("trees = %+v", all)
	}
}

func testSubscriptions(t *testing.T, s *Store) {
	ctx := context.Background()
	seed(t, s)
	wantErr(t, s.CreateSubscription(ctx, catalog.Subscription{Site: "ghost", Tree: "docs", CreatedAt: t0}), catalog.ErrSiteNotFound)
	wantErr(t, s.CreateSubscription(ctx, catalog.Subscription{Site: "replica-a", Tree: "ghost", CreatedAt: t0}), catalog.ErrTreeNotFound)

	a := catalog.Subscription{Site: "replica-a", Tree: "docs", CreatedAt: t0}
	b := catalog.Subscription{Site: "replica-b", Tree: "docs", Paused: true, CreatedAt: t0}
	c := catalog.Subscription{Site: "replica-a", Tree: "isos", CreatedAt: t0}
	for _, sub := range []catalog.Subscription{a, b, c} {
		must(t, s.CreateSubscription(ctx, sub))
	}
	wantErr(t, s.CreateSubscription(ctx, a), catalog.ErrAlreadyExists)

	for _, tc := range []struct {
		f    catalog.SubscriptionFilter
		want []catalog.Subscription
	}{
		{catalog.SubscriptionFilter{}, []catalog.Subscription{a, b, c}},
		{catalog.SubscriptionFilter{Tree: "docs"}, []catalog.Subscription{a, b}},
		{catalog.SubscriptionFilter{Site: "replica-a"}, []catalog.Subscription{a, c}},
		{catalog.SubscriptionFilter{Site: "replica-a", Tree: "isos"}, []catalog.Subscription{c}},
		{catalog.SubscriptionFilter{Tree: "ghost"}, []catalog.Subscription{}},
	} {
		got, err := s.Subscriptions(ctx, tc.f)
		must(t, err)
		if !equal(got, tc.want) {
			t.Errorf("subscriptions %+v = %+v, want %+v", tc.f, got, tc.want)
		}
	}
}

func equal[T comparable](a, b []T) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func version(tree string, c byte, at time.Time) catalog.Version {
	return catalog.Version{Tree: tree, Root: root(c), Site: "origin", Files: 10, Bytes: 1000, PublishedAt: at}
}

func testVersions(t *testing.T, s *Store) {
	ctx := context.Background()
	seed(t, s)
	ghost := version("ghost", 'a', t0)
	_, err := s.RecordEvent(ctx, "ev-ghost", catalog.Change{Version: &ghost})
	wantErr(t, err, catalog.ErrTreeNotFound)
	// The failed event was not recorded: the same id can be used again.
	v1 := version("docs", 'a', t0)
	ok, err := s.RecordEvent(ctx, "ev-ghost", catalog.Change{Version: &v1})
	must(t, err)
	if !ok {
		t.Fatal("event of a failed transaction was remembered")
	}
	v2 := version("docs", 'b', t0.Add(time.Hour))
	_, err = s.RecordEvent(ctx, "ev-2", catalog.Change{Version: &v2})
	must(t, err)
	// Publishing a known root again updates figures, keeps the first time.
	again := v1
	again.PublishedAt, again.Files = t0.Add(2*time.Hour), 11
	_, err = s.RecordEvent(ctx, "ev-3", catalog.Change{Version: &again})
	must(t, err)

	got, err := s.Versions(ctx, catalog.VersionFilter{Tree: "docs", Limit: 100})
	must(t, err)
	v1.Files = 11
	if want := []catalog.Version{v2, v1}; !equal(got, want) {
		t.Fatalf("versions = %+v, want %+v", got, want)
	}
	got, err = s.Versions(ctx, catalog.VersionFilter{Tree: "isos", Limit: 100})
	must(t, err)
	if len(got) != 0 {
		t.Fatalf("versions of isos = %+v", got)
	}
}

func started(id, site, tree string, at time.Time) *catalog.Run {
	return &catalog.Run{ID: id, TriggerID: "trig-" + id, Site: site, Tree: tree, Kind: "apply", To: root('a'), State: catalog.RunRunning, StartedAt: at}
}

func finished(id, site, tree string, start time.Time, result string) *catalog.Run {
	end := start.Add(90 * time.Second)
	return &catalog.Run{ID: id, TriggerID: "trig-" + id, Site: site, Tree: tree, Kind: "apply", To: root('a'),
		State: catalog.RunDone, Result: result, Error: "", Files: 3, Bytes: 300, DurationMS: 90000, StartedAt: start, FinishedAt: &end}
}

func testRuns(t *testing.T, s *Store) {
	ctx := context.Background()
	seed(t, s)
	record := func(id string, c catalog.Change) {
		t.Helper()
		if _, err := s.RecordEvent(ctx, id, c); err != nil {
			t.Fatal(err)
		}
	}
	record("e1", catalog.Change{RunStarted: started("r1", "replica-a", "docs", t0)})
	r, err := s.Run(ctx, "r1")
	must(t, err)
	if r.State != catalog.RunRunning || r.FinishedAt != nil || !r.StartedAt.Equal(t0) || r.To != root('a') {
		t.Fatalf("started run = %+v", r)
	}
	_, err = s.Run(ctx, "nope")
	wantErr(t, err, catalog.ErrRunNotFound)

	fin := finished("r1", "replica-a", "docs", t0.Add(-time.Hour) /* ignored: r1 has a start */, "COMPLETED")
	record("e2", catalog.Change{RunFinished: fin})
	r, err = s.Run(ctx, "r1")
	must(t, err)
	if r.State != catalog.RunDone || r.Result != "COMPLETED" || r.Files != 3 || r.DurationMS != 90000 ||
		!r.StartedAt.Equal(t0) || r.FinishedAt == nil || !r.FinishedAt.Equal(*fin.FinishedAt) {
		t.Fatalf("finished run = %+v", r)
	}
	// A late sync.started does not reopen a finished run.
	record("e3", catalog.Change{RunStarted: started("r1", "replica-a", "docs", t0.Add(time.Minute))})
	r, err = s.Run(ctx, "r1")
	must(t, err)
	if r.State != catalog.RunDone || !r.StartedAt.Equal(t0) {
		t.Fatalf("run after late start = %+v", r)
	}
	// A finish whose start was never seen is recorded with its own start.
	record("e4", catalog.Change{RunFinished: finished("r2", "replica-b", "docs", t0.Add(time.Hour), "FAILED")})
	record("e5", catalog.Change{RunStarted: started("r3", "replica-a", "isos", t0.Add(2*time.Hour))})
	r, err = s.Run(ctx, "r2")
	must(t, err)
	if r.State != catalog.RunDone || r.Result != "FAILED" || !r.StartedAt.Equal(t0.Add(time.Hour)) {
		t.Fatalf("run r2 = %+v", r)
	}

	ids := func(rs []catalog.Run) string {
		var out []string
		for _, r := range rs {
			out = append(out, r.ID)
		}
		return strings.Join(out, ",")
	}
	for _, tc := range []struct {
		f    catalog.RunFilter
		want string
	}{
		{catalog.RunFilter{Limit: 100}, "r3,r2,r1"},
		{catalog.RunFilter{Limit: 2}, "r3,r2"},
		{catalog.RunFilter{Tree: "docs", Limit: 100}, "r2,r1"},
		{catalog.RunFilter{Site: "replica-a", Limit: 100}, "r3,r1"},
		{catalog.RunFilter{Site: "replica-a", Tree: "docs", Limit: 100}, "r1"},
		{catalog.RunFilter{Site: "ghost", Limit: 100}, ""},
	} {
		got, err := s.Runs(ctx, tc.f)
		must(t, err)
		if ids(got) != tc.want {
			t.Errorf("runs %+v = %s, want %s", tc.f, ids(got), tc.want)
		}
	}
}

func siteVersion(t *testing.T, s *Store, site, tree string) string {
	t.Helper()
	d, err := s.OverviewData(context.Background())
	must(t, err)
	for _, sv := range d.SiteVersions {
		if sv.Site == site && sv.Tree == tree {
			return sv.Root
		}
	}
	return ""
}

func testSiteVersions(t *testing.T, s *Store) {
	ctx := context.Background()
	seed(t, s)
	set := func(id string, c byte, at time.Time) {
		t.Helper()
		_, err := s.RecordEvent(ctx, id, catalog.Change{SiteVersion: &catalog.SiteVersion{Site: "replica-a", Tree: "docs", Root: root(c), UpdatedAt: at}})
		must(t, err)
	}
	set("e1", 'a', t0)
	if got := siteVersion(t, s, "replica-a", "docs"); got != root('a') {
		t.Fatalf("site version = %q", got)
	}
	set("e2", 'b', t0.Add(time.Second))
	set("e3", 'c', t0.Add(500*time.Millisecond)) // older news: ignored
	if got := siteVersion(t, s, "replica-a", "docs"); got != root('b') {
		t.Fatalf("site version = %q, want b…", got)
	}
}

func testIdempotent(t *testing.T, s *Store) {
	ctx := context.Background()
	seed(t, s)
	v := version("docs", 'a', t0)
	ok, err := s.RecordEvent(ctx, "same", catalog.Change{Version: &v, RunStarted: started("r1", "replica-a", "docs", t0)})
	must(t, err)
	if !ok {
		t.Fatal("first delivery not recorded")
	}
	// A redelivery, even carrying something else, changes nothing.
	v2 := version("docs", 'b', t0.Add(time.Hour))
	ok, err = s.RecordEvent(ctx, "same", catalog.Change{Version: &v2, RunFinished: finished("r1", "replica-a", "docs", t0, "COMPLETED")})
	must(t, err)
	if ok {
		t.Fatal("redelivered event reported as recorded")
	}
	vs, err := s.Versions(ctx, catalog.VersionFilter{Tree: "docs", Limit: 100})
	must(t, err)
	if len(vs) != 1 {
		t.Fatalf("versions after redelivery = %+v", vs)
	}
	r, err := s.Run(ctx, "r1")
	must(t, err)
	if r.State != catalog.RunRunning {
		t.Fatalf("run after redelivery = %+v", r)
	}
}

func testOverviewData(t *testing.T, s *Store) {
	ctx := context.Background()
	seed(t, s)
	must(t, s.CreateSubscription(ctx, catalog.Subscription{Site: "replica-a", Tree: "docs", CreatedAt: t0}))
	v := version("docs", 'a', t0)
	steps := []catalog.Change{
		{Version: &v},
		{RunFinished: finished("old", "replica-a", "docs", t0, "FAILED")},
		{RunStarted: started("new", "replica-a", "docs", t0.Add(time.Hour))},
		{RunFinished: finished("other", "replica-b", "docs", t0, "COMPLETED"),
			SiteVersion: &catalog.SiteVersion{Site: "replica-b", Tree: "docs", Root: root('a'), UpdatedAt: t0}},
	}
	for i, c := range steps {
		_, err := s.RecordEvent(ctx, "e"+string(rune('0'+i)), c)
		must(t, err)
	}
	d, err := s.OverviewData(ctx)
	must(t, err)
	if len(d.Trees) != 2 || len(d.Subscriptions) != 1 || len(d.Versions) != 1 || len(d.SiteVersions) != 1 {
		t.Fatalf("overview data = %+v", d)
	}
	latest := map[string]catalog.Run{}
	for _, r := range d.LatestRuns {
		latest[r.Site+"/"+r.Tree] = r
	}
	if len(latest) != 2 || latest["replica-a/docs"].ID != "new" || latest["replica-b/docs"].ID != "other" {
		t.Fatalf("latest runs = %+v", d.LatestRuns)
	}
	if r := latest["replica-b/docs"]; r.FinishedAt == nil || !r.StartedAt.Equal(t0) {
		t.Fatalf("latest run times = %+v", r)
	}
}

// The down migration removes everything and the up migration can run again.
func TestMigrationsDownUp(t *testing.T) {
	for _, db := range databases {
		t.Run(db.name, func(t *testing.T) {
			url := db.url(t)
			s := open(t, url)
			ctx := context.Background()
			must(t, s.CreateSite(ctx, catalog.Site{Name: "a", CreatedAt: t0}))
			_, dsn, err := ParseURL(url)
			must(t, err)
			must(t, s.migrate(ctx, dsn, (*migrate.Migrate).Down))
			if _, err := s.Sites(ctx); err == nil {
				t.Fatal("sites table survived the down migration")
			}
			must(t, s.migrate(ctx, dsn, (*migrate.Migrate).Up))
			sites, err := s.Sites(ctx)
			must(t, err)
			if len(sites) != 0 {
				t.Fatalf("sites after down+up = %+v", sites)
			}
			// Opening an up-to-date database again is a no-op.
			open(t, url)
		})
	}
}

func TestParseURL(t *testing.T) {
	for _, tc := range []struct {
		in, driver, dsn, err string
	}{
		{in: "postgres://u:p@127.0.0.1:5432/inv?sslmode=disable", driver: "postgres", dsn: "postgres://u:p@127.0.0.1:5432/inv?sslmode=disable"},
		{in: "postgresql://h/inv", driver: "postgres", dsn: "postgresql://h/inv"},
		{in: "sqlite:///var/lib/pulpdist/inv.db", driver: "sqlite", dsn: "/var/lib/pulpdist/inv.db?" + sqliteParams},
		{in: "sqlite://inv.db", driver: "sqlite", dsn: "inv.db?" + sqliteParams},
		{in: "postgres://u:secret@h:15432", err: "names no database"},
		{in: "sqlite://", err: "names no file"},
		{in: "sqlite://x.db?_pragma=foreign_keys(0)", err: "take no query"},
		{in: "sqlite://:memory:", err: "plain file path"},
		{in: "mysql://h/db", err: `scheme "mysql"`},
		{in: "inventory.db", err: `scheme "none"`},
		{in: "", err: `scheme "none"`},
	} {
		driver, dsn, err := ParseURL(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) || !errors.Is(err, ErrBadURL) {
				t.Errorf("ParseURL(%q) err = %v, want %q", tc.in, err, tc.err)
			}
			if err != nil && strings.Contains(err.Error(), "secret") {
				t.Errorf("ParseURL(%q) leaks the password: %v", tc.in, err)
			}
			continue
		}
		if err != nil || driver != tc.driver || dsn != tc.dsn {
			t.Errorf("ParseURL(%q) = %q, %q, %v", tc.in, driver, dsn, err)
		}
	}
}

func TestOpenUnreachable(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := Open(ctx, "postgres://postgres@127.0.0.1:1/x?sslmode=disable"); err == nil || !strings.Contains(err.Error(), "connect postgres database") {
		t.Fatalf("err = %v", err)
	}
	if _, err := Open(ctx, "sqlite://"+filepath.Join(t.TempDir(), "missing-dir", "x.db")); err == nil {
		t.Fatal("opened a sqlite file in a missing directory")
	}
}

func newSigningKey(id, name string, at time.Time) catalog.SigningKey {
	return catalog.SigningKey{ID: id, Name: name, PublicKey: "-----BEGIN PUBLIC KEY-----\n" + id + "\n-----END PUBLIC KEY-----\n", CreatedAt: at}
}

func testSigningKeys(t *testing.T, s *Store) {
	ctx := context.Background()
	keys, err := s.SigningKeys(ctx)
	must(t, err)
	if len(keys) != 0 {
		t.Fatalf("keys of a new database = %+v", keys)
	}
	k1 := newSigningKey(strings.Repeat("1", 32), "signer", t0)
	got, added, err := s.AddSigningKey(ctx, k1)
	must(t, err)
	if !added || !reflect.DeepEqual(got, k1) {
		t.Fatalf("add = %+v, %v; want %+v, true", got, added, k1)
	}
	// The same key under the same name: the stored one, unchanged.
	again := k1
	again.CreatedAt = t0.Add(time.Hour)
	got, added, err = s.AddSigningKey(ctx, again)
	must(t, err)
	if added || !reflect.DeepEqual(got, k1) {
		t.Fatalf("add again = %+v, %v; want %+v, false", got, added, k1)
	}
	renamed := k1
	renamed.Name = "other"
	_, _, err = s.AddSigningKey(ctx, renamed)
	wantErr(t, err, catalog.ErrAlreadyExists)
	if !strings.Contains(err.Error(), `registered as "signer"`) {
		t.Fatalf("renamed key: %v", err)
	}
	// Another key may not take a name in use.
	_, _, err = s.AddSigningKey(ctx, newSigningKey(strings.Repeat("2", 32), "signer", t0))
	wantErr(t, err, catalog.ErrAlreadyExists)
	k2 := newSigningKey(strings.Repeat("2", 32), "signer-2", t0.Add(time.Minute))
	_, _, err = s.AddSigningKey(ctx, k2)
	must(t, err)

	_, _, err = s.RevokeSigningKey(ctx, strings.Repeat("9", 32), t0)
	wantErr(t, err, catalog.ErrSigningKeyNotFound)
	at := t0.Add(2 * time.Hour)
	got, revoked, err := s.RevokeSigningKey(ctx, k1.ID, at)
	must(t, err)
	if !revoked || got.RevokedAt == nil || !got.RevokedAt.Equal(at) || got.Name != "signer" || got.PublicKey != k1.PublicKey {
		t.Fatalf("revoke = %+v, %v", got, revoked)
	}
	// Revoking again keeps the first time.
	got, revoked, err = s.RevokeSigningKey(ctx, k1.ID, at.Add(time.Hour))
	must(t, err)
	if revoked || got.RevokedAt == nil || !got.RevokedAt.Equal(at) {
		t.Fatalf("revoke again = %+v, %v", got, revoked)
	}
	// A revoked key stays revoked; its name is free again.
	_, _, err = s.AddSigningKey(ctx, k1)
	wantErr(t, err, catalog.ErrAlreadyExists)
	if !strings.Contains(err.Error(), "revoked") {
		t.Fatalf("re-adding a revoked key: %v", err)
	}
	k3 := newSigningKey(strings.Repeat("3", 32), "signer", t0.Add(3*time.Hour))
	_, _, err = s.AddSigningKey(ctx, k3)
	must(t, err)

	keys, err = s.SigningKeys(ctx)
	must(t, err)
	r1 := k1
	r1.RevokedAt = &at
	if want := []catalog.SigningKey{r1, k2, k3}; !reflect.DeepEqual(keys, want) {
		t.Fatalf("keys = %+v, want %+v", keys, want)
	}
}
