// Package pgtest gives a test a fresh, empty PostgreSQL database on the
// machine's server, and drops it when the test ends.
//
// The server is reached through the admin URL in PULPDIST_TEST_PG (default
// postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable), as a role
// allowed to create databases. When the server cannot be reached the test is
// skipped, except under CI=true, where it fails: CI must never pass by
// skipping the database tests.
package pgtest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/lib/pq"
)

// EnvAdminURL names the variable holding the admin URL.
const EnvAdminURL = "PULPDIST_TEST_PG"

// DefaultAdminURL is used when EnvAdminURL is not set.
const DefaultAdminURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// connectTimeout bounds how long an unreachable server delays a test.
const connectTimeout = 5 * time.Second

// NewDatabase creates an empty database with a random name and returns its
// URL (the admin URL with the database name replaced). The database is
// dropped, with any connections left open to it, when tb ends.
func NewDatabase(tb testing.TB) string {
	tb.Helper()
	admin := os.Getenv(EnvAdminURL)
	if admin == "" {
		admin = DefaultAdminURL
	}
	u, err := url.Parse(admin)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		tb.Fatalf("pgtest: %s=%q is not a postgres:// URL", EnvAdminURL, admin)
		return ""
	}
	db, err := sql.Open("postgres", admin)
	if err != nil {
		tb.Fatalf("pgtest: open %s: %v", redact(u), err)
		return ""
	}
	ctx, cancel := context.WithTimeout(context.Background(), connectTimeout)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		unreachable(tb, u, err)
		return ""
	}
	name := "pulpdist_test_" + randomHex(tb)
	if _, err := db.ExecContext(ctx, "CREATE DATABASE "+pq.QuoteIdentifier(name)); err != nil {
		db.Close()
		tb.Fatalf("pgtest: create database %s on %s: %v", name, redact(u), err)
		return ""
	}
	tb.Cleanup(func() {
		defer db.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		// WITH (FORCE) (PostgreSQL 13+) ends connections a test leaked.
		if _, err := db.ExecContext(ctx, "DROP DATABASE IF EXISTS "+pq.QuoteIdentifier(name)+" WITH (FORCE)"); err != nil {
			tb.Errorf("pgtest: drop database %s: %v", name, err)
		}
	})
	du := *u
	du.Path = "/" + name
	return du.String()
}

// unreachable fails under CI=true and skips elsewhere.
func unreachable(tb testing.TB, u *url.URL, err error) {
	tb.Helper()
	if os.Getenv("CI") == "true" {
		tb.Fatalf("pgtest: PostgreSQL at %s is unreachable and CI=true requires it (set %s to another admin URL): %v", redact(u), EnvAdminURL, err)
		return
	}
	tb.Skipf("pgtest: skipping, PostgreSQL at %s is unreachable (set %s to an admin URL; under CI=true this fails): %v", redact(u), EnvAdminURL, err)
}

// redact hides a password in messages.
func redact(u *url.URL) string { return u.Redacted() }

func randomHex(tb testing.TB) string {
	tb.Helper()
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		tb.Fatalf("pgtest: random database name: %v", err)
	}
	return hex.EncodeToString(b[:])
}
