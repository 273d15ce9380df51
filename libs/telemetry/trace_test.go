package telemetry_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"go.opentelemetry.io/otel"

	"github.com/pulpdist/pulpdist/libs/telemetry"
)

func TestTracingEnabled(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		want bool
	}{
		{map[string]string{}, false},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, true},
		{map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, true},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "OTEL_SDK_DISABLED": "TRUE"}, false},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "OTEL_TRACES_EXPORTER": "none"}, false},
	} {
		if got := telemetry.TracingEnabled(func(k string) string { return tc.env[k] }); got != tc.want {
			t.Errorf("%v: %v, want %v", tc.env, got, tc.want)
		}
	}
}

// TestSetupTracingExports sends a span to an OTLP/HTTP endpoint named by
// the standard variable.
func TestSetupTracingExports(t *testing.T) {
	var posts atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Path == "/v1/traces" && r.Header.Get("Content-Type") == "application/x-protobuf" {
			posts.Add(1)
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	before := otel.GetTracerProvider()
	defer otel.SetTracerProvider(before)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", srv.URL)
	log := slog.New(slog.DiscardHandler)
	stop, err := telemetry.SetupTracing(t.Context(), "pulpdist-test", "dev", log)
	if err != nil {
		t.Fatal(err)
	}
	_, span := otel.Tracer("test").Start(context.Background(), "work")
	span.End()
	if err := stop(); err != nil { // flushes
		t.Fatal(err)
	}
	if posts.Load() == 0 {
		t.Fatal("no span exported to OTEL_EXPORTER_OTLP_ENDPOINT")
	}

	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
	if _, err := telemetry.SetupTracing(t.Context(), "pulpdist-test", "dev", log); err == nil {
		t.Error("grpc protocol accepted")
	}
	// Nothing asked for: nothing exported, and nothing to fail.
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "")
	stop, err = telemetry.SetupTracing(t.Context(), "pulpdist-test", "dev", log)
	if err != nil || stop() != nil {
		t.Errorf("tracing off: %v", err)
	}
}
