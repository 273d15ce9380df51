package catalog

import (
	"context"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/pulpdist/pulpdist/libs/bus"
)

// The states of a site's agent as the inventory knows it. A site whose
// agent was never heard from has none ("").
const (
	AgentStateOnline  = "online"
	AgentStateOffline = "offline"
)

// DefaultAgentOfflineAfter is how long an agent may be silent before the
// inventory reports it offline: several of its heartbeats (one a minute
// by default).
const DefaultAgentOfflineAfter = 5 * time.Minute

// AgentStatus is what the inventory knows of a site's agent.
type AgentStatus struct {
	Site string
	// State is AgentStateOnline, AgentStateOffline or "" (never heard
	// from); Reason says why it is offline (bus.AgentStopped,
	// bus.AgentHeartbeatLost). Since is when it took the state: when the
	// bus stored the event that said so, or when the inventory found the
	// agent silent (its own clock).
	State  string
	Reason string
	Since  *time.Time
	// LastHeartbeat is the site's (Site.LastHeartbeat).
	LastHeartbeat *time.Time
}

// Presence is what an event from a site's agent says of the agent
// itself: State AgentStateOnline for its agent.online, AgentStateOffline
// for its agent.offline, each with the Reason the agent gives; "" for any
// other event, which only says it is alive.
type Presence struct {
	State  string
	Reason string
}

// AgentRepository keeps the sites' heartbeats and their agents' states.
// Like the alarms, a state changes once however many inventories see it,
// and its event is written to the outbox in the transaction of the
// change.
type AgentRepository interface {
	// RecordHeartbeat sets a site's last heartbeat to at unless it is
	// that late already; an unknown site is not an error (nothing
	// changes). When it moved the heartbeat, f gets the agent's status,
	// locked, and returns the new one and the events announcing it, which
	// are stored in the same transaction.
	RecordHeartbeat(ctx context.Context, site string, at time.Time, f func(AgentStatus) (AgentStatus, []Event)) error
	// AgentStatuses lists the agent status of every site.
	AgentStatuses(ctx context.Context) ([]AgentStatus, error)
	// AgentLost sets the agent of site offline as st says, and posts ev,
	// provided it is not offline already and its last heartbeat is still
	// before cutoff; false when it changed nothing.
	AgentLost(ctx context.Context, site string, cutoff time.Time, st AgentStatus, ev Event) (bool, error)
}

// AgentOnlineEvent is the agent.online of the inventory: it hears again
// at at from the agent of site, which it had reported offline.
func AgentOnlineEvent(site string, at time.Time) Event {
	return Event{Entity: bus.EntityAgent, Action: bus.ActionOnline, About: bus.About{Site: site},
		Data: bus.AgentOnline{Site: site, Reason: bus.AgentHeartbeatResumed, Since: at.UTC()}}
}

// AgentOfflineEvent is the agent.offline of the inventory: the agent of
// site, last heard from at lastSeen, is silent at at.
func AgentOfflineEvent(site string, at, lastSeen time.Time) Event {
	last := lastSeen.UTC()
	return Event{Entity: bus.EntityAgent, Action: bus.ActionOffline, About: bus.About{Site: site},
		Data: bus.AgentOffline{Site: site, Reason: bus.AgentHeartbeatLost, Since: at.UTC(), LastSeen: &last}}
}

// maxReason bounds the reason an agent gives for going online or offline.
const maxReason = 256

// RecordHeartbeat notes that the agent of a site was heard from at at (zero:
// now), by an event that says p of the agent. at is when the bus stored
// the event, on the NATS server's clock, as is the time CheckAgents
// measures silence up to: the agent's clock, which may be behind or
// ahead, has no say in whether it is alive. An unknown site is ignored: the agent may run
// before its site is declared. Older news (an event redelivered, or
// handled after a later one) never moves the heartbeat back nor changes
// the agent's state, so the call is idempotent.
//
// The agent's own agent.online and agent.offline set its state silently
// (they are the announcement); any other event of an agent the inventory
// had reported offline brings it back online with the inventory's
// agent.online.
func (s *Service) RecordHeartbeat(ctx context.Context, site string, at time.Time, p Presence) error {
	if err := checkName("site", site); err != nil {
		return err
	}
	switch p.State {
	case "":
		if p.Reason != "" {
			return invalidf("agent presence: a reason without going online or offline")
		}
	case AgentStateOnline, AgentStateOffline:
		if err := checkText("reason", p.Reason); err != nil || p.Reason == "" || len(p.Reason) > maxReason || !utf8.ValidString(p.Reason) {
			return invalidf("agent.%s: reason must be text of 1 to %d bytes without control characters", p.State, maxReason)
		}
	default:
		return invalidf("agent presence: unknown state %q", p.State)
	}
	when := s.orNow(at)
	err := s.repo.RecordHeartbeat(ctx, site, when, func(st AgentStatus) (AgentStatus, []Event) {
		next := AgentStatus{Site: site, State: AgentStateOnline, Since: &when, LastHeartbeat: &when}
		switch {
		case p.State == AgentStateOffline:
			next.State, next.Reason = AgentStateOffline, p.Reason
			return next, nil
		case p.State == AgentStateOnline, st.State == "":
			// Its own announcement, or an agent never heard from (whose
			// agent.online went before its site was declared).
			return next, nil
		case st.State == AgentStateOffline:
			return next, []Event{AgentOnlineEvent(site, when)}
		}
		st.LastHeartbeat = &when
		return st, nil
	})
	if err != nil {
		return fmt.Errorf("record heartbeat of %s: %w", site, err)
	}
	return nil
}

// CheckAgents reports offline (agent.offline, reason heartbeat lost) the
// agent of every site not offline already whose last heartbeat is older
// than after before heard, and returns how many it reported. heard is
// the time up to which every heartbeat has been recorded, on the clock of
// the heartbeats (when the bus stored them; see RecordHeartbeat): one
// not recorded yet is never taken for silence, however long it waits. A
// site never heard from is not reported: it never was online.
func (s *Service) CheckAgents(ctx context.Context, heard time.Time, after time.Duration) (int, error) {
	if after <= 0 {
		return 0, invalidf("agent offline threshold %s is not positive", after)
	}
	if heard.IsZero() {
		return 0, invalidf("agents checked without the time up to which they were heard")
	}
	now := s.timestamp()
	sts, err := s.repo.AgentStatuses(ctx)
	if err != nil {
		return 0, fmt.Errorf("agent states: %w", err)
	}
	lost := 0
	cutoff := heard.Add(-after)
	for _, st := range sts {
		if st.State == AgentStateOffline || st.LastHeartbeat == nil || !st.LastHeartbeat.Before(cutoff) {
			continue
		}
		next := AgentStatus{Site: st.Site, State: AgentStateOffline, Reason: bus.AgentHeartbeatLost, Since: &now, LastHeartbeat: st.LastHeartbeat}
		ok, err := s.repo.AgentLost(ctx, st.Site, cutoff, next, AgentOfflineEvent(st.Site, now, *st.LastHeartbeat))
		if err != nil {
			return lost, fmt.Errorf("agent of %s lost: %w", st.Site, err)
		}
		if ok {
			lost++
		}
	}
	return lost, nil
}
