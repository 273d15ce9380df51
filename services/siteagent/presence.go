package siteagent

import (
	"context"
	"os"
	"time"

	"github.com/pulpdist/pulpdist/libs/bus"
	"github.com/pulpdist/pulpdist/libs/program"
)

// Heartbeat intervals. An idle agent publishes nothing else, and the
// inventory reports a site silent for longer than its
// PULPDIST_AGENT_OFFLINE_AFTER (5 min by default) as offline.
const (
	DefaultHeartbeatInterval = time.Minute
	MinHeartbeatInterval     = 100 * time.Millisecond
	MaxHeartbeatInterval     = time.Hour
)

// offlineBudget bounds how long a stopping agent tries to say so.
const offlineBudget = 5 * time.Second

// online publishes agent.online: the agent started at started, and
// serves trees.
func (s *Service) online(ctx context.Context, started time.Time, trees []bus.AgentTree) error {
	host, err := os.Hostname()
	if err != nil {
		host = "" // the event says nothing rather than something wrong
	}
	ev := bus.AgentOnline{
		Site: s.cfg.Site, Reason: bus.AgentStarted, Since: started, Version: program.Version, Hostname: host,
		HeartbeatSeconds: max(int64(s.heartbeatEvery/time.Second), 1), Trees: trees,
	}
	return s.events.Publish(ctx, bus.EntityAgent, bus.ActionOnline, bus.About{Site: s.cfg.Site}, ev)
}

// heartbeats publishes agent.heartbeat every s.heartbeatEvery until ctx
// ends, then agent.offline: the agent stops cleanly. A heartbeat that
// fails is logged; the next one may pass.
func (s *Service) heartbeats(ctx context.Context, started time.Time) {
	about := bus.About{Site: s.cfg.Site}
	t := time.NewTicker(s.heartbeatEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			// Said on the connection the daemon drains once every part has
			// returned, with a context of its own: ctx has ended.
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), offlineBudget)
			defer cancel()
			ev := bus.AgentOffline{Site: s.cfg.Site, Reason: bus.AgentStopped, Since: time.Now().UTC()}
			if err := s.events.Publish(sctx, bus.EntityAgent, bus.ActionOffline, about, ev); err != nil {
				s.log.Warn("agent.offline not published; the inventory will find the agent silent", "err", err)
			}
			return
		case <-t.C:
			ev := bus.AgentHeartbeat{
				Site: s.cfg.Site, StartedAt: started, HeartbeatSeconds: max(int64(s.heartbeatEvery/time.Second), 1),
				Running: int(s.running.Load()),
			}
			if err := s.events.PublishTransient(ctx, bus.EntityAgent, bus.ActionHeartbeat, about, bus.AgentHeartbeatTTL, ev); err != nil && ctx.Err() == nil {
				s.log.Warn("heartbeat not published", "err", err)
			}
		}
	}
}
