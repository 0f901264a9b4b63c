package kitchen

import (
	"context"
	"errors"
	"fmt"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"

	"github.com/cupcake-factory/cupcake-factory/domain"
	"github.com/cupcake-factory/cupcake-factory/events"
)

// FailureStore is what reporting a failure needs from the store.
type FailureStore interface {
	Advance(ctx context.Context, orderID string, t domain.Transition) (domain.Order, error)
	ReleaseCredit(ctx context.Context, customerID, orderID string) (bool, error)
}

// FailureSource is the CloudEvents source of com.cupcakes.order.failed.
const FailureSource = events.Source + "/kitchen"

// ReportFailure fails an order in a kitchen state and gives its reserved
// credit back. key identifies the report, so that the same report applied
// twice fails the order once. The returned event is the failed notification.
func ReportFailure(ctx context.Context, s FailureStore, n Notifier, r events.FailureReport, key string) (domain.Order, *cloudevents.Event, error) {
	if err := r.Validate(); err != nil {
		return domain.Order{}, nil, err
	}
	t := domain.To(events.StatusFailed, r.By, r.Reason, key, time.Now())
	o, err := s.Advance(ctx, r.OrderID, t)
	applied := err == nil
	switch {
	case errors.Is(err, domain.ErrDuplicate):
	case err != nil && o.Status == events.StatusFailed:
		// Failed before by another report: make sure its credit came back
		// (a crash may have come between the two steps), then refuse.
		if _, rerr := s.ReleaseCredit(ctx, o.CustomerID, o.ID); rerr != nil {
			return o, nil, fmt.Errorf("release credit of failed order %s: %w", o.ID, rerr)
		}
		return o, nil, fmt.Errorf("report failure: %w", err)
	case err != nil:
		return o, nil, fmt.Errorf("report failure: %w", err)
	}
	if _, err := s.ReleaseCredit(ctx, o.CustomerID, o.ID); err != nil {
		return o, nil, fmt.Errorf("release credit of failed order %s: %w", o.ID, err)
	}
	if applied {
		n.Notify(ctx, domain.Change{Order: o, Previous: previousStatus(o)})
	}
	ev, err := events.Reply(events.TypeFailed, FailureSource, o.ID, events.OrderUpdate{
		OrderID: o.ID, CustomerID: o.CustomerID, Status: events.StatusFailed,
		Previous: previousStatus(o), By: r.By, Reason: r.Reason,
	})
	return o, &ev, err
}

// previousStatus is the state before the last step of o.
func previousStatus(o domain.Order) string {
	if len(o.History) < 2 {
		return ""
	}
	return o.History[len(o.History)-2].Status
}
