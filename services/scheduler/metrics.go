package scheduler

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pulpdist/pulpdist/libs/bus"
	"github.com/pulpdist/pulpdist/libs/metrics"
)

// schedMetrics count what the scheduler sends.
type schedMetrics struct {
	commands *prometheus.CounterVec
	deltas   *prometheus.CounterVec
	triggers *prometheus.CounterVec
}

func newSchedMetrics(reg prometheus.Registerer) (*schedMetrics, error) {
	m := &schedMetrics{
		commands: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metrics.Namespace, Subsystem: "scheduler", Name: "commands_total",
			Help: "Commands sent to site-agents, by tree, kind (snapshot, apply) and urgency.",
		}, []string{"tree", "kind", "urgent"}),
		deltas: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metrics.Namespace, Subsystem: "scheduler", Name: "delta_requests_total",
			Help: "Delta requests sent to the delta-caches, by tree (one per group of sites on the same base).",
		}, []string{"tree"}),
		triggers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metrics.Namespace, Subsystem: "scheduler", Name: "triggers_total",
			Help: "Syncs the scheduler itself requested, by tree and reason (schedule, chain, coalesced).",
		}, []string{"tree", "reason"}),
	}
	for _, c := range []prometheus.Collector{m.commands, m.deltas, m.triggers} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *schedMetrics) command(c bus.SyncCommand) {
	urgent := "false"
	if c.Urgent {
		urgent = "true"
	}
	m.commands.WithLabelValues(c.Tree, string(c.Kind), urgent).Inc()
}
