// Package crash kills the real runner with SIGKILL at random moments while
// orders flow, restarts it on the same data, and checks what a shop relies
// on: every order the system acknowledged reaches a final state by itself,
// the credit held is exactly what the shipped orders cost, no step happens
// twice, and (over Kafka) every status change reached orderupdates.
package crash

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cupcake-factory/cupcake-factory/tests/e2e"
	"github.com/cupcake-factory/cupcake-factory/tests/internal/broker"
	"github.com/cupcake-factory/cupcake-factory/tests/internal/runner"
)

const (
	rounds  = 3
	workers = 3
	price   = 150 // one S cupcake
	credit  = 120 * price
)

func TestKilledAtRandomInProcessEveryAcknowledgedOrderEndsOnceWithExactCredit(t *testing.T) {
	p := runner.Start(t, map[string]string{"SEED_DEMO": "false"})
	acked := killUnderLoad(t, p, 10*time.Millisecond)
	checkOrders(t, p, acked, 15*time.Second)
}

func TestKilledAtRandomOverKafkaEveryAcknowledgedOrderEndsOnceWithExactCredit(t *testing.T) {
	addr := broker.Start(t, 3)
	// A stable instance id: the restarted process takes its partitions back
	// at once (static group membership) instead of waiting out the killed
	// one's session.
	p := runner.Start(t, map[string]string{"SEED_DEMO": "false", "KAFKA_BROKERS": addr, "KAFKA_INSTANCE_ID": "crash-1",
		"KAFKA_RETRY_BACKOFF": "50ms", "KAFKA_MAX_BACKOFF": "200ms"})
	// Over Kafka an order is acknowledged once it is on orderrequests, long
	// before it ships: pace the clients so that the backlog stays short.
	acked := killUnderLoad(t, p, 50*time.Millisecond)
	orders := checkOrders(t, p, acked, 60*time.Second)

	// Every status change of every order is on orderupdates at least once.
	told := map[string]bool{}
	for _, m := range broker.ReadAll(t, addr, "orderupdates", 0, 2*time.Second) {
		if broker.Header(m, "ce_type") != "com.cupcakes.order.status-changed" {
			continue
		}
		var u struct{ OrderID, Status string }
		if err := json.Unmarshal(m.Value, &u); err != nil {
			t.Fatalf("status-changed record %s: %v", m.Value, err)
		}
		told[u.OrderID+"/"+u.Status] = true
	}
	for _, o := range orders {
		for _, h := range o.History {
			if !told[o.OrderID+"/"+h.Status] {
				t.Errorf("order %s became %s but orderupdates never said so", o.OrderID, h.Status)
			}
		}
	}
}

// killUnderLoad places orders for one customer from several clients, each
// retrying a request that got no answer with the same order id (as a shop
// would), kills the process rounds times at random moments, restarts it,
// and returns the ids of the orders the system acknowledged. Each client
// waits pace between orders.
func killUnderLoad(t *testing.T, p *runner.Process, pace time.Duration) []string {
	t.Helper()
	e2e.CreateCustomer(t, p, "dora", credit)
	var (
		next  atomic.Int64
		mu    sync.Mutex
		acked []string
		wg    sync.WaitGroup
	)
	ctx, stop := context.WithCancel(context.Background())
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				id := fmt.Sprintf("o-c%05d", next.Add(1))
				if placeUntilAcknowledged(t, p, id) {
					mu.Lock()
					acked = append(acked, id)
					mu.Unlock()
				}
				time.Sleep(pace)
			}
		}()
	}
	for range rounds {
		time.Sleep(time.Duration(300+rand.IntN(700)) * time.Millisecond)
		p.Kill()
		p.Restart()
	}
	time.Sleep(300 * time.Millisecond)
	stop()
	wg.Wait()
	if len(acked) < 50 || len(acked) > 1000 {
		t.Fatalf("%d orders acknowledged; want 50..1000 (one listing page)", len(acked))
	}
	t.Logf("%d orders acknowledged across %d kills", len(acked), rounds)
	return acked
}

// placeUntilAcknowledged posts an order until the system answers 2xx; a
// refusal (4xx) is a failure of the test.
func placeUntilAcknowledged(t *testing.T, p *runner.Process, id string) bool {
	body := fmt.Sprintf(`{"orderId":%q,"customerId":"dora","items":[{"flavour":"lemon","size":"S","quantity":1}]}`, id)
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		resp, err := http.Post(p.URL+"/api/v1/order", "application/json", bytes.NewReader([]byte(body)))
		if err != nil {
			continue // killed mid-request: ask again, same order id
		}
		resp.Body.Close()
		switch {
		case resp.StatusCode < 300:
			return true
		case resp.StatusCode < 500:
			t.Errorf("order %s refused with %d", id, resp.StatusCode)
			return false
		}
	}
	t.Errorf("order %s never acknowledged", id)
	return false
}

// checkOrders waits until every acknowledged order is final, then checks
// that no step happened twice and the credit held is what shipped costs.
func checkOrders(t *testing.T, p *runner.Process, acked []string, within time.Duration) map[string]e2e.Order {
	t.Helper()
	all := e2e.WaitEnded(t, p, acked, within)
	if _, cost := e2e.CheckExactlyOnce(t, p, all, "dora"); cost > credit {
		t.Errorf("shipped %d cents for a credit of %d", cost, credit)
	}
	orders := make(map[string]e2e.Order, len(all))
	for _, o := range all {
		orders[o.OrderID] = o
	}
	return orders
}
