package dispatch

import (
	"context"
	"log/slog"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"go.opentelemetry.io/otel/trace"

	"github.com/cupcake-factory/cupcake-factory/domain"
	"github.com/cupcake-factory/cupcake-factory/events"
)

// Relay delivers the outbox of an order as a handler's write left it, and
// returns the event it hands on (nil if none); Drop removes the messages
// of an order up to one whose event no write will remove (see
// functions/relay).
type Relay interface {
	Deliver(ctx context.Context, o domain.Order) (*cloudevents.Event, error)
	Drop(ctx context.Context, orderID, upTo string) error
}

// Dispatcher runs this process's functions on an event and has the relay
// deliver what each wrote. The in-process chain is its loop: while the
// relay hands on an event a function here takes, that function runs next.
type Dispatcher struct {
	Router *Router
	Relay  Relay
	Log    *slog.Logger
}

// Handle runs e's function and what follows it here, and returns the
// first event handed on that no function here takes: the reply to a
// CloudEvent posted over HTTP (nil if none). Its error is that of e's own
// function; a later step's failure is logged, and its event stays in the
// outbox for the relay to deliver again (refused for good, it is dropped).
// A delivery that fails is logged too: the handler's work is stored, and
// the relay's next round delivers it.
func (d *Dispatcher) Handle(ctx context.Context, e cloudevents.Event) (*cloudevents.Event, error) {
	o, err := d.Router.Handle(ctx, e)
	if domain.Permanent(err) {
		// Refused for good: if an outbox holds it (it came over Kafka),
		// no write of its step will remove it.
		d.drop(ctx, events.OrderOf(e), e)
	}
	if err != nil {
		return nil, err
	}
	return d.Resume(ctx, o), nil
}

func (d *Dispatcher) drop(ctx context.Context, orderID string, e cloudevents.Event) {
	if err := d.Relay.Drop(ctx, orderID, events.Key(e)); err != nil && domain.KindOf(err) != domain.KindNotFound {
		d.Log.WarnContext(ctx, "relay: drop a refused event", "order", orderID, "error", err)
	}
}

// Resume delivers o's outbox and goes on with the chain from there; it
// returns the event handed on that no function here takes.
func (d *Dispatcher) Resume(ctx context.Context, o domain.Order) *cloudevents.Event {
	// The next step's span is the child of the relay's delivery, whose
	// context the event carries, not of the span in ctx.
	next := trace.ContextWithSpanContext(ctx, trace.SpanContext{})
	for o.ID != "" {
		e, err := d.Relay.Deliver(ctx, o)
		if err != nil {
			d.Log.WarnContext(ctx, "outbox not delivered yet; the relay retries", "order", o.ID, "error", err)
			return nil
		}
		if e == nil || !d.Router.Handles(e.Type()) {
			return e
		}
		id := o.ID
		o, err = d.Router.Handle(next, *e)
		switch {
		case err != nil && !domain.Permanent(err):
			return nil // it stays in the outbox; the relay delivers it again
		case err != nil, o.ID == "":
			// Refused for good, or a redelivery with nothing to send: no
			// write of its step removes what led to it.
			d.drop(ctx, id, *e)
			return nil
		}
	}
	return nil
}
