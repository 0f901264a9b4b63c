// Package creditvalidated is the credit-validated function, the orders side
// of the flow: it approves an order whose credit is reserved, or cancels it
// with the reason, and in auto kitchen mode sends the approved order on to
// the first station.
package creditvalidated

import (
	"context"
	"errors"
	"fmt"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"

	"github.com/cupcake-factory/cupcake-factory/domain"
	"github.com/cupcake-factory/cupcake-factory/events"
)

// Source is the CloudEvents source of this function's replies.
const Source = events.Source + "/" + events.FuncCreditValidated

// Store is what credit-validated needs from the store.
type Store interface {
	UpdateOrder(ctx context.Context, id string, fn func(*domain.Order) error) (domain.Order, error)
}

// Function handles com.cupcakes.order.credit-validated.
type Function struct {
	store Store
	auto  bool
	now   func() time.Time
}

// New returns the function; auto says whether the kitchen runs by itself.
func New(s Store, auto bool) *Function { return &Function{store: s, auto: auto, now: time.Now} }

// Handle applies the verdict under the money rule (domain.Order.Decide), in
// one write with its reply: com.cupcakes.order.cancelled for a cancelled
// order, the first kitchen step for an approved one in auto mode.
func (f *Function) Handle(ctx context.Context, e cloudevents.Event) (domain.Order, error) {
	var d events.CreditValidated
	if err := events.DecodePayload(e, &d); err != nil {
		return domain.Order{}, err
	}
	o, err := f.store.UpdateOrder(ctx, d.OrderID, func(o *domain.Order) error {
		if err := o.Decide(d, Source, events.Key(e), f.now()); err != nil {
			return err
		}
		if r, ok := f.reply(*o); ok {
			return o.Emit(r)
		}
		return nil
	})
	if errors.Is(err, domain.ErrDuplicate) {
		return domain.Replay(ctx, f.store, d.OrderID, events.Key(e), f.reply)
	}
	if err != nil {
		return domain.Order{}, fmt.Errorf("credit verdict for order %s: %w", d.OrderID, err)
	}
	return o, nil
}

func (f *Function) reply(o domain.Order) (domain.Event, bool) {
	switch {
	case o.Status == events.StatusCancelled:
		return domain.Reply(events.TypeCancelled, Source, o.ID, o.Update(events.StatusCreated)), true
	case f.auto:
		first := events.Kitchen()[0]
		return domain.Reply(first.Takes, Source, o.ID, events.KitchenStep{OrderID: o.ID, By: first.AutoBy()}), true
	}
	return domain.Event{}, false
}
