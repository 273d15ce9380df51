package inventory

import (
	"cmp"
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pulpdist/pulpdist/libs/metrics"
	"github.com/pulpdist/pulpdist/services/inventory/internal/catalog"
)

// The inventory's metrics are the network seen from its records: what
// the site-agents reported (counted once per event, whichever inventory
// recorded it) and, read from the database at each scrape, where every
// subscription stands. A central Prometheus that cannot reach 60 sites'
// agents still sees every site here.

// recordedMetrics count the runs the inventory records as finished.
type recordedMetrics struct {
	results *prometheus.CounterVec
	bytes   *prometheus.CounterVec
}

func newRecordedMetrics(reg prometheus.Registerer) (*recordedMetrics, error) {
	m := &recordedMetrics{
		results: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metrics.Namespace, Subsystem: "sync", Name: "results_total",
			Help: "Runs finished, by tree, site, kind (snapshot, apply) and result code (COMPLETED, UP_TO_DATE, PARTIAL, FAILED, DISABLED), as the inventory recorded them.",
		}, []string{"tree", "site", "kind", "result"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metrics.Namespace, Subsystem: "sync", Name: "received_bytes_total",
			Help: "Bytes the sites received over their links for finished runs, by tree and site, as the agents reported them.",
		}, []string{"tree", "site"}),
	}
	for _, c := range []prometheus.Collector{m.results, m.bytes} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// recorded counts what a change recorded for the first time says.
func (m *recordedMetrics) recorded(c catalog.Change) {
	if r := c.RunFinished; r != nil {
		m.results.WithLabelValues(r.Tree, r.Site, r.Kind, r.Result).Inc()
		if r.Bytes > 0 {
			m.bytes.WithLabelValues(r.Tree, r.Site).Add(float64(r.Bytes))
		}
	}
}

// scrapeTimeout bounds the database reads of one scrape.
const scrapeTimeout = 5 * time.Second

// standing reports, at each scrape, where every subscription and site
// stands, read from the catalog.
type standing struct {
	catalog                                     *catalog.Service
	lag, allowed, behind, paused, heartbeat, up *prometheus.Desc
}

func newStanding(c *catalog.Service) *standing {
	sub := []string{"tree", "site"}
	name := func(n string) string { return prometheus.BuildFQName(metrics.Namespace, "", n) }
	return &standing{
		catalog: c,
		lag: prometheus.NewDesc(name("subscription_lag_seconds"),
			"How long the oldest version the site lacks has been published (0 when the site holds the latest).", sub, nil),
		allowed: prometheus.NewDesc(name("subscription_allowed_lag_seconds"),
			"The tree's allowed lag: a subscription further behind raises a freshness alarm.", sub, nil),
		behind: prometheus.NewDesc(name("subscription_versions_behind"),
			"Versions of the tree the site lacks, up to the latest.", sub, nil),
		paused: prometheus.NewDesc(name("subscription_paused"),
			"1 when the subscription, its site or its tree is paused.", sub, nil),
		heartbeat: prometheus.NewDesc(name("site_last_heartbeat_timestamp_seconds"),
			"When NATS stored the newest event from the site's agent (Unix time, the NATS server's clock, not the agent's); absent when never.", []string{"site"}, nil),
		up: prometheus.NewDesc(name("inventory_database_up"),
			"1 when the scrape could read the catalog, 0 when it could not.", nil, nil),
	}
}

func (s *standing) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{s.lag, s.allowed, s.behind, s.paused, s.heartbeat, s.up} {
		ch <- d
	}
}

func (s *standing) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	err := s.collect(ctx, ch)
	up := 1.0
	if err != nil {
		up = 0
	}
	ch <- prometheus.MustNewConstMetric(s.up, prometheus.GaugeValue, up)
}

func (s *standing) collect(ctx context.Context, ch chan<- prometheus.Metric) error {
	// One read of the catalog: the rows and the trees and sites they
	// were built from.
	rows, d, err := s.catalog.OverviewAll(ctx)
	if err != nil {
		return err
	}
	trees, sites := d.Trees, d.Sites
	allowed := make(map[string]time.Duration, len(trees))
	pausedTree, pausedSite := map[string]bool{}, map[string]bool{}
	for _, t := range trees {
		allowed[t.Name] = cmp.Or(t.AllowedLag, catalog.DefaultAllowedLag)
		pausedTree[t.Name] = t.Paused
	}
	for _, site := range sites {
		pausedSite[site.Name] = site.Paused
		if site.LastHeartbeat != nil {
			ch <- prometheus.MustNewConstMetric(s.heartbeat, prometheus.GaugeValue, float64(site.LastHeartbeat.UnixMilli())/1e3, site.Name)
		}
	}
	for _, r := range rows {
		if r.Role != catalog.RoleReplica {
			continue
		}
		paused := 0.0
		if r.Paused || pausedTree[r.Tree] || pausedSite[r.Site] {
			paused = 1
		}
		ch <- prometheus.MustNewConstMetric(s.lag, prometheus.GaugeValue, float64(r.LagSeconds), r.Tree, r.Site)
		ch <- prometheus.MustNewConstMetric(s.allowed, prometheus.GaugeValue, allowed[r.Tree].Seconds(), r.Tree, r.Site)
		ch <- prometheus.MustNewConstMetric(s.behind, prometheus.GaugeValue, float64(r.VersionsBehind), r.Tree, r.Site)
		ch <- prometheus.MustNewConstMetric(s.paused, prometheus.GaugeValue, paused, r.Tree, r.Site)
	}
	return nil
}
