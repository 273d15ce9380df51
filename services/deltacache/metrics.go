package deltacache

import (
	"context"
	"math"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pulpdist/pulpdist/libs/metrics"
)

// How a delta request was answered (the outcome label of
// pulpdist_deltacache_requests_total).
const (
	outcomeStored   = "stored"   // the pack was in the store: a cache hit
	outcomeChain    = "chain"    // a chain of stored packs
	outcomeComputed = "computed" // built now
)

// cacheMetrics are a delta-cache instance's metrics, labelled with its
// instance name (several share a registry in `pulpdist dev`).
type cacheMetrics struct {
	requests   *prometheus.CounterVec
	claimWaits *prometheus.CounterVec
	compute    prometheus.Histogram
	bytes      *prometheus.CounterVec
}

// storeInfoTimeout bounds how long a scrape waits for the store's size.
const storeInfoTimeout = 2 * time.Second

// newCacheMetrics registers the metrics of instance in reg; the size of
// the packs' store is read from packs at each scrape.
func newCacheMetrics(reg prometheus.Registerer, instance string, packs jetstream.Stream) (*cacheMetrics, error) {
	reg = prometheus.WrapRegistererWith(prometheus.Labels{"worker": instance}, reg)
	m := &cacheMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metrics.Namespace, Subsystem: "deltacache", Name: "requests_total",
			Help: "Delta requests answered (the answer published), by tree and outcome: stored (a cache hit), chain (stored packs chained), computed.",
		}, []string{"tree", "outcome"}),
		claimWaits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metrics.Namespace, Subsystem: "deltacache", Name: "claim_waits_total",
			Help: "Deliveries of a request put back because another instance was computing the same delta (each retry counts).",
		}, []string{"tree"}),
		compute: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: metrics.Namespace, Subsystem: "deltacache", Name: "compute_duration_seconds",
			Help:    "Time to compute and store one delta pack.",
			Buckets: prometheus.ExponentialBuckets(0.05, 2, 14), // 50 ms … 7 min
		}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metrics.Namespace, Subsystem: "deltacache", Name: "computed_bytes_total",
			Help: "Bytes of the delta packs computed, by tree.",
		}, []string{"tree"}),
	}
	stored := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: metrics.Namespace, Subsystem: "deltacache", Name: "store_bytes",
		Help: "Bytes the packs' object store holds (NaN when the server did not answer).",
	}, func() float64 {
		ctx, cancel := context.WithTimeout(context.Background(), storeInfoTimeout)
		defer cancel()
		info, err := packs.Info(ctx)
		if err != nil {
			return math.NaN()
		}
		return float64(info.State.Bytes)
	})
	for _, c := range []prometheus.Collector{m.requests, m.claimWaits, m.compute, m.bytes, stored} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// answered counts a request answered with outcome once its answer was
// published (err nil), and returns err: a request whose answer failed is
// retried and counted then.
func (m *cacheMetrics) answered(tree, outcome string, err error) error {
	if err == nil {
		m.requests.WithLabelValues(tree, outcome).Inc()
	}
	return err
}

// computed records a delta computed and stored.
func (m *cacheMetrics) computed(tree string, size int64, took time.Duration) {
	m.compute.Observe(took.Seconds())
	m.bytes.WithLabelValues(tree).Add(float64(size))
}
