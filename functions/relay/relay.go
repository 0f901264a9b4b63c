// Package relay delivers what the functions' writes emitted. A function
// stores an order's change and the messages it emits (the order's outbox)
// in one write and returns the order as written; the relay delivers that
// outbox in order: events to the publisher (Kafka topics, or the live hub
// in one process), credit releases and settlements to the customer (the
// saga's second step). Delivery is at least once; every receiver is
// idempotent.
//
// When the outbox ends in an event a function's write will take (Takes),
// that write removes the message that brought the event and those before
// it (domain.Order.Apply), wherever it runs; otherwise the relay removes
// them. A step costs one write. The process that wrote an outbox delivers
// it; Run takes over, one process per order (Store.Abandoned), what its
// writer left past the lease or Grace: a crash, a broker that was down.
package relay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/cupcake-factory/cupcake-factory/domain"
	"github.com/cupcake-factory/cupcake-factory/events"
	"github.com/cupcake-factory/cupcake-factory/infra/telemetry"
)

// Store is what the relay reads and changes.
type Store interface {
	Order(ctx context.Context, id string) (domain.Order, error)
	ChangeCredit(ctx context.Context, ch domain.CreditChange) (domain.Customer, error)
	Delivered(ctx context.Context, orderID string, ids []string) error
	Abandoned(ctx context.Context, before time.Time, lease time.Duration, limit int) ([]string, error)
}

// Publisher sends events on (Kafka's producer; the live hub): one error per
// event, nil once it is acknowledged.
type Publisher interface {
	PublishAll(ctx context.Context, es []cloudevents.Event) []error
}

// Lease is how long a process that took over an outbox has it to itself.
const Lease = 15 * time.Second

// Relay delivers outboxes through a publisher.
type Relay struct {
	store Store
	pub   Publisher
	log   *slog.Logger
	// HandOn, if set, hands back to the caller the first event that is not
	// a status change instead of publishing it (an order's end, shipped or
	// cancelled or failed, is published too): in one process the next
	// function is called directly; on Knative's reply path the event is
	// the function's HTTP reply.
	HandOn bool
	// Takes tells whether a function's write will take an event delivered
	// (any pipeline step's over Kafka; with HandOn, this process's).
	Takes func(eventType string) bool
	// Interval is how often Run looks for abandoned outboxes, and Grace
	// how old their messages must be (younger ones are their writer's).
	Interval, Grace time.Duration
}

// New returns a relay delivering through pub.
func New(s Store, pub Publisher, log *slog.Logger) *Relay {
	takes := func(t string) bool { _, ok := events.StepFor(t); return ok }
	return &Relay{store: s, pub: pub, log: log, Takes: takes, Interval: time.Second, Grace: 3 * time.Second}
}

// Deliver delivers o's outbox, as the write that returned o left it, and
// returns the event handed on (see HandOn), nil if none. It stops at the
// first failure, which leaves the rest for Run.
func (r *Relay) Deliver(ctx context.Context, o domain.Order) (*cloudevents.Event, error) {
	next, done, err := r.deliver(ctx, o)
	if err != nil && len(done) > 0 {
		err = errors.Join(err, r.store.Delivered(ctx, o.ID, done))
	}
	return next, err
}

func (r *Relay) deliver(ctx context.Context, o domain.Order) (next *cloudevents.Event, done []string, err error) {
	batch, msgs := []cloudevents.Event(nil), []domain.Message(nil)
	flush := func() error {
		for i, err := range r.publish(ctx, msgs, batch) {
			if err != nil && !domain.Permanent(err) {
				return fmt.Errorf("deliver outbox message %s of order %s: %w", msgs[i].ID, o.ID, err)
			} else if err != nil {
				r.log.WarnContext(ctx, "outbox message refused; dropped", "order", o.ID, "message", msgs[i].ID, "error", err)
			}
			done = append(done, msgs[i].ID)
		}
		batch, msgs = batch[:0], msgs[:0]
		return nil
	}
	last := "" // the type of the last event delivered
	for _, m := range o.Outbox {
		var e cloudevents.Event
		if !m.OnCustomer() {
			if e, err = Event(o.ID, m); err != nil {
				return nil, done, err
			}
		}
		// A saga step, and an event whose step's write removes those
		// before it, wait until those are delivered.
		if m.OnCustomer() || r.Takes(e.Type()) {
			if err := flush(); err != nil {
				return nil, done, err
			}
		}
		if m.OnCustomer() {
			if err := r.credit(ctx, o, m); err != nil {
				return nil, done, err
			}
			done, last = append(done, m.ID), ""
			continue
		}
		last = e.Type()
		if r.HandOn && e.Type() != events.TypeStatusChanged {
			next = &e // a step emits one such event, last
			if !events.IsNotification(e.Type()) {
				_, span := startDelivery(ctx, m, next)
				telemetry.End(span, nil)
				break
			}
		}
		if batch, msgs = append(batch, e), append(msgs, m); next != nil {
			break // an order's end goes to the notifier too
		}
	}
	if err := flush(); err != nil {
		return nil, done, err
	}
	if next != nil && !events.IsNotification(next.Type()) {
		done = append(done, events.Key(*next))
	}
	if r.Takes(last) || len(done) == 0 {
		return next, nil, nil // removed by the write of the step it causes
	}
	if err := r.store.Delivered(ctx, o.ID, done); err != nil {
		return next, nil, fmt.Errorf("remove delivered messages of order %s: %w", o.ID, err)
	}
	return next, nil, nil
}

// publish sends events at once, each in a span of its own continuing the
// trace its message was emitted in.
func (r *Relay) publish(ctx context.Context, ms []domain.Message, es []cloudevents.Event) []error {
	spans := make([]trace.Span, len(es))
	for i := range es {
		_, spans[i] = startDelivery(ctx, ms[i], &es[i])
	}
	errs := r.pub.PublishAll(ctx, es)
	for i, span := range spans {
		telemetry.End(span, errs[i])
	}
	return errs
}

// credit makes a release or a settlement: once, as a second one finds
// nothing held.
func (r *Relay) credit(ctx context.Context, o domain.Order, m domain.Message) error {
	ctx, span := startDelivery(ctx, m, nil)
	ch := domain.Settle(o.CustomerID, o.ID, m.Settle)
	if m.Release > 0 {
		ch = domain.Release(o.CustomerID, o.ID, m.Release)
	}
	_, err := r.store.ChangeCredit(ctx, ch)
	if domain.KindOf(err) == domain.KindNotFound {
		err = nil // no customer, nothing held
	}
	telemetry.End(span, err)
	if err != nil {
		return fmt.Errorf("deliver outbox message %s of order %s: %w", m.ID, o.ID, err)
	}
	return nil
}

// Drop removes an order's messages up to the one with id upTo: the event
// the relay handed on was refused for good, or was a redelivery that
// changed nothing, so no write of its step will remove them.
func (r *Relay) Drop(ctx context.Context, orderID, upTo string) error {
	o, err := r.store.Order(ctx, orderID)
	if err != nil {
		return err
	}
	var ids []string
	for _, m := range o.Outbox {
		if ids = append(ids, m.ID); m.ID == upTo {
			return r.store.Delivered(ctx, orderID, ids)
		}
	}
	return nil
}

// Run takes over abandoned outboxes every Interval until ctx ends (at
// start-up, whatever an earlier run left, however young) and gives each
// order to resume, which delivers it and, in one process, goes on with
// the step it hands on.
func (r *Relay) Run(ctx context.Context, resume func(context.Context, domain.Order)) {
	grace := time.Duration(0)
	for ctx.Err() == nil {
		ids, err := r.store.Abandoned(ctx, time.Now().Add(-grace), Lease, 100)
		if err != nil && ctx.Err() == nil {
			r.log.WarnContext(ctx, "relay: look for abandoned outboxes", "error", err)
		}
		for _, id := range ids {
			if o, err := r.store.Order(ctx, id); err == nil {
				resume(ctx, o)
			}
		}
		grace = r.Grace
		if len(ids) < 100 {
			select {
			case <-ctx.Done():
			case <-time.After(r.Interval):
			}
		}
	}
}

// Event is the CloudEvent an outbox message of order orderID carries: the
// event the domain emitted (its type, source, id and data) about that
// order, at the time it was emitted.
func Event(orderID string, m domain.Message) (cloudevents.Event, error) {
	if m.Legacy != "" { // kept whole by an earlier version
		e := cloudevents.NewEvent()
		if err := e.UnmarshalJSON([]byte(m.Legacy)); err != nil {
			return e, domain.Errorf(domain.KindInternal, "decode outbox message %s of order %s: %v", m.ID, orderID, err)
		}
		return e, nil
	}
	if m.Type == "" || m.EventID == "" {
		return cloudevents.Event{}, domain.Errorf(domain.KindInternal, "outbox message %s of order %s holds no event", m.ID, orderID)
	}
	return events.Wrap(m.EventID, m.Type, m.Source, orderID, m.At, []byte(m.Data)), nil
}

// startDelivery starts the span of a message's delivery, as a child of the
// span that emitted it (stored with the message) if there is one, and puts
// its context into the event it delivers (e, nil for a saga step).
func startDelivery(ctx context.Context, m domain.Message, e *cloudevents.Event) (context.Context, trace.Span) {
	if !telemetry.Enabled() {
		return ctx, noop.Span{}
	}
	ctx = telemetry.Decode(ctx, m.TraceParent, m.TraceState)
	name := "relay release"
	switch {
	case e != nil:
		name = "relay " + e.Type()
	case m.Settle > 0:
		name = "relay settle"
	}
	ctx, span := telemetry.Start(ctx, name, trace.SpanKindProducer)
	if e != nil {
		telemetry.Inject(ctx, e)
		if span.IsRecording() {
			span.SetAttributes(telemetry.AttrEventType.String(e.Type()), telemetry.AttrEventID.String(e.ID()), telemetry.AttrOrder.String(e.Subject()))
		}
	}
	return ctx, span
}
