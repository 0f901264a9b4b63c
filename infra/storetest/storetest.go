// Package storetest is the conformance suite of domain.Store: the same
// tests, run against every implementation (the embedded store in
// infra/bolt, the MongoDB store in tests/mongo), pin down the behaviour the
// functions rely on, edge cases included.
package storetest

import (
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/cupcake-factory/cupcake-factory/domain"
	"github.com/cupcake-factory/cupcake-factory/events"
)

// Open returns an empty store for one test. It should close the store when
// the test ends (t.Cleanup).
type Open func(t *testing.T) domain.Store

// Run runs the whole suite; each subtest gets a store of its own.
func Run(t *testing.T, open Open) {
	t.Run("Customers", func(t *testing.T) { customers(t, open) })
	t.Run("Credit", func(t *testing.T) { credit(t, open) })
	t.Run("Orders", func(t *testing.T) { orders(t, open) })
	t.Run("Advance", func(t *testing.T) { advance(t, open) })
	t.Run("Processed", func(t *testing.T) { processed(t, open) })
	t.Run("Ping", func(t *testing.T) {
		if err := open(t).Ping(t.Context()); err != nil {
			t.Fatalf("Ping: %v", err)
		}
	})
}

var t0 = time.Date(2025, 3, 14, 9, 26, 53, 589_000_000, time.UTC)

func newCustomer(id string, limit int64) domain.Customer {
	return domain.Customer{ID: id, Name: "Customer " + id, CreditLimit: limit, Available: limit, CreatedAt: t0, UpdatedAt: t0}
}

func mustCreateCustomer(t *testing.T, s domain.Store, id string, limit int64) {
	t.Helper()
	if _, err := s.CreateCustomer(t.Context(), newCustomer(id, limit)); err != nil {
		t.Fatalf("CreateCustomer %s: %v", id, err)
	}
}

func mustCustomer(t *testing.T, s domain.Store, id string) domain.Customer {
	t.Helper()
	c, err := s.Customer(t.Context(), id)
	if err != nil {
		t.Fatalf("Customer %s: %v", id, err)
	}
	return c
}

// wantCredit checks a customer's limit, available credit and the orders
// holding credit.
func wantCredit(t *testing.T, s domain.Store, id string, limit, available int64, reservations ...domain.Reservation) {
	t.Helper()
	c := mustCustomer(t, s, id)
	if c.CreditLimit != limit || c.Available != available {
		t.Errorf("customer %s: creditLimit %d, availableCredit %d; want %d, %d", id, c.CreditLimit, c.Available, limit, available)
	}
	if len(c.Reservations) != 0 || len(reservations) != 0 {
		if !reflect.DeepEqual(c.Reservations, reservations) {
			t.Errorf("customer %s: reservations %+v; want %+v", id, c.Reservations, reservations)
		}
	}
}

func wantKind(t *testing.T, what string, err error, k domain.Kind) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: no error; want a %s error", what, k)
	}
	if got := domain.KindOf(err); got != k {
		t.Fatalf("%s: error %q is %s; want %s", what, err, got, k)
	}
}

func customers(t *testing.T, open Open) {
	t.Run("CreateThenGetReturnsTheSameCustomer", func(t *testing.T) {
		s := open(t)
		want := newCustomer("alice", 50_000)
		got, err := s.CreateCustomer(t.Context(), want)
		if err != nil {
			t.Fatalf("CreateCustomer: %v", err)
		}
		if got.ID != want.ID || got.CreditLimit != want.CreditLimit {
			t.Errorf("CreateCustomer returned %+v; want %+v", got, want)
		}
		read := mustCustomer(t, s, "alice")
		if read.ID != want.ID || read.Name != want.Name || read.CreditLimit != want.CreditLimit ||
			read.Available != want.Available || len(read.Reservations) != 0 ||
			!read.CreatedAt.Equal(want.CreatedAt) || !read.UpdatedAt.Equal(want.UpdatedAt) {
			t.Errorf("Customer returned %+v; want %+v", read, want)
		}
	})

	t.Run("CreatingAnExistingIDIsAConflictAndKeepsTheFirst", func(t *testing.T) {
		s := open(t)
		mustCreateCustomer(t, s, "alice", 50_000)
		other := newCustomer("alice", 1)
		other.Name = "Mallory"
		_, err := s.CreateCustomer(t.Context(), other)
		wantKind(t, "second CreateCustomer", err, domain.KindConflict)
		if c := mustCustomer(t, s, "alice"); c.Name != "Customer alice" || c.CreditLimit != 50_000 {
			t.Errorf("the first customer changed: %+v", c)
		}
	})

	t.Run("UnknownCustomerIsNotFound", func(t *testing.T) {
		_, err := open(t).Customer(t.Context(), "nobody")
		wantKind(t, "Customer", err, domain.KindNotFound)
	})

	t.Run("SetCreditLimit", func(t *testing.T) {
		// Each case starts from a limit of 1000 with 300 reserved by o-1.
		cases := []struct {
			name          string
			id            string
			limit         int64
			wantKind      domain.Kind // "" for success
			wantLimit     int64
			wantAvailable int64
		}{
			{name: "RaiseKeepsReservations", id: "alice", limit: 5000, wantLimit: 5000, wantAvailable: 4700},
			{name: "LowerAboveReserved", id: "alice", limit: 500, wantLimit: 500, wantAvailable: 200},
			{name: "LowerToExactlyReserved", id: "alice", limit: 300, wantLimit: 300, wantAvailable: 0},
			{name: "BelowReservedIsRefused", id: "alice", limit: 299, wantKind: domain.KindConflict, wantLimit: 1000, wantAvailable: 700},
			{name: "ToZeroWithReservationsIsRefused", id: "alice", limit: 0, wantKind: domain.KindConflict, wantLimit: 1000, wantAvailable: 700},
			{name: "UnknownCustomerIsNotFound", id: "nobody", limit: 100, wantKind: domain.KindNotFound, wantLimit: 1000, wantAvailable: 700},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				s := open(t)
				mustCreateCustomer(t, s, "alice", 1000)
				if err := s.ReserveCredit(t.Context(), "alice", "o-1", 300); err != nil {
					t.Fatalf("ReserveCredit: %v", err)
				}
				c, err := s.SetCreditLimit(t.Context(), tc.id, tc.limit)
				if tc.wantKind != "" {
					wantKind(t, "SetCreditLimit", err, tc.wantKind)
				} else {
					if err != nil {
						t.Fatalf("SetCreditLimit: %v", err)
					}
					if c.CreditLimit != tc.wantLimit || c.Available != tc.wantAvailable {
						t.Errorf("SetCreditLimit returned limit %d, available %d; want %d, %d",
							c.CreditLimit, c.Available, tc.wantLimit, tc.wantAvailable)
					}
				}
				wantCredit(t, s, "alice", tc.wantLimit, tc.wantAvailable, domain.Reservation{OrderID: "o-1", Amount: 300})
				// The reservation still releases in full.
				if ok, err := s.ReleaseCredit(t.Context(), "alice", "o-1"); !ok || err != nil {
					t.Fatalf("ReleaseCredit after SetCreditLimit: %v, %v", ok, err)
				}
				wantCredit(t, s, "alice", tc.wantLimit, tc.wantLimit)
			})
		}
	})
}

func credit(t *testing.T, open Open) {
	t.Run("ReserveTakesTheAmountOncePerOrder", func(t *testing.T) {
		s := open(t)
		mustCreateCustomer(t, s, "alice", 1000)
		for i := range 3 {
			if err := s.ReserveCredit(t.Context(), "alice", "o-1", 300); err != nil {
				t.Fatalf("ReserveCredit #%d: %v", i+1, err)
			}
		}
		wantCredit(t, s, "alice", 1000, 700, domain.Reservation{OrderID: "o-1", Amount: 300})
	})

	t.Run("ReserveOncePerOrderAmongOtherReservations", func(t *testing.T) {
		s := open(t)
		mustCreateCustomer(t, s, "alice", 1000)
		for _, o := range []string{"o-1", "o-2", "o-3", "o-1", "o-3", "o-2"} {
			if err := s.ReserveCredit(t.Context(), "alice", o, 100); err != nil {
				t.Fatalf("ReserveCredit %s: %v", o, err)
			}
		}
		wantCredit(t, s, "alice", 1000, 700, domain.Reservation{OrderID: "o-1", Amount: 100},
			domain.Reservation{OrderID: "o-2", Amount: 100}, domain.Reservation{OrderID: "o-3", Amount: 100})
		// An order holding credit is not refused for lack of credit.
		if err := s.ReserveCredit(t.Context(), "alice", "o-4", 700); err != nil {
			t.Fatal(err)
		}
		if err := s.ReserveCredit(t.Context(), "alice", "o-2", 100); err != nil {
			t.Fatalf("ReserveCredit again with nothing left: %v", err)
		}
		wantCredit(t, s, "alice", 1000, 0, domain.Reservation{OrderID: "o-1", Amount: 100},
			domain.Reservation{OrderID: "o-2", Amount: 100}, domain.Reservation{OrderID: "o-3", Amount: 100},
			domain.Reservation{OrderID: "o-4", Amount: 700})
	})

	t.Run("ReserveForSeveralOrdersDownToZero", func(t *testing.T) {
		s := open(t)
		mustCreateCustomer(t, s, "alice", 1000)
		for _, r := range []struct {
			order  string
			amount int64
		}{{"o-1", 300}, {"o-2", 700}} {
			if err := s.ReserveCredit(t.Context(), "alice", r.order, r.amount); err != nil {
				t.Fatalf("ReserveCredit %s: %v", r.order, err)
			}
		}
		wantCredit(t, s, "alice", 1000, 0,
			domain.Reservation{OrderID: "o-1", Amount: 300}, domain.Reservation{OrderID: "o-2", Amount: 700})
		err := s.ReserveCredit(t.Context(), "alice", "o-3", 1)
		if !errors.Is(err, domain.ErrInsufficientCredit) {
			t.Fatalf("ReserveCredit with nothing left: %v; want ErrInsufficientCredit", err)
		}
	})

	t.Run("InsufficientCreditIsRefusedAndChangesNothing", func(t *testing.T) {
		s := open(t)
		mustCreateCustomer(t, s, "alice", 1000)
		if err := s.ReserveCredit(t.Context(), "alice", "o-1", 600); err != nil {
			t.Fatal(err)
		}
		err := s.ReserveCredit(t.Context(), "alice", "o-2", 401)
		if !errors.Is(err, domain.ErrInsufficientCredit) {
			t.Fatalf("ReserveCredit: %v; want ErrInsufficientCredit", err)
		}
		wantKind(t, "ReserveCredit", err, domain.KindConflict)
		wantCredit(t, s, "alice", 1000, 400, domain.Reservation{OrderID: "o-1", Amount: 600})
	})

	t.Run("UnknownCustomerIsRefused", func(t *testing.T) {
		s := open(t)
		err := s.ReserveCredit(t.Context(), "nobody", "o-1", 100)
		if !errors.Is(err, domain.ErrUnknownCustomer) {
			t.Fatalf("ReserveCredit: %v; want ErrUnknownCustomer", err)
		}
		wantKind(t, "ReserveCredit", err, domain.KindNotFound)
	})

	t.Run("ReleaseGivesBackOnce", func(t *testing.T) {
		s := open(t)
		mustCreateCustomer(t, s, "alice", 1000)
		for _, o := range []string{"o-1", "o-2"} {
			if err := s.ReserveCredit(t.Context(), "alice", o, 200); err != nil {
				t.Fatal(err)
			}
		}
		ok, err := s.ReleaseCredit(t.Context(), "alice", "o-1")
		if err != nil || !ok {
			t.Fatalf("first ReleaseCredit: %v, %v; want true, nil", ok, err)
		}
		wantCredit(t, s, "alice", 1000, 800, domain.Reservation{OrderID: "o-2", Amount: 200})
		ok, err = s.ReleaseCredit(t.Context(), "alice", "o-1")
		if err != nil || ok {
			t.Fatalf("second ReleaseCredit: %v, %v; want false, nil", ok, err)
		}
		wantCredit(t, s, "alice", 1000, 800, domain.Reservation{OrderID: "o-2", Amount: 200})
	})

	t.Run("ReleaseOfAnOrderHoldingNothingChangesNothing", func(t *testing.T) {
		s := open(t)
		mustCreateCustomer(t, s, "alice", 1000)
		ok, err := s.ReleaseCredit(t.Context(), "alice", "o-9")
		if err != nil || ok {
			t.Fatalf("ReleaseCredit: %v, %v; want false, nil", ok, err)
		}
		wantCredit(t, s, "alice", 1000, 1000)
	})

	t.Run("ReleaseForUnknownCustomerIsNotFound", func(t *testing.T) {
		_, err := open(t).ReleaseCredit(t.Context(), "nobody", "o-1")
		wantKind(t, "ReleaseCredit", err, domain.KindNotFound)
	})

	t.Run("AfterReleaseTheOrderCanReserveAgain", func(t *testing.T) {
		s := open(t)
		mustCreateCustomer(t, s, "alice", 1000)
		if err := s.ReserveCredit(t.Context(), "alice", "o-1", 400); err != nil {
			t.Fatal(err)
		}
		if _, err := s.ReleaseCredit(t.Context(), "alice", "o-1"); err != nil {
			t.Fatal(err)
		}
		if err := s.ReserveCredit(t.Context(), "alice", "o-1", 500); err != nil {
			t.Fatal(err)
		}
		wantCredit(t, s, "alice", 1000, 500, domain.Reservation{OrderID: "o-1", Amount: 500})
	})
}

var (
	vanilla6 = []events.Item{{Flavour: "vanilla", Size: "M", Quantity: 6}}
	mixed2   = []events.Item{{Flavour: "lemon", Size: "S", Quantity: 2}, {Flavour: "carrot", Size: "XL", Quantity: 1}}
)

func newOrder(id, customer string, items []events.Item, at time.Time) domain.Order {
	return domain.NewOrder(events.OrderCreated{OrderID: id, CustomerID: customer, Items: items},
		"test/"+id+"-created", at)
}

func mustCreateOrder(t *testing.T, s domain.Store, o domain.Order) domain.Order {
	t.Helper()
	got, created, err := s.CreateOrder(t.Context(), o)
	if err != nil || !created {
		t.Fatalf("CreateOrder %s: created %v, %v", o.ID, created, err)
	}
	return got
}

func mustOrder(t *testing.T, s domain.Store, id string) domain.Order {
	t.Helper()
	o, err := s.Order(t.Context(), id)
	if err != nil {
		t.Fatalf("Order %s: %v", id, err)
	}
	return o
}

// normalised makes two records of the same order deeply comparable: times
// in UTC, empty lists as nil.
func normalised(o domain.Order) domain.Order {
	o.CreatedAt, o.UpdatedAt = o.CreatedAt.UTC(), o.UpdatedAt.UTC()
	if len(o.Items) == 0 {
		o.Items = nil
	}
	if len(o.History) == 0 {
		o.History = nil
	}
	h := make([]domain.Step, len(o.History))
	for i, s := range o.History {
		s.At = s.At.UTC()
		h[i] = s
	}
	if o.History != nil {
		o.History = h
	}
	return o
}

func wantOrder(t *testing.T, what string, got, want domain.Order) {
	t.Helper()
	if g, w := normalised(got), normalised(want); !reflect.DeepEqual(g, w) {
		t.Errorf("%s:\n got  %+v\n want %+v", what, g, w)
	}
}

func orders(t *testing.T, open Open) {
	t.Run("CreateThenGetReturnsTheSameOrder", func(t *testing.T) {
		s := open(t)
		want := newOrder("o-1", "alice", mixed2, t0)
		got := mustCreateOrder(t, s, want)
		wantOrder(t, "CreateOrder", got, want)
		wantOrder(t, "Order", mustOrder(t, s, "o-1"), want)
	})

	t.Run("AnOrderWithoutItemsIsKept", func(t *testing.T) {
		// order-created records an order whose items it cannot price
		// without them, and answers it as invalid.
		s := open(t)
		want := newOrder("o-1", "alice", nil, t0)
		mustCreateOrder(t, s, want)
		wantOrder(t, "Order", mustOrder(t, s, "o-1"), want)
		if _, created, err := s.CreateOrder(t.Context(), newOrder("o-1", "alice", nil, t0.Add(time.Second))); err != nil || created {
			t.Fatalf("the same order again: created %v, %v; want false, nil", created, err)
		}
	})

	t.Run("CreatingTheSameOrderTwiceHasOneEffect", func(t *testing.T) {
		s := open(t)
		first := newOrder("o-1", "alice", vanilla6, t0)
		mustCreateOrder(t, s, first)
		if _, err := s.Advance(t.Context(), "o-1", domain.To(events.StatusApproved, "x", "", "test/a", t0)); err != nil {
			t.Fatal(err)
		}
		stored := mustOrder(t, s, "o-1")
		again := newOrder("o-1", "alice", vanilla6, t0.Add(time.Hour))
		got, created, err := s.CreateOrder(t.Context(), again)
		if err != nil || created {
			t.Fatalf("second CreateOrder: created %v, %v; want false, nil", created, err)
		}
		wantOrder(t, "second CreateOrder returns the stored order", got, stored)
		wantOrder(t, "stored order", mustOrder(t, s, "o-1"), stored)
	})

	t.Run("ReusingAnIDWithOtherContentIsAConflict", func(t *testing.T) {
		cases := []struct {
			name  string
			other domain.Order
		}{
			{"OtherCustomer", newOrder("o-1", "bob", vanilla6, t0)},
			{"OtherItems", newOrder("o-1", "alice", mixed2, t0)},
			{"NoItems", newOrder("o-1", "alice", nil, t0)},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				s := open(t)
				first := newOrder("o-1", "alice", vanilla6, t0)
				mustCreateOrder(t, s, first)
				_, created, err := s.CreateOrder(t.Context(), tc.other)
				if created {
					t.Error("created is true")
				}
				wantKind(t, "CreateOrder", err, domain.KindConflict)
				wantOrder(t, "stored order", mustOrder(t, s, "o-1"), first)
			})
		}
	})

	t.Run("UnknownOrderIsNotFound", func(t *testing.T) {
		_, err := open(t).Order(t.Context(), "o-404")
		wantKind(t, "Order", err, domain.KindNotFound)
	})

	t.Run("OrdersListsAStateOldestFirst", func(t *testing.T) {
		s := open(t)
		// Created out of time order; o-c and o-d at the same time.
		for _, o := range []struct {
			id  string
			min int
		}{{"o-b", 2}, {"o-a", 3}, {"o-d", 1}, {"o-c", 1}, {"o-e", 4}, {"o-f", 0}} {
			mustCreateOrder(t, s, newOrder(o.id, "alice", vanilla6, t0.Add(time.Duration(o.min)*time.Minute)))
		}
		for _, id := range []string{"o-a", "o-e"} {
			if _, err := s.Advance(t.Context(), id, domain.To(events.StatusApproved, "x", "", "test/"+id, t0)); err != nil {
				t.Fatal(err)
			}
		}
		cases := []struct {
			status string
			limit  int
			want   []string
		}{
			{"", 0, []string{"o-f", "o-c", "o-d", "o-b", "o-a", "o-e"}},
			{events.StatusCreated, 0, []string{"o-f", "o-c", "o-d", "o-b"}},
			{events.StatusCreated, 2, []string{"o-f", "o-c"}},
			{events.StatusApproved, 0, []string{"o-a", "o-e"}},
			{events.StatusApproved, 10, []string{"o-a", "o-e"}},
			{events.StatusShipped, 0, nil},
		}
		for _, tc := range cases {
			t.Run(fmt.Sprintf("status=%q,limit=%d", tc.status, tc.limit), func(t *testing.T) {
				list, err := s.Orders(t.Context(), tc.status, tc.limit)
				if err != nil {
					t.Fatalf("Orders: %v", err)
				}
				var ids []string
				for _, o := range list {
					ids = append(ids, o.ID)
					if tc.status != "" && o.Status != tc.status {
						t.Errorf("order %s is %s", o.ID, o.Status)
					}
				}
				if !reflect.DeepEqual(ids, tc.want) {
					t.Errorf("Orders(%q, %d) = %v; want %v", tc.status, tc.limit, ids, tc.want)
				}
			})
		}
	})
}

// the happy path, in order.
var forward = []string{
	events.StatusApproved, events.StatusMixed, events.StatusBaked,
	events.StatusDecorated, events.StatusPackaged, events.StatusShipped,
}

// orderIn creates o-1 and advances it to status along the happy path.
func orderIn(t *testing.T, s domain.Store, status string) domain.Order {
	t.Helper()
	o := mustCreateOrder(t, s, newOrder("o-1", "alice", vanilla6, t0))
	for i, st := range forward {
		if o.Status == status {
			break
		}
		var err error
		o, err = s.Advance(t.Context(), "o-1", domain.To(st, "station", "", fmt.Sprintf("test/step-%d", i), t0.Add(time.Duration(i+1)*time.Second)))
		if err != nil {
			t.Fatalf("Advance to %s: %v", st, err)
		}
	}
	if o.Status != status {
		t.Fatalf("could not bring the order to %s", status)
	}
	return o
}

func advance(t *testing.T, open Open) {
	t.Run("HappyPathThroughEveryState", func(t *testing.T) {
		s := open(t)
		want := mustCreateOrder(t, s, newOrder("o-1", "alice", vanilla6, t0))
		for i, st := range forward {
			tr := domain.To(st, "station-"+st, "", "test/e-"+st, t0.Add(time.Duration(i+1)*time.Minute))
			if err := want.Apply(tr); err != nil {
				t.Fatal(err)
			}
			got, err := s.Advance(t.Context(), "o-1", tr)
			if err != nil {
				t.Fatalf("Advance to %s: %v", st, err)
			}
			wantOrder(t, "Advance to "+st, got, want)
			wantOrder(t, "Order after "+st, mustOrder(t, s, "o-1"), want)
		}
		if n := len(want.History); n != 1+len(forward) {
			t.Errorf("history has %d steps; want %d", n, 1+len(forward))
		}
	})

	t.Run("CancelRecordsTheReason", func(t *testing.T) {
		s := open(t)
		mustCreateOrder(t, s, newOrder("o-1", "alice", vanilla6, t0))
		got, err := s.Advance(t.Context(), "o-1", domain.To(events.StatusCancelled, "order-created", events.ReasonInsufficientCredit, "test/v", t0))
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != events.StatusCancelled || got.Reason != events.ReasonInsufficientCredit {
			t.Errorf("status %s, reason %q", got.Status, got.Reason)
		}
		last := got.History[len(got.History)-1]
		if last.Status != events.StatusCancelled || last.Reason != events.ReasonInsufficientCredit || last.Event != "test/v" {
			t.Errorf("last step %+v", last)
		}
		wantOrder(t, "stored", mustOrder(t, s, "o-1"), got)
	})

	t.Run("WrongStateIsRefusedAndChangesNothing", func(t *testing.T) {
		cases := []struct{ from, to string }{
			{events.StatusCreated, events.StatusMixed},
			{events.StatusCreated, events.StatusShipped},
			{events.StatusCreated, events.StatusFailed},
			{events.StatusApproved, events.StatusApproved},
			{events.StatusApproved, events.StatusCancelled},
			{events.StatusMixed, events.StatusDecorated},
			{events.StatusShipped, events.StatusFailed},
			{events.StatusShipped, events.StatusMixed},
		}
		for _, tc := range cases {
			t.Run(tc.from+"->"+tc.to, func(t *testing.T) {
				s := open(t)
				before := orderIn(t, s, tc.from)
				got, err := s.Advance(t.Context(), "o-1", domain.To(tc.to, "x", "why", "test/wrong", t0.Add(time.Hour)))
				wantKind(t, "Advance", err, domain.KindConflict)
				if errors.Is(err, domain.ErrDuplicate) {
					t.Errorf("error %v is ErrDuplicate", err)
				}
				wantOrder(t, "order returned with the error", got, before)
				wantOrder(t, "stored order", mustOrder(t, s, "o-1"), before)
			})
		}
	})

	t.Run("CancelledAndFailedAreFinal", func(t *testing.T) {
		for _, end := range []string{events.StatusCancelled, events.StatusFailed} {
			t.Run(end, func(t *testing.T) {
				s := open(t)
				from := events.StatusCreated
				if end == events.StatusFailed {
					from = events.StatusMixed
				}
				orderIn(t, s, from)
				before, err := s.Advance(t.Context(), "o-1", domain.To(end, "x", "r", "test/end", t0))
				if err != nil {
					t.Fatal(err)
				}
				for _, to := range append([]string{events.StatusFailed, events.StatusCancelled}, forward...) {
					_, err := s.Advance(t.Context(), "o-1", domain.To(to, "x", "", "test/after-"+to, t0))
					wantKind(t, "Advance "+end+"->"+to, err, domain.KindConflict)
				}
				wantOrder(t, "stored order", mustOrder(t, s, "o-1"), before)
			})
		}
	})

	t.Run("AnEarlierEventIsADuplicateToo", func(t *testing.T) {
		s := open(t)
		shipped := orderIn(t, s, events.StatusShipped)
		for i := range forward {
			key := fmt.Sprintf("test/step-%d", i)
			_, err := s.Advance(t.Context(), "o-1", domain.To(events.StatusFailed, "x", "", key, t0))
			if !errors.Is(err, domain.ErrDuplicate) {
				t.Fatalf("event %s again: %v; want ErrDuplicate", key, err)
			}
		}
		wantOrder(t, "stored order", mustOrder(t, s, "o-1"), shipped)
	})

	t.Run("DuplicateEventReturnsErrDuplicateAndChangesNothing", func(t *testing.T) {
		s := open(t)
		mustCreateOrder(t, s, newOrder("o-1", "alice", vanilla6, t0))
		first, err := s.Advance(t.Context(), "o-1", domain.To(events.StatusApproved, "x", "", "test/e1", t0))
		if err != nil {
			t.Fatal(err)
		}
		// The same event again, whatever transition it asks for now.
		for _, to := range []string{events.StatusApproved, events.StatusMixed, events.StatusFailed} {
			got, err := s.Advance(t.Context(), "o-1", domain.To(to, "y", "", "test/e1", t0.Add(time.Minute)))
			if !errors.Is(err, domain.ErrDuplicate) {
				t.Fatalf("Advance to %s with a seen event: %v; want ErrDuplicate", to, err)
			}
			wantOrder(t, "order returned with ErrDuplicate", got, first)
		}
		wantOrder(t, "stored order", mustOrder(t, s, "o-1"), first)
	})

	t.Run("UnknownOrderIsNotFound", func(t *testing.T) {
		_, err := open(t).Advance(t.Context(), "o-404", domain.To(events.StatusApproved, "x", "", "test/e", t0))
		wantKind(t, "Advance", err, domain.KindNotFound)
	})

	t.Run("FailFromEveryKitchenState", func(t *testing.T) {
		for _, from := range []string{events.StatusApproved, events.StatusMixed, events.StatusBaked,
			events.StatusDecorated, events.StatusPackaged} {
			t.Run(from, func(t *testing.T) {
				s := open(t)
				orderIn(t, s, from)
				got, err := s.Advance(t.Context(), "o-1", domain.To(events.StatusFailed, "baker", "oven broke", "test/fail", t0.Add(time.Hour)))
				if err != nil {
					t.Fatalf("fail from %s: %v", from, err)
				}
				if got.Status != events.StatusFailed || got.Reason != "oven broke" || !got.UpdatedAt.Equal(t0.Add(time.Hour)) {
					t.Errorf("failed order: status %s, reason %q, updatedAt %v", got.Status, got.Reason, got.UpdatedAt)
				}
				wantOrder(t, "stored order", mustOrder(t, s, "o-1"), got)
			})
		}
	})

	t.Run("FailureReleasesCredit", func(t *testing.T) {
		// What the kitchen does on a failure: the order fails, its credit
		// comes back, once.
		s := open(t)
		mustCreateCustomer(t, s, "alice", 5000)
		o := orderIn(t, s, events.StatusBaked)
		if err := s.ReserveCredit(t.Context(), "alice", "o-1", o.Amount); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Advance(t.Context(), "o-1", domain.To(events.StatusFailed, "baker", "burnt", "test/f", t0)); err != nil {
			t.Fatal(err)
		}
		for i, want := range []bool{true, false} {
			ok, err := s.ReleaseCredit(t.Context(), "alice", "o-1")
			if err != nil || ok != want {
				t.Fatalf("ReleaseCredit #%d: %v, %v; want %v", i+1, ok, err, want)
			}
		}
		wantCredit(t, s, "alice", 5000, 5000)
	})
}

func processed(t *testing.T, open Open) {
	t.Run("UnknownKeyHasNoReply", func(t *testing.T) {
		reply, ok, err := open(t).ProcessedReply(t.Context(), "src/never")
		if err != nil || ok || reply != nil {
			t.Fatalf("ProcessedReply: %q, %v, %v; want nil, false, nil", reply, ok, err)
		}
	})

	t.Run("ReplyRoundTrips", func(t *testing.T) {
		cases := []struct {
			name  string
			reply []byte
		}{
			{"JSON", []byte(`{"specversion":"1.0","id":"r-1","type":"com.cupcakes.order.mixed","data":{"orderId":"o-1"}}`)},
			{"Nil", nil},
			{"NotUTF8", []byte{0xff, 0x00, 0xfe}},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				s := open(t)
				if err := s.MarkProcessed(t.Context(), "src/e1", tc.reply); err != nil {
					t.Fatalf("MarkProcessed: %v", err)
				}
				reply, ok, err := s.ProcessedReply(t.Context(), "src/e1")
				if err != nil || !ok {
					t.Fatalf("ProcessedReply: %v, %v; want true, nil", ok, err)
				}
				if string(reply) != string(tc.reply) {
					t.Errorf("reply %q; want %q", reply, tc.reply)
				}
			})
		}
	})

	t.Run("MarkingTwiceKeepsTheFirstReply", func(t *testing.T) {
		s := open(t)
		ctx := t.Context()
		if err := s.MarkProcessed(ctx, "src/e1", []byte(`{"first":true}`)); err != nil {
			t.Fatal(err)
		}
		if err := s.MarkProcessed(ctx, "src/e1", []byte(`{"second":true}`)); err != nil {
			t.Fatalf("second MarkProcessed: %v", err)
		}
		if err := s.MarkProcessed(ctx, "src/e1", nil); err != nil {
			t.Fatalf("third MarkProcessed: %v", err)
		}
		reply, ok, err := s.ProcessedReply(ctx, "src/e1")
		if err != nil || !ok || string(reply) != `{"first":true}` {
			t.Fatalf("ProcessedReply: %q, %v, %v; want the first reply", reply, ok, err)
		}
		if _, ok, _ := s.ProcessedReply(ctx, "src/e2"); ok {
			t.Error("another key is marked too")
		}
	})
}
