package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/pulpdist/pulpdist/services/inventory/internal/catalog"
)

const agentColumns = `name, agent_state, agent_reason, agent_since, last_heartbeat`

func scanAgent(sc interface{ Scan(...any) error }) (catalog.AgentStatus, error) {
	var st catalog.AgentStatus
	var since, heartbeat dbTime
	err := sc.Scan(&st.Site, &st.State, &st.Reason, &since, &heartbeat)
	st.Since, st.LastHeartbeat = since.ptr(), heartbeat.ptr()
	return st, err
}

// RecordHeartbeat implements catalog.AgentRepository. The update that
// moves the heartbeat locks the site's row until the transaction ends,
// so f sees the status no other inventory is changing.
func (s *Store) RecordHeartbeat(ctx context.Context, site string, at time.Time, f func(catalog.AgentStatus) (catalog.AgentStatus, []catalog.Event)) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx,
			`UPDATE sites SET last_heartbeat = $2 WHERE name = $1 AND (last_heartbeat IS NULL OR last_heartbeat < $2)`,
			site, ts(at))
		if err != nil {
			return fmt.Errorf("update heartbeat of %s: %w", site, err)
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return err // unknown site, or older news
		}
		st, err := scanAgent(tx.QueryRowContext(ctx, `SELECT `+agentColumns+` FROM sites WHERE name = $1`, site))
		if err != nil {
			return fmt.Errorf("agent of %s: %w", site, err)
		}
		next, evs := f(st)
		if next.State != st.State || next.Reason != st.Reason || !sameTime(next.Since, st.Since) {
			if err := setAgent(ctx, tx, site, next); err != nil {
				return err
			}
		}
		return s.post(ctx, tx, evs...)
	})
}

// AgentStatuses implements catalog.AgentRepository.
func (s *Store) AgentStatuses(ctx context.Context) ([]catalog.AgentStatus, error) {
	return list(ctx, s.db, "agents", `SELECT `+agentColumns+` FROM sites ORDER BY name`, nil, scanAgent)
}

// AgentLost implements catalog.AgentRepository: the conditions are the
// update's, so of two inventories checking at once one changes the row
// and posts ev.
func (s *Store) AgentLost(ctx context.Context, site string, cutoff time.Time, st catalog.AgentStatus, ev catalog.Event) (bool, error) {
	changed := false
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx,
			`UPDATE sites SET agent_state = $2, agent_reason = $3, agent_since = $4
			WHERE name = $1 AND agent_state <> $2 AND last_heartbeat < $5`,
			site, catalog.AgentStateOffline, st.Reason, nullTime(st.Since), ts(cutoff))
		if err != nil {
			return fmt.Errorf("agent of %s: %w", site, err)
		}
		n, err := res.RowsAffected()
		if err != nil || n == 0 {
			return err
		}
		changed = true
		return s.post(ctx, tx, ev)
	})
	return changed, err
}

// setAgent stores the agent status of site.
func setAgent(ctx context.Context, tx *sql.Tx, site string, st catalog.AgentStatus) error {
	if _, err := tx.ExecContext(ctx, `UPDATE sites SET agent_state = $2, agent_reason = $3, agent_since = $4 WHERE name = $1`,
		site, st.State, st.Reason, nullTime(st.Since)); err != nil {
		return fmt.Errorf("agent of %s: %w", site, err)
	}
	return nil
}

func sameTime(a, b *time.Time) bool {
	return a == nil && b == nil || a != nil && b != nil && a.Equal(*b)
}
