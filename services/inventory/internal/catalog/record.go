package catalog

import (
	"context"
	"fmt"
	"time"

	"github.com/pulpdist/pulpdist/libs/bus"
)

// The Record methods take what the bus says happened. Each is idempotent:
// an event id seen before changes nothing. Input that breaks the contract
// fails with ErrInvalid, which retrying cannot fix.

// RecordSnapshot records a version published by an origin and that the
// origin serves it.
func (s *Service) RecordSnapshot(ctx context.Context, eventID string, m bus.Snapshot) error {
	if err := checkEventID(eventID); err != nil {
		return err
	}
	if err := m.Validate(); err != nil {
		return fmt.Errorf("%w: snapshot: %w", ErrInvalid, err)
	}
	if err := checkName("site", m.Site); err != nil {
		return err
	}
	if m.Files < 0 || m.Bytes < 0 {
		return invalidf("snapshot: negative files or bytes")
	}
	at := s.orNow(m.PublishedAt)
	v := Version{Tree: m.Tree, Root: m.Root, Site: m.Site, Files: m.Files, Bytes: m.Bytes, PublishedAt: at}
	sv := SiteVersion{Site: m.Site, Tree: m.Tree, Root: m.Root, UpdatedAt: at}
	return s.record(ctx, eventID, Change{Version: &v, SiteVersion: &sv})
}

// RecordSyncStarted records that a run began.
func (s *Service) RecordSyncStarted(ctx context.Context, eventID string, m bus.SyncStarted) error {
	if err := checkEventID(eventID); err != nil {
		return err
	}
	if err := checkRun("sync.started", m.RunID, m.Kind, m.Site, m.Tree, m.From, m.To); err != nil {
		return err
	}
	r := Run{
		ID: m.RunID, TriggerID: m.TriggerID, Site: m.Site, Tree: m.Tree, Kind: string(m.Kind),
		From: m.From, To: m.To, State: RunRunning, StartedAt: s.orNow(m.StartedAt),
	}
	return s.record(ctx, eventID, Change{RunStarted: &r})
}

// RecordSyncFinished records how a run ended and, when it left the site at
// its target, the version the site now serves.
func (s *Service) RecordSyncFinished(ctx context.Context, eventID string, m bus.SyncFinished) error {
	if err := checkEventID(eventID); err != nil {
		return err
	}
	if err := checkRun("sync.finished", m.RunID, m.Kind, m.Site, m.Tree, m.From, m.To); err != nil {
		return err
	}
	if !m.Result.Valid() {
		return invalidf("sync.finished: unknown result %q", m.Result)
	}
	if m.Files < 0 || m.Bytes < 0 || m.DurationMS < 0 {
		return invalidf("sync.finished: negative files, bytes or duration")
	}
	end := s.orNow(m.FinishedAt)
	r := Run{
		ID: m.RunID, TriggerID: m.TriggerID, Site: m.Site, Tree: m.Tree, Kind: string(m.Kind),
		From: m.From, To: m.To, State: RunDone, Result: string(m.Result), Error: m.Error,
		Files: m.Files, Bytes: m.Bytes, DurationMS: m.DurationMS,
		// Used only when sync.started was never seen.
		StartedAt:  end.Add(-time.Duration(m.DurationMS) * time.Millisecond),
		FinishedAt: &end,
	}
	c := Change{RunFinished: &r}
	if (m.Result == bus.ResultCompleted || m.Result == bus.ResultUpToDate) && m.To != "" {
		c.SiteVersion = &SiteVersion{Site: m.Site, Tree: m.Tree, Root: m.To, UpdatedAt: end}
	}
	return s.record(ctx, eventID, c)
}

func (s *Service) record(ctx context.Context, eventID string, c Change) error {
	recorded, err := s.repo.RecordEvent(ctx, eventID, c)
	if err != nil {
		return fmt.Errorf("record event %s: %w", eventID, err)
	}
	if !recorded {
		s.log.Debug("event already recorded", "event", eventID)
		return nil
	}
	if s.recorded != nil {
		s.recorded(c)
	}
	return nil
}

// orNow is t in UTC at storage precision, or now when t is unset.
func (s *Service) orNow(t time.Time) time.Time {
	if t.IsZero() {
		return s.timestamp()
	}
	return t.UTC().Truncate(time.Microsecond)
}

func checkEventID(id string) error {
	if id == "" || len(id) > maxRunID {
		return invalidf("event id must be 1 to %d bytes", maxRunID)
	}
	return nil
}

func checkRun(what, runID string, kind bus.CommandKind, site, tree, from, to string) error {
	if runID == "" || len(runID) > maxRunID {
		return invalidf("%s: run_id must be 1 to %d bytes", what, maxRunID)
	}
	if kind != bus.CommandSnapshot && kind != bus.CommandApply {
		return invalidf("%s: kind %q: want %s or %s", what, kind, bus.CommandSnapshot, bus.CommandApply)
	}
	if err := checkName("site", site); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if err := checkName("tree", tree); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if err := bus.ValidateVersion(from, true); err != nil {
		return fmt.Errorf("%w: %s from: %w", ErrInvalid, what, err)
	}
	if err := bus.ValidateVersion(to, true); err != nil {
		return fmt.Errorf("%w: %s to: %w", ErrInvalid, what, err)
	}
	return nil
}
