package store

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/pulpdist/pulpdist/services/inventory/internal/catalog"
)

// RaisedAlarms implements catalog.AlarmRepository.
func (s *Store) RaisedAlarms(ctx context.Context) ([]catalog.RaisedAlarm, error) {
	return list(ctx, s.db, "alarms", `SELECT site, tree, raised_at FROM alarms ORDER BY tree, site`, nil,
		func(sc interface{ Scan(...any) error }) (catalog.RaisedAlarm, error) {
			var a catalog.RaisedAlarm
			var at dbTime
			err := sc.Scan(&a.Site, &a.Tree, &at)
			a.RaisedAt = at.t
			return a, err
		})
}

// RaiseAlarm implements catalog.AlarmRepository.
func (s *Store) RaiseAlarm(ctx context.Context, a catalog.RaisedAlarm, ev catalog.Event) (bool, error) {
	return s.changeAlarm(ctx, ev, `INSERT INTO alarms (site, tree, raised_at) VALUES ($1, $2, $3) ON CONFLICT (site, tree) DO NOTHING`,
		a.Site, a.Tree, ts(a.RaisedAt))
}

// ClearAlarm implements catalog.AlarmRepository.
func (s *Store) ClearAlarm(ctx context.Context, site, tree string, ev catalog.Event) (bool, error) {
	return s.changeAlarm(ctx, ev, `DELETE FROM alarms WHERE site = $1 AND tree = $2`, site, tree)
}

// changeAlarm runs one statement on the alarms and, when it changed a
// row, posts ev in the same transaction.
func (s *Store) changeAlarm(ctx context.Context, ev catalog.Event, query string, args ...any) (bool, error) {
	changed := false
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, query, args...)
		if err != nil {
			return fmt.Errorf("alarms: %w", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return fmt.Errorf("alarms: %w", err)
		}
		if n == 0 {
			return nil
		}
		changed = true
		return s.post(ctx, tx, ev)
	})
	return changed, err
}
