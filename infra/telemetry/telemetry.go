// Package telemetry is the OpenTelemetry tracing the parts of the pipeline
// share: where their spans start, and how a span context travels with an
// event, in its CloudEvents distributed-tracing extension (traceparent,
// tracestate: W3C Trace Context) and with an outbox message, so that one
// order is one trace from the HTTP request that placed it to the function
// that ships it, over HTTP, Kafka and the relay.
//
// It uses only the OpenTelemetry API. infra/otlp builds the SDK from the
// OTEL_* variables; until a provider is installed with Use, Start starts
// nothing and returns the context as it was, and nothing is injected into
// an event (no span context is valid): tracing then costs an atomic load
// per span that would have been.
package telemetry

import (
	"context"
	"sync/atomic"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/cupcake-factory/cupcake-factory/domain"
)

// ScopeName is the instrumentation scope of every span here.
const ScopeName = "github.com/cupcake-factory/cupcake-factory"

// The CloudEvents distributed-tracing extension's attributes.
const (
	ExtTraceParent = "traceparent"
	ExtTraceState  = "tracestate"
)

// Attributes spans carry (CloudEvents semantic conventions, plus the
// function and the order).
const (
	AttrFunction  = attribute.Key("cupcake.function")
	AttrOrder     = attribute.Key("cupcake.order_id")
	AttrEventType = attribute.Key("cloudevents.event_type")
	AttrEventID   = attribute.Key("cloudevents.event_id")
)

type installed struct {
	provider trace.TracerProvider
	tracer   trace.Tracer
}

var current atomic.Pointer[installed]

// Use makes spans start on tp from now on (nil: no spans). The returned
// function puts back what was there before, unless another Use came since.
func Use(tp trace.TracerProvider) (restore func()) {
	var next *installed
	if tp != nil {
		next = &installed{provider: tp, tracer: tp.Tracer(ScopeName)}
	}
	prev := current.Swap(next)
	return func() { current.CompareAndSwap(next, prev) }
}

// Enabled reports whether a provider is installed.
func Enabled() bool { return current.Load() != nil }

var noopSpan trace.Span = noop.Span{}

// Start starts a span of the given kind as a child of the span in ctx. With
// no provider installed it returns ctx unchanged and a span that records
// nothing. Set attributes only when span.IsRecording().
func Start(ctx context.Context, name string, kind trace.SpanKind) (context.Context, trace.Span) {
	in := current.Load()
	if in == nil {
		return ctx, noopSpan
	}
	return in.tracer.Start(ctx, name, trace.WithSpanKind(kind))
}

// End ends span, marking it failed if err is one (a refusal, a duplicate
// or a not-found is an answer, not a failure: recorded as an event only).
func End(span trace.Span, err error) {
	if err != nil && span.IsRecording() {
		span.RecordError(err)
		if !domain.Permanent(err) {
			span.SetStatus(codes.Error, err.Error())
		}
	}
	span.End()
}

var traceContext propagation.TraceContext

// eventCarrier reads and writes the tracing extension of an event.
type eventCarrier struct{ e *cloudevents.Event }

func (c eventCarrier) Get(key string) string {
	v, _ := c.e.Extensions()[key].(string)
	return v
}

func (c eventCarrier) Set(key, value string) { c.e.SetExtension(key, value) }

func (c eventCarrier) Keys() []string { return []string{ExtTraceParent, ExtTraceState} }

// Inject sets e's traceparent and tracestate to the span context in ctx;
// it does nothing if that is not valid (no tracing: the event is unchanged).
func Inject(ctx context.Context, e *cloudevents.Event) {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return
	}
	traceContext.Inject(ctx, eventCarrier{e})
}

// Extract returns ctx with the remote span context e's tracing extension
// carries as its parent, or ctx as it is if e carries none (or tracing is
// off). A span about sending e starts there (the relay's span that is
// delivering it).
func Extract(ctx context.Context, e cloudevents.Event) context.Context {
	if current.Load() == nil {
		return ctx
	}
	if _, ok := e.Extensions()[ExtTraceParent]; !ok {
		return ctx
	}
	return traceContext.Extract(ctx, eventCarrier{&e})
}

// Parent is the context a span about handling e starts in: ctx if it holds
// a span already (the relay's in-process, the Kafka consumer's, the HTTP
// request's), else the one e carries.
func Parent(ctx context.Context, e cloudevents.Event) context.Context {
	if trace.SpanContextFromContext(ctx).IsValid() {
		return ctx
	}
	return Extract(ctx, e)
}

// InjectIfAbsent is Inject for an event from outside: a traceparent it
// came with is kept.
func InjectIfAbsent(ctx context.Context, e *cloudevents.Event) {
	if _, ok := e.Extensions()[ExtTraceParent]; ok {
		return
	}
	Inject(ctx, e)
}

// pairCarrier is a TextMapCarrier over two strings.
type pairCarrier struct{ parent, state *string }

func (c pairCarrier) Get(key string) string {
	switch key {
	case ExtTraceParent:
		return *c.parent
	case ExtTraceState:
		return *c.state
	}
	return ""
}

func (c pairCarrier) Set(key, value string) {
	switch key {
	case ExtTraceParent:
		*c.parent = value
	case ExtTraceState:
		*c.state = value
	}
}

func (c pairCarrier) Keys() []string { return []string{ExtTraceParent, ExtTraceState} }

// Encode returns the traceparent and tracestate of the span context in
// ctx, "" if it is not valid.
func Encode(ctx context.Context) (traceparent, tracestate string) {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return "", ""
	}
	traceContext.Inject(ctx, pairCarrier{&traceparent, &tracestate})
	return traceparent, tracestate
}

// Decode returns ctx with the remote span context of traceparent and
// tracestate as its parent (ctx as it is if traceparent is "" or tracing
// is off).
func Decode(ctx context.Context, traceparent, tracestate string) context.Context {
	if traceparent == "" || current.Load() == nil {
		return ctx
	}
	return traceContext.Extract(ctx, pairCarrier{&traceparent, &tracestate})
}

// HTTP returns ctx with the parent an HTTP request's traceparent header
// names, if tracing is on and it has one.
func HTTP(ctx context.Context, h propagation.HeaderCarrier) context.Context {
	if current.Load() == nil || len(h["Traceparent"]) == 0 {
		return ctx
	}
	return traceContext.Extract(ctx, h)
}
