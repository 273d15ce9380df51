package pgtest

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"strings"
	"testing"
)

func TestNewDatabase(t *testing.T) {
	var dbURL string
	t.Run("create", func(t *testing.T) {
		dbURL = NewDatabase(t)
		db, err := sql.Open("postgres", dbURL)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		var tables int
		if err := db.QueryRowContext(context.Background(),
			`SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'`).Scan(&tables); err != nil {
			t.Fatalf("query new database: %v", err)
		}
		if tables != 0 {
			t.Fatalf("new database has %d tables, want 0", tables)
		}
		if other := NewDatabase(t); other == dbURL {
			t.Fatalf("two calls returned the same database %s", dbURL)
		}
	})
	if dbURL == "" {
		return // skipped: no server
	}
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	name := strings.TrimPrefix(u.Path, "/")
	admin, err := sql.Open("postgres", DefaultAdminURL)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	var n int
	if err := admin.QueryRowContext(t.Context(), `SELECT count(*) FROM pg_database WHERE datname = $1`, name).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("database %s still exists after the test ended", name)
	}
}

// recorder is a testing.TB that records how NewDatabase gave up.
type recorder struct {
	testing.TB
	skipped, fatal string
}

func (r *recorder) Helper()                   {}
func (r *recorder) Cleanup(func())            {}
func (r *recorder) Skipf(f string, a ...any)  { r.skipped = fmt.Sprintf(f, a...) }
func (r *recorder) Fatalf(f string, a ...any) { r.fatal = fmt.Sprintf(f, a...) }

func TestUnreachable(t *testing.T) {
	// Port 1 on loopback refuses at once.
	t.Setenv(EnvAdminURL, "postgres://postgres@127.0.0.1:1/postgres?sslmode=disable")
	for _, ci := range []string{"", "true"} {
		t.Run("CI="+ci, func(t *testing.T) {
			t.Setenv("CI", ci)
			r := &recorder{TB: t}
			if got := NewDatabase(r); got != "" {
				t.Fatalf("got URL %q from an unreachable server", got)
			}
			msg, other := r.skipped, r.fatal
			if ci == "true" {
				msg, other = r.fatal, r.skipped
			}
			if other != "" || !strings.Contains(msg, "unreachable") || !strings.Contains(msg, "127.0.0.1:1") {
				t.Fatalf("skipped=%q fatal=%q", r.skipped, r.fatal)
			}
		})
	}
}

func TestBadAdminURL(t *testing.T) {
	t.Setenv(EnvAdminURL, "mysql://root@localhost/x")
	r := &recorder{TB: t}
	NewDatabase(r)
	if !strings.Contains(r.fatal, "not a postgres:// URL") {
		t.Fatalf("fatal=%q", r.fatal)
	}
}
