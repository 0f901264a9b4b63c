// Package kitchen is what the four kitchen functions (mixed, baked,
// decorated, packaged) share: a station records its step on the order, tells
// the next station, and in auto mode hands the order on by replying with the
// next step's event. It also holds the failure a station can report.
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
	Advance(ctx context.Context, orderID string, t domain.Transition) (domain.Order, error)
}

// Notifier is told about state changes.
type Notifier interface {
	Notify(ctx context.Context, c domain.Change)
}

// Step describes one kitchen function.
type Step struct {
	Function string // name, as in FUNCTIONS
	Records  string // the order state it records
	// Next is the event type it replies with in auto mode, and NextBy who
	// does that next step; empty for the last step.
	Next, NextBy string
	// Ships says the order ships right after this step (packaging).
	Ships bool
}

// Station is a kitchen function: one Step over a store.
type Station struct {
	step     Step
	store    Store
	notifier Notifier
	auto     bool
	now      func() time.Time
}

// New returns the station for step.
func New(step Step, s Store, n Notifier, auto bool) *Station {
	return &Station{step: step, store: s, notifier: n, auto: auto, now: time.Now}
}

// Source is the CloudEvents source of the station's replies.
func (s *Station) Source() string { return events.Source + "/" + s.step.Function }

// Handle records the step. The same event delivered twice records it once
// and replies the same event again; a step that does not fit the order's
// state is refused.
func (s *Station) Handle(ctx context.Context, e cloudevents.Event) (*cloudevents.Event, error) {
	var d events.KitchenStep
	if err := events.DecodePayload(e, &d); err != nil {
		return nil, err
	}

	key := events.Key(e)
	o, err := s.advance(ctx, d.OrderID, domain.To(s.step.Records, d.By, "", key, s.now()))
	if err != nil {
		return nil, err
	}
	if s.step.Ships {
		// A separate key: the same event caused two steps.
		if o, err = s.advance(ctx, d.OrderID, domain.To(events.StatusShipped, d.By, "", key+"#shipped", s.now())); err != nil {
			return nil, err
		}
		reply, err := events.Reply(events.TypeShipped, s.Source(), o.ID, events.OrderUpdate{
			OrderID: o.ID, CustomerID: o.CustomerID, Status: events.StatusShipped,
			Previous: events.StatusPackaged, By: d.By,
		})
		return &reply, err
	}
	if !s.auto || s.step.Next == "" {
		return nil, nil
	}
	reply, err := events.Reply(s.step.Next, s.Source(), o.ID, events.KitchenStep{OrderID: o.ID, By: s.step.NextBy})
	return &reply, err
}

// advance applies t and notifies; a duplicate counts as done.
func (s *Station) advance(ctx context.Context, orderID string, t domain.Transition) (domain.Order, error) {
	o, err := s.store.Advance(ctx, orderID, t)
	switch {
	case errors.Is(err, domain.ErrDuplicate):
		return o, nil
	case err != nil:
		return o, fmt.Errorf("record %s for order %s: %w", t.To, orderID, err)
	}
	s.notifier.Notify(ctx, domain.Change{Order: o, Previous: t.From[0]})
	return o, nil
}
