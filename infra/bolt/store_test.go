package bolt_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/cupcake-factory/cupcake-factory/domain"
	"github.com/cupcake-factory/cupcake-factory/events"
	"github.com/cupcake-factory/cupcake-factory/functions/relay/relaytest"
	"github.com/cupcake-factory/cupcake-factory/infra/bolt"
	"github.com/cupcake-factory/cupcake-factory/infra/storetest"
)

// TestStoreConformance runs the store conformance suite, and the relay's
// part of it, against the embedded store, a new file for each test.
// Reopening opens the same file again, as a restarted process does.
func TestStoreConformance(t *testing.T) {
	storetest.Run(t, openFile)
	t.Run("Relay", func(t *testing.T) { relaytest.Run(t, openFile) })
}

func openFile(t *testing.T) (domain.Store, func() domain.Store) {
	dir := t.TempDir()
	open := func() domain.Store {
		t.Helper()
		s, err := bolt.Open(dir)
		if err != nil {
			t.Fatalf("open embedded store: %v", err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	}
	return open(), open
}

// TestConcurrentUnitsOfWorkShareCommitsAndARefusalSparesTheOthers: many
// writers at once (so units of work share transactions), half of them
// refused by the domain: every accepted change is stored once, and no
// refused one leaves a trace.
func TestConcurrentUnitsOfWorkShareCommitsAndARefusalSparesTheOthers(t *testing.T) {
	s, err := bolt.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	ctx := context.Background()
	now := time.Now()
	if _, err := s.CreateCustomer(ctx, domain.NewCustomer{ID: "alice", Name: "Alice", CreditLimit: 100_000}.Customer(now)); err != nil {
		t.Fatal(err)
	}
	const n = 400
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			amount := int64(100)
			if i%2 == 1 {
				amount = 1_000_000 // more than the limit: refused
			}
			_, err := s.UpdateCustomer(ctx, "alice", func(c *domain.Customer) error {
				return c.Reserve(fmt.Sprintf("o-%d", i), amount)
			})
			if (i%2 == 1) != errors.Is(err, domain.ErrInsufficientCredit) {
				t.Errorf("reserve %d for o-%d: %v", amount, i, err)
			}
		})
	}
	wg.Wait()
	c, err := s.Customer(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if c.Available != 100_000-n/2*100 || len(c.Reservations) != n/2 {
		t.Errorf("available %d with %d reservations; want %d with %d", c.Available, len(c.Reservations), 100_000-n/2*100, n/2)
	}
}

// TestPagingWhileManyWritersAddOrdersMeetsEveryOrderOnce: orders are
// numbered when recorded, so a reader paging while four writers record
// orders at once neither skips nor repeats any.
func TestPagingWhileManyWritersAddOrdersMeetsEveryOrderOnce(t *testing.T) {
	s, err := bolt.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	ctx := context.Background()
	const writers, each = 4, 100
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				id := fmt.Sprintf("o-%d-%03d", w, i)
				o := domain.NewOrder(events.OrderCreated{OrderID: id, CustomerID: "alice",
					Items: []events.Item{{Flavour: "vanilla", Size: "S", Quantity: 1}}}, "test "+id, "", time.Now())
				if _, _, err := s.CreateOrder(ctx, o); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	seen := map[string]int{}
	last, done := "", false
	for q := (domain.OrderQuery{Limit: 5}); ; {
		page, err := s.Orders(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range page.Orders {
			seen[o.ID]++
		}
		if page.Next != "" {
			q.After, last = page.Next, page.Next
			continue
		}
		if done {
			break
		}
		// At the end for now: once the writers are done, read on from the
		// last full page (its orders again, then whatever came after).
		wg.Wait()
		done = true
		for _, o := range page.Orders {
			seen[o.ID]--
		}
		q.After = last
	}
	if len(seen) != writers*each {
		t.Errorf("listed %d orders; want %d", len(seen), writers*each)
	}
	for id, k := range seen {
		if k != 1 {
			t.Errorf("%s listed %d times; want once", id, k)
		}
	}
}

// TestConcurrentUnitsOfWorkOnOneOrderLoseNoChange: units of work on one
// order run outside the writer on the version they read; each that lost a
// race runs again on the new version, so none is lost.
func TestConcurrentUnitsOfWorkOnOneOrderLoseNoChange(t *testing.T) {
	dir := t.TempDir()
	s, err := bolt.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	ctx := context.Background()
	o := domain.NewOrder(events.OrderCreated{OrderID: "o-1", CustomerID: "alice",
		Items: []events.Item{{Flavour: "vanilla", Size: "S", Quantity: 1}}}, "test o-1", "", time.Now())
	o.Outbox = nil
	if _, _, err := s.CreateOrder(ctx, o); err != nil {
		t.Fatal(err)
	}
	const n = 200
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			_, err := s.UpdateOrder(ctx, "o-1", func(o *domain.Order) error {
				return o.Emit(domain.NewEvent(events.TypeMixed, "test", events.KitchenStep{OrderID: "o-1", By: fmt.Sprint(i)}))
			})
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	got, err := s.Order(ctx, "o-1")
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Outbox) != n {
		t.Errorf("%d messages in the outbox; want %d, one from each unit of work", len(got.Outbox), n)
	}
	// The file says the same as the cache.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = bolt.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got, err = s.Order(ctx, "o-1"); err != nil || len(got.Outbox) != n {
		t.Errorf("reopened: %d messages (%v); want %d", len(got.Outbox), err, n)
	}
}
