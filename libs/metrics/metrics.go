// Package metrics is how pulpdist services export Prometheus metrics: one
// registry per process (shared by the services `pulpdist dev` runs in one
// process), served on /metrics beside /healthz and /readyz, with the Go
// runtime and process collectors, a build-info gauge per service, the
// queue depths of the service's durable consumers, and the HTTP requests
// it answered. Every metric is named pulpdist_… (docs/operations.md lists
// them); a service's own metrics are defined beside the code they count.
package metrics

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Namespace prefixes every pulpdist metric.
const Namespace = "pulpdist"

// Path is where a service serves its metrics.
const Path = "/metrics"

// NewRegistry returns a registry with the Go runtime and process
// collectors: one per process.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return reg
}

// Or returns reg, or a new registry (NewRegistry) when reg is nil.
func Or(reg *prometheus.Registry) *prometheus.Registry {
	if reg != nil {
		return reg
	}
	return NewRegistry()
}

// Register serves g's metrics on GET /metrics of mux, in the Prometheus
// text or OpenMetrics format as the scraper asks. A collector that fails
// (a consumer's info not answered in time) costs its own metrics, not the
// scrape.
func Register(mux *http.ServeMux, g prometheus.Gatherer) {
	mux.Handle("GET "+Path, promhttp.HandlerFor(g, promhttp.HandlerOpts{
		ErrorHandling:     promhttp.ContinueOnError,
		EnableOpenMetrics: true,
	}))
}

// BuildInfo registers pulpdist_build_info{service,version} = 1, so a
// dashboard can say which version of each service runs.
func BuildInfo(reg prometheus.Registerer, service, version string) error {
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace:   Namespace,
		Name:        "build_info",
		Help:        "Always 1; the labels say which service and version run.",
		ConstLabels: prometheus.Labels{"service": service, "version": version},
	})
	g.Set(1)
	return reg.Register(g)
}

// consumerInfoTimeout bounds how long a scrape waits for one consumer's
// info from the server.
const consumerInfoTimeout = 2 * time.Second

// consumers reports the queue depths of durable consumers, asked of the
// server at each scrape.
type consumers struct {
	list                                   []jetstream.Consumer
	pending, ackPending, redelivered, wait *prometheus.Desc
}

// Consumers returns a collector of the queue depths of list, labelled
// with the service, stream and consumer:
// pulpdist_consumer_pending_messages (stored, not yet delivered),
// pulpdist_consumer_ack_pending_messages (delivered, not yet acked),
// pulpdist_consumer_redelivered_messages (delivered more than once, not
// yet acked) and pulpdist_consumer_waiting_pulls.
func Consumers(service string, list []jetstream.Consumer) prometheus.Collector {
	labels := []string{"stream", "consumer"}
	c := prometheus.Labels{"service": service}
	return &consumers{
		list: list,
		pending: prometheus.NewDesc(Namespace+"_consumer_pending_messages",
			"Messages stored in the stream for the consumer and not yet delivered.", labels, c),
		ackPending: prometheus.NewDesc(Namespace+"_consumer_ack_pending_messages",
			"Messages delivered to the consumer and not yet acknowledged.", labels, c),
		redelivered: prometheus.NewDesc(Namespace+"_consumer_redelivered_messages",
			"Messages delivered more than once and not yet acknowledged.", labels, c),
		wait: prometheus.NewDesc(Namespace+"_consumer_waiting_pulls",
			"Pull requests of the consumer waiting for messages.", labels, c),
	}
}

func (c *consumers) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.pending
	ch <- c.ackPending
	ch <- c.redelivered
	ch <- c.wait
}

func (c *consumers) Collect(ch chan<- prometheus.Metric) {
	for _, cons := range c.list {
		ctx, cancel := context.WithTimeout(context.Background(), consumerInfoTimeout)
		info, err := cons.Info(ctx)
		cancel()
		if err != nil {
			ch <- prometheus.NewInvalidMetric(c.pending, err)
			continue
		}
		labels := []string{info.Stream, info.Name}
		ch <- prometheus.MustNewConstMetric(c.pending, prometheus.GaugeValue, float64(info.NumPending), labels...)
		ch <- prometheus.MustNewConstMetric(c.ackPending, prometheus.GaugeValue, float64(info.NumAckPending), labels...)
		ch <- prometheus.MustNewConstMetric(c.redelivered, prometheus.GaugeValue, float64(info.NumRedelivered), labels...)
		ch <- prometheus.MustNewConstMetric(c.wait, prometheus.GaugeValue, float64(info.NumWaiting), labels...)
	}
}

// HTTP counts and times the requests h answers, by the route pattern of
// the ServeMux that served them ("unmatched" for none):
// pulpdist_http_requests_total{service,route,code} and
// pulpdist_http_request_duration_seconds{service,route}.
func HTTP(reg prometheus.Registerer, service string, h http.Handler) (http.Handler, error) {
	c := prometheus.Labels{"service": service}
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "http_requests_total", ConstLabels: c,
		Help: "HTTP requests answered, by route pattern and status code.",
	}, []string{"route", "code"})
	duration := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: Namespace, Name: "http_request_duration_seconds", ConstLabels: c,
		Help:    "Time to answer an HTTP request, by route pattern.",
		Buckets: prometheus.DefBuckets,
	}, []string{"route"})
	for _, col := range []prometheus.Collector{requests, duration} {
		if err := reg.Register(col); err != nil {
			return nil, err
		}
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
		h.ServeHTTP(sw, r)
		route := r.Pattern // set by the ServeMux on r
		if route == "" {
			route = "unmatched"
		}
		requests.WithLabelValues(route, strconv.Itoa(sw.code)).Inc()
		duration.WithLabelValues(route).Observe(time.Since(start).Seconds())
	}), nil
}

// statusWriter remembers the status code written.
type statusWriter struct {
	http.ResponseWriter
	code        int
	wroteHeader bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wroteHeader {
		w.code, w.wroteHeader = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the writer's Flush.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
