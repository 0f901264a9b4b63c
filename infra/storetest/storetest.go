// Package storetest is the conformance suite of domain.Store: the same
// tests, run against every implementation (the embedded store in
// infra/bolt, the MongoDB store in tests/mongo), pin down the behaviour the
// functions rely on, edge cases included.
//
// A store is a set of units of work: the domain function passed to
// UpdateOrder or UpdateCustomer runs on a record and the adapter stores the
// result atomically, or nothing if the function fails. An order's outbox is
// part of the order, so the suite proves on each store that a change and the
// messages it emits are stored together or not at all, that they survive a
// crash between the write and the publish, and that the money rule holds
// when verdicts and reservations race. The relay's part (delivery at least
// once, credit back once) is functions/relay/relaytest, on these fixtures:
// the exported helpers (Store, OrderIn, MustOrder, WantCredit...).
package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cupcake-factory/cupcake-factory/domain"
	"github.com/cupcake-factory/cupcake-factory/events"
)

// Open returns an empty store for one test and closes it when the test ends
// (t.Cleanup).
//
// reopen opens the same data again as a new store, as another process would
// after a crash, and closes that store when the test ends too; a test calls
// it only after closing the store it had. An adapter that cannot reopen its
// data returns a nil reopen, and the tests that need it are skipped.
type Open func(t *testing.T) (s domain.Store, reopen func() domain.Store)

// Run runs the whole suite; each subtest gets a store of its own.
func Run(t *testing.T, open Open) {
	t.Run("Customers", func(t *testing.T) { customers(t, open) })
	t.Run("Credit", func(t *testing.T) { credit(t, open) })
	t.Run("Orders", func(t *testing.T) { orders(t, open) })
	t.Run("UpdateOrder", func(t *testing.T) { updateOrder(t, open) })
	t.Run("Outbox", func(t *testing.T) { outbox(t, open) })
	t.Run("Concurrency", func(t *testing.T) { concurrency(t, open) })
	t.Run("Ping", func(t *testing.T) {
		s, _ := open(t)
		if err := s.Ping(t.Context()); err != nil {
			t.Fatalf("Ping: %v", err)
		}
	})
}

var T0 = time.Date(2025, 3, 14, 9, 26, 53, 589_000_000, time.UTC)

// errRefused is what a unit of work's function fails with in the tests.
var errRefused = errors.New("the function refused")

func Store(t *testing.T, open Open) domain.Store {
	t.Helper()
	s, _ := open(t)
	return s
}

// ---- customers and credit ----

func newCustomer(id string, limit int64) domain.Customer {
	return domain.Customer{ID: id, Name: "Customer " + id, CreditLimit: limit, Available: limit, CreatedAt: T0, UpdatedAt: T0}
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

// reserve reserves amount of customer's credit for order, as order-created does.
func reserve(ctx context.Context, s domain.Store, customer, order string, amount int64) error {
	_, err := s.ChangeCredit(ctx, domain.Reserve(customer, order, amount))
	return err
}

func MustReserve(t *testing.T, s domain.Store, customer, order string, amount int64) {
	t.Helper()
	if err := reserve(t.Context(), s, customer, order, amount); err != nil {
		t.Fatalf("reserve %d of %s for %s: %v", amount, customer, order, err)
	}
}

// release gives back the credit order holds of customer, as the relay does,
// and reports whether there was any.
func release(t *testing.T, s domain.Store, customer, order string) bool {
	t.Helper()
	r, held := mustCustomer(t, s, customer).Reservation(order)
	if !held {
		return false
	}
	if _, err := s.ChangeCredit(t.Context(), domain.Release(customer, order, r.Amount)); err != nil {
		t.Fatalf("release %s of %s: %v", order, customer, err)
	}
	return true
}

// wantCredit checks a customer's limit, available credit and the orders
// holding credit, in the order they reserved it.
func WantCredit(t *testing.T, s domain.Store, id string, limit, available int64, reservations ...domain.Reservation) {
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

func normalisedCustomer(c domain.Customer) domain.Customer {
	c.CreatedAt, c.UpdatedAt = c.CreatedAt.UTC(), c.UpdatedAt.UTC()
	if len(c.Reservations) == 0 {
		c.Reservations = nil
	}
	return c
}

func wantCustomer(t *testing.T, what string, got, want domain.Customer) {
	t.Helper()
	if g, w := normalisedCustomer(got), normalisedCustomer(want); !reflect.DeepEqual(g, w) {
		t.Errorf("%s:\n got  %+v\n want %+v", what, g, w)
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
		s := Store(t, open)
		want := newCustomer("alice", 50_000)
		got, err := s.CreateCustomer(t.Context(), want)
		if err != nil {
			t.Fatalf("CreateCustomer: %v", err)
		}
		wantCustomer(t, "CreateCustomer", got, want)
		wantCustomer(t, "Customer", mustCustomer(t, s, "alice"), want)
	})

	t.Run("CreatingAnExistingIDIsAConflictAndKeepsTheFirst", func(t *testing.T) {
		s := Store(t, open)
		mustCreateCustomer(t, s, "alice", 50_000)
		MustReserve(t, s, "alice", "o-1", 300)
		before := mustCustomer(t, s, "alice")
		other := newCustomer("alice", 1)
		other.Name = "Mallory"
		_, err := s.CreateCustomer(t.Context(), other)
		wantKind(t, "second CreateCustomer", err, domain.KindConflict)
		wantCustomer(t, "the first customer", mustCustomer(t, s, "alice"), before)
	})

	t.Run("UnknownCustomerIsNotFound", func(t *testing.T) {
		s := Store(t, open)
		_, err := s.Customer(t.Context(), "nobody")
		wantKind(t, "Customer", err, domain.KindNotFound)
		_, err = s.UpdateCustomer(t.Context(), "nobody", func(*domain.Customer) error {
			t.Error("UpdateCustomer ran its function on a customer that does not exist")
			return nil
		})
		wantKind(t, "UpdateCustomer", err, domain.KindNotFound)
		if _, err := s.Customer(t.Context(), "nobody"); domain.KindOf(err) != domain.KindNotFound {
			t.Errorf("UpdateCustomer of an unknown customer created it: %v", err)
		}
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
			{name: "NegativeIsInvalid", id: "alice", limit: -1, wantKind: domain.KindInvalid, wantLimit: 1000, wantAvailable: 700},
			{name: "UnknownCustomerIsNotFound", id: "nobody", limit: 100, wantKind: domain.KindNotFound, wantLimit: 1000, wantAvailable: 700},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				s := Store(t, open)
				mustCreateCustomer(t, s, "alice", 1000)
				MustReserve(t, s, "alice", "o-1", 300)
				c, err := s.UpdateCustomer(t.Context(), tc.id, func(c *domain.Customer) error { return c.SetCreditLimit(tc.limit) })
				if tc.wantKind != "" {
					wantKind(t, "SetCreditLimit", err, tc.wantKind)
				} else {
					if err != nil {
						t.Fatalf("SetCreditLimit: %v", err)
					}
					if c.CreditLimit != tc.wantLimit || c.Available != tc.wantAvailable {
						t.Errorf("UpdateCustomer returned limit %d, available %d; want %d, %d",
							c.CreditLimit, c.Available, tc.wantLimit, tc.wantAvailable)
					}
					wantCustomer(t, "stored customer", mustCustomer(t, s, "alice"), c)
				}
				WantCredit(t, s, "alice", tc.wantLimit, tc.wantAvailable, domain.Reservation{OrderID: "o-1", Amount: 300})
				// The reservation still releases in full.
				if !release(t, s, "alice", "o-1") {
					t.Fatal("o-1 held no credit after SetCreditLimit")
				}
				WantCredit(t, s, "alice", tc.wantLimit, tc.wantLimit)
			})
		}
	})

	t.Run("AFailingUpdateStoresNothing", func(t *testing.T) {
		s := Store(t, open)
		mustCreateCustomer(t, s, "alice", 1000)
		MustReserve(t, s, "alice", "o-1", 300)
		before := mustCustomer(t, s, "alice")
		_, err := s.UpdateCustomer(t.Context(), "alice", func(c *domain.Customer) error {
			c.Reservations[0].Amount = 1 // in place, in the slice as read
			c.Name = "Mallory"
			if err := c.Reserve("o-2", 400); err != nil {
				return err
			}
			return errRefused
		})
		if !errors.Is(err, errRefused) {
			t.Fatalf("UpdateCustomer: %v; want the function's error", err)
		}
		wantCustomer(t, "stored customer", mustCustomer(t, s, "alice"), before)
	})
}

func credit(t *testing.T, open Open) {
	t.Run("ReserveTakesTheAmountOncePerOrder", func(t *testing.T) {
		s := Store(t, open)
		mustCreateCustomer(t, s, "alice", 1000)
		for range 3 {
			MustReserve(t, s, "alice", "o-1", 300)
		}
		WantCredit(t, s, "alice", 1000, 700, domain.Reservation{OrderID: "o-1", Amount: 300})
	})

	t.Run("ReserveOncePerOrderAmongOtherReservations", func(t *testing.T) {
		s := Store(t, open)
		mustCreateCustomer(t, s, "alice", 1000)
		for _, o := range []string{"o-1", "o-2", "o-3", "o-1", "o-3", "o-2"} {
			MustReserve(t, s, "alice", o, 100)
		}
		WantCredit(t, s, "alice", 1000, 700, domain.Reservation{OrderID: "o-1", Amount: 100},
			domain.Reservation{OrderID: "o-2", Amount: 100}, domain.Reservation{OrderID: "o-3", Amount: 100})
		// An order holding credit is not refused for lack of credit.
		MustReserve(t, s, "alice", "o-4", 700)
		MustReserve(t, s, "alice", "o-2", 100)
		WantCredit(t, s, "alice", 1000, 0, domain.Reservation{OrderID: "o-1", Amount: 100},
			domain.Reservation{OrderID: "o-2", Amount: 100}, domain.Reservation{OrderID: "o-3", Amount: 100},
			domain.Reservation{OrderID: "o-4", Amount: 700})
	})

	t.Run("ReserveForSeveralOrdersDownToZero", func(t *testing.T) {
		s := Store(t, open)
		mustCreateCustomer(t, s, "alice", 1000)
		MustReserve(t, s, "alice", "o-1", 300)
		MustReserve(t, s, "alice", "o-2", 700)
		WantCredit(t, s, "alice", 1000, 0,
			domain.Reservation{OrderID: "o-1", Amount: 300}, domain.Reservation{OrderID: "o-2", Amount: 700})
		if err := reserve(t.Context(), s, "alice", "o-3", 1); !errors.Is(err, domain.ErrInsufficientCredit) {
			t.Fatalf("reserve with nothing left: %v; want ErrInsufficientCredit", err)
		}
	})

	t.Run("InsufficientCreditIsRefusedAndChangesNothing", func(t *testing.T) {
		s := Store(t, open)
		mustCreateCustomer(t, s, "alice", 1000)
		MustReserve(t, s, "alice", "o-1", 600)
		err := reserve(t.Context(), s, "alice", "o-2", 401)
		if !errors.Is(err, domain.ErrInsufficientCredit) {
			t.Fatalf("reserve: %v; want ErrInsufficientCredit", err)
		}
		wantKind(t, "reserve", err, domain.KindConflict)
		WantCredit(t, s, "alice", 1000, 400, domain.Reservation{OrderID: "o-1", Amount: 600})
	})

	t.Run("AnotherAmountForAnOrderHoldingCreditIsAConflict", func(t *testing.T) {
		s := Store(t, open)
		mustCreateCustomer(t, s, "alice", 1000)
		MustReserve(t, s, "alice", "o-1", 300)
		err := reserve(t.Context(), s, "alice", "o-1", 200)
		wantKind(t, "reserve another amount", err, domain.KindConflict)
		WantCredit(t, s, "alice", 1000, 700, domain.Reservation{OrderID: "o-1", Amount: 300})
	})

	t.Run("ReleaseGivesBackOnce", func(t *testing.T) {
		s := Store(t, open)
		mustCreateCustomer(t, s, "alice", 1000)
		MustReserve(t, s, "alice", "o-1", 200)
		MustReserve(t, s, "alice", "o-2", 200)
		if !release(t, s, "alice", "o-1") {
			t.Fatal("first release found nothing held")
		}
		WantCredit(t, s, "alice", 1000, 800, domain.Reservation{OrderID: "o-2", Amount: 200})
		if release(t, s, "alice", "o-1") {
			t.Fatal("second release gave credit back again")
		}
		WantCredit(t, s, "alice", 1000, 800, domain.Reservation{OrderID: "o-2", Amount: 200})
	})

	t.Run("ReleaseOfAnOrderHoldingNothingChangesNothing", func(t *testing.T) {
		s := Store(t, open)
		mustCreateCustomer(t, s, "alice", 1000)
		if release(t, s, "alice", "o-9") {
			t.Fatal("release of an order holding nothing reported credit")
		}
		WantCredit(t, s, "alice", 1000, 1000)
	})

	t.Run("AfterReleaseTheOrderCanReserveAgain", func(t *testing.T) {
		s := Store(t, open)
		mustCreateCustomer(t, s, "alice", 1000)
		MustReserve(t, s, "alice", "o-1", 400)
		release(t, s, "alice", "o-1")
		MustReserve(t, s, "alice", "o-1", 500)
		WantCredit(t, s, "alice", 1000, 500, domain.Reservation{OrderID: "o-1", Amount: 500})
	})
}

// ---- orders ----

var (
	vanilla6 = []events.Item{{Flavour: "vanilla", Size: "M", Quantity: 6}}                                             // 1200 cents
	assorted = []events.Item{{Flavour: "lemon", Size: "S", Quantity: 2}, {Flavour: "carrot", Size: "XL", Quantity: 1}} // 600 cents
)

// newOrder is order id of customer as order-created records it after
// reserving its credit; its outbox holds the created notification.
func newOrder(id, customer string, items []events.Item, at time.Time) domain.Order {
	return domain.NewOrder(events.OrderCreated{OrderID: id, CustomerID: customer, Items: items}, "test "+id+"-created", "", at)
}

// refusedOrder is order id as order-created records it after refusing its
// credit for reason.
func refusedOrder(id, customer string, items []events.Item, reason string, at time.Time) domain.Order {
	return domain.NewOrder(events.OrderCreated{OrderID: id, CustomerID: customer, Items: items}, "test "+id+"-created", reason, at)
}

func mustCreateOrder(t *testing.T, s domain.Store, o domain.Order) domain.Order {
	t.Helper()
	got, created, err := s.CreateOrder(t.Context(), o)
	if err != nil || !created {
		t.Fatalf("CreateOrder %s: created %v, %v", o.ID, created, err)
	}
	return got
}

func MustOrder(t *testing.T, s domain.Store, id string) domain.Order {
	t.Helper()
	o, err := s.Order(t.Context(), id)
	if err != nil {
		t.Fatalf("Order %s: %v", id, err)
	}
	return o
}

func MustUpdateOrder(t *testing.T, s domain.Store, id string, fn func(*domain.Order) error) domain.Order {
	t.Helper()
	o, err := s.UpdateOrder(t.Context(), id, fn)
	if err != nil {
		t.Fatalf("UpdateOrder %s: %v", id, err)
	}
	return o
}

// normalised makes two records of the same order deeply comparable: times
// in UTC and to the millisecond (what MongoDB keeps), empty lists as nil.
func normalised(o domain.Order) domain.Order {
	ms := func(t time.Time) time.Time { return t.UTC().Truncate(time.Millisecond) }
	o.CreatedAt, o.UpdatedAt = ms(o.CreatedAt), ms(o.UpdatedAt)
	if len(o.Items) == 0 {
		o.Items = nil
	}
	var h []domain.Step
	for _, s := range o.History {
		s.At = ms(s.At)
		h = append(h, s)
	}
	o.History = h
	var box []domain.Message
	for _, m := range o.Outbox {
		m.At = ms(m.At)
		box = append(box, m)
	}
	o.Outbox = box
	return o
}

func WantOrder(t *testing.T, what string, got, want domain.Order) {
	t.Helper()
	if g, w := normalised(got), normalised(want); !reflect.DeepEqual(g, w) {
		t.Errorf("%s:\n got  %+v\n want %+v", what, g, w)
	}
}

func orders(t *testing.T, open Open) {
	t.Run("CreateThenGetReturnsTheSameOrder", func(t *testing.T) {
		cases := []struct {
			name string
			o    domain.Order
		}{
			{"Reserved", newOrder("o-1", "alice", assorted, T0)},
			{"Refused", refusedOrder("o-1", "alice", vanilla6, events.ReasonInsufficientCredit, T0)},
			{"WithoutItems", refusedOrder("o-1", "alice", nil, events.ReasonInvalidOrder, T0)},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				s := Store(t, open)
				got := mustCreateOrder(t, s, tc.o)
				WantOrder(t, "CreateOrder", got, tc.o)
				WantOrder(t, "Order", MustOrder(t, s, "o-1"), tc.o)
			})
		}
	})

	t.Run("CreatingTheSameOrderTwiceHasOneEffect", func(t *testing.T) {
		s := Store(t, open)
		mustCreateOrder(t, s, newOrder("o-1", "alice", vanilla6, T0))
		MustUpdateOrder(t, s, "o-1", func(o *domain.Order) error {
			return o.Apply(domain.To(events.StatusApproved, "x", "", "test a", T0))
		})
		stored := MustOrder(t, s, "o-1")
		again := newOrder("o-1", "alice", vanilla6, T0.Add(time.Hour))
		got, created, err := s.CreateOrder(t.Context(), again)
		if err != nil || created {
			t.Fatalf("second CreateOrder: created %v, %v; want false, nil", created, err)
		}
		WantOrder(t, "second CreateOrder returns the stored order", got, stored)
		WantOrder(t, "stored order", MustOrder(t, s, "o-1"), stored)
	})

	t.Run("CreatingAnExistingIDReturnsTheStoredOrder", func(t *testing.T) {
		// The caller tells a reused id from a redelivery with SameContent.
		cases := []struct {
			name  string
			other domain.Order
		}{
			{"OtherCustomer", newOrder("o-1", "bob", vanilla6, T0)},
			{"OtherItems", newOrder("o-1", "alice", assorted, T0)},
			{"NoItems", refusedOrder("o-1", "alice", nil, events.ReasonInvalidOrder, T0)},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				s := Store(t, open)
				first := mustCreateOrder(t, s, newOrder("o-1", "alice", vanilla6, T0))
				got, created, err := s.CreateOrder(t.Context(), tc.other)
				if err != nil || created {
					t.Fatalf("CreateOrder: created %v, %v; want false, nil", created, err)
				}
				WantOrder(t, "CreateOrder returns the stored order", got, first)
				if got.SameContent(tc.other) {
					t.Error("the stored order has the same content as the other one")
				}
				WantOrder(t, "stored order", MustOrder(t, s, "o-1"), first)
			})
		}
	})

	t.Run("UnknownOrderIsNotFound", func(t *testing.T) {
		_, err := Store(t, open).Order(t.Context(), "o-404")
		wantKind(t, "Order", err, domain.KindNotFound)
	})

	t.Run("OrdersListsAStateOldestFirst", func(t *testing.T) {
		s := Store(t, open)
		// Recorded in time order, as order-created records them.
		for i, id := range []string{"o-f", "o-c", "o-d", "o-b", "o-a", "o-e"} {
			mustCreateOrder(t, s, newOrder(id, "alice", vanilla6, T0.Add(time.Duration(i)*time.Minute)))
		}
		for _, id := range []string{"o-e", "o-a"} {
			MustUpdateOrder(t, s, id, func(o *domain.Order) error {
				return o.Apply(domain.To(events.StatusApproved, "x", "", "test "+id, T0))
			})
		}
		cases := []struct {
			status string
			limit  int
			want   []string
		}{
			{"", 1000, []string{"o-f", "o-c", "o-d", "o-b", "o-a", "o-e"}},
			{"", 3, []string{"o-f", "o-c", "o-d"}},
			{events.StatusCreated, 1000, []string{"o-f", "o-c", "o-d", "o-b"}},
			{events.StatusCreated, 2, []string{"o-f", "o-c"}},
			{events.StatusApproved, 1000, []string{"o-a", "o-e"}},
			{events.StatusApproved, 2, []string{"o-a", "o-e"}},
			{events.StatusShipped, 1000, nil},
		}
		for _, tc := range cases {
			t.Run(fmt.Sprintf("status=%q,limit=%d", tc.status, tc.limit), func(t *testing.T) {
				page, err := s.Orders(t.Context(), domain.OrderQuery{Status: tc.status, Limit: tc.limit})
				if err != nil {
					t.Fatalf("Orders: %v", err)
				}
				var ids []string
				for _, o := range page.Orders {
					ids = append(ids, o.ID)
					WantOrder(t, "listed order "+o.ID, o, MustOrder(t, s, o.ID))
				}
				if !reflect.DeepEqual(ids, tc.want) {
					t.Errorf("Orders(%q, %d) = %v; want %v", tc.status, tc.limit, ids, tc.want)
				}
				if more := len(tc.want) == tc.limit && tc.status != events.StatusApproved; more != (page.Next != "") {
					t.Errorf("next %q; want one only when more follow", page.Next)
				}
			})
		}
	})

	t.Run("PagesFollowOneAnotherUntilTheLastHasNoNext", func(t *testing.T) {
		s := Store(t, open)
		var want []string
		for i := range 7 {
			id := fmt.Sprintf("o-%d", i)
			mustCreateOrder(t, s, newOrder(id, "alice", vanilla6, T0.Add(time.Duration(i)*time.Second)))
			want = append(want, id)
		}
		var got []string
		var sizes []int
		for q := (domain.OrderQuery{Limit: 3}); ; {
			page, err := s.Orders(t.Context(), q)
			if err != nil {
				t.Fatal(err)
			}
			sizes = append(sizes, len(page.Orders))
			for _, o := range page.Orders {
				got = append(got, o.ID)
			}
			if page.Next == "" {
				break
			}
			q.After = page.Next
		}
		if !reflect.DeepEqual(got, want) || !reflect.DeepEqual(sizes, []int{3, 3, 1}) {
			t.Errorf("pages of %v: %v; want %v in pages of 3, 3, 1", sizes, got, want)
		}
	})

	t.Run("PagingWhileOrdersAreAddedMeetsEveryOrderOnce", func(t *testing.T) {
		s := Store(t, open)
		const n = 150
		for i := range 10 {
			mustCreateOrder(t, s, newOrder(fmt.Sprintf("o-%03d", i), "alice", vanilla6, time.Now()))
		}
		added := make(chan struct{})
		go func() {
			defer close(added)
			for i := 10; i < n; i++ {
				o := newOrder(fmt.Sprintf("o-%03d", i), "alice", vanilla6, time.Now())
				if _, _, err := s.CreateOrder(context.Background(), o); err != nil {
					t.Error(err)
					return
				}
			}
		}()
		seen := map[string]int{}
		var order []string
		writing := true
		for q := (domain.OrderQuery{Limit: 7}); ; {
			page, err := s.Orders(t.Context(), q)
			if err != nil {
				t.Fatal(err)
			}
			for _, o := range page.Orders {
				seen[o.ID]++
				order = append(order, o.ID)
			}
			if page.Next != "" {
				q.After = page.Next
				continue
			}
			if !writing {
				break
			}
			// At the end for now: wait for the writer, then page on from
			// the last order seen (the next call starts after it).
			<-added
			writing = false
			if q.After = lastCursor(t, s, order[len(order)-1]); q.After == "" {
				break // nothing was added after it
			}
		}
		for i := range n {
			if id := fmt.Sprintf("o-%03d", i); seen[id] != 1 {
				t.Errorf("%s listed %d times; want once", id, seen[id])
			}
		}
		if !slices.IsSorted(order) {
			t.Errorf("not oldest first: %v", order)
		}
	})

	t.Run("ACursorNotGivenOutIsInvalid", func(t *testing.T) {
		_, err := Store(t, open).Orders(t.Context(), domain.OrderQuery{After: "not-a-cursor", Limit: 10})
		wantKind(t, "Orders", err, domain.KindInvalid)
	})
}

// lastCursor is the cursor after order id: the Next of the one-order page
// that holds it, found by paging from the start; "" if no order follows it.
func lastCursor(t *testing.T, s domain.Store, id string) string {
	t.Helper()
	for q := (domain.OrderQuery{Limit: 1}); ; {
		page, err := s.Orders(t.Context(), q)
		if err != nil || len(page.Orders) == 0 {
			t.Fatalf("order %s not found by paging (%v)", id, err)
		}
		if page.Orders[0].ID == id || page.Next == "" {
			if page.Orders[0].ID != id {
				t.Fatalf("order %s not found by paging", id)
			}
			return page.Next
		}
		q.After = page.Next
	}
}

// ---- transitions ----

// kitchen is the kitchen as the pipeline declares it: the suite names no
// station. The first two steps stand for any kitchen step.
var kitchen = events.Kitchen()

// firstStep and secondStep are the states the first two kitchen steps record.
var firstStep, secondStep = kitchen[0].Records, kitchen[1].Records

// kitchenStates are the states a station may report a failure in.
var kitchenStates = append([]string{events.StatusApproved}, forward[1:len(forward)-1]...)

// the happy path, in order.
var forward = func() []string {
	out := []string{events.StatusApproved}
	for _, k := range kitchen {
		out = append(out, k.Records)
	}
	return append(out, events.StatusShipped)
}()

// verdict is the credit-validated payload about o, valid or not.
func verdict(o domain.Order, valid bool) events.CreditValidated {
	v := events.CreditValidated{OrderID: o.ID, CustomerID: o.CustomerID, Amount: o.Amount, Valid: valid}
	if !valid {
		v.Reason = events.ReasonInsufficientCredit
	}
	return v
}

// step is the unit of work of the step of the happy path into status, caused
// by the event with key: the credit verdict for approved, a station's report
// for the kitchen's states and shipped.
func step(status, key string, at time.Time) func(*domain.Order) error {
	return func(o *domain.Order) error {
		if status == events.StatusApproved {
			return o.Decide(verdict(*o, true), "credit-validated", key, at)
		}
		return o.Apply(domain.To(status, "station-"+status, "", key, at))
	}
}

// orderIn stores customer alice (credit limit 5000) and her order o-1 (1200
// cents, reserved), brings it to status one unit of work per step, and
// returns it with its outbox delivered (empty).
func OrderIn(t *testing.T, s domain.Store, status string) domain.Order {
	t.Helper()
	mustCreateCustomer(t, s, "alice", 5000)
	o := newOrder("o-1", "alice", vanilla6, T0)
	MustReserve(t, s, "alice", "o-1", o.Amount)
	o = mustCreateOrder(t, s, o)
	path := forward
	if status == events.StatusCancelled {
		path = []string{events.StatusCancelled}
	}
	for i, st := range path {
		if o.Status == status {
			break
		}
		key, at := fmt.Sprintf("test step-%d", i), T0.Add(time.Duration(i+1)*time.Second)
		fn := step(st, key, at)
		if st == events.StatusCancelled {
			fn = func(o *domain.Order) error { return o.Decide(verdict(*o, false), "credit-validated", key, at) }
		}
		o = MustUpdateOrder(t, s, "o-1", fn)
	}
	if o.Status != status {
		t.Fatalf("could not bring the order to %s", status)
	}
	return deliverAll(t, s, "o-1")
}

// deliverAll removes every message of an order's outbox, as a relay does
// once it delivered them.
func deliverAll(t *testing.T, s domain.Store, id string) domain.Order {
	t.Helper()
	return MustUpdateOrder(t, s, id, func(o *domain.Order) error {
		o.Delivered(messageIDs(*o)...)
		return nil
	})
}

func messageIDs(o domain.Order) []string {
	var ids []string
	for _, m := range o.Outbox {
		ids = append(ids, m.ID)
	}
	return ids
}

// kinds describes an order's outbox: "release 1200" for a release,
// "status-changed approved" for a notification, the type for other events.
func Kinds(t *testing.T, o domain.Order) []string {
	t.Helper()
	var out []string
	for _, m := range o.Outbox {
		if m.Release != 0 {
			out = append(out, fmt.Sprint("release ", m.Release))
			continue
		}
		if m.Settle != 0 {
			out = append(out, fmt.Sprint("settle ", m.Settle))
			continue
		}
		if m.Type != events.TypeStatusChanged {
			out = append(out, m.Type)
			continue
		}
		var u events.OrderUpdate
		if err := json.Unmarshal([]byte(m.Data), &u); err != nil {
			t.Fatalf("order %s: decode notification: %v", o.ID, err)
		}
		out = append(out, "status-changed "+u.Status)
	}
	return out
}

func WantKinds(t *testing.T, what string, o domain.Order, want ...string) {
	t.Helper()
	if got := Kinds(t, o); !slices.Equal(got, want) {
		t.Errorf("%s: outbox %q; want %q", what, got, want)
	}
}

func updateOrder(t *testing.T, open Open) {
	t.Run("HappyPathThroughEveryState", func(t *testing.T) {
		s := Store(t, open)
		mustCreateCustomer(t, s, "alice", 5000)
		MustReserve(t, s, "alice", "o-1", 1200)
		mustCreateOrder(t, s, newOrder("o-1", "alice", vanilla6, T0))
		wantBox := []string{"status-changed created"}
		for i, st := range forward {
			key, at := "test e-"+st, T0.Add(time.Duration(i+1)*time.Minute)
			got, err := s.UpdateOrder(t.Context(), "o-1", step(st, key, at))
			if err != nil {
				t.Fatalf("to %s: %v", st, err)
			}
			last := got.History[len(got.History)-1]
			if got.Status != st || last.Status != st || last.Event != key || !last.At.Equal(at) || !got.UpdatedAt.Equal(at) {
				t.Errorf("to %s: status %s, updatedAt %v, last step %+v", st, got.Status, got.UpdatedAt, last)
			}
			if len(got.History) != i+2 {
				t.Errorf("to %s: %d steps; want %d", st, len(got.History), i+2)
			}
			wantBox = append(wantBox, "status-changed "+st)
			if st == events.StatusShipped {
				wantBox = append(wantBox, "settle 1200") // its reservation is closed, the credit spent
			}
			WantKinds(t, "to "+st, got, wantBox...)
			WantOrder(t, "stored after "+st, MustOrder(t, s, "o-1"), got)
		}
	})

	t.Run("CancelRecordsTheReasonAndEmitsTheReleaseWithIt", func(t *testing.T) {
		s := Store(t, open)
		mustCreateCustomer(t, s, "alice", 5000)
		MustReserve(t, s, "alice", "o-1", 1200)
		o := mustCreateOrder(t, s, newOrder("o-1", "alice", vanilla6, T0))
		got, err := s.UpdateOrder(t.Context(), "o-1", func(o *domain.Order) error {
			return o.Decide(verdict(*o, false), "credit-validated", "test v", T0)
		})
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != events.StatusCancelled || got.Reason != events.ReasonInsufficientCredit || got.Reserved != 0 {
			t.Errorf("status %s, reason %q, reserved %d", got.Status, got.Reason, got.Reserved)
		}
		last := got.History[len(got.History)-1]
		if last.Status != events.StatusCancelled || last.Reason != events.ReasonInsufficientCredit || last.Event != "test v" {
			t.Errorf("last step %+v", last)
		}
		WantKinds(t, "cancelled", got, "status-changed created", "status-changed cancelled", fmt.Sprint("release ", o.Amount))
		WantOrder(t, "stored", MustOrder(t, s, "o-1"), got)
		// The release is the relay's to deliver: the credit is still held.
		WantCredit(t, s, "alice", 5000, 3800, domain.Reservation{OrderID: "o-1", Amount: 1200})
	})

	t.Run("WrongStateIsAConflictAndChangesNothing", func(t *testing.T) {
		cases := []struct{ from, to string }{
			{events.StatusCreated, firstStep},
			{events.StatusCreated, events.StatusShipped},
			{events.StatusCreated, events.StatusFailed},
			{events.StatusApproved, events.StatusApproved},
			{events.StatusApproved, events.StatusCancelled},
			{firstStep, kitchen[2].Records},
			{events.StatusShipped, events.StatusFailed},
			{events.StatusShipped, firstStep},
		}
		for _, tc := range cases {
			t.Run(tc.from+"->"+tc.to, func(t *testing.T) {
				s := Store(t, open)
				before := OrderIn(t, s, tc.from)
				got, err := s.UpdateOrder(t.Context(), "o-1", func(o *domain.Order) error {
					return o.Apply(domain.To(tc.to, "x", "why", "test wrong", T0.Add(time.Hour)))
				})
				wantKind(t, "UpdateOrder", err, domain.KindConflict)
				if errors.Is(err, domain.ErrDuplicate) {
					t.Errorf("error %v is ErrDuplicate", err)
				}
				WantOrder(t, "order returned with the error", got, before)
				WantOrder(t, "stored order", MustOrder(t, s, "o-1"), before)
			})
		}
	})

	t.Run("CancelledAndFailedAreFinal", func(t *testing.T) {
		for _, end := range []string{events.StatusCancelled, events.StatusFailed} {
			t.Run(end, func(t *testing.T) {
				s := Store(t, open)
				from := events.StatusCreated
				if end == events.StatusFailed {
					from = firstStep
				}
				OrderIn(t, s, from)
				before := MustUpdateOrder(t, s, "o-1", func(o *domain.Order) error {
					return o.Apply(domain.To(end, "x", "r", "test end", T0))
				})
				for _, to := range append([]string{events.StatusFailed, events.StatusCancelled}, forward...) {
					_, err := s.UpdateOrder(t.Context(), "o-1", func(o *domain.Order) error {
						return o.Apply(domain.To(to, "x", "", "test after-"+to, T0))
					})
					wantKind(t, "UpdateOrder "+end+"->"+to, err, domain.KindConflict)
				}
				WantOrder(t, "stored order", MustOrder(t, s, "o-1"), before)
			})
		}
	})

	t.Run("DuplicateEventReturnsErrDuplicateAndChangesNothing", func(t *testing.T) {
		s := Store(t, open)
		OrderIn(t, s, events.StatusCreated)
		first := MustUpdateOrder(t, s, "o-1", step(events.StatusApproved, "test e1", T0))
		// The same event delivered again, later.
		got, err := s.UpdateOrder(t.Context(), "o-1", step(events.StatusApproved, "test e1", T0.Add(time.Minute)))
		if !errors.Is(err, domain.ErrDuplicate) {
			t.Fatalf("the same event again: %v; want ErrDuplicate", err)
		}
		WantOrder(t, "order returned with ErrDuplicate", got, first)
		WantOrder(t, "stored order", MustOrder(t, s, "o-1"), first)
	})

	t.Run("AnEventKeyReusedForOtherContentIsAConflictAndChangesNothing", func(t *testing.T) {
		s := Store(t, open)
		OrderIn(t, s, events.StatusCreated)
		first := MustUpdateOrder(t, s, "o-1", step(events.StatusApproved, "test e1", T0))
		// The source and id of the approval, used again for other content.
		reused := map[string]func(*domain.Order) error{
			"cancel": func(o *domain.Order) error { return o.Decide(verdict(*o, false), "y", "test e1", T0.Add(time.Minute)) },
			"step":   step(firstStep, "test e1", T0.Add(time.Minute)),
			"fail": func(o *domain.Order) error {
				return o.Fail(events.FailureReport{OrderID: "o-1", By: "y", Reason: "r"}, "test e1", T0.Add(time.Minute))
			},
		}
		for name, fn := range reused {
			_, err := s.UpdateOrder(t.Context(), "o-1", fn)
			if domain.KindOf(err) != domain.KindConflict || errors.Is(err, domain.ErrDuplicate) {
				t.Fatalf("%s with a used event key: %v; want a conflict", name, err)
			}
		}
		WantOrder(t, "stored order", MustOrder(t, s, "o-1"), first)
	})

	t.Run("AnEarlierEventIsADuplicateToo", func(t *testing.T) {
		s := Store(t, open)
		shipped := OrderIn(t, s, events.StatusShipped)
		for i, st := range forward {
			key := fmt.Sprintf("test step-%d", i)
			_, err := s.UpdateOrder(t.Context(), "o-1", step(st, key, T0.Add(time.Hour)))
			if !errors.Is(err, domain.ErrDuplicate) {
				t.Fatalf("event %s again: %v; want ErrDuplicate", key, err)
			}
		}
		WantOrder(t, "stored order", MustOrder(t, s, "o-1"), shipped)
	})

	t.Run("UnknownOrderIsNotFound", func(t *testing.T) {
		s := Store(t, open)
		_, err := s.UpdateOrder(t.Context(), "o-404", func(*domain.Order) error {
			t.Error("UpdateOrder ran its function on an order that does not exist")
			return nil
		})
		wantKind(t, "UpdateOrder", err, domain.KindNotFound)
		if _, err := s.Order(t.Context(), "o-404"); domain.KindOf(err) != domain.KindNotFound {
			t.Errorf("UpdateOrder of an unknown order created it: %v", err)
		}
	})

	t.Run("FailFromEveryKitchenStateEmitsTheRelease", func(t *testing.T) {
		for _, from := range kitchenStates {
			t.Run(from, func(t *testing.T) {
				s := Store(t, open)
				OrderIn(t, s, from)
				at := T0.Add(time.Hour)
				got, err := s.UpdateOrder(t.Context(), "o-1", func(o *domain.Order) error {
					return o.Fail(events.FailureReport{OrderID: "o-1", By: "station", Reason: "oven broke"}, "test fail", at)
				})
				if err != nil {
					t.Fatalf("fail from %s: %v", from, err)
				}
				if got.Status != events.StatusFailed || got.Reason != "oven broke" || !got.UpdatedAt.Equal(at) || got.Reserved != 0 {
					t.Errorf("failed order: status %s, reason %q, updatedAt %v, reserved %d", got.Status, got.Reason, got.UpdatedAt, got.Reserved)
				}
				WantKinds(t, "failed", got, "status-changed failed", "release 1200")
				WantOrder(t, "stored order", MustOrder(t, s, "o-1"), got)
			})
		}
	})

	t.Run("AFailingFunctionStoresNothing", func(t *testing.T) {
		s := Store(t, open)
		mustCreateCustomer(t, s, "alice", 5000)
		MustReserve(t, s, "alice", "o-1", 1200)
		before := mustCreateOrder(t, s, newOrder("o-1", "alice", vanilla6, T0))
		ev := NewEvent(t, kitchen[0].Takes, "o-1")
		got, err := s.UpdateOrder(t.Context(), "o-1", func(o *domain.Order) error {
			// In place, in the slices as read.
			o.History[0].By = "mallory"
			o.Outbox[0].Data = "{}"
			if err := o.Decide(verdict(*o, false), "x", "test v", T0); err != nil {
				return err
			}
			if err := o.Emit(ev); err != nil {
				return err
			}
			o.Amount = 1
			return errRefused
		})
		if !errors.Is(err, errRefused) {
			t.Fatalf("UpdateOrder: %v; want the function's error", err)
		}
		WantOrder(t, "order returned with the error", got, before)
		WantOrder(t, "stored order", MustOrder(t, s, "o-1"), before)
	})
}

// ---- outbox ----

// newEvent is an event of type t about orderID with a fresh id.
func NewEvent(t *testing.T, typ, orderID string) domain.Event {
	t.Helper()
	return domain.NewEvent(typ, "storetest", events.KitchenStep{OrderID: orderID, By: "storetest"})
}

// message is an outbox message carrying a fresh event, written at at.
func message(t *testing.T, orderID string, at time.Time) domain.Message {
	t.Helper()
	m, err := domain.NewMessage(NewEvent(t, kitchen[0].Takes, orderID))
	if err != nil {
		t.Fatal(err)
	}
	m.At = at
	return m
}

func Pending(t *testing.T, s domain.Store, limit int) []string {
	t.Helper()
	ids, err := s.Pending(t.Context(), limit)
	if err != nil {
		t.Fatalf("Pending: %v", err)
	}
	return ids
}

func WantPending(t *testing.T, s domain.Store, want ...string) {
	t.Helper()
	if got := Pending(t, s, 100); !slices.Equal(got, want) {
		t.Errorf("Pending = %q; want %q", got, want)
	}
}

func outbox(t *testing.T, open Open) {
	t.Run("CreateOrderStoresItsOutbox", func(t *testing.T) {
		s := Store(t, open)
		o := newOrder("o-1", "alice", vanilla6, T0)
		reply := domain.Reply(events.TypeCreditValidated, "storetest", "o-1", verdict(o, true))
		if err := o.Emit(reply); err != nil {
			t.Fatal(err)
		}
		mustCreateOrder(t, s, o)
		stored := MustOrder(t, s, "o-1")
		WantOrder(t, "stored order", stored, o)
		WantKinds(t, "stored order", stored, "status-changed created", events.TypeCreditValidated)
		WantPending(t, s, "o-1")
	})

	t.Run("AnOrderWithoutMessagesIsNotPending", func(t *testing.T) {
		s := Store(t, open)
		o := newOrder("o-1", "alice", vanilla6, T0)
		o.Outbox = nil
		mustCreateOrder(t, s, o)
		WantPending(t, s)
	})

	t.Run("AChangeAndItsMessagesAreStoredTogether", func(t *testing.T) {
		s := Store(t, open)
		OrderIn(t, s, events.StatusCreated)
		WantPending(t, s)
		e1, e2 := NewEvent(t, kitchen[0].Takes, "o-1"), NewEvent(t, kitchen[1].Takes, "o-1")
		got := MustUpdateOrder(t, s, "o-1", func(o *domain.Order) error {
			if err := o.Decide(verdict(*o, true), "x", "test v", T0); err != nil {
				return err
			}
			return errors.Join(o.Emit(e1), o.Emit(e2))
		})
		stored := MustOrder(t, s, "o-1")
		if stored.Status != events.StatusApproved {
			t.Errorf("status %s; want approved", stored.Status)
		}
		WantKinds(t, "stored order", stored, "status-changed approved", kitchen[0].Takes, kitchen[1].Takes)
		WantOrder(t, "stored order", stored, got)
		WantPending(t, s, "o-1")
	})

	t.Run("AFunctionThatEmitsThenFailsStoresNeitherTheChangeNorTheMessages", func(t *testing.T) {
		for _, withOutbox := range []bool{false, true} {
			t.Run(fmt.Sprint("pendingBefore=", withOutbox), func(t *testing.T) {
				s := Store(t, open)
				before := OrderIn(t, s, events.StatusApproved)
				if withOutbox {
					before = MustUpdateOrder(t, s, "o-1", func(o *domain.Order) error { return o.Emit(NewEvent(t, kitchen[0].Takes, "o-1")) })
				}
				pendingBefore := Pending(t, s, 100)
				_, err := s.UpdateOrder(t.Context(), "o-1", func(o *domain.Order) error {
					if err := o.Apply(domain.To(firstStep, "station", "", "test m", T0)); err != nil {
						return err
					}
					if err := o.Emit(NewEvent(t, kitchen[1].Takes, "o-1")); err != nil {
						return err
					}
					return errRefused
				})
				if !errors.Is(err, errRefused) {
					t.Fatalf("UpdateOrder: %v; want the function's error", err)
				}
				WantOrder(t, "stored order", MustOrder(t, s, "o-1"), before)
				WantPending(t, s, pendingBefore...)
			})
		}
	})

	t.Run("PendingListsOrdersWithMessagesOldestFirst", func(t *testing.T) {
		s := Store(t, open)
		// Pending goes by the oldest message, not by the order's age.
		ordersWaiting(t, s)
		cases := []struct {
			limit int
			want  []string
		}{
			{100, []string{"o-b", "o-a", "o-d", "o-e"}},
			{4, []string{"o-b", "o-a", "o-d", "o-e"}},
			{2, []string{"o-b", "o-a"}},
			{1, []string{"o-b"}},
		}
		for _, tc := range cases {
			if got := Pending(t, s, tc.limit); !slices.Equal(got, tc.want) {
				t.Errorf("Pending(%d) = %q; want %q", tc.limit, got, tc.want)
			}
		}
	})

	t.Run("AbandonedTakesOnlyOutboxesOlderThanTheCutOffOldestFirst", func(t *testing.T) {
		// Each store hands an order out once per lease: a fresh store per case.
		for _, tc := range []struct {
			before, limit int // minutes after T0; how many at most
			want          []string
		}{
			{4, 10, []string{"o-b", "o-a"}}, // o-d's oldest is minute 5, o-e's 7
			{6, 10, []string{"o-b", "o-a", "o-d"}},
			{6, 1, []string{"o-b"}},
		} {
			s := Store(t, open)
			ordersWaiting(t, s)
			got, err := s.Abandoned(t.Context(), T0.Add(time.Duration(tc.before)*time.Minute), time.Minute, tc.limit)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("Abandoned(before minute %d, limit %d) = %q; want %q", tc.before, tc.limit, got, tc.want)
			}
		}
	})

	t.Run("PendingFollowsTheOldestUndeliveredMessage", func(t *testing.T) {
		s := Store(t, open)
		for _, o := range []struct {
			id   string
			msgs []int // minutes after T0
		}{{"o-a", []int{3, 9}}, {"o-b", []int{1}}, {"o-c", nil}, {"o-d", []int{5}}} {
			order := newOrder(o.id, "alice", vanilla6, T0)
			order.Outbox = nil
			for _, m := range o.msgs {
				order.Outbox = append(order.Outbox, message(t, o.id, T0.Add(time.Duration(m)*time.Minute)))
			}
			mustCreateOrder(t, s, order)
		}
		WantPending(t, s, "o-b", "o-a", "o-d")
		// o-a's first message delivered: it now waits since minute 9.
		a := MustOrder(t, s, "o-a")
		MustUpdateOrder(t, s, "o-a", func(o *domain.Order) error { o.Delivered(a.Outbox[0].ID); return nil })
		WantPending(t, s, "o-b", "o-d", "o-a")
		// o-b delivered: no longer pending.
		deliverAll(t, s, "o-b")
		WantPending(t, s, "o-d", "o-a")
		// A change of o-c that emits, now: it waits the shortest.
		MustUpdateOrder(t, s, "o-c", func(o *domain.Order) error { return o.Emit(NewEvent(t, kitchen[0].Takes, "o-c")) })
		WantPending(t, s, "o-d", "o-a", "o-c")
	})

	t.Run("AfterAllMessagesAreDeliveredTheOrderIsNotPending", func(t *testing.T) {
		s := Store(t, open)
		o := newOrder("o-1", "alice", vanilla6, T0)
		o.Outbox = []domain.Message{message(t, "o-1", T0), message(t, "o-1", T0.Add(time.Second)), message(t, "o-1", T0.Add(2*time.Second))}
		mustCreateOrder(t, s, o)
		other := newOrder("o-2", "alice", vanilla6, T0)
		mustCreateOrder(t, s, other)
		for i, m := range o.Outbox {
			WantPending(t, s, "o-1", "o-2")
			got := MustUpdateOrder(t, s, "o-1", func(o *domain.Order) error { o.Delivered(m.ID); return nil })
			if want := messageIDs(o)[i+1:]; !slices.Equal(messageIDs(got), want) {
				t.Errorf("after delivering %d: outbox %q; want %q", i+1, messageIDs(got), want)
			}
		}
		WantPending(t, s, "o-2")
		if left := MustOrder(t, s, "o-1").Outbox; len(left) != 0 {
			t.Errorf("outbox after delivering everything: %+v", left)
		}
		WantOrder(t, "the other order", MustOrder(t, s, "o-2"), other)
	})
}

// ordersWaiting stores orders o-a … o-e created at T0 whose outboxes hold
// messages written these minutes after T0: o-a 3 and 9, o-b 1, o-c none,
// o-d 5, o-e 7 and 8.
func ordersWaiting(t *testing.T, s domain.Store) {
	t.Helper()
	for _, o := range []struct {
		id   string
		msgs []int // minutes after T0
	}{{"o-a", []int{3, 9}}, {"o-b", []int{1}}, {"o-c", nil}, {"o-d", []int{5}}, {"o-e", []int{7, 8}}} {
		order := newOrder(o.id, "alice", vanilla6, T0)
		order.Outbox = nil
		for _, m := range o.msgs {
			order.Outbox = append(order.Outbox, message(t, o.id, T0.Add(time.Duration(m)*time.Minute)))
		}
		mustCreateOrder(t, s, order)
	}
}

// ---- concurrency ----

// together runs fn(0) … fn(n-1) in n goroutines started at once and returns
// their errors.
func Together(n int, fn func(i int) error) []error {
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = fn(i)
		})
	}
	close(start)
	wg.Wait()
	return errs
}

const racers = 20

func concurrency(t *testing.T, open Open) {
	t.Run("NoVerdictApprovesAnOrderWhoseCreditWasRefused", func(t *testing.T) {
		cases := []struct {
			name   string
			limit  int64 // alice's credit limit; -1: alice does not exist
			items  []events.Item
			reason string
		}{
			{"InsufficientCreditLimitZero", 0, vanilla6, events.ReasonInsufficientCredit},
			{"InsufficientCreditLimitSmall", 1000, vanilla6, events.ReasonInsufficientCredit},
			{"UnknownCustomer", -1, vanilla6, events.ReasonUnknownCustomer},
			{"InvalidOrderWithoutItems", 1000, nil, events.ReasonInvalidOrder},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				s := Store(t, open)
				if tc.limit >= 0 {
					mustCreateCustomer(t, s, "alice", tc.limit)
				}
				o := mustCreateOrder(t, s, refusedOrder("o-1", "alice", tc.items, tc.reason, T0))
				errs := Together(racers, func(i int) error {
					v := verdict(o, true) // names the customer and the amount
					if i%2 == 1 {
						v.Amount = 0
					}
					_, err := s.UpdateOrder(t.Context(), "o-1", func(o *domain.Order) error {
						return o.Decide(v, "forger", fmt.Sprintf("forger %d", i), T0.Add(time.Minute))
					})
					return err
				})
				for i, err := range errs {
					if domain.KindOf(err) != domain.KindConflict || errors.Is(err, domain.ErrDuplicate) {
						t.Errorf("verdict %d: %v; want a conflict", i, err)
					}
				}
				WantOrder(t, "stored order", MustOrder(t, s, "o-1"), o)
				if tc.limit >= 0 {
					WantCredit(t, s, "alice", tc.limit, tc.limit)
				}
			})
		}
	})

	t.Run("AReservedOrderIsApprovedOnceAmongConcurrentVerdicts", func(t *testing.T) {
		s := Store(t, open)
		OrderIn(t, s, events.StatusCreated)
		errs := Together(racers, func(i int) error {
			_, err := s.UpdateOrder(t.Context(), "o-1", step(events.StatusApproved, fmt.Sprintf("test verdict-%d", i), T0))
			return err
		})
		winner := -1
		for i, err := range errs {
			switch {
			case err == nil && winner < 0:
				winner = i
			case err == nil:
				t.Errorf("verdicts %d and %d both approved", winner, i)
			case domain.KindOf(err) != domain.KindConflict || errors.Is(err, domain.ErrDuplicate):
				t.Errorf("verdict %d: %v; want a conflict", i, err)
			}
		}
		if winner < 0 {
			t.Fatal("no verdict approved")
		}
		o := MustOrder(t, s, "o-1")
		if o.Status != events.StatusApproved || len(o.History) != 2 || o.History[1].Event != fmt.Sprintf("test verdict-%d", winner) {
			t.Errorf("order %s with history %+v; want approved once, by verdict %d", o.Status, o.History, winner)
		}
		WantKinds(t, "approved order", o, "status-changed approved")
	})

	t.Run("TheSameVerdictDeliveredConcurrentlyIsAppliedOnce", func(t *testing.T) {
		s := Store(t, open)
		OrderIn(t, s, events.StatusCreated)
		errs := Together(racers, func(int) error {
			_, err := s.UpdateOrder(t.Context(), "o-1", step(events.StatusApproved, "test verdict", T0))
			return err
		})
		applied := 0
		for i, err := range errs {
			switch {
			case err == nil:
				applied++
			case !errors.Is(err, domain.ErrDuplicate):
				t.Errorf("delivery %d: %v; want ErrDuplicate", i, err)
			}
		}
		if applied != 1 {
			t.Errorf("applied %d times; want once", applied)
		}
		o := MustOrder(t, s, "o-1")
		if o.Status != events.StatusApproved || len(o.History) != 2 {
			t.Errorf("order %s with history %+v; want approved once", o.Status, o.History)
		}
		WantKinds(t, "approved order", o, "status-changed approved")
	})

	t.Run("ApprovalsAndCancellationsRacingDecideOnce", func(t *testing.T) {
		s := Store(t, open)
		OrderIn(t, s, events.StatusCreated)
		errs := Together(racers, func(i int) error {
			_, err := s.UpdateOrder(t.Context(), "o-1", func(o *domain.Order) error {
				return o.Decide(verdict(*o, i%2 == 0), "credit-validated", fmt.Sprintf("test verdict-%d", i), T0)
			})
			return err
		})
		winners := 0
		for i, err := range errs {
			switch {
			case err == nil:
				winners++
			case domain.KindOf(err) != domain.KindConflict || errors.Is(err, domain.ErrDuplicate):
				t.Errorf("verdict %d: %v; want a conflict", i, err)
			}
		}
		if winners != 1 {
			t.Errorf("%d verdicts applied; want one", winners)
		}
		o := MustOrder(t, s, "o-1")
		if len(o.History) != 2 {
			t.Errorf("history %+v; want one decision", o.History)
		}
		switch o.Status {
		case events.StatusApproved:
			if o.Reserved != 1200 {
				t.Errorf("approved order holds %d; want 1200", o.Reserved)
			}
			WantKinds(t, "approved order", o, "status-changed approved")
		case events.StatusCancelled:
			if o.Reserved != 0 {
				t.Errorf("cancelled order holds %d; want 0", o.Reserved)
			}
			WantKinds(t, "cancelled order", o, "status-changed cancelled", "release 1200")
		default:
			t.Errorf("order is %s; want approved or cancelled", o.Status)
		}
	})

	t.Run("ConcurrentReservationsNeverOverdraw", func(t *testing.T) {
		// Credit for n of the m orders, and one cent short of one more.
		const m, n, amount = racers, 7, 1200
		s := Store(t, open)
		limit := int64(n*amount + amount - 1)
		mustCreateCustomer(t, s, "alice", limit)
		errs := Together(m, func(i int) error { return reserve(t.Context(), s, "alice", fmt.Sprintf("o-%02d", i), amount) })
		var through []string
		for i, err := range errs {
			switch {
			case err == nil:
				through = append(through, fmt.Sprintf("o-%02d", i))
			case !errors.Is(err, domain.ErrInsufficientCredit):
				t.Errorf("reserve for o-%02d: %v; want ErrInsufficientCredit", i, err)
			}
		}
		if len(through) != n {
			t.Errorf("%d reservations went through; want %d", len(through), n)
		}
		c := mustCustomer(t, s, "alice")
		if c.CreditLimit != limit || c.Available != limit-int64(len(through))*amount || c.Available != amount-1 {
			t.Errorf("creditLimit %d, availableCredit %d; want %d, %d", c.CreditLimit, c.Available, limit, amount-1)
		}
		var held []string
		for _, r := range c.Reservations {
			held = append(held, r.OrderID)
			if r.Amount != amount {
				t.Errorf("reservation %+v; want %d", r, amount)
			}
		}
		slices.Sort(held)
		if !slices.Equal(held, through) {
			t.Errorf("reservations for %q; want exactly the ones that went through, %q", held, through)
		}
	})

	t.Run("ABusyCustomersReservationsReleasesAndSettlementsRacingKeepTheCreditExact", func(t *testing.T) {
		// One customer, many orders at once: each reserves, then half give
		// their credit back and half settle, every change sent twice.
		const n, amount = 4 * racers, 100
		s := Store(t, open)
		mustCreateCustomer(t, s, "cafe", n*amount)
		change := func(i int, ch func(customer, order string, amount int64) domain.CreditChange) error {
			var errs []error
			for range 2 {
				_, err := s.ChangeCredit(t.Context(), ch("cafe", fmt.Sprintf("o-%03d", i), amount))
				errs = append(errs, err)
			}
			return errors.Join(errs...)
		}
		for i, err := range Together(n, func(i int) error { return change(i, domain.Reserve) }) {
			if err != nil {
				t.Errorf("reserve o-%03d: %v", i, err)
			}
		}
		wantCredit := mustCustomer(t, s, "cafe")
		if wantCredit.Available != 0 || len(wantCredit.Reservations) != n {
			t.Fatalf("after %d reservations: available %d, %d reservations; want 0, %d", n, wantCredit.Available, len(wantCredit.Reservations), n)
		}
		for i, err := range Together(n, func(i int) error {
			if i%2 == 0 {
				return change(i, domain.Release)
			}
			return change(i, domain.Settle)
		}) {
			if err != nil {
				t.Errorf("release or settle o-%03d: %v", i, err)
			}
		}
		c := mustCustomer(t, s, "cafe")
		if c.Available != n/2*amount || len(c.Reservations) != 0 {
			t.Errorf("available %d, reservations %+v; want %d, none", c.Available, c.Reservations, n/2*amount)
		}
	})

	t.Run("ConcurrentReservationsForOneOrderReserveOnce", func(t *testing.T) {
		s := Store(t, open)
		mustCreateCustomer(t, s, "alice", 5000)
		for i, err := range Together(racers, func(int) error { return reserve(t.Context(), s, "alice", "o-1", 1200) }) {
			if err != nil {
				t.Errorf("reserve %d: %v", i, err)
			}
		}
		WantCredit(t, s, "alice", 5000, 3800, domain.Reservation{OrderID: "o-1", Amount: 1200})
	})

	t.Run("ConcurrentCreationOfOneOrderCreatesItOnce", func(t *testing.T) {
		s := Store(t, open)
		var created atomic.Int32
		orders := make([]domain.Order, racers)
		errs := Together(racers, func(i int) error {
			o, ok, err := s.CreateOrder(t.Context(), newOrder("o-1", "alice", vanilla6, T0.Add(time.Duration(i)*time.Second)))
			if ok {
				created.Add(1)
			}
			orders[i] = o
			return err
		})
		for i, err := range errs {
			if err != nil {
				t.Errorf("CreateOrder %d: %v", i, err)
			}
		}
		if n := created.Load(); n != 1 {
			t.Errorf("created %d times; want once", n)
		}
		stored := MustOrder(t, s, "o-1")
		for i, o := range orders {
			WantOrder(t, fmt.Sprintf("CreateOrder %d returns the stored order", i), o, stored)
		}
	})
}
