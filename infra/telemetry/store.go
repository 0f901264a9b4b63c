package telemetry

import (
	"context"

	"go.opentelemetry.io/otel/trace"

	"github.com/cupcake-factory/cupcake-factory/domain"
)

// Store wraps the store the functions write through: each write is a span,
// and each message a write adds to an order's outbox is stamped with the
// trace context of the span that emitted it (the function's, in ctx), in
// that same write. The relay's delivery of it, now or after a restart,
// then continues the trace. Without tracing the writes pass straight
// through.
func Store(s domain.Store) domain.Store { return tracedStore{Store: s} }

type tracedStore struct{ domain.Store }

func (s tracedStore) UpdateOrder(ctx context.Context, id string, fn func(*domain.Order) error) (domain.Order, error) {
	if current.Load() == nil {
		return s.Store.UpdateOrder(ctx, id, fn)
	}
	parent, state := Encode(ctx)
	ctx, span := Start(ctx, "store UpdateOrder", trace.SpanKindInternal)
	if span.IsRecording() {
		span.SetAttributes(AttrOrder.String(id))
	}
	o, err := s.Store.UpdateOrder(ctx, id, func(o *domain.Order) error {
		// The messages fn adds are the ones without a trace context (the
		// step's write also removes those that brought its event).
		if err := fn(o); err != nil {
			return err
		}
		stamp(o.Outbox, parent, state)
		return nil
	})
	End(span, err)
	return o, err
}

func (s tracedStore) CreateOrder(ctx context.Context, o domain.Order) (domain.Order, bool, error) {
	if current.Load() == nil {
		return s.Store.CreateOrder(ctx, o)
	}
	parent, state := Encode(ctx)
	ctx, span := Start(ctx, "store CreateOrder", trace.SpanKindInternal)
	if span.IsRecording() {
		span.SetAttributes(AttrOrder.String(o.ID))
	}
	if parent != "" && len(o.Outbox) > 0 {
		outbox := make([]domain.Message, len(o.Outbox))
		copy(outbox, o.Outbox)
		stamp(outbox, parent, state)
		o.Outbox = outbox
	}
	stored, created, err := s.Store.CreateOrder(ctx, o)
	End(span, err)
	return stored, created, err
}

func (s tracedStore) UpdateCustomer(ctx context.Context, id string, fn func(*domain.Customer) error) (domain.Customer, error) {
	if current.Load() == nil {
		return s.Store.UpdateCustomer(ctx, id, fn)
	}
	ctx, span := Start(ctx, "store UpdateCustomer", trace.SpanKindInternal)
	c, err := s.Store.UpdateCustomer(ctx, id, fn)
	End(span, err)
	return c, err
}

func (s tracedStore) ChangeCredit(ctx context.Context, ch domain.CreditChange) (domain.Customer, error) {
	if current.Load() == nil {
		return s.Store.ChangeCredit(ctx, ch)
	}
	ctx, span := Start(ctx, "store ChangeCredit", trace.SpanKindInternal)
	c, err := s.Store.ChangeCredit(ctx, ch)
	End(span, err)
	return c, err
}

// stamp gives the messages without a trace context this one.
func stamp(ms []domain.Message, parent, state string) {
	if parent == "" {
		return
	}
	for i := range ms {
		if ms[i].TraceParent == "" {
			ms[i].TraceParent, ms[i].TraceState = parent, state
		}
	}
}
