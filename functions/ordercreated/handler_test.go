package ordercreated

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/cupcake-factory/cupcake-factory/domain"
	"github.com/cupcake-factory/cupcake-factory/events"
	"github.com/cupcake-factory/cupcake-factory/functions/internal/fntest"
)

func order(id, customer string, items ...events.Item) events.OrderCreated {
	return events.OrderCreated{OrderID: id, CustomerID: customer, Items: items}
}

var sixVanilla = events.Item{Flavour: "vanilla", Size: "M", Quantity: 6} // 1200 cents

func TestHandleReservesCreditAndAnswersCreditValidated(t *testing.T) {
	tests := []struct {
		name          string
		data          events.OrderCreated
		wantValid     bool
		wantReason    string
		wantAvailable int64
	}{
		{"within credit", order("o-1", "alice", sixVanilla), true, "", 10000 - 1200},
		{"exactly the credit", order("o-1", "alice", events.Item{Flavour: "lemon", Size: "L", Quantity: 40}), true, "", 0},
		{"over the credit", order("o-1", "alice", events.Item{Flavour: "lemon", Size: "XL", Quantity: 34}), false, events.ReasonInsufficientCredit, 10000},
		{"unknown customer", order("o-1", "bob", sixVanilla), false, events.ReasonUnknownCustomer, 10000},
		{"items that cannot be priced", order("o-1", "alice", events.Item{Flavour: "mint", Size: "M", Quantity: 1}), false, events.ReasonInvalidOrder, 10000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := fntest.Store(t)
			hub, sub := fntest.Hub(t)
			reply, err := New(s, hub).Handle(context.Background(), fntest.Event(t, events.TypeOrderCreated, "o-1", tt.data))
			if err != nil {
				t.Fatal(err)
			}
			if reply == nil || reply.Type() != events.TypeCreditValidated || reply.Subject() != "o-1" {
				t.Fatalf("reply = %v, want credit-validated about o-1", reply)
			}
			var got events.CreditValidated
			if err := json.Unmarshal(reply.Data(), &got); err != nil {
				t.Fatal(err)
			}
			if got.Valid != tt.wantValid || got.Reason != tt.wantReason {
				t.Errorf("reply valid=%v reason=%q, want %v %q", got.Valid, got.Reason, tt.wantValid, tt.wantReason)
			}
			c, _ := s.Customer(context.Background(), "alice")
			if c.Available != tt.wantAvailable {
				t.Errorf("alice has %d available, want %d", c.Available, tt.wantAvailable)
			}
			o, err := s.Order(context.Background(), "o-1")
			if err != nil || o.Status != events.StatusCreated {
				t.Errorf("order = %+v, %v; want recorded as created", o, err)
			}
			if n := fntest.Drain(sub); len(n) == 0 || n[len(n)-1].Data.Status != events.StatusCreated {
				t.Errorf("notifications %v, want one about the created order", n)
			}
		})
	}
}

func TestHandleRefusesEventsWithoutUsableIDsAndWritesNothing(t *testing.T) {
	tests := []struct {
		name string
		data any
	}{
		{"no order id", order("", "alice", sixVanilla)},
		{"bad customer id", order("o-1", "a b", sixVanilla)},
		{"not an order", map[string]int{"orderId": 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := fntest.Store(t)
			hub, _ := fntest.Hub(t)
			_, err := New(s, hub).Handle(context.Background(), fntest.Event(t, events.TypeOrderCreated, "o-1", tt.data))
			if domain.KindOf(err) != domain.KindInvalid {
				t.Fatalf("err = %v, want invalid", err)
			}
			if orders, _ := s.Orders(context.Background(), "", 0); len(orders) != 0 {
				t.Errorf("wrote %d orders", len(orders))
			}
		})
	}
}

func TestTheSameOrderCreatedTwiceReservesCreditOnce(t *testing.T) {
	s := fntest.Store(t)
	hub, _ := fntest.Hub(t)
	f := New(s, hub)
	first, err := f.Handle(context.Background(), fntest.Event(t, events.TypeOrderCreated, "o-1", order("o-1", "alice", sixVanilla)))
	if err != nil {
		t.Fatal(err)
	}
	second, err := f.Handle(context.Background(), fntest.Event(t, events.TypeOrderCreated, "o-1", order("o-1", "alice", sixVanilla)))
	if err != nil {
		t.Fatal(err)
	}
	if second == nil || second.ID() != first.ID() {
		t.Errorf("second reply %v, want the same reply id %s (so the next step applies it once)", second, first.ID())
	}
	c, _ := s.Customer(context.Background(), "alice")
	if c.Available != 10000-1200 {
		t.Errorf("available %d, want one reservation of 1200", c.Available)
	}
}

func TestAnOrderIDReusedForOtherContentIsAConflict(t *testing.T) {
	s := fntest.Store(t)
	hub, _ := fntest.Hub(t)
	f := New(s, hub)
	if _, err := f.Handle(context.Background(), fntest.Event(t, events.TypeOrderCreated, "o-1", order("o-1", "alice", sixVanilla))); err != nil {
		t.Fatal(err)
	}
	other := order("o-1", "alice", events.Item{Flavour: "lemon", Size: "S", Quantity: 1})
	_, err := f.Handle(context.Background(), fntest.Event(t, events.TypeOrderCreated, "o-1", other))
	if domain.KindOf(err) != domain.KindConflict {
		t.Fatalf("err = %v, want conflict", err)
	}
}

func TestAnOrderAlreadyDecidedIsNotReservedAgain(t *testing.T) {
	s := fntest.Store(t)
	hub, _ := fntest.Hub(t)
	fntest.OrderIn(t, s, "o-1", events.StatusCancelled)
	before, _ := s.Customer(context.Background(), "alice")
	reply, err := New(s, hub).Handle(context.Background(), fntest.Event(t, events.TypeOrderCreated, "o-1", order("o-1", "alice", sixVanilla)))
	if err != nil || reply != nil {
		t.Fatalf("reply %v err %v, want nothing to do", reply, err)
	}
	after, _ := s.Customer(context.Background(), "alice")
	if after.Available != before.Available {
		t.Errorf("available changed from %d to %d", before.Available, after.Available)
	}
}
