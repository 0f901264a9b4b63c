package dispatch

import (
	"context"
	"log/slog"
	"runtime/debug"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"

	"github.com/cupcake-factory/cupcake-factory/domain"
	"github.com/cupcake-factory/cupcake-factory/events"
)

// Recover turns a handler's panic into an internal error.
func Recover(log *slog.Logger) Middleware {
	return func(next Handler) Handler {
		return func(ctx context.Context, e cloudevents.Event) (err error) {
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
		return func(ctx context.Context, e cloudevents.Event) error {
			start := time.Now()
			err := next(ctx, e)
			attrs := []any{"type", e.Type(), "id", e.ID(), "subject", e.Subject(), "took", time.Since(start)}
			switch {
			case err == nil:
				log.DebugContext(ctx, "handled event", attrs...)
			case domain.Permanent(err):
				log.WarnContext(ctx, "refused event", append(attrs, "error", err)...)
			default:
				log.ErrorContext(ctx, "event failed", append(attrs, "error", err)...)
			}
			return err
		}
	}
}

// Counter counts, with labels given as key, value pairs.
type Counter interface {
	Add(name string, v float64, labels ...string)
}

// EventsTotal is the counter Count adds to.
const EventsTotal = "cupcakes_events_total"

// Count counts each event by type and outcome: handled, refused (a
// permanent error: invalid, not found, does not fit the state) or failed.
func Count(c Counter) Middleware {
	return func(next Handler) Handler {
		return func(ctx context.Context, e cloudevents.Event) error {
			err := next(ctx, e)
			outcome := "handled"
			switch {
			case err == nil:
			case domain.Permanent(err):
				outcome = "refused"
			default:
				outcome = "failed"
			}
			c.Add(EventsTotal, 1, "type", e.Type(), "outcome", outcome)
			return err
		}
	}
}

// Drainer delivers what an order's outbox holds.
type Drainer interface {
	Drain(ctx context.Context, orderID string) error
}

// DrainAfter delivers, right after a handler stored its change, what the order's
// outbox holds: the reply goes on at once instead of waiting for the relay's
// next round. It runs after a redelivered event too, which is how a reply
// left undelivered by a crash goes on. A delivery that fails leaves the
// messages in the outbox for the relay's next round: the handler's work is
// stored, so the event itself is done.
func DrainAfter(d Drainer, log *slog.Logger) Middleware {
	return func(next Handler) Handler {
		return func(ctx context.Context, e cloudevents.Event) error {
			ctx = withWritten(ctx)
			if err := next(ctx, e); err != nil {
				return err
			}
			if id := events.OrderOf(e); id != "" {
				if err := d.Drain(ctx, id); err != nil {
					log.WarnContext(ctx, "outbox not delivered yet; the relay retries", "order", id, "error", err)
				}
			}
			return nil
		}
	}
}
