// Package storetest is the conformance suite of domain.Store: the same
// tests, run against every implementation (the embedded store in
// infra/bolt, the MongoDB store in tests/mongo), pin down what the functions
// and the relay rely on: units of work that are atomic, an outbox stored
// with the state it belongs to, and the money rule under concurrency.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"

	"github.com/cupcake-factory/cupcake-factory/domain"
	"github.com/cupcake-factory/cupcake-factory/events"
	"github.com/cupcake-factory/cupcake-factory/functions/dispatch"
)

// Open returns an empty store for one test. It should close the store when
// the test ends (t.Cleanup).
type Open func(t *testing.T) domain.Store

// Run runs the whole suite; each subtest gets a store of its own.
func Run(t *testing.T, open Open) {
	t.Run("Customers", func(t *testing.T) { customers(t, open) })
	t.Run("Credit", func(t *testing.T) { credit(t, open) })
	t.Run("Orders", func(t *testing.T) { orders(t, open) })
	t.Run("Outbox", func(t *testing.T) { outbox(t, open) })
	t.Run("MoneyRuleUnderConcurrency", func(t *testing.T) { moneyRule(t, open) })
	t.Run("Ping", func(t *testing.T) {
		if err := open(t).Ping(t.Context()); err != nil {
			t.Fatalf("Ping: %v", err)
		}
	})
}

var t0 = time.Date(2025, 3, 14, 9, 26, 53, 589_000_000, time.UTC)

func mustCustomer(t *testing.T, s domain.Store, id string, limit int64) {
	t.Helper()
	c := domain.NewCustomer{ID: id, Name: "Customer " + id, CreditLimit: limit}.Customer(t0)
	if _, err := s.CreateCustomer(t.Context(), c); err != nil {
		t.Fatalf("CreateCustomer %s: %v", id, err)
	}
}

func wantKind(t *testing.T, what string, err error, k domain.Kind) {
	t.Helper()
	if err == nil || domain.KindOf(err) != k {
		t.Fatalf("%s: error %v; want a %s error", what, err, k)
	}
}

func available(t *testing.T, s domain.Store, id string) int64 {
	t.Helper()
	c, err := s.Customer(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	return c.Available
}

func customers(t *testing.T, open Open) {
	s := open(t)
	mustCustomer(t, s, "alice", 1000)
	_, err := s.CreateCustomer(t.Context(), domain.NewCustomer{ID: "alice", Name: "Mallory", CreditLimit: 1}.Customer(t0))
	wantKind(t, "second CreateCustomer", err, domain.KindConflict)
	if c, _ := s.Customer(t.Context(), "alice"); c.Name != "Customer alice" || c.CreditLimit != 1000 || !c.CreatedAt.Equal(t0) {
		t.Errorf("the first customer changed: %+v", c)
	}
	_, err = s.Customer(t.Context(), "nobody")
	wantKind(t, "unknown customer", err, domain.KindNotFound)
	_, err = s.UpdateCustomer(t.Context(), "nobody", func(*domain.Customer) error { return nil })
	wantKind(t, "update of an unknown customer", err, domain.KindNotFound)

	tests := []struct {
		name          string
		limit         int64
		wantLimit     int64
		wantAvailable int64
		wantErr       domain.Kind
	}{
		{"raised", 2000, 2000, 1700, ""},
		{"lowered to what is reserved", 300, 300, 0, ""},
		{"below what is reserved is refused and changes nothing", 299, 300, 0, domain.KindConflict},
	}
	if _, err := s.UpdateCustomer(t.Context(), "alice", func(c *domain.Customer) error { return c.Reserve("o-1", 300) }); err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.UpdateCustomer(t.Context(), "alice", func(c *domain.Customer) error { return c.SetCreditLimit(tt.limit) })
			if tt.wantErr != "" {
				wantKind(t, "SetCreditLimit", err, tt.wantErr)
			} else if err != nil {
				t.Fatal(err)
			}
			c, _ := s.Customer(t.Context(), "alice")
			if c.CreditLimit != tt.wantLimit || c.Available != tt.wantAvailable {
				t.Errorf("limit %d available %d; want %d, %d", c.CreditLimit, c.Available, tt.wantLimit, tt.wantAvailable)
			}
		})
	}
}

func reserve(s domain.Store, customer, order string, amount int64) error {
	_, err := s.UpdateCustomer(context.Background(), customer, func(c *domain.Customer) error { return c.Reserve(order, amount) })
	return err
}

func credit(t *testing.T, open Open) {
	t.Run("ReservedOncePerOrderAndReleasedOnce", func(t *testing.T) {
		s := open(t)
		mustCustomer(t, s, "alice", 1000)
		for range 2 {
			if err := reserve(s, "alice", "o-1", 400); err != nil {
				t.Fatal(err)
			}
		}
		if got := available(t, s, "alice"); got != 600 {
			t.Errorf("available %d after reserving o-1 twice; want 600", got)
		}
		if err := reserve(s, "alice", "o-2", 700); !errors.Is(err, domain.ErrInsufficientCredit) {
			t.Errorf("reserving beyond the credit: %v; want insufficient credit", err)
		}
		for range 2 {
			if _, err := s.UpdateCustomer(t.Context(), "alice", func(c *domain.Customer) error { c.Release("o-1"); return nil }); err != nil {
				t.Fatal(err)
			}
		}
		if got := available(t, s, "alice"); got != 1000 {
			t.Errorf("available %d after releasing o-1 twice; want 1000", got)
		}
	})
	t.Run("ConcurrentReservationsNeverOverspend", func(t *testing.T) {
		s := open(t)
		mustCustomer(t, s, "dora", 30*10)
		var ok atomic.Int32
		var wg sync.WaitGroup
		for i := range 100 {
			wg.Go(func() {
				err := reserve(s, "dora", fmt.Sprintf("o-%d", i), 10)
				switch {
				case err == nil:
					ok.Add(1)
				case !errors.Is(err, domain.ErrInsufficientCredit):
					t.Errorf("reserve o-%d: %v", i, err)
				}
			})
		}
		wg.Wait()
		c, _ := s.Customer(t.Context(), "dora")
		if ok.Load() != 30 || c.Available != 0 || len(c.Reservations) != 30 {
			t.Errorf("%d reservations succeeded, %d recorded, %d available; want 30, 30, 0", ok.Load(), len(c.Reservations), c.Available)
		}
	})
}

func newOrder(id, customer, refused string, at time.Time) domain.Order {
	d := events.OrderCreated{OrderID: id, CustomerID: customer, Items: []events.Item{{Flavour: "vanilla", Size: "M", Quantity: 6}}}
	o := domain.NewOrder(d, "test "+id, refused, at)
	o.Outbox = nil
	return o
}

func mustOrder(t *testing.T, s domain.Store, o domain.Order) {
	t.Helper()
	if _, created, err := s.CreateOrder(t.Context(), o); err != nil || !created {
		t.Fatalf("CreateOrder %s: created %v, %v", o.ID, created, err)
	}
}

func orders(t *testing.T, open Open) {
	s := open(t)
	for i, id := range []string{"o-b", "o-a", "o-c"} {
		mustOrder(t, s, newOrder(id, "alice", "", t0.Add(time.Duration(i)*time.Second)))
	}
	stored, created, err := s.CreateOrder(t.Context(), newOrder("o-a", "bob", "", t0))
	if err != nil || created || stored.CustomerID != "alice" {
		t.Errorf("creating o-a again: created %v, stored %+v, %v; want the first kept", created, stored, err)
	}
	_, err = s.Order(t.Context(), "o-none")
	wantKind(t, "unknown order", err, domain.KindNotFound)

	step := func(id, status, key string) error {
		_, err := s.UpdateOrder(t.Context(), id, func(o *domain.Order) error {
			return o.Apply(domain.To(status, "test", "", key, t0))
		})
		return err
	}
	if err := step("o-a", events.StatusApproved, "k-1"); err != nil {
		t.Fatal(err)
	}
	if err := step("o-a", events.StatusApproved, "k-1"); !errors.Is(err, domain.ErrDuplicate) {
		t.Errorf("the same event again: %v; want ErrDuplicate", err)
	}
	wantKind(t, "a step that does not fit", step("o-a", events.StatusBaked, "k-2"), domain.KindConflict)
	wantKind(t, "a step of an unknown order", step("o-none", events.StatusApproved, "k-3"), domain.KindNotFound)
	if o, _ := s.Order(t.Context(), "o-a"); o.Status != events.StatusApproved || len(o.History) != 2 || len(o.Outbox) != 1 {
		t.Errorf("o-a is %s with %d steps and %d outbox messages; want approved, 2, 1", o.Status, len(o.History), len(o.Outbox))
	}

	tests := []struct {
		status string
		limit  int
		want   []string
	}{
		{"", 0, []string{"o-b", "o-a", "o-c"}},
		{"", 2, []string{"o-b", "o-a"}},
		{events.StatusCreated, 0, []string{"o-b", "o-c"}},
		{events.StatusShipped, 0, nil},
	}
	for _, tt := range tests {
		got, err := s.Orders(t.Context(), tt.status, tt.limit)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, o := range got {
			ids = append(ids, o.ID)
		}
		if fmt.Sprint(ids) != fmt.Sprint(tt.want) {
			t.Errorf("Orders(%q, %d) = %v; want %v (oldest first)", tt.status, tt.limit, ids, tt.want)
		}
	}
}

// recorder is a publisher that records what it delivers and fails while
// failing is set.
type recorder struct {
	mu      sync.Mutex
	failing bool
	got     []string
}

func (r *recorder) Publish(_ context.Context, e cloudevents.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.failing {
		return errors.New("broker down")
	}
	r.got = append(r.got, e.Type())
	return nil
}

func outbox(t *testing.T, open Open) {
	s := open(t)
	mustCustomer(t, s, "alice", 10_000)
	if err := reserve(s, "alice", "o-1", 1200); err != nil {
		t.Fatal(err)
	}
	mustOrder(t, s, newOrder("o-1", "alice", "", t0))
	mustOrder(t, s, newOrder("o-2", "alice", "", t0))

	// A unit of work that fails after emitting stores neither state nor messages.
	_, err := s.UpdateOrder(t.Context(), "o-1", func(o *domain.Order) error {
		if err := o.Apply(domain.To(events.StatusApproved, "x", "", "k-a", t0)); err != nil {
			return err
		}
		return errors.New("refused after emitting")
	})
	if o, _ := s.Order(t.Context(), "o-1"); err == nil || o.Status != events.StatusCreated || len(o.Outbox) != 0 {
		t.Fatalf("a failed unit of work left %s with %d messages (%v)", o.Status, len(o.Outbox), err)
	}
	if ids, _ := s.Pending(t.Context(), 10); len(ids) != 0 {
		t.Errorf("pending %v; want none", ids)
	}

	// The state change and what it emits are stored together, and wait.
	for _, id := range []string{"o-2", "o-1"} {
		if _, err := s.UpdateOrder(t.Context(), id, func(o *domain.Order) error {
			return o.Fail(events.FailureReport{OrderID: id, By: "x", Reason: "oven"}, "k-f"+id, t0)
		}); err == nil {
			t.Fatalf("failing created order %s: want a conflict", id)
		}
		if _, err := s.UpdateOrder(t.Context(), id, func(o *domain.Order) error {
			return o.Decide(events.CreditValidated{OrderID: id, CustomerID: "alice", Valid: false, Reason: events.ReasonInsufficientCredit}, "x", "k-c"+id, t0)
		}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond) // o-2's messages are the older
	}
	ids, err := s.Pending(t.Context(), 10)
	if err != nil || fmt.Sprint(ids) != "[o-2 o-1]" {
		t.Fatalf("pending %v (%v); want [o-2 o-1], oldest first", ids, err)
	}

	// The process dies before it publishes: a later relay delivers it all,
	// and a relay whose broker is down delivers nothing and loses nothing.
	pub := &recorder{failing: true}
	relay := dispatch.NewRelay(s, pub, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err := relay.Drain(t.Context(), "o-1"); err == nil {
		t.Error("Drain with the broker down: no error")
	}
	if o, _ := s.Order(t.Context(), "o-1"); len(o.Outbox) != 2 {
		t.Errorf("o-1 has %d messages after a failed delivery; want both kept (release, status-changed)", len(o.Outbox))
	}
	pub.failing = false
	for range 2 {
		for _, id := range []string{"o-1", "o-2"} {
			if err := relay.Drain(t.Context(), id); err != nil {
				t.Fatal(err)
			}
		}
	}
	if ids, _ := s.Pending(t.Context(), 10); len(ids) != 0 {
		t.Errorf("pending %v after delivery; want none", ids)
	}
	if fmt.Sprint(pub.got) != "[com.cupcakes.order.status-changed com.cupcakes.order.status-changed]" {
		t.Errorf("delivered %v; want each status change once", pub.got)
	}
	if got := available(t, s, "alice"); got != 10_000 {
		t.Errorf("available %d; want the 1200 o-1 held given back once", got)
	}
}

func moneyRule(t *testing.T, open Open) {
	s := open(t)
	mustOrder(t, s, newOrder("o-poor", "mallory", events.ReasonInsufficientCredit, t0))
	mustOrder(t, s, newOrder("o-held", "alice", "", t0))
	var approvals atomic.Int32
	var wg sync.WaitGroup
	for i := range 20 {
		for _, v := range []events.CreditValidated{
			{OrderID: "o-poor", CustomerID: "mallory", Amount: 0, Valid: true},
			{OrderID: "o-poor", CustomerID: "mallory", Amount: 1200, Valid: true},
			{OrderID: "o-held", CustomerID: "alice", Amount: 1200, Valid: true},
		} {
			wg.Go(func() {
				_, err := s.UpdateOrder(context.Background(), v.OrderID, func(o *domain.Order) error {
					return o.Decide(v, "forger", fmt.Sprintf("forged-%d", i), t0)
				})
				switch {
				case err == nil:
					approvals.Add(1)
				case domain.KindOf(err) != domain.KindConflict:
					t.Errorf("verdict %+v: %v", v, err)
				}
			})
		}
	}
	wg.Wait()
	poor, _ := s.Order(t.Context(), "o-poor")
	held, _ := s.Order(t.Context(), "o-held")
	if poor.Status != events.StatusCreated || held.Status != events.StatusApproved || approvals.Load() != 1 {
		t.Errorf("o-poor %s, o-held %s, %d approvals; want created, approved, exactly 1", poor.Status, held.Status, approvals.Load())
	}
}
