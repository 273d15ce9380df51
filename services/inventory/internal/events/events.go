// Package events is the inventory's bus transport: it reads the CloudEvents
// on pulpdist.evt.> and records the ones that change the catalog (a
// snapshot published, a sync started or finished, a delta computed or
// ready). Any event from a site-agent also counts as the site's heartbeat,
// at the time the bus stored it, and its agent.online and agent.offline
// set the agent's state. An event about a tree the inventory does not
// know, or one in which a site-agent reports for another site than its
// own, is kept as a problem. Other event types are acknowledged and
// ignored.
package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pulpdist/pulpdist/libs/bus"
	"github.com/pulpdist/pulpdist/services/inventory/internal/catalog"
)

// Durable is the name of the inventory's consumer on the events stream.
const Durable = "inventory"

// Filter selects every event.
const Filter = bus.EventsPrefix + ".>"

// The CloudEvents types the inventory records.
const (
	TypeSnapshotPublished = bus.EventTypePrefix + bus.EntitySnapshot + "." + bus.ActionPublished + "." + bus.EventTypeVersion
	TypeSyncStarted       = bus.EventTypePrefix + bus.EntitySync + "." + bus.ActionStarted + "." + bus.EventTypeVersion
	TypeSyncFinished      = bus.EventTypePrefix + bus.EntitySync + "." + bus.ActionFinished + "." + bus.EventTypeVersion
	TypeDeltaComputed     = bus.EventTypePrefix + bus.EntityDelta + "." + bus.ActionComputed + "." + bus.EventTypeVersion
	TypeDeltaReady        = bus.EventTypePrefix + bus.EntityDelta + "." + bus.ActionReady + "." + bus.EventTypeVersion
	TypeDeltaDeleted      = bus.EventTypePrefix + bus.EntityDelta + "." + bus.ActionDeleted + "." + bus.EventTypeVersion
	TypeAgentOnline       = bus.EventTypePrefix + bus.EntityAgent + "." + bus.ActionOnline + "." + bus.EventTypeVersion
	TypeAgentOffline      = bus.EventTypePrefix + bus.EntityAgent + "." + bus.ActionOffline + "." + bus.EventTypeVersion
	TypeAgentHeartbeat    = bus.EventTypePrefix + bus.EntityAgent + "." + bus.ActionHeartbeat + "." + bus.EventTypeVersion
)

// SiteAgentSource prefixes the CloudEvents source of every site-agent's
// events: /pulpdist/siteagent/<site>.
const SiteAgentSource = "/pulpdist/siteagent/"

// Recorder stores what the events say; each call is idempotent by event id
// (RecordHeartbeat by nature: it only moves a time forward, and only news
// that moves it changes the agent's state). RecordHeartbeat's time is
// when the bus stored the event, not the event's own time.
type Recorder interface {
	RecordSnapshot(ctx context.Context, eventID string, m bus.Snapshot) error
	RecordSyncStarted(ctx context.Context, eventID string, m bus.SyncStarted) error
	RecordSyncFinished(ctx context.Context, eventID string, m bus.SyncFinished) error
	RecordDeltaComputed(ctx context.Context, eventID string, at time.Time, m bus.DeltaComputed) error
	RecordDeltaReady(ctx context.Context, eventID string, at time.Time, m bus.DeltaReady) error
	RecordDeltaDeleted(ctx context.Context, eventID string, m bus.DeltaDeleted) error
	RecordHeartbeat(ctx context.Context, site string, at time.Time, p catalog.Presence) error
	RecordProblem(ctx context.Context, p catalog.EventProblem) error
	// ReportKey returns the site and report key of an agent token
	// (bus.SignReport); catalog.ErrUnauthenticated when it may not report.
	ReportKey(ctx context.Context, tokenID string) (site string, key []byte, err error)
}

// Reports says how the inventory takes site-agents' reports.
type Reports struct {
	// RequireSigned keeps every event from a site-agent that is not
	// signed with an agent token of its site as a problem. Without it an
	// unsigned report is taken on the word of its source; a signed one
	// is checked either way.
	RequireSigned bool
}

// Handler returns the bus handler for the events stream. An event that
// does not decode, or that the catalog refuses as invalid, is permanent:
// redelivery cannot fix it. One about a tree the catalog does not know is
// recorded as a problem and acknowledged.
func Handler(rec Recorder, r Reports) bus.Handler {
	return func(ctx context.Context, m jetstream.Msg) error {
		meta, err := m.Metadata()
		if err != nil {
			return bus.Permanent(fmt.Errorf("event on %s: %w", m.Subject(), err))
		}
		return Handle(ctx, rec, r, m.Data(), meta.Timestamp)
	}
}

// Handle records one event body, which the bus stored at stored (its
// JetStream timestamp). An event from a site-agent is the agent's
// heartbeat at stored, on the NATS server's clock: the time the agent
// writes in the event is on its own clock, which may be behind or ahead,
// and says only what the event's content needs it to.
func Handle(ctx context.Context, rec Recorder, r Reports, body []byte, stored time.Time) error {
	ev, _, err := bus.DecodeEvent[json.RawMessage](body)
	if err != nil {
		return bus.Permanent(err)
	}
	agent, fromAgent := strings.CutPrefix(ev.Source(), SiteAgentSource)
	if fromAgent {
		err := r.authenticate(ctx, rec, ev, agent)
		if errors.Is(err, catalog.ErrUnauthenticated) || errors.Is(err, bus.ErrBadReport) {
			// Kept for an operator to see, and not applied: not even as
			// the site's heartbeat.
			return keep(ctx, rec, ev, err)
		}
		if err != nil {
			return fmt.Errorf("%s %s: %w", ev.Type(), ev.ID(), err)
		}
	}
	if fromAgent && bus.ValidateName("site", agent) == nil {
		p, err := presence(ev, body, agent)
		if err != nil {
			return bus.Permanent(err)
		}
		if err := rec.RecordHeartbeat(ctx, agent, stored, p); err != nil {
			if errors.Is(err, catalog.ErrInvalid) {
				return bus.Permanent(fmt.Errorf("%s %s: %w", ev.Type(), ev.ID(), err))
			}
			return fmt.Errorf("%s %s: %w", ev.Type(), ev.ID(), err)
		}
	}
	// A site-agent reports for its own site only: what it says of another
	// site is kept as a problem, not applied. With signed reports required,
	// what moves a site to a version (a snapshot, a run's result) is taken
	// only from that site's agent; the scheduler's own records (a run
	// dispatched, a run DISABLED) may come from elsewhere.
	own := func(site string, movesVersion bool) error {
		switch {
		case fromAgent && site != agent:
			return fmt.Errorf("%w: the site-agent of %q reported for site %q", errOtherSite, agent, site)
		case !fromAgent && movesVersion && r.RequireSigned:
			return fmt.Errorf("%w: a report for site %q from %q, not from the site's agent; the inventory requires signed reports", catalog.ErrUnauthenticated, site, ev.Source())
		}
		return nil
	}
	switch ev.Type() {
	case TypeSnapshotPublished:
		return record(ctx, rec, body, checked(func(m bus.Snapshot) error { return own(m.Site, true) }, byID(rec.RecordSnapshot)))
	case TypeSyncStarted:
		return record(ctx, rec, body, checked(func(m bus.SyncStarted) error { return own(m.Site, false) }, byID(rec.RecordSyncStarted)))
	case TypeSyncFinished:
		return record(ctx, rec, body, checked(func(m bus.SyncFinished) error { return own(m.Site, m.Result != bus.ResultDisabled) }, byID(rec.RecordSyncFinished)))
	case TypeDeltaComputed:
		return record(ctx, rec, body, byIDAndTime(rec.RecordDeltaComputed))
	case TypeDeltaReady:
		return record(ctx, rec, body, byIDAndTime(rec.RecordDeltaReady))
	case TypeDeltaDeleted:
		return record(ctx, rec, body, byID(rec.RecordDeltaDeleted))
	case TypeAgentOnline, TypeAgentOffline, TypeAgentHeartbeat:
		// Recorded above, as the heartbeat of the agent that sent it; the
		// inventory's own agent.online and agent.offline are its
		// announcements, recorded when it made them.
		if fromAgent {
			return record(ctx, rec, body, checked(func(m agentData) error { return own(m.Site, false) }, func(context.Context, event.Event, agentData) error { return nil }))
		}
	}
	// Other events are not recorded, message.deadlettered among them (the
	// dead letter is in PULPDIST_DEAD for an operator). Refusing one would
	// be a dead letter of its own, announced by another such event.
	return nil
}

// agentData is the part of the agent events' data that names the site.
type agentData struct {
	Site string `json:"site"`
}

// presence is what ev, an event from the agent of site, says of the
// agent. What it says of another site's agent says only that it is alive
// (and the event is kept as a problem).
func presence(ev event.Event, body []byte, site string) (catalog.Presence, error) {
	switch ev.Type() {
	case TypeAgentOnline:
		_, m, err := bus.DecodeEvent[bus.AgentOnline](body)
		if err != nil || m.Site != site {
			return catalog.Presence{}, err
		}
		return catalog.Presence{State: catalog.AgentStateOnline, Reason: m.Reason}, nil
	case TypeAgentOffline:
		_, m, err := bus.DecodeEvent[bus.AgentOffline](body)
		if err != nil || m.Site != site {
			return catalog.Presence{}, err
		}
		return catalog.Presence{State: catalog.AgentStateOffline, Reason: m.Reason}, nil
	}
	return catalog.Presence{}, nil
}

// authenticate checks the report signature of an event from the
// site-agent of site: made with a live agent token of that site, and
// matching the event. An unsigned event passes unless r.RequireSigned.
func (r Reports) authenticate(ctx context.Context, rec Recorder, ev event.Event, site string) error {
	id, signed := bus.ReportSigner(ev)
	if !signed {
		if r.RequireSigned {
			return fmt.Errorf("%w: unsigned report from the site-agent of %q (give the agent its site's agent token, PULPDIST_AGENT_TOKEN or PULPDIST_AGENT_TOKEN_FILE, or run the inventory with PULPDIST_ACCEPT_UNSIGNED_REPORTS=true)", catalog.ErrUnauthenticated, site)
		}
		return nil
	}
	tokenSite, key, err := rec.ReportKey(ctx, id)
	if err != nil {
		return err
	}
	if tokenSite != site {
		return fmt.Errorf("%w: report from the site-agent of %q signed with token %s of site %q", catalog.ErrUnauthenticated, site, id, tokenSite)
	}
	return bus.VerifyReport(ev, key)
}

// keep records ev as a problem, for the reason err: kept, not dropped, an
// operator sees it at /api/v1/problems.
func keep(ctx context.Context, rec Recorder, ev event.Event, err error) error {
	return rec.RecordProblem(ctx, catalog.EventProblem{EventID: ev.ID(), Type: ev.Type(), Subject: ev.Subject(), Reason: err.Error()})
}

// errOtherSite marks an event a site-agent sent about another site.
var errOtherSite = errors.New("report for another site")

// checked runs check on the decoded event before f records it.
func checked[T any](check func(T) error, f func(context.Context, event.Event, T) error) func(context.Context, event.Event, T) error {
	return func(ctx context.Context, ev event.Event, m T) error {
		if err := check(m); err != nil {
			return err
		}
		return f(ctx, ev, m)
	}
}

// byID and byIDAndTime adapt Record methods to the event they record.
func byID[T any](f func(context.Context, string, T) error) func(context.Context, event.Event, T) error {
	return func(ctx context.Context, ev event.Event, m T) error { return f(ctx, ev.ID(), m) }
}

func byIDAndTime[T any](f func(context.Context, string, time.Time, T) error) func(context.Context, event.Event, T) error {
	return func(ctx context.Context, ev event.Event, m T) error { return f(ctx, ev.ID(), ev.Time(), m) }
}

func record[T any](ctx context.Context, rec Recorder, body []byte, f func(context.Context, event.Event, T) error) error {
	ev, data, err := bus.DecodeEvent[T](body)
	if err != nil {
		return bus.Permanent(err)
	}
	err = f(ctx, ev, data)
	if (errors.Is(err, catalog.ErrNotFound) && !errors.Is(err, catalog.ErrInvalid)) || errors.Is(err, errOtherSite) || errors.Is(err, catalog.ErrUnauthenticated) {
		err = keep(ctx, rec, ev, err)
	}
	if err != nil {
		if errors.Is(err, catalog.ErrInvalid) {
			return bus.Permanent(fmt.Errorf("%s %s: %w", ev.Type(), ev.ID(), err))
		}
		return fmt.Errorf("%s %s: %w", ev.Type(), ev.ID(), err)
	}
	return nil
}
