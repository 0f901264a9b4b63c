// Package fntest holds setup helpers for the functions' tests: a real
// embedded store in a temporary directory, a real notification hub, and
// orders placed in a given state.
package fntest

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/google/uuid"

	"github.com/cupcake-factory/cupcake-factory/domain"
	"github.com/cupcake-factory/cupcake-factory/events"
	"github.com/cupcake-factory/cupcake-factory/infra/bolt"
	"github.com/cupcake-factory/cupcake-factory/infra/notify"
)

// Store opens an embedded store in a temporary directory with customer
// alice (credit limit 10000 cents).
func Store(tb testing.TB) *bolt.Store {
	tb.Helper()
	s, err := bolt.Open(tb.TempDir())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = s.Close() })
	now := time.Now().UTC()
	if _, err := s.CreateCustomer(context.Background(), domain.Customer{ID: "alice", Name: "Alice", CreditLimit: 10000, Available: 10000, CreatedAt: now, UpdatedAt: now}); err != nil {
		tb.Fatal(err)
	}
	return s
}

// Hub returns a hub and a stream of everything it sends from now on,
// closed when the test ends. The hub replays the last 100 notifications: a
// test that lets more than that wait unread finds its stream dropped.
func Hub(tb testing.TB) (*notify.Hub, *notify.Stream) {
	tb.Helper()
	h := notify.NewHub(100)
	s, err := h.OpenStream("", 0, 0)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { h.CloseStream(s) })
	return h, s
}

// Event builds an event of type t about orderID with a fresh id.
func Event(tb testing.TB, t, orderID string, data any) cloudevents.Event {
	tb.Helper()
	e, err := events.New(t, "test", orderID, data)
	if err != nil {
		tb.Fatal(err)
	}
	return e
}

// OrderIn stores order orderID for alice (6 M vanilla, 1200 cents, credit
// reserved) and walks it to status, with an empty outbox.
func OrderIn(tb testing.TB, s *bolt.Store, orderID, status string) domain.Order {
	tb.Helper()
	ctx := context.Background()
	d := events.OrderCreated{OrderID: orderID, CustomerID: "alice", Items: []events.Item{{Flavour: "vanilla", Size: "M", Quantity: 6}}}
	o := domain.NewOrder(d, "test "+uuid.NewString(), "", time.Now())
	if _, err := s.UpdateCustomer(ctx, "alice", func(c *domain.Customer) error { return c.Reserve(orderID, o.Amount) }); err != nil {
		tb.Fatal(err)
	}
	if _, _, err := s.CreateOrder(ctx, o); err != nil {
		tb.Fatal(err)
	}
	path := []string{events.StatusApproved} // the flow, as the pipeline declares it
	for _, k := range events.Kitchen() {
		path = append(path, k.Records)
	}
	path = append(path, events.StatusShipped)
	if status == events.StatusCancelled {
		path = []string{events.StatusCancelled}
	}
	o, err := s.UpdateOrder(ctx, orderID, func(o *domain.Order) error {
		for _, st := range path {
			if o.Status == status {
				break
			}
			if err := o.Apply(domain.To(st, "test", "", "test "+uuid.NewString(), time.Now())); err != nil {
				return err
			}
		}
		o.Outbox = nil
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	if o.Status != status {
		tb.Fatalf("could not walk order to %s", status)
	}
	return o
}

// Refused stores order orderID for alice (6 M vanilla, 1200 cents) as
// order-created records an order whose credit it refused for reason: created,
// holding no credit, with an empty outbox.
func Refused(tb testing.TB, s *bolt.Store, orderID, reason string) domain.Order {
	tb.Helper()
	d := events.OrderCreated{OrderID: orderID, CustomerID: "alice", Items: []events.Item{{Flavour: "vanilla", Size: "M", Quantity: 6}}}
	o := domain.NewOrder(d, "test "+uuid.NewString(), reason, time.Now())
	o.Outbox = nil
	if _, created, err := s.CreateOrder(context.Background(), o); err != nil || !created {
		tb.Fatalf("create order %s: created %v, %v", orderID, created, err)
	}
	return o
}

// Order returns the stored order id.
func Order(tb testing.TB, s *bolt.Store, id string) domain.Order {
	tb.Helper()
	o, err := s.Order(context.Background(), id)
	if err != nil {
		tb.Fatal(err)
	}
	return o
}

// Available returns the credit customer id has available.
func Available(tb testing.TB, s *bolt.Store, id string) int64 {
	tb.Helper()
	c, err := s.Customer(context.Background(), id)
	if err != nil {
		tb.Fatal(err)
	}
	return c.Available
}

// Data decodes the JSON data of e into a value of type T.
func Data[T any](tb testing.TB, e cloudevents.Event) T {
	tb.Helper()
	var v T
	if err := json.Unmarshal(e.Data(), &v); err != nil {
		tb.Fatalf("data of %s: %v", e.Type(), err)
	}
	return v
}

// Statuses returns the states of an order's history, oldest first.
func Statuses(o domain.Order) []string {
	out := make([]string, len(o.History))
	for i, s := range o.History {
		out[i] = s.Status
	}
	return out
}

// Emitted returns the events waiting in an order's outbox, oldest first
// (credit releases as "release").
func Emitted(tb testing.TB, s *bolt.Store, orderID string) []cloudevents.Event {
	tb.Helper()
	o, err := s.Order(context.Background(), orderID)
	if err != nil {
		tb.Fatal(err)
	}
	var out []cloudevents.Event
	for _, m := range o.Outbox {
		if m.OnCustomer() {
			e := cloudevents.NewEvent()
			e.SetType("release")
			if m.Settle > 0 {
				e.SetType("settle")
			}
			out = append(out, e)
			continue
		}
		out = append(out, events.Wrap(m.EventID, m.Type, m.Source, o.ID, m.At, []byte(m.Data)))
	}
	return out
}

// Types lists the types of es.
func Types(es []cloudevents.Event) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.Type()
	}
	return out
}

// Drain returns the notifications waiting on s, oldest first; it fails the
// test if the stream was closed or dropped.
func Drain(tb testing.TB, s *notify.Stream) []notify.Notification {
	tb.Helper()
	out, err := s.Notifications(nil)
	if err != nil {
		tb.Fatal(err)
	}
	return out
}
