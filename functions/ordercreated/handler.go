// Package ordercreated is the order-created function, the customers side of
// the flow: it records a new order, reserves its amount against the
// customer's credit and answers com.cupcakes.order.credit-validated.
package ordercreated

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
const Source = events.Source + "/" + events.FuncOrderCreated

// Store is what order-created needs from the store.
type Store interface {
	CreateOrder(ctx context.Context, o domain.Order) (domain.Order, bool, error)
	ReserveCredit(ctx context.Context, customerID, orderID string, amount int64) error
}

// Notifier is told about state changes.
type Notifier interface {
	Notify(ctx context.Context, c domain.Change)
}

// Function handles com.cupcakes.order.created.
type Function struct {
	store    Store
	notifier Notifier
	now      func() time.Time
}

// New returns the function over a store and a notifier.
func New(s Store, n Notifier) *Function {
	return &Function{store: s, notifier: n, now: time.Now}
}

// Handle records the order and reserves its credit. An order whose ids are
// usable but whose items are not is recorded and answered as not valid
// (invalid-order), so that whoever sent it over Kafka can see why it was
// refused; an event without usable ids is refused as invalid.
func (f *Function) Handle(ctx context.Context, e cloudevents.Event) (*cloudevents.Event, error) {
	var d events.OrderCreated
	if err := events.Decode(e, &d); err != nil {
		return nil, err
	}
	itemsErr := events.ValidateItems(d.Items)
	if err := d.ValidateIDs(); err != nil {
		return nil, err
	}
	if err := events.CheckSubject(e, d.OrderID); err != nil {
		return nil, err
	}
	if itemsErr != nil {
		d.Items = nil // the record keeps no items it cannot price
	}

	o, created, err := f.store.CreateOrder(ctx, domain.NewOrder(d, events.Key(e), f.now()))
	if err != nil {
		return nil, fmt.Errorf("record order %s: %w", d.OrderID, err)
	}
	if created {
		f.notifier.Notify(ctx, domain.Change{Order: o})
	}
	if o.Status != events.StatusCreated {
		return nil, nil // decided already: the same order created twice has one effect
	}

	result := events.CreditValidated{OrderID: o.ID, CustomerID: o.CustomerID, Amount: o.Amount, Valid: true}
	if itemsErr != nil {
		result.Valid, result.Reason = false, events.ReasonInvalidOrder
	} else if err := f.store.ReserveCredit(ctx, o.CustomerID, o.ID, o.Amount); err != nil {
		switch {
		case errors.Is(err, domain.ErrUnknownCustomer):
			result.Valid, result.Reason = false, events.ReasonUnknownCustomer
		case errors.Is(err, domain.ErrInsufficientCredit):
			result.Valid, result.Reason = false, events.ReasonInsufficientCredit
		default:
			return nil, fmt.Errorf("reserve credit for order %s: %w", o.ID, err)
		}
	}
	reply, err := events.Reply(events.TypeCreditValidated, Source, o.ID, result)
	return &reply, err
}
