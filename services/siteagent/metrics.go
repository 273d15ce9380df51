package siteagent

import (
	"math"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pulpdist/pulpdist/libs/bandwidth"
	"github.com/pulpdist/pulpdist/libs/bus"
	"github.com/pulpdist/pulpdist/libs/metrics"
)

// agentMetrics are a site-agent's metrics, every one labelled with its
// site (several agents share a registry in `pulpdist dev`).
type agentMetrics struct {
	// linkBytes counts the bytes received over the site's link, by tree,
	// as they arrive (a fetch in progress counts).
	linkBytes *prometheus.CounterVec
	// transfers is the number of transfers on the link now.
	transfers prometheus.Gauge
	// runs times the runs of commands, by kind and result.
	runs *prometheus.HistogramVec
}

// newAgentMetrics registers the metrics of the agent of site in reg; the
// link budget is read from link at each scrape.
func newAgentMetrics(reg prometheus.Registerer, site string, link *bandwidth.Shaper) (*agentMetrics, error) {
	reg = prometheus.WrapRegistererWith(prometheus.Labels{"site": site}, reg)
	m := &agentMetrics{
		linkBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metrics.Namespace, Subsystem: "agent", Name: "link_received_bytes_total",
			Help: "Bytes received over the site's link (packs fetched), by tree, counted as they arrive.",
		}, []string{"tree"}),
		transfers: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: metrics.Namespace, Subsystem: "agent", Name: "link_transfers",
			Help: "Transfers running on the site's link now.",
		}),
		runs: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: metrics.Namespace, Subsystem: "agent", Name: "run_duration_seconds",
			Help:    "Time from a command's start to its result, by kind (snapshot, apply) and result code.",
			Buckets: prometheus.ExponentialBuckets(0.1, 2, 14), // 0.1 s … 14 min
		}, []string{"kind", "result"}),
	}
	budget := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: metrics.Namespace, Subsystem: "agent", Name: "link_budget_bytes_per_second",
		Help: "The bandwidth the site's link may use now by its schedule (as the last sync command gave it): +Inf when unlimited, 0 while a window keeps transfers waiting.",
	}, func() float64 { return budgetValue(link.Rate()) })
	for _, c := range []prometheus.Collector{m.linkBytes, m.transfers, m.runs, budget} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// budgetValue is a shaper's rate as the budget gauge shows it.
func budgetValue(rate int64) float64 {
	if rate == bandwidth.Unlimited {
		return math.Inf(1)
	}
	return float64(rate)
}

// observeRun records a finished run.
func (m *agentMetrics) observeRun(kind bus.CommandKind, result bus.Result, seconds float64) {
	m.runs.WithLabelValues(string(kind), string(result)).Observe(seconds)
}
