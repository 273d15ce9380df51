package bus_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/pulpdist/pulpdist/libs/bus"
)

func TestHeaderCarrierKeepsKeys(t *testing.T) {
	h := nats.Header{}
	c := bus.HeaderCarrier(h)
	c.Set("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
	if got := h["traceparent"]; len(got) != 1 {
		t.Fatalf("header %v: want the lower-case key as written", h)
	}
	if c.Get("traceparent") == "" || c.Get("Traceparent") != "" || len(c.Keys()) != 1 {
		t.Errorf("carrier %v", c.Keys())
	}
}

// TestTraceCrossesTheBus: a message published within a span is handled
// within a span of the same trace, and what the handler publishes — a work
// message, an event — carries the trace on.
func TestTraceCrossesTheBus(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	before := otel.GetTracerProvider()
	otel.SetTracerProvider(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)))
	defer otel.SetTracerProvider(before)

	js := connect(t)
	ctx := t.Context()
	root, span := otel.Tracer("test").Start(ctx, "trigger")
	if err := bus.Publish(root, js, bus.TriggerSubject("docs"), "t1", bus.Trigger{V: 1, TriggerID: "t1", Tree: "docs"}); err != nil {
		t.Fatal(err)
	}
	span.End()
	want := span.SpanContext().TraceID()

	cons, err := js.CreateOrUpdateConsumer(ctx, bus.StreamTriggers, bus.ConsumerConfig("test", bus.TriggerSubject("docs")))
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan trace.SpanContext, 1)
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		_ = bus.Consume(cctx, cons, slog.New(slog.DiscardHandler), func(ctx context.Context, _ jetstream.Msg) error {
			if err := bus.NewEvents(js, "/pulpdist/test").Publish(ctx, bus.EntitySync, bus.ActionRequested, bus.About{Tree: "docs"},
				bus.SyncRequested{TriggerID: "t1", Tree: "docs", Reason: "manual"}); err != nil {
				return err
			}
			got <- trace.SpanContextFromContext(ctx)
			return nil
		})
	}()
	var handled trace.SpanContext
	select {
	case handled = <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("trigger not handled")
	}
	if handled.TraceID() != want || handled.SpanID() == span.SpanContext().SpanID() {
		t.Fatalf("handler span %s/%s, want a new span of trace %s", handled.TraceID(), handled.SpanID(), want)
	}

	st, err := js.Stream(ctx, bus.StreamEvents)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := st.GetLastMsgForSubject(ctx, bus.EventSubject(bus.EntitySync, bus.ActionRequested, bus.About{Tree: "docs"}))
	if err != nil {
		t.Fatal(err)
	}
	var ev struct {
		Traceparent string `json:"traceparent"`
	}
	if err := json.Unmarshal(raw.Data, &ev); err != nil {
		t.Fatal(err)
	}
	header := raw.Header.Get("traceparent")
	if len(ev.Traceparent) != 55 || ev.Traceparent[3:35] != want.String() || header[3:35] != want.String() {
		t.Fatalf("event traceparent %q, header %q: want trace %s", ev.Traceparent, header, want)
	}
	// The recorder saw the producer and consumer spans of the same trace.
	kinds := map[trace.SpanKind]int{}
	for _, s := range rec.Ended() {
		if s.SpanContext().TraceID() == want {
			kinds[s.SpanKind()]++
		}
	}
	if kinds[trace.SpanKindProducer] < 2 || kinds[trace.SpanKindConsumer] < 1 {
		t.Errorf("spans of the trace by kind: %v", kinds)
	}
}
