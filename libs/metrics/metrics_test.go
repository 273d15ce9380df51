package metrics_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/pulpdist/pulpdist/libs/bus"
	"github.com/pulpdist/pulpdist/libs/metrics"
	"github.com/pulpdist/pulpdist/libs/natstest"
)

// TestConsumersReportQueueDepths has a consumer fall behind on a real
// server: the collector reports what is pending and what awaits an ack;
// a consumer that went away costs its own metrics, not the scrape.
func TestConsumersReportQueueDepths(t *testing.T) {
	ctx := t.Context()
	nc, js, err := bus.Connect(ctx, natstest.Start(t), "metrics-test", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "WORK", Subjects: []string{"work.>"}}); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		if _, err := js.Publish(ctx, "work.x", []byte("job")); err != nil {
			t.Fatal(err)
		}
	}
	busy, err := js.CreateOrUpdateConsumer(ctx, "WORK", bus.ConsumerConfig("busy", "work.>"))
	if err != nil {
		t.Fatal(err)
	}
	gone, err := js.CreateOrUpdateConsumer(ctx, "WORK", bus.ConsumerConfig("gone", "work.>"))
	if err != nil {
		t.Fatal(err)
	}
	// Two delivered, not acked: three pending, two awaiting their ack.
	batch, err := busy.Fetch(2)
	if err != nil {
		t.Fatal(err)
	}
	for range batch.Messages() {
	}
	if err := js.DeleteConsumer(ctx, "WORK", "gone"); err != nil {
		t.Fatal(err)
	}

	reg := metrics.NewRegistry()
	reg.MustRegister(metrics.Consumers("worker", []jetstream.Consumer{busy, gone}))
	srv := httptest.NewServer(handler(reg))
	defer srv.Close()
	body := get(ctx, t, srv.URL+metrics.Path)
	for _, want := range []string{
		`pulpdist_consumer_pending_messages{consumer="busy",service="worker",stream="WORK"} 3`,
		`pulpdist_consumer_ack_pending_messages{consumer="busy",service="worker",stream="WORK"} 2`,
		`pulpdist_consumer_redelivered_messages{consumer="busy",service="worker",stream="WORK"} 0`,
		"go_goroutines ", "process_cpu_seconds_total ",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q:\n%s", want, body)
		}
	}
	if strings.Contains(body, `consumer="gone"`) {
		t.Errorf("a deleted consumer reported:\n%s", body)
	}
}

// TestHTTPCountsByRoute counts requests by the pattern that served them,
// with the status written, and unmatched paths under one label.
func TestHTTPCountsByRoute(t *testing.T) {
	reg := metrics.NewRegistry()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /things/{name}", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("name") == "missing" {
			http.Error(w, "no such thing", http.StatusNotFound)
			return
		}
		_, _ = w.Write([]byte("thing")) // the test reads the code, not the body
	})
	h, err := metrics.HTTP(reg, "test", mux)
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/things/a", "/things/b", "/things/missing", "/elsewhere"} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequestWithContext(t.Context(), http.MethodGet, path, nil))
	}
	want := `
# HELP pulpdist_http_requests_total HTTP requests answered, by route pattern and status code.
# TYPE pulpdist_http_requests_total counter
pulpdist_http_requests_total{code="200",route="GET /things/{name}",service="test"} 2
pulpdist_http_requests_total{code="404",route="GET /things/{name}",service="test"} 1
pulpdist_http_requests_total{code="404",route="unmatched",service="test"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "pulpdist_http_requests_total"); err != nil {
		t.Fatal(err)
	}
	// The same metrics cannot be registered twice in one registry.
	if _, err := metrics.HTTP(reg, "test", mux); err == nil {
		t.Fatal("second registration accepted")
	}
}

func handler(reg *prometheus.Registry) http.Handler {
	mux := http.NewServeMux()
	metrics.Register(mux, reg)
	return mux
}

func get(ctx context.Context, t *testing.T, url string) string {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s %v", url, resp.Status, err)
	}
	return string(body)
}
