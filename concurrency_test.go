package function_test

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	function "github.com/cupcake-factory/cupcake-factory"
	"github.com/cupcake-factory/cupcake-factory/domain"
	"github.com/cupcake-factory/cupcake-factory/events"
	"github.com/cupcake-factory/cupcake-factory/infra/config"
)

// TestConcurrentOrdersNeverOverspendCredit publishes 1000 order.created
// events at once, through the real functions (order-created reserving credit,
// credit-validated approving or cancelling), for one customer whose credit
// covers exactly 100 of them. Exactly 100 are approved, 900 cancelled for
// insufficient credit, and the available credit is never negative.
//
// It runs on the embedded store, whose transactions are serialisable, so it
// proves that the functions and the store contract are race-free. The
// MongoDB store meets the same contract with single-document conditional
// updates (atomic in MongoDB); FerretDB, the MongoDB wire-protocol server the
// tests run the MongoDB store on, can lose concurrent updates of one
// document, so this proof cannot be repeated there (see tests/mongo).
func TestConcurrentOrdersNeverOverspendCredit(t *testing.T) {
	const (
		orders  = 1000
		covered = 100
	)
	items := []events.Item{{Flavour: "vanilla", Size: "M", Quantity: 1}}
	amount := events.Amount(items)

	t.Setenv("DATA_DIR", t.TempDir())
	t.Setenv("MONGODB_URI", "")
	t.Setenv("KAFKA_BROKERS", "")
	t.Setenv("FUNCTIONS", strings.Join(events.FunctionNames(), ","))
	t.Setenv("KITCHEN_MODE", config.KitchenManual) // approved orders stay approved
	t.Setenv("SEED_DEMO", "false")
	cfg, err := config.Load()
	if err != nil {
		t.Fatal(err)
	}
	app, err := function.Open(t.Context(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = app.Close(t.Context()) })
	if _, err := app.CreateCustomer(t.Context(), domain.NewCustomer{ID: "bulk", Name: "Bulk Buyer", CreditLimit: covered * amount}); err != nil {
		t.Fatal(err)
	}

	// Watch the credit while the orders run.
	stop := make(chan struct{})
	var watcher sync.WaitGroup
	var lowest atomic.Int64
	lowest.Store(covered * amount)
	watcher.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			c, err := app.Store.Customer(t.Context(), "bulk")
			if err != nil {
				t.Error(err)
				return
			}
			if c.Available < lowest.Load() {
				lowest.Store(c.Available)
			}
			time.Sleep(time.Millisecond)
		}
	})

	start := make(chan struct{})
	var wg sync.WaitGroup
	var failed atomic.Int64
	for i := range orders {
		wg.Go(func() {
			id := fmt.Sprintf("bulk-%04d", i)
			e, err := events.New(events.TypeOrderCreated, "test/concurrency", id,
				events.OrderCreated{OrderID: id, CustomerID: "bulk", Items: items})
			if err != nil {
				t.Error(err)
				return
			}
			<-start
			if _, err := app.Publish(t.Context(), e); err != nil {
				failed.Add(1)
				t.Errorf("order %s: %v", id, err)
			}
		})
	}
	close(start)
	wg.Wait()
	close(stop)
	watcher.Wait()

	count := map[string]int{}
	all, err := app.Store.Orders(t.Context(), "", 0)
	if err != nil {
		t.Fatal(err)
	}
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
		len(all), count, c.Available, lowest.Load(), len(c.Reservations))
	if len(all) != orders || count[events.StatusApproved] != covered || count[events.StatusCancelled] != orders-covered {
		t.Errorf("want %d orders, %d approved and %d cancelled", orders, covered, orders-covered)
	}
	if c.Available != 0 || len(c.Reservations) != covered {
		t.Errorf("available credit %d with %d reservations; want 0 and %d", c.Available, len(c.Reservations), covered)
	}
	if lowest.Load() < 0 {
		t.Errorf("available credit went down to %d", lowest.Load())
	}
	for _, r := range c.Reservations {
		o, err := app.Store.Order(t.Context(), r.OrderID)
		if err != nil || o.Status != events.StatusApproved || r.Amount != amount {
			t.Errorf("reservation %+v belongs to order %s (%v)", r, o.Status, err)
		}
	}
}
