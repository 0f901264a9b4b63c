package relay_test

import (
	"context"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/cupcake-factory/cupcake-factory/domain"
	"github.com/cupcake-factory/cupcake-factory/events"
	"github.com/cupcake-factory/cupcake-factory/functions/internal/fntest"
	"github.com/cupcake-factory/cupcake-factory/functions/relay"
	"github.com/cupcake-factory/cupcake-factory/infra/telemetry"
)

func TestAnEventEmittedInASpanIsDeliveredLaterInTheSameTrace(t *testing.T) {
	pub := &capture{}
	exp := tracetest.NewInMemoryExporter()
	t.Cleanup(telemetry.Use(sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))))
	s := fntest.Store(t)
	fntest.OrderIn(t, s, "o-1", events.StatusApproved)

	// A function emits two events in its span; its write stores them.
	ctx, emitter := telemetry.Start(context.Background(), "emitter", trace.SpanKindInternal)
	_, err := telemetry.Store(s).UpdateOrder(ctx, "o-1", func(o *domain.Order) error {
		for _, by := range []string{"a", "b"} {
			if err := o.Emit(domain.NewEvent(events.TypeMixed, "test", events.KitchenStep{OrderID: "o-1", By: by})); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	emitter.End()
	for _, m := range fntest.Order(t, s, "o-1").Outbox {
		if m.Type != "" && m.TraceParent == "" {
			t.Fatalf("outbox message %s was stored without the emitter's trace context", m.ID)
		}
	}

	// Later, with nothing in the context (the relay's background round).
	if _, err := relay.New(s, pub, quiet).Deliver(context.Background(), fntest.Order(t, s, "o-1")); err != nil {
		t.Fatal(err)
	}
	relays := map[trace.SpanID]tracetest.SpanStub{}
	for _, span := range exp.GetSpans() {
		if span.Name == "relay "+events.TypeMixed {
			relays[span.SpanContext.SpanID()] = span
		}
	}
	var mixed int
	for _, e := range pub.got() {
		if e.Type() != events.TypeMixed {
			continue
		}
		mixed++
		sc := trace.SpanContextFromContext(telemetry.Extract(context.Background(), e))
		if sc.TraceID() != emitter.SpanContext().TraceID() {
			t.Errorf("event %s delivered in trace %s, want the emitter's %s", e.ID(), sc.TraceID(), emitter.SpanContext().TraceID())
		}
		span, ok := relays[sc.SpanID()]
		switch {
		case !ok:
			t.Errorf("event %s carries span %s, not a relay span", e.ID(), sc.SpanID())
		case span.Parent.SpanID() != emitter.SpanContext().SpanID():
			t.Errorf("relay span of %s has parent %s, want the emitter %s", e.ID(), span.Parent.SpanID(), emitter.SpanContext().SpanID())
		}
	}
	if mixed != 2 {
		t.Errorf("delivered %d mixed events, want 2", mixed)
	}
}

func TestWithoutTracingNothingIsStoredOrInjected(t *testing.T) {
	t.Cleanup(telemetry.Use(nil))
	s := fntest.Store(t)
	fntest.OrderIn(t, s, "o-1", events.StatusApproved)
	_, err := telemetry.Store(s).UpdateOrder(context.Background(), "o-1", func(o *domain.Order) error {
		return o.Emit(domain.NewEvent(events.TypeMixed, "test", events.KitchenStep{OrderID: "o-1", By: "a"}))
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range fntest.Order(t, s, "o-1").Outbox {
		if m.TraceParent != "" {
			t.Errorf("message %s stored with trace context %q", m.ID, m.TraceParent)
		}
	}
	pub := &capture{}
	if _, err := relay.New(s, pub, quiet).Deliver(context.Background(), fntest.Order(t, s, "o-1")); err != nil {
		t.Fatal(err)
	}
	got := pub.got()
	if len(got) != 1 || got[0].Type() != events.TypeMixed {
		t.Fatalf("delivered %d events, want the one mixed event", len(got))
	}
	if _, ok := got[0].Extensions()[telemetry.ExtTraceParent]; ok {
		t.Errorf("event %s %s delivered with a traceparent", got[0].Type(), got[0].ID())
	}
}
