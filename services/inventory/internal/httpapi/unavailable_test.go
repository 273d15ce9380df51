package httpapi_test

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

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
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var p inventoryapi.Problem
	if resp.StatusCode >= 400 {
		if ct := resp.Header.Get("Content-Type"); ct != httpapi.ContentTypeProblem {
			t.Errorf("%s: content type %q, want %s", path, ct, httpapi.ContentTypeProblem)
		}
		if err := json.Unmarshal(b, &p); err != nil {
			t.Fatalf("%s: problem %q: %v", path, b, err)
		}
	}
	return resp.StatusCode, p
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
