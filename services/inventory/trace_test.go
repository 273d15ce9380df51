package inventory_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/pulpdist/pulpdist/libs/bus"
	"github.com/pulpdist/pulpdist/libs/inventoryapi"
)

// traceOf is the trace context m carries in its headers.
func traceOf(m jetstream.Msg) trace.SpanContext {
	return trace.SpanContextFromContext(bus.ExtractTrace(context.Background(), m.Headers()))
}

// TestSyncRequestCarriesItsTrace: a REST request is a server span named
// by its route that continues the caller's traceparent; the trigger and
// the sync.requested event it makes leave the outbox within that trace
// (a producer span under the request's, its context in the headers, the
// event's own traceparent too). A malformed traceparent is ignored: the
// request starts a trace of its own, and is served all the same.
func TestSyncRequestCarriesItsTrace(t *testing.T) {
	spans := tracetest.NewSpanRecorder()
	prev := otel.GetTracerProvider()
	otel.SetTracerProvider(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans)))
	t.Cleanup(func() { otel.SetTracerProvider(prev) })
	h := start(t, databases[0].url(t))
	seed(t, h)
	_, err := h.client.Subscribe(t.Context(), inventoryapi.Subscription{Site: "replica-a", Tree: "docs"})
	mustOK(t, err)
	triggers := consumer(t, h.js, bus.StreamTriggers, bus.TriggerSubject("docs"))
	requested := consumer(t, h.js, bus.StreamEvents, bus.EventFilter(bus.EntitySync, bus.ActionRequested))

	const traceID, parentID = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	code, _, body := h.send(t, "POST", "/api/v1/subscriptions/replica-a/docs/sync", "",
		http.Header{"Traceparent": {"00-" + traceID + "-" + parentID + "-01"}, "Tracestate": {"vendor=1"}})
	if code != http.StatusAccepted {
		t.Fatalf("sync: %d %s", code, body)
	}
	trig := next(t, triggers)
	got := traceOf(trig)
	if got.TraceID().String() != traceID || got.TraceState().String() != "vendor=1" {
		t.Fatalf("trigger's trace context %s %q, want trace %s, vendor=1", got.TraceID(), got.TraceState().String(), traceID)
	}
	req := next(t, requested)
	var ce event.Event
	mustOK(t, ce.UnmarshalJSON(req.Data()))
	ext, _ := ce.Extensions()["traceparent"].(string)
	if sc := traceOf(req); sc.TraceID().String() != traceID || len(ext) != 55 || ext[3:35] != traceID {
		t.Fatalf("sync.requested in trace %s, its traceparent %q; want %s", sc.TraceID(), ext, traceID)
	}

	// The spans: the request's continues the caller's, the trigger's
	// publication is under it, and the trigger names that publication.
	var server, publish sdktrace.ReadOnlySpan
	for _, s := range spans.Ended() {
		switch {
		case s.Name() == "POST /api/v1/subscriptions/{site}/{tree}/sync" && s.SpanContext().TraceID().String() == traceID:
			server = s
		case s.Name() == "publish "+bus.TriggerSubject("docs") && s.SpanContext().TraceID().String() == traceID:
			publish = s
		}
	}
	if server == nil || server.SpanKind() != trace.SpanKindServer || server.Parent().SpanID().String() != parentID || !server.Parent().IsRemote() {
		t.Fatalf("server span %v: want the route's, a child of the caller's %s", server, parentID)
	}
	if publish == nil || publish.SpanKind() != trace.SpanKindProducer || publish.Parent().SpanID() != server.SpanContext().SpanID() ||
		got.SpanID() != publish.SpanContext().SpanID() {
		t.Fatalf("trigger published by span %v, the trigger names %s; want a producer under the request's span %s", publish, got.SpanID(), server.SpanContext().SpanID())
	}

	// A traceparent that does not parse: a new trace, the request served.
	for _, bad := range []string{"garbage", "00-" + traceID + "-0000000000000000-01", "00-00000000000000000000000000000000-" + parentID + "-01", "ff-" + traceID + "-" + parentID + "-01"} {
		code, _, body = h.send(t, "POST", "/api/v1/trees/docs/sync", "", http.Header{"Traceparent": {bad}})
		if code != http.StatusAccepted {
			t.Fatalf("sync with traceparent %q: %d %s", bad, code, body)
		}
		if sc := traceOf(next(t, triggers)); !sc.IsValid() || sc.TraceID().String() == traceID {
			t.Errorf("traceparent %q: the trigger is in trace %s, want a new one", bad, sc.TraceID())
		}
	}
}
