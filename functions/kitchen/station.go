// Package kitchen is the kitchen's functions: each kitchen row of
// events.Pipeline is a function served by a Station. A
// station records its step on the order, which tells the next station (the
// live notifications), and in auto mode hands the order on by emitting the
// next step's event; after the last step the order ships. A station can
// also report a failure.
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

// Store is what a station needs from the store.
type Store interface {
	UpdateOrder(ctx context.Context, id string, fn func(*domain.Order) error) (domain.Order, error)
}

// Station is a kitchen function: one kitchen step of the pipeline.
type Station struct {
	step  events.Step
	store Store
	auto  bool
	now   func() time.Time
}

// New returns the station for step.
func New(step events.Step, s Store, auto bool) *Station {
	return &Station{step: step, store: s, auto: auto, now: time.Now}
}

// Source is the CloudEvents source of the station's replies.
func (s *Station) Source() string { return events.Source + "/" + s.step.Function }

// Handle records the step and what it emits in one write, and returns the
// order as written. The same event delivered twice records it once (and
// answers its reply again while the order has not moved on: domain.Replay);
// a step that does not fit the order's state is refused.
func (s *Station) Handle(ctx context.Context, e cloudevents.Event) (domain.Order, error) {
	var d events.KitchenStep
	if err := events.DecodePayload(e, &d); err != nil {
		return domain.Order{}, err
	}
	key := events.Key(e)
	o, err := s.store.UpdateOrder(ctx, d.OrderID, func(o *domain.Order) error {
		if err := o.Apply(domain.To(s.step.Records, d.By, "", key, s.now())); err != nil {
			return err
		}
		if _, ok := events.After(s.step); !ok { // the last step: the order ships
			if err := o.Apply(domain.To(events.StatusShipped, d.By, "", key+"#shipped", s.now())); err != nil {
				return err
			}
		}
		if r, ok := s.reply(*o); ok {
			return o.Emit(r)
		}
		return nil
	})
	if errors.Is(err, domain.ErrDuplicate) {
		return domain.Replay(ctx, s.store, d.OrderID, key, s.reply)
	}
	if err != nil {
		return domain.Order{}, fmt.Errorf("record %s for order %s: %w", s.step.Records, d.OrderID, err)
	}
	return o, nil
}

// reply is what the step answers for o: the shipped event after the last
// step, the next step in the automatic kitchen, nothing in the manual one
// (the staff at the next station take it from their screen).
func (s *Station) reply(o domain.Order) (domain.Event, bool) {
	next, ok := events.After(s.step)
	switch {
	case !ok:
		return domain.Reply(events.TypeShipped, s.Source(), o.ID, o.Update(s.step.Records)), true
	case s.auto:
		return domain.Reply(next.Takes, s.Source(), o.ID, events.KitchenStep{OrderID: o.ID, By: next.AutoBy()}), true
	}
	return domain.Event{}, false
}
