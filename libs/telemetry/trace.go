package telemetry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// TracingEnabled reports whether the environment asks for traces to be
// exported: the standard OTEL_EXPORTER_OTLP_ENDPOINT or
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set, and neither
// OTEL_SDK_DISABLED=true nor OTEL_TRACES_EXPORTER=none says otherwise.
func TracingEnabled(getenv func(string) string) bool {
	if strings.EqualFold(getenv("OTEL_SDK_DISABLED"), "true") || getenv("OTEL_TRACES_EXPORTER") == "none" {
		return false
	}
	return getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
}

// Propagator writes and reads trace context: W3C Trace Context and
// Baggage. The bus uses it for every message whatever the global
// propagator is; SetupTracing makes it the global one for HTTP.
var Propagator = propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})

// SetupTracing makes the global tracer provider export the spans of this
// process over OTLP/HTTP when the environment asks for it
// (TracingEnabled; endpoint, headers, timeout and TLS from the standard
// OTEL_EXPORTER_OTLP_* variables, the resource from OTEL_SERVICE_NAME
// and OTEL_RESOURCE_ATTRIBUTES, service.name defaulting to service). It
// always installs the W3C Trace Context propagator, so HTTP and bus
// messages pass a trace on even from a process that exports nothing.
// The returned stop flushes the spans still buffered, within
// stopTimeout, and logs to log what it could not export.
func SetupTracing(ctx context.Context, service, version string, log *slog.Logger) (stop func() error, err error) {
	otel.SetTextMapPropagator(Propagator)
	if !TracingEnabled(os.Getenv) {
		return func() error { return nil }, nil
	}
	if p := os.Getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"); p == "" && os.Getenv("OTEL_EXPORTER_OTLP_PROTOCOL") == "grpc" || p == "grpc" {
		return nil, errors.New("OTEL_EXPORTER_OTLP_PROTOCOL grpc: pulpdist exports traces over http/protobuf (the collector's port 4318)")
	}
	exp, err := otlptracehttp.New(ctx)
	if err != nil {
		return nil, fmt.Errorf("otlp trace exporter: %w", err)
	}
	res, err := resource.New(ctx,
		resource.WithAttributes(attribute.String("service.name", service), attribute.String("service.version", version)),
		resource.WithFromEnv(), resource.WithHost(), resource.WithProcessPID())
	if err != nil {
		return nil, fmt.Errorf("trace resource: %w", err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp, sdktrace.WithBatchTimeout(2*time.Second)), sdktrace.WithResource(res))
	otel.SetTracerProvider(tp)
	return func() error {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), stopTimeout)
		defer cancel()
		err := tp.Shutdown(sctx)
		if err != nil {
			log.Warn("traces not all exported", "err", err)
		}
		return err
	}, nil
}

// stopTimeout bounds how long a stopping program waits for its last spans
// to be exported.
const stopTimeout = 5 * time.Second

// StartSpan starts a span of a pulpdist component (tracer
// "github.com/pulpdist/pulpdist/<component>") on the global tracer
// provider; end records err, when not nil, and ends it:
//
//	ctx, end := telemetry.StartSpan(ctx, "siteagent", "fetch", trace.WithAttributes(attribute.String("pulpdist.pack", name)))
//	defer func() { end(err) }()
func StartSpan(ctx context.Context, component, name string, opts ...trace.SpanStartOption) (context.Context, func(error)) {
	ctx, span := otel.Tracer("github.com/pulpdist/pulpdist/"+component).Start(ctx, name, opts...)
	return ctx, func(err error) {
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, err.Error())
		}
		span.End()
	}
}
