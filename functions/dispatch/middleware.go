package dispatch

import (
	"context"
	"log/slog"
	"runtime/debug"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"go.opentelemetry.io/otel/trace"

	"github.com/cupcake-factory/cupcake-factory/domain"
	"github.com/cupcake-factory/cupcake-factory/events"
	"github.com/cupcake-factory/cupcake-factory/infra/telemetry"
)

// Recover turns a handler's panic into an internal error.
func Recover(log *slog.Logger) Middleware {
	return func(next Handler) Handler {
		return func(ctx context.Context, e cloudevents.Event) (o domain.Order, err error) {
			defer func() {
				if p := recover(); p != nil {
					log.ErrorContext(ctx, "handler panicked", "type", e.Type(), "id", e.ID(), "panic", p, "stack", string(debug.Stack()))
					err = domain.Errorf(domain.KindInternal, "handler panicked: %v", p)
				}
			}()
			return next(ctx, e)
		}
	}
}

// Log logs each handled event at debug level and each failure at warn or
// error level, with how long it took.
func Log(log *slog.Logger) Middleware {
	return func(next Handler) Handler {
		return func(ctx context.Context, e cloudevents.Event) (domain.Order, error) {
			start := time.Now()
			o, err := next(ctx, e)
			attrs := []any{"type", e.Type(), "id", e.ID(), "subject", e.Subject(), "took", time.Since(start)}
			switch {
			case err == nil:
				log.DebugContext(ctx, "handled event", attrs...)
			case domain.Permanent(err):
				log.WarnContext(ctx, "refused event", append(attrs, "error", err)...)
			default:
				log.ErrorContext(ctx, "event failed", append(attrs, "error", err)...)
			}
			return o, err
		}
	}
}

// EventObserver records each handled event: the function, the event's
// type, the outcome and how long the handler took (infra/metrics).
type EventObserver interface {
	ObserveEvent(function, typ, outcome string, took time.Duration)
}

// Outcomes of handling an event, as Count reports them.
const (
	OutcomeHandled = "handled"
	OutcomeRefused = "refused"
	OutcomeFailed  = "failed"
)

// Outcome classifies a handler's error: handled (nil), refused (a
// permanent error: invalid, not found, does not fit the state) or failed.
func Outcome(err error) string {
	switch {
	case err == nil:
		return OutcomeHandled
	case domain.Permanent(err):
		return OutcomeRefused
	default:
		return OutcomeFailed
	}
}

// Count reports each event the function handles to o, by type and outcome,
// with the time the handler took (its unit of work; the relaying of what it
// emitted comes after).
func Count(o EventObserver, function string) Middleware {
	return func(next Handler) Handler {
		return func(ctx context.Context, e cloudevents.Event) (domain.Order, error) {
			start := time.Now()
			w, err := next(ctx, e)
			o.ObserveEvent(function, e.Type(), Outcome(err), time.Since(start))
			return w, err
		}
	}
}

// Trace makes each event the function handles a span named after the
// function, a child of the span in ctx (the relay's delivery in-process,
// the Kafka consumer's, the HTTP request's) or else of the trace context
// the event carries. Put it outermost: the span covers the handler and its
// store write (see telemetry.Store).
func Trace(function string) Middleware {
	return func(next Handler) Handler {
		return func(ctx context.Context, e cloudevents.Event) (domain.Order, error) {
			if !telemetry.Enabled() {
				return next(ctx, e)
			}
			ctx, span := telemetry.Start(telemetry.Parent(ctx, e), function, trace.SpanKindConsumer)
			if span.IsRecording() {
				span.SetAttributes(telemetry.AttrFunction.String(function), telemetry.AttrEventType.String(e.Type()),
					telemetry.AttrEventID.String(e.ID()), telemetry.AttrOrder.String(events.OrderOf(e)))
			}
			o, err := next(ctx, e)
			telemetry.End(span, err)
			return o, err
		}
	}
}
