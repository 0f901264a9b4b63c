// Package ordercreated is the order-created function, the customers side of
// the flow: it reserves a new order's amount against the customer's credit,
// records the order with that decision, and answers
// com.cupcakes.order.credit-validated. It also takes the customer's
// com.cupcakes.order.cancel-requested (cancel.go).
package ordercreated

import (
	"context"
	"fmt"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"

	"github.com/cupcake-factory/cupcake-factory/domain"
	"github.com/cupcake-factory/cupcake-factory/events"
)

// Source is the CloudEvents source of this function's replies.
const Source = events.Source + "/" + events.FuncOrderCreated

// Store is what order-created needs from the store.
type Store interface {
	Order(ctx context.Context, id string) (domain.Order, error)
	UpdateOrder(ctx context.Context, id string, fn func(*domain.Order) error) (domain.Order, error)
	ChangeCredit(ctx context.Context, ch domain.CreditChange) (domain.Customer, error)
	CreateOrder(ctx context.Context, o domain.Order) (domain.Order, bool, error)
}

// Function handles com.cupcakes.order.created and cancel-requested.
type Function struct {
	store Store
	now   func() time.Time
}

// New returns the function over a store.
func New(s Store) *Function { return &Function{store: s, now: time.Now} }

// Handle reserves the credit (a write to the customer, once per order),
// then records the order with the decision and its reply (one write to the
// order). A crash between the two leaves credit reserved for an order not
// yet recorded; the event was not acknowledged, so it comes again (Kafka
// redelivers it, an HTTP client retries) and finds the reservation made. An
// order whose ids are usable but whose items are not is recorded and
// answered as not valid (invalid-order); one without usable ids is refused.
func (f *Function) Handle(ctx context.Context, e cloudevents.Event) (domain.Order, error) {
	if e.Type() == events.TypeCancelRequested {
		return f.cancel(ctx, e)
	}
	var d events.OrderCreated
	if err := events.Decode(e, &d); err != nil {
		return domain.Order{}, err
	}
	itemsErr := domain.ValidateItems(d.Items)
	if err := d.ValidateIDs(true); err != nil {
		return domain.Order{}, err
	}
	if err := events.CheckSubject(e, d.OrderID); err != nil {
		return domain.Order{}, err
	}
	if itemsErr != nil {
		d.Items = nil // the record keeps no items it cannot price
	}
	o := domain.NewOrder(d, events.Key(e), "", f.now())
	existing, err := f.store.Order(ctx, d.OrderID)
	switch {
	case err == nil:
		if err := sameOrder(existing, o); err != nil {
			return domain.Order{}, err
		}
		return domain.Replay(ctx, f.store, o.ID, events.Key(e), reply)
	case domain.KindOf(err) != domain.KindNotFound:
		return domain.Order{}, fmt.Errorf("look for order %s: %w", o.ID, err)
	}

	refused := events.ReasonInvalidOrder
	if itemsErr == nil {
		var err error
		if refused, err = f.reserve(ctx, o); err != nil {
			return domain.Order{}, err
		}
	}
	o = domain.NewOrder(d, events.Key(e), refused, f.now())
	r, _ := reply(o)
	if err := o.Emit(r); err != nil {
		return domain.Order{}, err
	}
	stored, created, err := f.store.CreateOrder(ctx, o)
	if err != nil {
		return domain.Order{}, fmt.Errorf("record order %s: %w", o.ID, err)
	}
	if !created && refused == "" && (stored.CustomerID != o.CustomerID || stored.Reserved != o.Amount) {
		// Another delivery recorded the order first without this
		// reservation: give it back.
		if err := f.release(ctx, o); err != nil {
			return domain.Order{}, err
		}
	}
	if created {
		return stored, nil
	}
	// Another delivery recorded it first, and delivers its outbox.
	return domain.Order{}, sameOrder(stored, o)
}

// reply is the credit decision recorded in o.
func reply(o domain.Order) (domain.Event, bool) {
	result := events.CreditValidated{OrderID: o.ID, CustomerID: o.CustomerID, Amount: o.Amount, Valid: o.Refused == "", Reason: o.Refused}
	return domain.Reply(events.TypeCreditValidated, Source, o.ID, result), true
}
