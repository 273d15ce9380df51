package store

import (
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"

	"github.com/lib/pq"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/pulpdist/pulpdist/services/inventory/internal/catalog"
)

// unavailable marks err with catalog.ErrUnavailable when it says that the
// database itself failed (closed, unreachable, shut down, dropped) rather
// than that the request broke a rule; nil stays nil.
func unavailable(err error) error {
	if err == nil || errors.Is(err, catalog.ErrUnavailable) || !isUnavailable(err) {
		return err
	}
	return fmt.Errorf("%w: %w", catalog.ErrUnavailable, err)
}

// postgresUnavailable are the SQLSTATE codes and classes of a database
// that went away: connection exceptions (class 08), shutdowns (57P01-03)
// and a database that no longer exists (3D000).
var postgresUnavailable = []string{"08", "57P01", "57P02", "57P03", "3D000"}

func isUnavailable(err error) bool {
	var pe *pq.Error
	if errors.As(err, &pe) {
		for _, c := range postgresUnavailable {
			if strings.HasPrefix(string(pe.Code), c) {
				return true
			}
		}
		return false
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff { // the primary result code
		case sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_FULL, sqlite3.SQLITE_READONLY:
			return true
		}
		return false
	}
	var ne *net.OpError
	switch {
	case errors.Is(err, sql.ErrConnDone), errors.Is(err, driver.ErrBadConn), errors.As(err, &ne),
		errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return true
	}
	// database/sql has no sentinel for a closed *sql.DB.
	return strings.Contains(err.Error(), "sql: database is closed")
}
