package catalog

import (
	"context"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/pulpdist/pulpdist/libs/bus"
)

// Delta list limits.
const (
	DefaultDeltaLimit = 100
	MaxDeltaLimit     = 1000
)

// Delta is a pack turning version From of a tree into To ("" From: the
// pack from an empty tree), as the delta-cache announced it.
type Delta struct {
	Tree string
	From string
	To   string
	// Pack is the pack's object name in the deltas store.
	Pack string
	Size int64
	// ComputedAt, ComputedBy (the delta-cache instance) and ComputeMS are
	// set by delta.computed; nil, "" and 0 for a pack seen only as ready.
	ComputedAt  *time.Time
	ComputedBy  string
	ComputeMS   int64
	FirstSeenAt time.Time
	// TimesServed counts the runs that applied the pack (apply runs from
	// From to To that completed); read, never written.
	TimesServed int64
}

// DeltaFilter selects deltas by first sight, newest first; an empty
// Tree matches all.
type DeltaFilter struct {
	Tree string
	Range
	Limit int
}

// EventProblem is a bus event the inventory could not apply, such as one
// about a tree it does not know. It is kept, not dropped, so an operator
// can see what the other services reported.
type EventProblem struct {
	EventID    string
	Type       string
	Subject    string
	Reason     string
	ReceivedAt time.Time
}

// ProblemFilter selects event problems by arrival, newest first; an
// empty Type matches all.
type ProblemFilter struct {
	Type string
	Range
	Limit int
}

// maxEventText bounds the type, subject and reason kept of a problem.
const maxEventText = 1024

// RecordDeltaComputed records a pack a delta-cache instance built at at.
func (s *Service) RecordDeltaComputed(ctx context.Context, eventID string, at time.Time, m bus.DeltaComputed) error {
	if err := checkEventID(eventID); err != nil {
		return err
	}
	if err := checkDelta("delta.computed", m.Tree, m.From, m.To, m.Size); err != nil {
		return err
	}
	if m.DurationMS < 0 {
		return invalidf("delta.computed: negative duration")
	}
	if len(m.Instance) > maxEventText || !utf8.ValidString(m.Instance) {
		return invalidf("delta.computed: instance must be UTF-8 text of at most %d bytes", maxEventText)
	}
	when := s.orNow(at)
	d := Delta{
		Tree: m.Tree, From: m.From, To: m.To, Pack: m.Pack, Size: m.Size,
		ComputedAt: &when, ComputedBy: m.Instance, ComputeMS: m.DurationMS, FirstSeenAt: when,
	}
	return s.record(ctx, eventID, Change{Delta: &d})
}

// RecordDeltaReady records a pack the delta-cache announced as stored.
func (s *Service) RecordDeltaReady(ctx context.Context, eventID string, at time.Time, m bus.DeltaReady) error {
	if err := checkEventID(eventID); err != nil {
		return err
	}
	if err := m.Validate(); err != nil {
		return fmt.Errorf("%w: delta.ready: %w", ErrInvalid, err)
	}
	if err := checkDelta("delta.ready", m.Tree, m.From, m.To, m.Size); err != nil {
		return err
	}
	d := Delta{Tree: m.Tree, From: m.From, To: m.To, Pack: m.Pack, Size: m.Size, FirstSeenAt: s.orNow(at)}
	return s.record(ctx, eventID, Change{Delta: &d})
}

// RecordDeltaDeleted forgets a pack the delta-cache deleted.
func (s *Service) RecordDeltaDeleted(ctx context.Context, eventID string, m bus.DeltaDeleted) error {
	if err := checkEventID(eventID); err != nil {
		return err
	}
	if err := checkDelta("delta.deleted", m.Tree, m.From, m.To, m.Size); err != nil {
		return err
	}
	return s.record(ctx, eventID, Change{DeltaGone: &Delta{Tree: m.Tree, From: m.From, To: m.To}})
}

func checkDelta(what, tree, from, to string, size int64) error {
	if err := checkName("tree", tree); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if err := bus.ValidateVersion(from, true); err != nil {
		return fmt.Errorf("%w: %s from: %w", ErrInvalid, what, err)
	}
	if err := bus.ValidateVersion(to, false); err != nil {
		return fmt.Errorf("%w: %s to: %w", ErrInvalid, what, err)
	}
	if size < 0 {
		return invalidf("%s: negative size", what)
	}
	return nil
}

// RecordProblem keeps an event the catalog could not apply. It is
// idempotent by event id like every Record method.
func (s *Service) RecordProblem(ctx context.Context, p EventProblem) error {
	if err := checkEventID(p.EventID); err != nil {
		return err
	}
	p.Type, p.Subject, p.Reason = clip(p.Type), clip(p.Subject), clip(p.Reason)
	p.ReceivedAt = s.timestamp()
	recorded, err := s.repo.RecordProblem(ctx, p)
	if err != nil {
		return fmt.Errorf("record problem with event %s: %w", p.EventID, err)
	}
	if recorded {
		s.log.Warn("event kept as a problem", "event", p.EventID, "type", p.Type, "reason", p.Reason)
	}
	return nil
}

// clip cuts s to maxEventText bytes of valid UTF-8.
func clip(s string) string {
	if len(s) > maxEventText {
		s = s[:maxEventText]
	}
	for !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}

// Deltas lists one page of deltas. Limit 0 means DefaultDeltaLimit.
func (s *Service) Deltas(ctx context.Context, f DeltaFilter) (Page[Delta], error) {
	if f.Tree != "" {
		if err := checkName("tree", f.Tree); err != nil {
			return Page[Delta]{}, err
		}
	}
	p, err := pageOf(ctx, f.Range, f.Limit, DefaultDeltaLimit, MaxDeltaLimit,
		func(ctx context.Context, n int) ([]Delta, error) { f.Limit = n; return s.repo.Deltas(ctx, f) }, DeltaKey)
	return p, wrapList("deltas", err)
}

// DeltaKey is where a delta stands in a delta list: its first sight and
// "tree/from/to" (from "" for a pack from an empty tree).
func DeltaKey(d Delta) TimeKey {
	return TimeKey{At: d.FirstSeenAt, ID: d.Tree + "/" + d.From + "/" + d.To}
}

// Problems lists one page of the events kept as problems. Limit 0 means
// DefaultDeltaLimit.
func (s *Service) Problems(ctx context.Context, f ProblemFilter) (Page[EventProblem], error) {
	if err := checkText("type", f.Type); err != nil {
		return Page[EventProblem]{}, err
	}
	p, err := pageOf(ctx, f.Range, f.Limit, DefaultDeltaLimit, MaxDeltaLimit,
		func(ctx context.Context, n int) ([]EventProblem, error) { f.Limit = n; return s.repo.Problems(ctx, f) },
		func(p EventProblem) TimeKey { return TimeKey{At: p.ReceivedAt, ID: p.EventID} })
	return p, wrapList("problems", err)
}
