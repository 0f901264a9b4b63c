package dispatch

import (
	"context"
	"fmt"
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
		return func(ctx context.Context, e cloudevents.Event) (reply *cloudevents.Event, err error) {
			defer func() {
				if p := recover(); p != nil {
					log.ErrorContext(ctx, "handler panicked", "type", e.Type(), "id", e.ID(), "panic", p, "stack", string(debug.Stack()))
					reply, err = nil, domain.Errorf(domain.KindInternal, "handler panicked: %v", p)
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
		return func(ctx context.Context, e cloudevents.Event) (*cloudevents.Event, error) {
			start := time.Now()
			reply, err := next(ctx, e)
			attrs := []any{"type", e.Type(), "id", e.ID(), "subject", e.Subject(), "took", time.Since(start)}
			if reply != nil {
				attrs = append(attrs, "reply", reply.Type())
			}
			switch {
			case err == nil:
				log.DebugContext(ctx, "handled event", attrs...)
			case domain.Permanent(err):
				log.WarnContext(ctx, "refused event", append(attrs, "error", err)...)
			default:
				log.ErrorContext(ctx, "event failed", append(attrs, "error", err)...)
			}
			return reply, err
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
		return func(ctx context.Context, e cloudevents.Event) (*cloudevents.Event, error) {
			reply, err := next(ctx, e)
			outcome := "handled"
			switch {
			case err == nil:
			case domain.Permanent(err):
				outcome = "refused"
			default:
				outcome = "failed"
			}
			c.Add(EventsTotal, 1, "type", e.Type(), "outcome", outcome)
			return reply, err
		}
	}
}

// ProcessedStore remembers which events were handled and what they replied.
type ProcessedStore interface {
	ProcessedReply(ctx context.Context, key string) ([]byte, bool, error)
	MarkProcessed(ctx context.Context, key string, reply []byte) error
}

// Dedupe makes a handler an idempotent consumer: an event whose source and
// id were handled before is not handled again, and gets the reply it got the
// first time, so a redelivery after a lost reply still moves the order on.
// Handlers are idempotent on their own too (each order step records the
// event that caused it); this is the fast path, and what keeps replies the
// same.
func Dedupe(s ProcessedStore) Middleware {
	return func(next Handler) Handler {
		return func(ctx context.Context, e cloudevents.Event) (*cloudevents.Event, error) {
			key := events.Key(e)
			stored, seen, err := s.ProcessedReply(ctx, key)
			if err != nil {
				return nil, fmt.Errorf("look up processed event %s: %w", key, err)
			}
			if seen {
				return decodeReply(stored)
			}
			reply, err := next(ctx, e)
			if err != nil {
				return nil, err
			}
			var raw []byte
			if reply != nil {
				if raw, err = reply.MarshalJSON(); err != nil {
					return nil, fmt.Errorf("encode reply to %s: %w", key, err)
				}
			}
			if err := s.MarkProcessed(ctx, key, raw); err != nil {
				return nil, fmt.Errorf("mark event %s processed: %w", key, err)
			}
			return reply, nil
		}
	}
}

func decodeReply(raw []byte) (*cloudevents.Event, error) {
	if len(raw) == 0 {
		return nil, nil
	}
	e := cloudevents.NewEvent()
	if err := e.UnmarshalJSON(raw); err != nil {
		return nil, fmt.Errorf("decode stored reply: %w", err)
	}
	return &e, nil
}
