// Package creditvalidated is the credit-validated function, the orders side
// of the flow: it approves an order whose credit was reserved, or cancels it
// with the reason, and in auto kitchen mode sends the approved order on to
// the mixer.
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
	Advance(ctx context.Context, orderID string, t domain.Transition) (domain.Order, error)
	ReleaseCredit(ctx context.Context, customerID, orderID string) (bool, error)
}

// Notifier is told about state changes.
type Notifier interface {
	Notify(ctx context.Context, c domain.Change)
}

// Function handles com.cupcakes.order.credit-validated.
type Function struct {
	store    Store
	notifier Notifier
	auto     bool
	now      func() time.Time
}

// New returns the function; auto says whether the kitchen runs by itself.
func New(s Store, n Notifier, auto bool) *Function {
	return &Function{store: s, notifier: n, auto: auto, now: time.Now}
}

// Handle approves or cancels the order. It replies com.cupcakes.order.mixed
// for an approved order in auto mode, com.cupcakes.order.cancelled for a
// cancelled one, and nothing otherwise.
func (f *Function) Handle(ctx context.Context, e cloudevents.Event) (*cloudevents.Event, error) {
	var d events.CreditValidated
	if err := events.DecodePayload(e, &d); err != nil {
		return nil, err
	}

	to := events.StatusApproved
	if !d.Valid {
		to = events.StatusCancelled
	}
	o, err := f.store.Advance(ctx, d.OrderID, domain.To(to, Source, d.Reason, events.Key(e), f.now()))
	switch {
	case errors.Is(err, domain.ErrDuplicate):
		// Applied before: answer again, with the same reply id.
	case err != nil:
		return nil, fmt.Errorf("%s order %s: %w", to, d.OrderID, err)
	default:
		f.notifier.Notify(ctx, domain.Change{Order: o, Previous: events.StatusCreated})
	}

	if !d.Valid {
		// A cancelled order holds no credit. Usually it never had any; but
		// the same order created again (a new event) after the customer got
		// more credit may have reserved it before this verdict arrived.
		if _, err := f.store.ReleaseCredit(ctx, o.CustomerID, o.ID); err != nil && domain.KindOf(err) != domain.KindNotFound {
			return nil, fmt.Errorf("release credit of cancelled order %s: %w", o.ID, err)
		}
	}

	var reply cloudevents.Event
	switch {
	case !d.Valid:
		reply, err = events.Reply(events.TypeCancelled, Source, o.ID, events.OrderUpdate{
			OrderID: o.ID, CustomerID: o.CustomerID, Status: events.StatusCancelled,
			Previous: events.StatusCreated, Reason: d.Reason,
		})
	case f.auto:
		reply, err = events.Reply(events.TypeMixed, Source, o.ID, events.KitchenStep{OrderID: o.ID, By: "auto-mixer"})
	default:
		return nil, nil
	}
	return &reply, err
}
