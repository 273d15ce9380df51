package bus

import (
	"context"
	"slices"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/pulpdist/pulpdist/libs/telemetry"
)

// Trace context travels in NATS headers as W3C Trace Context
// (traceparent, tracestate), and in events also as the CloudEvents
// distributed-tracing extension: one sync is one trace from the trigger to
// the last site, whatever the process. The spans go to the global tracer
// provider (telemetry.SetupTracing); the propagation does not depend on
// it: a service that exports nothing still passes on the context it got.

// HeaderCarrier lets a propagator read and write nats.Header. Keys are
// kept as written (lower-case traceparent): NATS header keys are
// case-sensitive and nats.Header's Set would canonicalise them.
type HeaderCarrier nats.Header

// Get implements propagation.TextMapCarrier.
func (c HeaderCarrier) Get(key string) string {
	if v := c[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// Set implements propagation.TextMapCarrier.
func (c HeaderCarrier) Set(key, value string) { c[key] = []string{value} }

// Keys implements propagation.TextMapCarrier.
func (c HeaderCarrier) Keys() []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// InjectTrace writes the trace context of ctx into h.
func InjectTrace(ctx context.Context, h nats.Header) {
	telemetry.Propagator.Inject(ctx, HeaderCarrier(h))
}

// ExtractTrace returns ctx with the trace context found in h (ctx itself
// when there is none).
func ExtractTrace(ctx context.Context, h nats.Header) context.Context {
	if h == nil {
		return ctx
	}
	return telemetry.Propagator.Extract(ctx, HeaderCarrier(h))
}

// startSpan starts a span of the bus on the global tracer provider (its
// tracer "github.com/pulpdist/pulpdist/libs/bus"); end is as for
// telemetry.StartSpan.
func startSpan(ctx context.Context, name string, kind trace.SpanKind, subject string, attrs ...attribute.KeyValue) (context.Context, func(error)) {
	return telemetry.StartSpan(ctx, "libs/bus", name, trace.WithSpanKind(kind),
		trace.WithAttributes(append(attrs, attribute.String("messaging.system", "nats"), attribute.String("messaging.destination.name", subject))...))
}
