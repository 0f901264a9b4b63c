package ordercreated

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/cupcake-factory/cupcake-factory/domain"
	"github.com/cupcake-factory/cupcake-factory/events"
	"github.com/cupcake-factory/cupcake-factory/functions/internal/fntest"
)

func order(id, customer string, items ...events.Item) events.OrderCreated {
	return events.OrderCreated{OrderID: id, CustomerID: customer, Items: items}
}

var sixVanilla = events.Item{Flavour: "vanilla", Size: "M", Quantity: 6} // 1200 cents

func TestHandleRecordsTheOrderWithItsCreditDecisionAndEmitsCreditValidated(t *testing.T) {
	tests := []struct {
		name          string
		data          events.OrderCreated
		wantReason    string // "" = credit reserved
		wantAmount    int64
		wantAvailable int64
	}{
		{"within credit", order("o-1", "alice", sixVanilla), "", 1200, 10000 - 1200},
		{"exactly the credit", order("o-1", "alice", events.Item{Flavour: "lemon", Size: "L", Quantity: 40}), "", 10000, 0},
		{"over the credit", order("o-1", "alice", events.Item{Flavour: "lemon", Size: "XL", Quantity: 34}), events.ReasonInsufficientCredit, 10200, 10000},
		{"unknown customer", order("o-1", "bob", sixVanilla), events.ReasonUnknownCustomer, 1200, 10000},
		{"items that cannot be priced", order("o-1", "alice", events.Item{Flavour: "mint", Size: "M", Quantity: 1}), events.ReasonInvalidOrder, 0, 10000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := fntest.Store(t)
			if _, err := New(s).Handle(context.Background(), fntest.Event(t, events.TypeOrderCreated, "o-1", tt.data)); err != nil {
				t.Fatal(err)
			}
			valid := tt.wantReason == ""

			o := fntest.Order(t, s, "o-1")
			wantReserved := int64(0)
			if valid {
				wantReserved = tt.wantAmount
			}
			if o.Status != events.StatusCreated || o.CustomerID != tt.data.CustomerID || o.Refused != tt.wantReason ||
				o.Amount != tt.wantAmount || o.Reserved != wantReserved || len(o.History) != 1 {
				t.Errorf("order %s for %s, refused %q, amount %d, reserved %d, %d steps; want created for %s, refused %q, amount %d, reserved %d, 1 step",
					o.Status, o.CustomerID, o.Refused, o.Amount, o.Reserved, len(o.History), tt.data.CustomerID, tt.wantReason, tt.wantAmount, wantReserved)
			}
			if tt.wantReason == events.ReasonInvalidOrder && len(o.Items) != 0 {
				t.Errorf("the record keeps items it cannot price: %v", o.Items)
			}

			// One write: the order, its notification and its verdict.
			emitted := fntest.Emitted(t, s, "o-1")
			if got, want := fntest.Types(emitted), []string{events.TypeStatusChanged, events.TypeCreditValidated}; !slices.Equal(got, want) {
				t.Fatalf("emitted %v, want %v", got, want)
			}
			if u := fntest.Data[events.OrderUpdate](t, emitted[0]); u.OrderID != "o-1" || u.Status != events.StatusCreated || u.Previous != "" {
				t.Errorf("status-changed %+v, want o-1 created", u)
			}
			reply := emitted[1]
			if reply.Subject() != "o-1" || reply.Extensions()[events.ExtPartitionKey] != "o-1" || reply.Source() != Source {
				t.Errorf("credit-validated subject %q, partitionkey %v, source %q", reply.Subject(), reply.Extensions()[events.ExtPartitionKey], reply.Source())
			}
			want := events.CreditValidated{OrderID: "o-1", CustomerID: tt.data.CustomerID, Amount: tt.wantAmount, Valid: valid, Reason: tt.wantReason}
			if got := fntest.Data[events.CreditValidated](t, reply); got != want {
				t.Errorf("credit-validated %+v, want %+v", got, want)
			}

			c, _ := s.Customer(context.Background(), "alice")
			r, held := c.Reservation("o-1")
			if c.Available != tt.wantAvailable || held != valid || (valid && r.Amount != tt.wantAmount) {
				t.Errorf("alice has %d available, reservation %+v (%v); want %d available, reserved %v",
					c.Available, r, held, tt.wantAvailable, valid)
			}
		})
	}
}

func TestHandleRefusesEventsWithoutUsableIDsAndWritesNothing(t *testing.T) {
	tests := []struct {
		name    string
		subject string
		data    any
	}{
		{"no order id", "o-1", order("", "alice", sixVanilla)},
		{"no customer id", "o-1", order("o-1", "", sixVanilla)},
		{"bad customer id", "o-1", order("o-1", "a b", sixVanilla)},
		{"not an order", "o-1", map[string]int{"orderId": 1}},
		{"subject names another order", "o-2", order("o-1", "alice", sixVanilla)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := fntest.Store(t)
			_, err := New(s).Handle(context.Background(), fntest.Event(t, events.TypeOrderCreated, tt.subject, tt.data))
			if domain.KindOf(err) != domain.KindInvalid {
				t.Fatalf("err = %v, want invalid", err)
			}
			if page, _ := s.Orders(context.Background(), domain.OrderQuery{Limit: 10}); len(page.Orders) != 0 {
				t.Errorf("wrote %d orders", len(page.Orders))
			}
			if got := fntest.Available(t, s, "alice"); got != 10000 {
				t.Errorf("alice has %d available, want 10000", got)
			}
		})
	}
}

func TestTheSameOrderCreatedTwiceHasOneEffect(t *testing.T) {
	tests := []struct {
		name     string
		sameData events.OrderCreated
		newEvent bool // the second comes as another event (a client retrying), not a redelivery
	}{
		{"the same event redelivered", order("o-1", "alice", sixVanilla), false},
		{"the same order posted again", order("o-1", "alice", sixVanilla), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := fntest.Store(t)
			f := New(s)
			e := fntest.Event(t, events.TypeOrderCreated, "o-1", tt.sameData)
			if _, err := f.Handle(context.Background(), e); err != nil {
				t.Fatal(err)
			}
			first := fntest.Order(t, s, "o-1")
			if tt.newEvent {
				e = fntest.Event(t, events.TypeOrderCreated, "o-1", tt.sameData)
			}
			if _, err := f.Handle(context.Background(), e); err != nil {
				t.Fatal(err)
			}
			again := fntest.Order(t, s, "o-1")
			if len(again.History) != 1 || len(again.Outbox) != len(first.Outbox) {
				t.Errorf("after the second: %d steps and %d messages, want 1 step and the first's %d messages",
					len(again.History), len(again.Outbox), len(first.Outbox))
			}
			c, _ := s.Customer(context.Background(), "alice")
			if c.Available != 10000-1200 || len(c.Reservations) != 1 {
				t.Errorf("available %d with %d reservations, want one reservation of 1200", c.Available, len(c.Reservations))
			}
		})
	}
}

// Knative redelivers an order.created whose reply it lost (the dispatcher
// timed out after the write): the credit-validated reply comes again, with
// the same id, and nothing else happens; once the order moved on, nothing.
func TestARedeliveredOrderCreatedEmitsItsLostReplyAgainUntilTheOrderMovesOn(t *testing.T) {
	ctx := context.Background()
	s := fntest.Store(t)
	f := New(s)
	e := fntest.Event(t, events.TypeOrderCreated, "o-1", order("o-1", "alice", sixVanilla))
	if _, err := f.Handle(ctx, e); err != nil {
		t.Fatal(err)
	}
	first := fntest.Order(t, s, "o-1")
	reply := first.Outbox[len(first.Outbox)-1]
	if reply.Type != events.TypeCreditValidated {
		t.Fatalf("first reply %s; want %s", reply.Type, events.TypeCreditValidated)
	}
	clear := func(move func(*domain.Order) error) {
		t.Helper()
		if _, err := s.UpdateOrder(ctx, "o-1", func(o *domain.Order) error { o.Outbox = nil; return move(o) }); err != nil {
			t.Fatal(err)
		}
	}
	clear(func(*domain.Order) error { return nil })
	if _, err := f.Handle(ctx, e); err != nil {
		t.Fatal(err)
	}
	again := fntest.Order(t, s, "o-1")
	if len(again.Outbox) != 1 || len(again.History) != 1 {
		t.Fatalf("after the redelivery: %d messages, %d steps; want the reply alone, 1 step", len(again.Outbox), len(again.History))
	}
	if r := again.Outbox[0]; r.ID != reply.ID || r.Data != reply.Data {
		t.Errorf("replayed %s %s; want the first reply %s %s", r.ID, r.Data, reply.ID, reply.Data)
	}
	if c, _ := s.Customer(ctx, "alice"); c.Available != 10000-1200 {
		t.Errorf("available %d after the redelivery, want 8800 (reserved once)", c.Available)
	}
	clear(func(o *domain.Order) error {
		return o.Apply(domain.To(events.StatusApproved, "test", "", "test verdict", time.Now()))
	})
	if _, err := f.Handle(ctx, e); err != nil {
		t.Fatal(err)
	}
	for _, m := range fntest.Order(t, s, "o-1").Outbox {
		if m.Type == events.TypeCreditValidated {
			t.Errorf("redelivered after the order moved on: %s emitted again, want nothing", m.Type)
		}
	}
}

// A crash after the reservation and before the order was recorded: the
// event comes again and finds the reservation made, and records the order.
func TestARedeliveryAfterACrashFindsTheReservationMade(t *testing.T) {
	s := fntest.Store(t)
	if _, err := s.UpdateCustomer(context.Background(), "alice", func(c *domain.Customer) error { return c.Reserve("o-1", 1200) }); err != nil {
		t.Fatal(err)
	}
	if _, err := New(s).Handle(context.Background(), fntest.Event(t, events.TypeOrderCreated, "o-1", order("o-1", "alice", sixVanilla))); err != nil {
		t.Fatal(err)
	}
	o := fntest.Order(t, s, "o-1")
	if o.Refused != "" || o.Reserved != 1200 {
		t.Errorf("order refused %q, reserved %d; want reserved 1200", o.Refused, o.Reserved)
	}
	c, _ := s.Customer(context.Background(), "alice")
	if c.Available != 10000-1200 || len(c.Reservations) != 1 {
		t.Errorf("available %d with %d reservations, want one reservation of 1200", c.Available, len(c.Reservations))
	}
}

func TestAnOrderIDReusedForOtherContentIsAConflictAndChangesNothing(t *testing.T) {
	tiny := events.Item{Flavour: "lemon", Size: "S", Quantity: 1}
	tooMuch := events.Item{Flavour: "lemon", Size: "XL", Quantity: 34}
	tests := []struct {
		name          string
		first, second events.OrderCreated
	}{
		{"other items", order("o-1", "alice", sixVanilla), order("o-1", "alice", tiny)},
		{"another customer", order("o-1", "alice", sixVanilla), order("o-1", "bob", sixVanilla)},
		// The first was refused credit: the id cannot be reused to get some.
		{"after a refusal, items that fit the credit", order("o-1", "alice", tooMuch), order("o-1", "alice", tiny)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := fntest.Store(t)
			f := New(s)
			if _, err := f.Handle(context.Background(), fntest.Event(t, events.TypeOrderCreated, "o-1", tt.first)); err != nil {
				t.Fatal(err)
			}
			before := fntest.Order(t, s, "o-1")
			credit, _ := s.Customer(context.Background(), "alice")

			_, err := f.Handle(context.Background(), fntest.Event(t, events.TypeOrderCreated, "o-1", tt.second))
			if domain.KindOf(err) != domain.KindConflict {
				t.Fatalf("err = %v, want conflict", err)
			}
			after := fntest.Order(t, s, "o-1")
			if fmt.Sprint(after.Items, after.CustomerID, after.History, after.Refused, after.Reserved, len(after.Outbox)) !=
				fmt.Sprint(before.Items, before.CustomerID, before.History, before.Refused, before.Reserved, len(before.Outbox)) {
				t.Errorf("order changed:\n%+v\nwas\n%+v", after, before)
			}
			c, _ := s.Customer(context.Background(), "alice")
			if c.Available != credit.Available || len(c.Reservations) != len(credit.Reservations) {
				t.Errorf("alice went from %d available (%d reservations) to %d (%d)",
					credit.Available, len(credit.Reservations), c.Available, len(c.Reservations))
			}
		})
	}
}

func TestAnOrderAlreadyDecidedIsNotReservedAgain(t *testing.T) {
	s := fntest.Store(t)
	fntest.OrderIn(t, s, "o-1", events.StatusCancelled)
	before := fntest.Available(t, s, "alice")
	if _, err := New(s).Handle(context.Background(), fntest.Event(t, events.TypeOrderCreated, "o-1", order("o-1", "alice", sixVanilla))); err != nil {
		t.Fatalf("err %v, want nothing to do", err)
	}
	if after := fntest.Available(t, s, "alice"); after != before {
		t.Errorf("available changed from %d to %d", before, after)
	}
	o := fntest.Order(t, s, "o-1")
	if o.Status != events.StatusCancelled || len(o.Outbox) != 0 {
		t.Errorf("order %s with %d messages, want cancelled with nothing emitted", o.Status, len(o.Outbox))
	}
}

// gated holds each CreateOrder until the test lets it through: refused
// orders on refused, reserved ones on reserved. arrived says one is held.
type gated struct {
	Store
	arrived           chan struct{}
	refused, reserved chan struct{}
}

func (g *gated) CreateOrder(ctx context.Context, o domain.Order) (domain.Order, bool, error) {
	g.arrived <- struct{}{}
	if o.Refused != "" {
		<-g.refused
	} else {
		<-g.reserved
	}
	return g.Store.CreateOrder(ctx, o)
}

// Two deliveries for one order id race: one is refused credit and records
// the order first, the other reserved credit meanwhile and finds the order
// recorded. Its reservation belongs to no order and must be given back, or
// the customer's credit stays taken for ever.
func TestARaceLostAfterReservingGivesTheCreditBack(t *testing.T) {
	tiny := events.Item{Flavour: "lemon", Size: "S", Quantity: 1}
	tests := []struct {
		name string
		// refusedFirst is refused credit and records the order first;
		// reserving reserves credit (after free, if set, gave some back)
		// and finds the order recorded.
		refusedFirst, reserving events.OrderCreated
		before, free            func(*domain.Customer) error
		wantErr                 domain.Kind // of the delivery that reserved
	}{
		{
			name:         "the id reused for an unknown customer",
			refusedFirst: order("o-1", "bob", sixVanilla),
			reserving:    order("o-1", "alice", tiny),
			wantErr:      domain.KindConflict,
		},
		{
			name:         "the same order, credit freed between the deliveries",
			refusedFirst: order("o-1", "alice", sixVanilla),
			reserving:    order("o-1", "alice", sixVanilla),
			before:       func(c *domain.Customer) error { return c.Reserve("o-0", 9000) },
			free:         func(c *domain.Customer) error { c.Release("o-0"); return nil },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			s := fntest.Store(t)
			if tt.before != nil {
				if _, err := s.UpdateCustomer(ctx, "alice", tt.before); err != nil {
					t.Fatal(err)
				}
			}
			g := &gated{Store: s, arrived: make(chan struct{}), refused: make(chan struct{}), reserved: make(chan struct{})}
			f := New(g)
			handle := func(d events.OrderCreated) chan error {
				done := make(chan error, 1)
				go func() { _, err := f.Handle(ctx, fntest.Event(t, events.TypeOrderCreated, "o-1", d)); done <- err }()
				select {
				case <-g.arrived:
				case err := <-done:
					t.Fatalf("returned before recording the order: %v", err)
				case <-time.After(10 * time.Second):
					t.Fatal("never came to record the order")
				}
				return done
			}
			refusedDone := handle(tt.refusedFirst)
			if tt.free != nil {
				if _, err := s.UpdateCustomer(ctx, "alice", tt.free); err != nil {
					t.Fatal(err)
				}
			}
			reservingDone := handle(tt.reserving)
			close(g.refused)
			if err := <-refusedDone; err != nil {
				t.Fatal(err)
			}
			close(g.reserved)
			if err := <-reservingDone; domain.KindOf(err) != tt.wantErr && !(tt.wantErr == "" && err == nil) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}

			o := fntest.Order(t, s, "o-1")
			c, _ := s.Customer(ctx, "alice")
			if r, held := c.Reservation("o-1"); held && o.Reserved != r.Amount {
				t.Errorf("alice's %d cents are held for order o-1, which is recorded for %s holding %d (refused %q)",
					r.Amount, o.CustomerID, o.Reserved, o.Refused)
			}
			if c.Available != 10000 {
				t.Errorf("alice has %d available, want all 10000 back", c.Available)
			}
		})
	}
}
