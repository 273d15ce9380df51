package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/pulpdist/pulpdist/services/inventory/internal/catalog"
)

// treeType is the stored type of a tree: simple when unset.
func treeType(t string) string {
	if t == "" {
		return catalog.TreeSimple
	}
	return t
}

// treePriority is the stored priority: normal when unset.
func treePriority(p string) string {
	if p == "" {
		return catalog.PriorityNormal
	}
	return p
}

// lagSeconds is the stored allowed lag: the default when unset.
func lagSeconds(d time.Duration) int64 {
	if d == 0 {
		d = catalog.DefaultAllowedLag
	}
	return int64(d / time.Second)
}

// execer is what both *sql.DB and *sql.Tx offer to write.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// audit writes one audit entry; called inside the transaction of the
// change it describes.
func audit(ctx context.Context, x execer, e catalog.AuditEntry) error {
	_, err := x.ExecContext(ctx,
		`INSERT INTO audit_log (id, at, actor, action, entity, name, summary) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		e.ID, ts(e.At), e.Actor, e.Action, e.Entity, e.Name, e.Summary)
	if err != nil {
		return fmt.Errorf("audit %s %s %s: %w", e.Action, e.Entity, e.Name, err)
	}
	return nil
}

// record writes the audit entry of a change and the outbox messages of
// its events, inside the change's transaction.
func (s *Store) record(ctx context.Context, tx *sql.Tx, e catalog.AuditEntry, evs ...catalog.Event) error {
	if err := audit(ctx, tx, e); err != nil {
		return err
	}
	return s.post(ctx, tx, evs...)
}

// RecordAudit implements catalog.Repository.
func (s *Store) RecordAudit(ctx context.Context, e catalog.AuditEntry, evs ...catalog.Event) error {
	return s.inTx(ctx, func(tx *sql.Tx) error { return s.record(ctx, tx, e, evs...) })
}

const auditColumns = `id, at, actor, action, entity, name, summary`

func scanAudit(sc interface{ Scan(...any) error }) (catalog.AuditEntry, error) {
	var e catalog.AuditEntry
	var at dbTime
	err := sc.Scan(&e.ID, &at, &e.Actor, &e.Action, &e.Entity, &e.Name, &e.Summary)
	e.At = at.t
	return e, err
}

// AuditLog implements catalog.Repository.
func (s *Store) AuditLog(ctx context.Context, f catalog.AuditFilter) ([]catalog.AuditEntry, error) {
	l := timeList{selectFrom: `SELECT ` + auditColumns + ` FROM audit_log`, timeCol: "at", idExpr: "id"}
	l.eq("entity", f.Entity)
	l.eq("name", f.Name)
	l.eq("action", f.Action)
	l.eq("actor", f.Actor)
	q, args := l.query(f.Range, f.Limit)
	return list(ctx, s.db, "audit log", q, args, scanAudit)
}

// recordDelta inserts or updates a delta. delta.computed sets the
// computed fields; delta.ready leaves them as they are. The first sight
// stays the earliest.
func recordDelta(ctx context.Context, tx *sql.Tx, d *catalog.Delta) error {
	_, err := tx.ExecContext(ctx,
		`INSERT INTO deltas (tree, from_version, to_version, pack, size, computed_at, computed_by, compute_ms, first_seen_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
		ON CONFLICT (tree, from_version, to_version) DO UPDATE SET
			pack = excluded.pack, size = excluded.size,
			computed_at = CASE WHEN excluded.computed_at IS NULL THEN deltas.computed_at ELSE excluded.computed_at END,
			computed_by = CASE WHEN excluded.computed_at IS NULL THEN deltas.computed_by ELSE excluded.computed_by END,
			compute_ms = CASE WHEN excluded.computed_at IS NULL THEN deltas.compute_ms ELSE excluded.compute_ms END,
			first_seen_at = CASE WHEN excluded.first_seen_at < deltas.first_seen_at THEN excluded.first_seen_at ELSE deltas.first_seen_at END`,
		d.Tree, d.From, d.To, d.Pack, d.Size, nullTime(d.ComputedAt), d.ComputedBy, d.ComputeMS, ts(d.FirstSeenAt))
	if isForeignKey(err) {
		return fmt.Errorf("delta %s: %w: %q", d.To, catalog.ErrTreeNotFound, d.Tree)
	}
	if err != nil {
		return fmt.Errorf("upsert delta %s/%s/%s: %w", d.Tree, d.From, d.To, err)
	}
	return nil
}

// deltaColumns reads a delta and counts the completed apply runs that
// moved a site from its From to its To.
const deltaColumns = `d.tree, d.from_version, d.to_version, d.pack, d.size, d.computed_at, d.computed_by, d.compute_ms, d.first_seen_at,
	(SELECT COUNT(*) FROM runs r WHERE r.tree = d.tree AND r.from_version = d.from_version AND r.to_version = d.to_version
		AND r.kind = 'apply' AND r.state = 'DONE' AND r.result IN ('COMPLETED', 'PARTIAL'))`

func scanDelta(sc interface{ Scan(...any) error }) (catalog.Delta, error) {
	var d catalog.Delta
	var computed, seen dbTime
	err := sc.Scan(&d.Tree, &d.From, &d.To, &d.Pack, &d.Size, &computed, &d.ComputedBy, &d.ComputeMS, &seen, &d.TimesServed)
	d.ComputedAt = computed.ptr()
	d.FirstSeenAt = seen.t
	return d, err
}

// Deltas implements catalog.Repository.
func (s *Store) Deltas(ctx context.Context, f catalog.DeltaFilter) ([]catalog.Delta, error) {
	// The id is catalog.DeltaKey's.
	l := timeList{selectFrom: `SELECT ` + deltaColumns + ` FROM deltas d`, timeCol: "d.first_seen_at",
		idExpr: "(d.tree || '/' || d.from_version || '/' || d.to_version)"}
	l.eq("d.tree", f.Tree)
	q, args := l.query(f.Range, f.Limit)
	return list(ctx, s.db, "deltas", q, args, scanDelta)
}

// RecordProblem implements catalog.Repository.
func (s *Store) RecordProblem(ctx context.Context, p catalog.EventProblem) (bool, error) {
	var recorded bool
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		first, err := markProcessed(ctx, tx, p.EventID, ts(p.ReceivedAt))
		if err != nil {
			return err
		}
		if !first {
			return nil // seen before: change nothing
		}
		recorded = true
		if _, err := tx.ExecContext(ctx,
			`INSERT INTO problems (event_id, type, subject, reason, received_at) VALUES ($1, $2, $3, $4, $5)`,
			p.EventID, p.Type, p.Subject, p.Reason, ts(p.ReceivedAt)); err != nil {
			return fmt.Errorf("insert problem %s: %w", p.EventID, err)
		}
		return nil
	})
	if err != nil {
		return false, err
	}
	return recorded, nil
}

func scanProblem(sc interface{ Scan(...any) error }) (catalog.EventProblem, error) {
	var p catalog.EventProblem
	var at dbTime
	err := sc.Scan(&p.EventID, &p.Type, &p.Subject, &p.Reason, &at)
	p.ReceivedAt = at.t
	return p, err
}

// Problems implements catalog.Repository.
func (s *Store) Problems(ctx context.Context, f catalog.ProblemFilter) ([]catalog.EventProblem, error) {
	l := timeList{selectFrom: `SELECT event_id, type, subject, reason, received_at FROM problems`, timeCol: "received_at", idExpr: "event_id"}
	l.eq("type", f.Type)
	q, args := l.query(f.Range, f.Limit)
	return list(ctx, s.db, "problems", q, args, scanProblem)
}
