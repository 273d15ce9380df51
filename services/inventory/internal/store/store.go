// Package store keeps the inventory's catalog in SQL, on PostgreSQL
// (lib/pq) or SQLite (modernc, pure Go), with the same queries: the schema
// in the migrations module is portable, timestamps are written in UTC and
// placeholders are $1, $2…. Each method runs in one transaction.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/golang-migrate/migrate/v4"
	migratepg "github.com/golang-migrate/migrate/v4/database/postgres"
	migratesqlite "github.com/golang-migrate/migrate/v4/database/sqlite"
	"github.com/golang-migrate/migrate/v4/source/iofs"
	"github.com/lib/pq"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/pulpdist/pulpdist/migrations"
	"github.com/pulpdist/pulpdist/services/inventory/internal/catalog"
)

// Driver names, as registered with database/sql.
const (
	DriverPostgres = "postgres"
	DriverSQLite   = "sqlite"
)

// sqliteParams turn on foreign keys, wait for locks instead of failing,
// use WAL so readers do not block the writer, take the write lock when a
// transaction begins (a deferred one could fail to upgrade), and write
// times in a fixed layout so that stored times compare as text.
const sqliteParams = "_pragma=foreign_keys(1)&_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_txlock=immediate&_time_format=sqlite"

// ErrBadURL is returned for a database URL the store cannot use.
var ErrBadURL = errors.New("bad database url")

// ParseURL turns a database URL into a database/sql driver name and data
// source: postgres:// or postgresql:// for PostgreSQL, sqlite://<path> for
// a SQLite file (sqlite:///abs/path or sqlite://relative/path).
func ParseURL(raw string) (driver, dsn string, err error) {
	switch {
	case strings.HasPrefix(raw, "postgres://"), strings.HasPrefix(raw, "postgresql://"):
		u, err := url.Parse(raw)
		if err != nil {
			return "", "", fmt.Errorf("%w: postgres url does not parse", ErrBadURL)
		}
		if strings.Trim(u.Path, "/") == "" {
			return "", "", fmt.Errorf("%w: %s names no database", ErrBadURL, u.Redacted())
		}
		return DriverPostgres, raw, nil
	case strings.HasPrefix(raw, "sqlite://"):
		p := strings.TrimPrefix(raw, "sqlite://")
		switch {
		case p == "":
			return "", "", fmt.Errorf("%w: %q names no file (want sqlite://<path>)", ErrBadURL, raw)
		case strings.ContainsAny(p, "?#"):
			return "", "", fmt.Errorf("%w: %q: sqlite urls take no query; the store sets the pragmas it needs", ErrBadURL, raw)
		case p == ":memory:" || strings.HasPrefix(p, "file:"):
			return "", "", fmt.Errorf("%w: %q: want a plain file path (an in-memory database is not shared between connections)", ErrBadURL, raw)
		}
		return DriverSQLite, p + "?" + sqliteParams, nil
	}
	scheme, _, ok := strings.Cut(raw, "://")
	if !ok {
		scheme = "none"
	}
	return "", "", fmt.Errorf("%w: scheme %q: want postgres://, postgresql:// or sqlite://<path>", ErrBadURL, scheme)
}

// Store is the SQL catalog. It is safe for concurrent use.
type Store struct {
	db     *sql.DB
	driver string
	// encode renders the events of changes for the outbox (outbox.go);
	// wrote holds the open transactions that wrote to it; posted wakes
	// the relay after such a transaction committed.
	encode  catalog.Encoder
	wroteMu sync.Mutex
	wrote   map[*sql.Tx]bool
	posted  chan struct{}
}

// ErrSchema marks a database whose schema is not the one this inventory
// needs and that it was not asked to migrate.
var ErrSchema = errors.New("database schema is not current")

// Open connects to the database at rawURL and brings its schema up to date.
func Open(ctx context.Context, rawURL string) (*Store, error) {
	return OpenWith(ctx, rawURL, true)
}

// OpenWith connects to the database at rawURL. With apply, pending
// migrations are applied; without, the schema must already be current
// (ErrSchema otherwise, saying what to do): an inventory never changes a
// schema it was not told to.
func OpenWith(ctx context.Context, rawURL string, apply bool) (*Store, error) {
	driver, dsn, err := ParseURL(rawURL)
	if err != nil {
		return nil, err
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		return nil, fmt.Errorf("open %s database: %w", driver, err)
	}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("connect %s database: %w", driver, err)
	}
	if driver == DriverPostgres {
		db.SetMaxOpenConns(16)
	}
	s := &Store{db: db, driver: driver, wrote: map[*sql.Tx]bool{}, posted: make(chan struct{}, 1)}
	step := (*migrate.Migrate).Up
	if !apply {
		step = checkCurrent
	}
	if err := s.migrate(ctx, dsn, step); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// checkCurrent refuses a schema that is missing, dirty (a migration failed
// half-way), older or newer than the embedded migrations.
func checkCurrent(m *migrate.Migrate) error {
	latest, err := latestMigration()
	if err != nil {
		return err
	}
	v, dirty, err := m.Version()
	switch {
	case errors.Is(err, migrate.ErrNilVersion):
		return fmt.Errorf("%w: the database has no pulpdist schema; start the inventory once with --migrate (PULPDIST_MIGRATE=true)", ErrSchema)
	case err != nil:
		return fmt.Errorf("read schema version: %w", err)
	case dirty:
		return fmt.Errorf("%w: migration %d failed half-way (dirty); repair it by hand, see docs/operations.md", ErrSchema, v)
	case v < latest:
		return fmt.Errorf("%w: schema version %d, this inventory needs %d; start it with --migrate (PULPDIST_MIGRATE=true) to apply the migrations", ErrSchema, v, latest)
	case v > latest:
		return fmt.Errorf("%w: schema version %d is newer than this inventory's %d; run the newer release", ErrSchema, v, latest)
	}
	return nil
}

// latestMigration is the highest version among the embedded migrations.
func latestMigration() (uint, error) {
	entries, err := fs.ReadDir(migrations.Inventory, "inventory")
	if err != nil {
		return 0, fmt.Errorf("migrations: %w", err)
	}
	var latest uint
	for _, e := range entries {
		num, _, ok := strings.Cut(e.Name(), "_")
		if !ok {
			continue
		}
		n, err := strconv.ParseUint(num, 10, 32)
		if err != nil {
			continue
		}
		latest = max(latest, uint(n))
	}
	return latest, nil
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// migrate runs step (Up or Down) with the embedded inventory migrations.
func (s *Store) migrate(ctx context.Context, dsn string, step func(*migrate.Migrate) error) (err error) {
	src, err := iofs.New(migrations.Inventory, "inventory")
	if err != nil {
		return fmt.Errorf("migrations source: %w", err)
	}
	var m *migrate.Migrate
	switch s.driver {
	case DriverPostgres:
		// WithConnection on a connection of our pool: the driver's Close
		// then returns the connection instead of closing our *sql.DB.
		conn, err := s.db.Conn(ctx)
		if err != nil {
			return fmt.Errorf("migrate: connection: %w", err)
		}
		drv, err := migratepg.WithConnection(ctx, conn, &migratepg.Config{})
		if err != nil {
			conn.Close()
			return fmt.Errorf("migrate: postgres driver: %w", err)
		}
		if m, err = migrate.NewWithInstance("iofs", src, "postgres", drv); err != nil {
			drv.Close()
			return fmt.Errorf("migrate: %w", err)
		}
	case DriverSQLite:
		// The sqlite driver's Close closes the *sql.DB it is given, so it
		// gets a handle of its own.
		mdb, err := sql.Open(DriverSQLite, dsn)
		if err != nil {
			return fmt.Errorf("migrate: open sqlite: %w", err)
		}
		drv, err := migratesqlite.WithInstance(mdb, &migratesqlite.Config{})
		if err != nil {
			mdb.Close()
			return fmt.Errorf("migrate: sqlite driver: %w", err)
		}
		if m, err = migrate.NewWithInstance("iofs", src, "sqlite", drv); err != nil {
			drv.Close()
			return fmt.Errorf("migrate: %w", err)
		}
	default:
		return fmt.Errorf("migrate: unknown driver %q", s.driver)
	}
	defer func() {
		srcErr, dbErr := m.Close()
		if cerr := errors.Join(srcErr, dbErr); cerr != nil && err == nil {
			err = fmt.Errorf("migrate: close: %w", cerr)
		}
	}()
	if err := step(m); err != nil && !errors.Is(err, migrate.ErrNoChange) {
		return fmt.Errorf("inventory schema: %w", err)
	}
	return nil
}

// inTx runs f in a transaction, committed when f returns nil. A failure
// of the database itself is marked catalog.ErrUnavailable (unavailable.go).
func (s *Store) inTx(ctx context.Context, f func(tx *sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return unavailable(fmt.Errorf("begin: %w", err))
	}
	if err := f(tx); err != nil {
		// The error that made us give up matters more than a failed rollback.
		_ = tx.Rollback()
		s.wroteOutbox(tx)
		return unavailable(err)
	}
	err = tx.Commit()
	if s.wroteOutbox(tx) && err == nil {
		s.signalPosted()
	}
	if err != nil {
		return unavailable(fmt.Errorf("commit: %w", err))
	}
	return nil
}

// isUnique reports a unique or primary key violation.
func isUnique(err error) bool {
	var pe *pq.Error
	if errors.As(err, &pe) {
		return pe.Code == "23505"
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || se.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	}
	return false
}

// isForeignKey reports a foreign key violation.
func isForeignKey(err error) bool {
	var pe *pq.Error
	if errors.As(err, &pe) {
		return pe.Code == "23503"
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code() == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY
	}
	return false
}

// ts is a time as the store writes it: UTC, microsecond precision.
func ts(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// timeLayouts are the text forms a SQLite column may hold.
var timeLayouts = []string{
	"2006-01-02 15:04:05.999999999-07:00",
	"2006-01-02T15:04:05.999999999Z07:00",
	"2006-01-02 15:04:05.999999999",
	"2006-01-02T15:04:05.999999999",
}

// dbTime scans a TIMESTAMP column, NULL included. modernc returns
// time.Time only where it sees the declared column type, text elsewhere.
type dbTime struct {
	t     time.Time
	valid bool
}

func (d *dbTime) Scan(v any) error {
	switch x := v.(type) {
	case nil:
		*d = dbTime{}
		return nil
	case time.Time:
		*d = dbTime{t: x.UTC(), valid: true}
		return nil
	case []byte:
		return d.parse(string(x))
	case string:
		return d.parse(x)
	}
	return fmt.Errorf("scan time: unsupported %T", v)
}

func (d *dbTime) parse(s string) error {
	for _, l := range timeLayouts {
		if t, err := time.Parse(l, s); err == nil {
			*d = dbTime{t: t.UTC(), valid: true}
			return nil
		}
	}
	return fmt.Errorf("scan time: unknown layout %q", s)
}

func (d dbTime) ptr() *time.Time {
	if !d.valid {
		return nil
	}
	t := d.t
	return &t
}

// nullTime is t for a nullable column.
func nullTime(t *time.Time) any {
	if t == nil {
		return nil
	}
	return ts(*t)
}
