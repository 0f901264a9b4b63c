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

// Cancel cancels an order at its customer's request, in one write with the
// cancelled event and the release of its credit (delivered by the relay);
// key identifies the request. The same request applied twice cancels it
// once (domain.ErrDuplicate, returned with the order as it is); an order no
// longer cancellable is refused with a conflict and unchanged.
func Cancel(ctx context.Context, s domain.OrderUpdater, r events.CancelRequest, key string, now time.Time) (domain.Order, error) {
	if err := r.Validate(); err != nil {
		return domain.Order{}, err
	}
	o, err := s.UpdateOrder(ctx, r.OrderID, func(o *domain.Order) error {
		was := o.Status
		if err := o.Cancel(r, key, now); err != nil {
			return err
		}
		return o.Emit(cancelled(*o, was))
	})
	if err != nil && !errors.Is(err, domain.ErrDuplicate) {
		return o, fmt.Errorf("cancel order %s: %w", r.OrderID, err)
	}
	return o, err
}

// cancelled is the notification of o's cancellation from state was.
func cancelled(o domain.Order, was string) domain.Event {
	return domain.Reply(events.TypeCancelled, Source, o.ID, o.Update(was))
}

// cancel handles com.cupcakes.order.cancel-requested: Cancel, and for a
// redelivery the cancelled event again while the cancellation is the
// order's last step (domain.Replay).
func (f *Function) cancel(ctx context.Context, e cloudevents.Event) (domain.Order, error) {
	var r events.CancelRequest
	if err := events.DecodePayload(e, &r); err != nil {
		return domain.Order{}, err
	}
	o, err := Cancel(ctx, f.store, r, events.Key(e), f.now())
	if errors.Is(err, domain.ErrDuplicate) {
		return domain.Replay(ctx, f.store, r.OrderID, events.Key(e), func(o domain.Order) (domain.Event, bool) {
			if o.Status != events.StatusCancelled {
				return domain.Event{}, false
			}
			return cancelled(o, previousOf(o)), true
		})
	}
	return o, err
}

// previousOf is the state o was in before its last step.
func previousOf(o domain.Order) string {
	if n := len(o.History); n > 1 {
		return o.History[n-2].Status
	}
	return ""
}
