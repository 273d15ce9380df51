package httpapi_test

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lib/pq"

	"github.com/pulpdist/pulpdist/libs/inventoryapi"
	"github.com/pulpdist/pulpdist/libs/pgtest"
	"github.com/pulpdist/pulpdist/services/inventory/internal/catalog"
	"github.com/pulpdist/pulpdist/services/inventory/internal/httpapi"
	"github.com/pulpdist/pulpdist/services/inventory/internal/store"
)

const adminToken = "unavailable-test-admin-token-0123456789"

// serve runs the API on st with a bootstrap admin token. The catalog has
// no notifier: only requests that fail before announcing are sent.
func serve(t *testing.T, st *store.Store) string {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	svc := catalog.New(st, nil, log)
	mux := http.NewServeMux()
	httpapi.Register(mux, httpapi.MakeEndpoints(svc), httpapi.NewAuth(svc, adminToken, log), log)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL
}

// post sends an admin request and returns the status and problem.
func post(t *testing.T, base, path, body string) (int, inventoryapi.Problem) {
	t.Helper()
	return postAs(t, base, adminToken, path, body)
}

// postAs sends a request with token.
func postAs(t *testing.T, base, token, path, body string) (int, inventoryapi.Problem) {
	t.Helper()
	a, err := exchange(t.Context(), base, token, http.MethodPost, path, body, nil)
	if err != nil {
		t.Fatal(err)
	}
	var p inventoryapi.Problem
	if a.status >= 400 {
		p = a.problem(t, path)
	}
	return a.status, p
}

// answer is a response as the tests read it.
type answer struct {
	status int
	header http.Header
	body   string
}

// exchange sends a request with token and reads the answer; unlike the
// helpers that take a *testing.T, it may run in a goroutine of its own.
func exchange(ctx context.Context, base, token, method, path, body string, hdr http.Header) (answer, error) {
	req, err := http.NewRequestWithContext(ctx, method, base+path, strings.NewReader(body))
	if err != nil {
		return answer{}, err
	}
	for k, vs := range hdr {
		req.Header[k] = vs
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return answer{}, fmt.Errorf("%s %s: %w", method, path, err)
	}
	return answer{status: resp.StatusCode, header: resp.Header, body: string(b)}, nil
}

// send sends an admin request.
func send(t *testing.T, base, method, path, body string, hdr http.Header) answer {
	t.Helper()
	a, err := exchange(t.Context(), base, adminToken, method, path, body, hdr)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// problem decodes a problem+json answer.
func (a answer) problem(t *testing.T, what string) inventoryapi.Problem {
	t.Helper()
	if ct := a.header.Get("Content-Type"); ct != httpapi.ContentTypeProblem {
		t.Errorf("%s: %d with content type %q, want %s", what, a.status, ct, httpapi.ContentTypeProblem)
	}
	var p inventoryapi.Problem
	if err := json.Unmarshal([]byte(a.body), &p); err != nil {
		t.Fatalf("%s: problem %q: %v", what, a.body, err)
	}
	return p
}

func assertUnavailable(t *testing.T, status int, p inventoryapi.Problem) {
	t.Helper()
	if status != http.StatusServiceUnavailable || p.Status != 503 || !strings.Contains(p.Detail, "database is unavailable") {
		t.Errorf("got %d %+v, want 503 saying the database is unavailable", status, p)
	}
}

// TestClosedDatabaseIs503 closes the store's database under a running
// API: writes answer 503, and the database, opened again, holds nothing
// of them.
func TestClosedDatabaseIs503(t *testing.T) {
	dbURL := "sqlite://" + filepath.Join(t.TempDir(), "inventory.db")
	st, err := store.Open(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	base := serve(t, st)
	if status, p := post(t, base, "/api/v1/sites", `{"name":"paris"`); status != 400 {
		t.Fatalf("malformed body with the database up: %d %+v", status, p)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	status, p := post(t, base, "/api/v1/sites", `{"name":"paris"}`)
	assertUnavailable(t, status, p)
	status, p = post(t, base, "/api/v1/sites/paris/pause", ``)
	assertUnavailable(t, status, p)
	// A token looked up in the database: authentication cannot tell, so
	// it is a 503 too, not a 401.
	status, p = postAs(t, base, "pdt_0123456789ab_"+base64.RawURLEncoding.EncodeToString(make([]byte, 32)), "/api/v1/sites", `{"name":"lyon"}`)
	assertUnavailable(t, status, p)

	again, err := store.Open(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	sites, err := again.Sites(context.Background())
	if err != nil || len(sites) != 0 {
		t.Fatalf("sites after the failed write: %v, %v; want none", sites, err)
	}
}

// TestDroppedDatabaseIs503 drops the PostgreSQL database under a running
// API: the next write answers 503.
func TestDroppedDatabaseIs503(t *testing.T) {
	dbURL := pgtest.NewDatabase(t)
	st, err := store.Open(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() }) // the database is gone: closing may fail
	base := serve(t, st)

	admin := os.Getenv(pgtest.EnvAdminURL)
	if admin == "" {
		admin = pgtest.DefaultAdminURL
	}
	db, err := sql.Open("postgres", admin)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(t.Context(), "DROP DATABASE "+pq.QuoteIdentifier(strings.TrimPrefix(u.Path, "/"))+" WITH (FORCE)"); err != nil {
		t.Fatal(err)
	}
	status, p := post(t, base, "/api/v1/sites", `{"name":"paris"}`)
	assertUnavailable(t, status, p)
	status, p = post(t, base, "/api/v1/trees", `{"name":"docs","origin_site":"paris","source":"/srv/docs"}`)
	assertUnavailable(t, status, p)
}

// outageWrites are changes asked for while the database is away. ifMatch
// names the resource whose ETag the request sends in If-Match ("" for
// none). Each is one the API takes with the database up (the test checks).
var outageWrites = []struct {
	name, method, path, body, ifMatch string
}{
	{"patch tree", http.MethodPatch, "/api/v1/trees/docs", `{"keep":5,"filters":["- *.tmp"]}`, "/api/v1/trees/docs"},
	{"patch site", http.MethodPatch, "/api/v1/sites/paris", `{"description":"Paris, bldg 2","bandwidth_limit":2500000}`, "/api/v1/sites/paris"},
	{"delete tree", http.MethodDelete, "/api/v1/trees/docs", "", ""},
	{"delete site", http.MethodDelete, "/api/v1/sites/paris", "", "/api/v1/sites/paris"},
	{"delete subscription", http.MethodDelete, "/api/v1/subscriptions/paris/docs", "", "/api/v1/subscriptions/paris/docs"},
	{"sync tree", http.MethodPost, "/api/v1/trees/docs/sync", "", ""},
	{"sync subscription", http.MethodPost, "/api/v1/subscriptions/paris/docs/sync", "", ""},
}

// outage sends write (which may run in a goroutine) while the database of
// st, at dbURL, is away, and returns its answer once the database is back.
type outage func(t *testing.T, dbURL string, st *store.Store, write func() (answer, error)) answer

// TestWriteDuringOutageChangesNothing asks for each of outageWrites while
// the database is away: the answer is a 503 problem, and once the
// database is back, the catalog, the tokens and the audit log are as they
// were before; the same request then succeeds and shows in them. SQLite's
// database is closed under the running API; PostgreSQL's goes away in the
// middle of the request's transaction, after its change was made and
// before its audit entry is written.
func TestWriteDuringOutageChangesNothing(t *testing.T) {
	for _, db := range []struct {
		name   string
		url    func(t *testing.T) string
		outage outage
	}{
		{"sqlite", func(t *testing.T) string { return "sqlite://" + filepath.Join(t.TempDir(), "inventory.db") }, closeFirst},
		{"postgres", func(t *testing.T) string { return pgtest.NewDatabase(t) }, cutMidTransaction},
	} {
		t.Run(db.name, func(t *testing.T) {
			for _, w := range outageWrites {
				t.Run(w.name, func(t *testing.T) {
					dbURL := db.url(t)
					st := openStore(t, dbURL)
					base := serve(t, st)
					seedCatalog(t, base)
					before := snapshot(t, base)
					hdr := http.Header{}
					if w.ifMatch != "" {
						a := send(t, base, http.MethodGet, w.ifMatch, "", nil)
						hdr.Set("If-Match", a.header.Get("ETag"))
					}
					a := db.outage(t, dbURL, st, func() (answer, error) {
						return exchange(context.Background(), base, adminToken, w.method, w.path, w.body, hdr)
					})
					assertUnavailable(t, a.status, a.problem(t, w.name))

					base = serve(t, openStore(t, dbURL)) // a new pool on the database back
					if after := snapshot(t, base); after != before {
						t.Errorf("%s %s answered %d, but changed the record:\nbefore:\n%s\nafter:\n%s", w.method, w.path, a.status, before, after)
					}
					// The If-Match of before the outage still holds: the
					// same request is taken now, and the snapshot shows it.
					if a := send(t, base, w.method, w.path, w.body, hdr); a.status != http.StatusOK && a.status != http.StatusAccepted {
						t.Fatalf("%s %s with the database up: %d %s", w.method, w.path, a.status, a.body)
					}
					if snapshot(t, base) == before {
						t.Errorf("%s %s, taken, changed nothing the snapshot shows: the check above proves nothing", w.method, w.path)
					}
				})
			}
		})
	}
}

// openStore opens the database at dbURL until the test ends.
func openStore(t *testing.T, dbURL string) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() }) // may be closed already, or its database cut
	return st
}

// seedCatalog declares the sites origin and paris, the tree docs of
// origin, the subscription paris/docs and an agent token of paris.
func seedCatalog(t *testing.T, base string) {
	t.Helper()
	for _, r := range [][2]string{
		{"/api/v1/sites", `{"name":"origin"}`},
		{"/api/v1/sites", `{"name":"paris","description":"Paris"}`},
		{"/api/v1/trees", `{"name":"docs","origin_site":"origin","source":"/srv/docs"}`},
		{"/api/v1/subscriptions", `{"site":"paris","tree":"docs"}`},
		{"/api/v1/tokens", `{"role":"agent","site":"paris","name":"agent paris"}`},
	} {
		if a := send(t, base, http.MethodPost, r[0], r[1], nil); a.status != http.StatusCreated {
			t.Fatalf("POST %s %s: %d %s", r[0], r[1], a.status, a.body)
		}
	}
}

// snapshot reads what the outage writes could change, the audit log
// included.
func snapshot(t *testing.T, base string) string {
	t.Helper()
	var b strings.Builder
	for _, path := range []string{"/api/v1/sites", "/api/v1/trees", "/api/v1/subscriptions", "/api/v1/tokens", "/api/v1/audit"} {
		a := send(t, base, http.MethodGet, path, "", nil)
		if a.status != http.StatusOK {
			t.Fatalf("GET %s: %d %s", path, a.status, a.body)
		}
		fmt.Fprintf(&b, "GET %s\n%s", path, a.body)
	}
	return b.String()
}

// closeFirst closes the store, then sends the write: the request finds
// the database gone.
func closeFirst(t *testing.T, _ string, st *store.Store, write func() (answer, error)) answer {
	t.Helper()
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	a, err := write()
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// cutMidTransaction makes the PostgreSQL database go away while the write
// is inside its transaction: a lock on audit_log holds the request at its
// audit entry, after the change itself; then the database refuses new
// connections and every one it has but the lock's is terminated, as a
// restart or failover does. The lock is released, and the database
// accepts connections again, after the answer.
func cutMidTransaction(t *testing.T, dbURL string, _ *store.Store, write func() (answer, error)) answer {
	t.Helper()
	ctx := t.Context()
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	name := strings.TrimPrefix(u.Path, "/")
	adminURL := os.Getenv(pgtest.EnvAdminURL)
	if adminURL == "" {
		adminURL = pgtest.DefaultAdminURL
	}
	admin, err := sql.Open("postgres", adminURL)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	holder, err := sql.Open("postgres", dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	lock, err := holder.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = lock.Rollback() }() // released below unless the test failed first
	var holderPID int
	if err := lock.QueryRowContext(ctx, `SELECT pg_backend_pid()`).Scan(&holderPID); err != nil {
		t.Fatal(err)
	}
	if _, err := lock.ExecContext(ctx, `LOCK TABLE audit_log IN EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}

	type result struct {
		a   answer
		err error
	}
	done := make(chan result, 1)
	go func() {
		a, err := write()
		done <- result{a, err}
	}()
	deadline := time.After(15 * time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for waiting := 0; waiting == 0; {
		select {
		case r := <-done:
			t.Fatalf("the write answered %d %s before waiting for its audit entry (err %v)", r.a.status, r.a.body, r.err)
		case <-deadline:
			t.Fatal("the write never waited for the lock on audit_log")
		case <-tick.C:
		}
		if err := admin.QueryRowContext(ctx,
			`SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND pid <> $2 AND wait_event_type = 'Lock'`,
			name, holderPID).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
	}

	quoted := pq.QuoteIdentifier(name)
	if _, err := admin.ExecContext(ctx, `ALTER DATABASE `+quoted+` WITH ALLOW_CONNECTIONS false`); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.ExecContext(ctx,
		`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> $2`, name, holderPID); err != nil {
		t.Fatal(err)
	}
	var r result
	select {
	case r = <-done:
	case <-time.After(15 * time.Second):
		t.Fatal("no answer after the database went away")
	}
	if r.err != nil {
		t.Fatal(r.err)
	}
	if err := lock.Rollback(); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.ExecContext(ctx, `ALTER DATABASE `+quoted+` WITH ALLOW_CONNECTIONS true`); err != nil {
		t.Fatal(err)
	}
	return r.a
}
