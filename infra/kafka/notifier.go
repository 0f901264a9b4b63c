package kafka

import (
	"context"
	"encoding/json"
	"log/slog"

	cloudevents "github.com/cloudevents/sdk-go/v2"

	"github.com/cupcake-factory/cupcake-factory/domain"
	"github.com/cupcake-factory/cupcake-factory/events"
)

// NotifierSource is the CloudEvents source of status-changed notifications.
const NotifierSource = events.Source + "/notifications"

// Notifier publishes each state change as com.cupcakes.order.status-changed
// on the updates topic, so that every API/UI process can tell its browsers,
// whichever process made the change.
type Notifier struct {
	publish func(ctx context.Context, e cloudevents.Event) error
	log     *slog.Logger
}

// NewNotifier returns a notifier publishing with p.
func NewNotifier(p *Producer, log *slog.Logger) *Notifier {
	return &Notifier{publish: p.Publish, log: log}
}

// Notify publishes the change. A notification that cannot be sent is
// logged, not retried: the state change itself is stored.
func (n *Notifier) Notify(ctx context.Context, c domain.Change) {
	o := c.Order
	u := events.OrderUpdate{
		OrderID: o.ID, CustomerID: o.CustomerID, Status: o.Status, Previous: c.Previous,
		Reason: o.Reason, Amount: o.Amount, Items: o.Items, At: o.UpdatedAt,
	}
	if len(o.History) > 0 {
		u.By = o.History[len(o.History)-1].By
	}
	e, err := events.New(events.TypeStatusChanged, NotifierSource, o.ID, u)
	if err == nil {
		err = n.publish(ctx, e)
	}
	if err != nil {
		n.log.WarnContext(ctx, "status-changed notification not sent", "order", o.ID, "status", o.Status, "error", err)
	}
}

// ChangeOf turns a status-changed event back into the change it tells of.
func ChangeOf(e cloudevents.Event) (domain.Change, bool) {
	if e.Type() != events.TypeStatusChanged {
		return domain.Change{}, false
	}
	var u events.OrderUpdate
	if err := json.Unmarshal(e.Data(), &u); err != nil || u.OrderID == "" {
		return domain.Change{}, false
	}
	o := domain.Order{
		ID: u.OrderID, CustomerID: u.CustomerID, Status: u.Status, Reason: u.Reason,
		Amount: u.Amount, Items: u.Items, UpdatedAt: u.At,
		History: []domain.Step{{Status: u.Status, By: u.By, Reason: u.Reason, At: u.At}},
	}
	return domain.Change{Order: o, Previous: u.Previous}, true
}
