package function_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"

	"github.com/cupcake-factory/cupcake-factory/domain"
	"github.com/cupcake-factory/cupcake-factory/events"
	"github.com/cupcake-factory/cupcake-factory/functions/ordercreated"
	"github.com/cupcake-factory/cupcake-factory/infra/bolt"
	"github.com/cupcake-factory/cupcake-factory/infra/config"
)

// These tests run on the embedded store, whose transactions are
// serialisable, so they prove that the functions and the store contract are
// race-free. The MongoDB store meets the same contract with version-checked
// single-document writes; FerretDB, the MongoDB wire-protocol server the
// tests run the MongoDB store on, can lose concurrent updates of one
// document, so this proof cannot be repeated there (see tests/mongo).

const (
	bulkOrders  = 1000
	bulkCovered = 100 // the customer's credit covers exactly this many
)

var bulkItems = []events.Item{{Flavour: "vanilla", Size: "M", Quantity: 1}}

func bulkEvent(t *testing.T, i int) cloudevents.Event {
	t.Helper()
	id := fmt.Sprintf("bulk-%04d", i)
	e, err := events.New(events.TypeOrderCreated, "test/concurrency", id,
		events.OrderCreated{OrderID: id, CustomerID: "bulk", Items: bulkItems})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// watchCredit samples the customer's available credit until stop is
// closed; the returned function waits for it and gives the lowest seen.
func watchCredit(t *testing.T, customer func() (domain.Customer, error), stop <-chan struct{}) func() int64 {
	var lowest atomic.Int64
	lowest.Store(1 << 62)
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := customer()
			if err != nil {
				t.Error(err)
				return
			}
			if c.Available < lowest.Load() {
				lowest.Store(c.Available)
			}
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
			}
		}
	})
	return func() int64 { wg.Wait(); return lowest.Load() }
}

// TestConcurrentOrdersNeverOverspendCredit hands 1000 order.created events
// to order-created at once, each twice (a redelivery racing the first
// delivery), for one customer whose credit covers exactly 100 of them.
// Every order is recorded once; exactly 100 hold a reservation, the other
// 900 are refused for insufficient credit and answered valid:false; the
// available credit ends at exactly 0 and is never negative.
func TestConcurrentOrdersNeverOverspendCredit(t *testing.T) {
	ctx := context.Background()
	amount := domain.Amount(bulkItems)
	s, err := bolt.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	in := domain.NewCustomer{ID: "bulk", Name: "Bulk Buyer", CreditLimit: bulkCovered * amount}
	if _, err := s.CreateCustomer(ctx, in.Customer(time.Now())); err != nil {
		t.Fatal(err)
	}
	f := ordercreated.New(s)

	stop := make(chan struct{})
	lowest := watchCredit(t, func() (domain.Customer, error) { return s.Customer(ctx, "bulk") }, stop)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range bulkOrders {
		e := bulkEvent(t, i)
		for range 2 {
			wg.Go(func() {
				<-start
				if _, err := f.Handle(ctx, e); err != nil {
					t.Errorf("order %s: %v", e.Subject(), err)
				}
			})
		}
	}
	close(start)
	wg.Wait()
	close(stop)

	all := allOrders(t, s)
	refused := map[string]int{}
	for _, o := range all {
		refused[o.Refused]++
		if o.Status != events.StatusCreated || len(o.History) != 1 {
			t.Errorf("order %s is %s with %d steps, want created once", o.ID, o.Status, len(o.History))
		}
		stored, err := s.Order(ctx, o.ID) // with its outbox
		if err != nil {
			t.Fatal(err)
		}
		var verdicts []events.CreditValidated
		for _, m := range stored.Outbox {
			if m.Type == events.TypeCreditValidated {
				var v events.CreditValidated
				if err := json.Unmarshal([]byte(m.Data), &v); err != nil {
					t.Fatal(err)
				}
				verdicts = append(verdicts, v)
			}
		}
		if len(verdicts) != 1 || verdicts[0].Valid != (o.Refused == "") || verdicts[0].Reason != o.Refused {
			t.Errorf("order %s (refused %q) emitted verdicts %+v, want one that says so", o.ID, o.Refused, verdicts)
		}
	}
	c, err := s.Customer(ctx, "bulk")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d orders: %v by refusal; available credit %d, lowest seen %d, %d reservations",
		len(all), refused, c.Available, lowest(), len(c.Reservations))
	if len(all) != bulkOrders || refused[""] != bulkCovered || refused[events.ReasonInsufficientCredit] != bulkOrders-bulkCovered {
		t.Errorf("want %d orders, %d reserved and %d refused for insufficient credit", bulkOrders, bulkCovered, bulkOrders-bulkCovered)
	}
	if c.Available != 0 || len(c.Reservations) != bulkCovered {
		t.Errorf("available credit %d with %d reservations; want 0 and %d", c.Available, len(c.Reservations), bulkCovered)
	}
	if l := lowest(); l < 0 {
		t.Errorf("available credit went down to %d", l)
	}
	for _, r := range c.Reservations {
		o, err := s.Order(ctx, r.OrderID)
		if err != nil || o.Refused != "" || o.Reserved != amount || r.Amount != amount {
			t.Errorf("reservation %+v belongs to order %s refused %q holding %d (%v)", r, o.ID, o.Refused, o.Reserved, err)
		}
	}
}

// TestConcurrentOrdersThroughTheAppApproveExactlyWhatTheCreditCovers
// publishes the same 1000 orders at once through the whole App in-process
// (order-created, its outbox relayed to credit-validated, manual kitchen so
// approved orders stay approved): exactly 100 approved, 900 cancelled for
// insufficient credit, the credit ends at exactly 0 and each reservation
// belongs to an approved order. Nothing is left undelivered.
func TestConcurrentOrdersThroughTheAppApproveExactlyWhatTheCreditCovers(t *testing.T) {
	amount := domain.Amount(bulkItems)
	app := openApp(t, config.KitchenManual, false) // approved orders stay approved
	if _, err := app.CreateCustomer(t.Context(), domain.NewCustomer{ID: "bulk", Name: "Bulk Buyer", CreditLimit: bulkCovered * amount}); err != nil {
		t.Fatal(err)
	}

	stop := make(chan struct{})
	lowest := watchCredit(t, func() (domain.Customer, error) { return app.Store.Customer(t.Context(), "bulk") }, stop)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range bulkOrders {
		e := bulkEvent(t, i)
		wg.Go(func() {
			<-start
			if _, err := app.Ingest(t.Context(), e); err != nil {
				t.Errorf("order %s: %v", e.Subject(), err)
			}
		})
	}
	close(start)
	wg.Wait()
	close(stop)

	count := map[string]int{}
	all := allOrders(t, app.Store)
	for _, o := range all {
		count[o.Status]++
		if o.Status == events.StatusCancelled && o.Reason != events.ReasonInsufficientCredit {
			t.Errorf("order %s cancelled for %q", o.ID, o.Reason)
		}
	}
	c, err := app.Store.Customer(t.Context(), "bulk")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d orders: %v; available credit %d, lowest seen %d, %d reservations",
		len(all), count, c.Available, lowest(), len(c.Reservations))
	if len(all) != bulkOrders || count[events.StatusApproved] != bulkCovered || count[events.StatusCancelled] != bulkOrders-bulkCovered {
		t.Errorf("want %d orders, %d approved and %d cancelled", bulkOrders, bulkCovered, bulkOrders-bulkCovered)
	}
	if c.Available != 0 || len(c.Reservations) != bulkCovered {
		t.Errorf("available credit %d with %d reservations; want 0 and %d", c.Available, len(c.Reservations), bulkCovered)
	}
	if l := lowest(); l < 0 {
		t.Errorf("available credit went down to %d", l)
	}
	for _, r := range c.Reservations {
		o, err := app.Store.Order(t.Context(), r.OrderID)
		if err != nil || o.Status != events.StatusApproved || r.Amount != amount {
			t.Errorf("reservation %+v belongs to order %s (%v)", r, o.Status, err)
		}
	}
	// Delivered messages are removed at once or, lingering, within a moment.
	for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		left, err := app.Store.Pending(t.Context(), 10)
		if err == nil && len(left) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("outboxes still pending: %v (%v)", left, err)
			break
		}
	}
}

// allOrders pages through every stored order.
func allOrders(t *testing.T, s interface {
	Orders(context.Context, domain.OrderQuery) (domain.OrderPage, error)
}) []domain.Order {
	t.Helper()
	var all []domain.Order
	for q := (domain.OrderQuery{Limit: 1000}); ; {
		page, err := s.Orders(t.Context(), q)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, page.Orders...)
		if page.Next == "" {
			return all
		}
		q.After = page.Next
	}
}
