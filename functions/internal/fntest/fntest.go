// Package fntest holds setup helpers for the functions' tests: a real
// embedded store in a temporary directory, a real notification hub, and
// orders placed in a given state.
package fntest

import (
	"context"
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

// Hub returns a hub and a subscription to everything it sends.
func Hub(tb testing.TB) (*notify.Hub, *notify.Subscription) {
	tb.Helper()
	h := notify.NewHub(100, 100)
	return h, h.Subscribe("", 0)
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
// reserved) and walks it to status.
func OrderIn(tb testing.TB, s *bolt.Store, orderID, status string) domain.Order {
	tb.Helper()
	ctx := context.Background()
	d := events.OrderCreated{OrderID: orderID, CustomerID: "alice", Items: []events.Item{{Flavour: "vanilla", Size: "M", Quantity: 6}}}
	o, _, err := s.CreateOrder(ctx, domain.NewOrder(d, "test "+uuid.NewString(), time.Now()))
	if err != nil {
		tb.Fatal(err)
	}
	if err := s.ReserveCredit(ctx, "alice", orderID, o.Amount); err != nil {
		tb.Fatal(err)
	}
	path := []string{events.StatusApproved, events.StatusMixed, events.StatusBaked, events.StatusDecorated, events.StatusPackaged, events.StatusShipped}
	if status == events.StatusCancelled {
		path = []string{events.StatusCancelled}
	}
	for _, st := range path {
		if o.Status == status {
			break
		}
		if o, err = s.Advance(ctx, orderID, domain.To(st, "test", "", "test "+uuid.NewString(), time.Now())); err != nil {
			tb.Fatal(err)
		}
	}
	if o.Status != status {
		tb.Fatalf("could not walk order to %s", status)
	}
	return o
}

// Drain returns the notifications waiting on sub.
func Drain(sub *notify.Subscription) []notify.Notification {
	var out []notify.Notification
	for {
		select {
		case n := <-sub.C:
			out = append(out, n)
		default:
			return out
		}
	}
}
