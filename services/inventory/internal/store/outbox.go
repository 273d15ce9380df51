package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/pulpdist/pulpdist/services/inventory/internal/catalog"
)

// UseEncoder makes every change write the messages encode makes of its
// events into the outbox, in the change's transaction. Without an encoder
// (a store used alone) changes write no messages. Call it before the
// store is shared.
func (s *Store) UseEncoder(encode catalog.Encoder) { s.encode = encode }

// Posted receives a value after a transaction that wrote to the outbox
// committed: the relay publishes at once instead of at its next round.
func (s *Store) Posted() <-chan struct{} { return s.posted }

// post writes the messages of evs into the outbox inside tx.
func (s *Store) post(ctx context.Context, tx *sql.Tx, evs ...catalog.Event) error {
	if s.encode == nil {
		return nil
	}
	now := time.Now().UTC()
	for _, ev := range evs {
		msgs, err := s.encode(ctx, ev)
		if err != nil {
			return fmt.Errorf("encode %s.%s event: %w", ev.Entity, ev.Action, err)
		}
		for _, m := range msgs {
			id, err := uuid.NewV7()
			if err != nil {
				return fmt.Errorf("outbox id: %w", err)
			}
			if _, err := tx.ExecContext(ctx,
				`INSERT INTO outbox (id, subject, msg_id, content_type, body, created_at, traceparent, tracestate) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
				id.String(), m.Subject, m.MsgID, m.ContentType, string(m.Body), ts(now), m.TraceParent, m.TraceState); err != nil {
				return fmt.Errorf("outbox %s: %w", m.Subject, err)
			}
			s.wroteMu.Lock()
			s.wrote[tx] = true
			s.wroteMu.Unlock()
		}
	}
	return nil
}

// wroteOutbox reports whether tx, now ended, wrote to the outbox, and
// forgets it.
func (s *Store) wroteOutbox(tx *sql.Tx) bool {
	s.wroteMu.Lock()
	defer s.wroteMu.Unlock()
	w := s.wrote[tx]
	delete(s.wrote, tx)
	return w
}

// signalPosted wakes the relay after a transaction that wrote to the
// outbox committed.
func (s *Store) signalPosted() {
	select {
	case s.posted <- struct{}{}:
	default: // a wake-up is already pending
	}
}

// PendingMessages lists up to limit messages of the outbox, oldest first.
func (s *Store) PendingMessages(ctx context.Context, limit int) ([]catalog.Message, error) {
	rows, err := s.db.QueryContext(ctx,
		`SELECT id, subject, msg_id, content_type, body, created_at, attempts, last_error, traceparent, tracestate FROM outbox ORDER BY id LIMIT $1`, limit)
	if err != nil {
		return nil, unavailable(fmt.Errorf("read outbox: %w", err))
	}
	defer rows.Close()
	var out []catalog.Message
	for rows.Next() {
		var m catalog.Message
		var body string
		var created dbTime
		if err := rows.Scan(&m.ID, &m.Subject, &m.MsgID, &m.ContentType, &body, &created, &m.Attempts, &m.LastError, &m.TraceParent, &m.TraceState); err != nil {
			return nil, unavailable(fmt.Errorf("read outbox: %w", err))
		}
		m.Body, m.CreatedAt = []byte(body), created.t
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, unavailable(fmt.Errorf("read outbox: %w", err))
	}
	return out, nil
}

// MessageSent removes a published message from the outbox.
func (s *Store) MessageSent(ctx context.Context, id string) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM outbox WHERE id = $1`, id); err != nil {
		return unavailable(fmt.Errorf("outbox: delete %s: %w", id, err))
	}
	return nil
}

// MessageFailed counts a failed publication of a message and keeps why.
func (s *Store) MessageFailed(ctx context.Context, id string, cause error) error {
	msg := cause.Error()
	if len(msg) > 1024 {
		msg = msg[:1024]
	}
	if _, err := s.db.ExecContext(ctx, `UPDATE outbox SET attempts = attempts + 1, last_error = $2 WHERE id = $1`, id, msg); err != nil {
		return unavailable(fmt.Errorf("outbox: mark %s: %w", id, err))
	}
	return nil
}
