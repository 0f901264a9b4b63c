// Package kitchen is the kitchen's functions: mixed, baked, decorated and
// packaged are each one row of events.Pipeline served by a Station. A
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

// Handle records the step and what it emits in one write. The same event
// delivered twice records it once; a step that does not fit the order's
// state is refused.
func (s *Station) Handle(ctx context.Context, e cloudevents.Event) error {
	var d events.KitchenStep
	if err := events.DecodePayload(e, &d); err != nil {
		return err
	}
	key := events.Key(e)
	_, err := s.store.UpdateOrder(ctx, d.OrderID, func(o *domain.Order) error {
		if err := o.Apply(domain.To(s.step.Records, d.By, "", key, s.now())); err != nil {
			return err
		}
		next, ok := events.StepFor(s.step.Replies[0])
		switch {
		case !ok: // the last step: the order ships
			if err := o.Apply(domain.To(events.StatusShipped, d.By, "", key+"#shipped", s.now())); err != nil {
				return err
			}
			return s.emit(o, s.step.Replies[0], o.Update(s.step.Records))
		case s.auto:
			return s.emit(o, next.Takes, events.KitchenStep{OrderID: o.ID, By: next.AutoBy()})
		}
		return nil
	})
	if err != nil && !errors.Is(err, domain.ErrDuplicate) {
		return fmt.Errorf("record %s for order %s: %w", s.step.Records, d.OrderID, err)
	}
	return nil
}

func (s *Station) emit(o *domain.Order, typ string, data any) error {
	e, err := events.Reply(typ, s.Source(), o.ID, data)
	if err != nil {
		return err
	}
	return o.Emit(e)
}
