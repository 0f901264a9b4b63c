// Package replicas runs cupcake-factory as several replicas in one
// consumer group per function on Apache Kafka, sharing one MongoDB-protocol
// store (FerretDB behind the write-serializing proxy of
// tests/internal/ferret), and puts them through what a cluster does to
// them while orders flow: one is killed with kill -9 and comes back, a
// fourth joins, and a rolling SIGTERM restart goes through all of them.
// Every acknowledged order must end exactly once, with the credit exact and
// no step twice, and the first order after the kill -9 restart must ship
// within 3 s.
package replicas

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cupcake-factory/cupcake-factory/tests/e2e"
	"github.com/cupcake-factory/cupcake-factory/tests/internal/broker"
	"github.com/cupcake-factory/cupcake-factory/tests/internal/ferret"
	"github.com/cupcake-factory/cupcake-factory/tests/internal/runner"
)

const (
	price  = 150         // one S cupcake
	credit = 200 * price // fewer than the orders placed: some are refused credit
	// clients place orders, each waiting pace after an answer: 4 orders a
	// second offered. FerretDB carries 1-3 a second here (its update scans
	// the collection); at 8 a second a slow rolling restart left a backlog
	// that took more than two minutes to drain.
	clients = 1
	pace    = 250 * time.Millisecond
)

// fleet is the running replicas; the load goes to whichever are up.
type fleet struct {
	mu       sync.Mutex
	replicas []*runner.Process
	down     map[*runner.Process]bool
}

func (f *fleet) add(p *runner.Process) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.replicas = append(f.replicas, p)
}

func (f *fleet) setDown(p *runner.Process, down bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.down[p] = down
}

// pick returns a replica that is up, round robin on n.
func (f *fleet) pick(n int64) *runner.Process {
	f.mu.Lock()
	defer f.mu.Unlock()
	var up []*runner.Process
	for _, p := range f.replicas {
		if !f.down[p] {
			up = append(up, p)
		}
	}
	return up[int(n)%len(up)]
}

func TestReplicasKilledJoinedAndRolledEachOrderEndsOnceWithExactCredit(t *testing.T) {
	if broker.Kind() != "apache" {
		t.Skip("the replica scenario claims Apache Kafka's group behaviour")
	}
	k := broker.StartApache(t, 6)
	uri := ferret.Start(t)
	start := func(i int) *runner.Process {
		return runner.Start(t, map[string]string{
			"KAFKA_BROKERS": k.Addr, "MONGODB_URI": uri, "MONGODB_DATABASE": "replicas",
			"KAFKA_INSTANCE_ID": fmt.Sprintf("replica-%d", i), "SEED_DEMO": "false",
			"KAFKA_RETRY_BACKOFF": "50ms", "KAFKA_MAX_BACKOFF": "500ms",
		})
	}
	f := &fleet{down: map[*runner.Process]bool{}}
	for i := 1; i <= 3; i++ {
		f.add(start(i))
	}
	e2e.CreateCustomer(t, f.replicas[0], "dora", credit)
	e2e.CreateCustomer(t, f.replicas[0], "probe", 10*price)

	// The load: clients placing orders on any replica that is up, each
	// asking again (same order id, maybe another replica) until one
	// acknowledges it, as a shop behind a load balancer would.
	var (
		next, sent atomic.Int64
		paused     atomic.Bool
		mu         sync.Mutex
		acked      []string
		wg         sync.WaitGroup
	)
	ctx, stop := context.WithCancel(context.Background())
	began := time.Now()
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				if paused.Load() {
					time.Sleep(20 * time.Millisecond)
					continue
				}
				id := fmt.Sprintf("o-r%05d", next.Add(1))
				if place(ctx, t, f, &sent, id) {
					mu.Lock()
					acked = append(acked, id)
					mu.Unlock()
				}
				time.Sleep(pace)
			}
		}()
	}

	time.Sleep(2 * time.Second)
	t.Logf("under load, before anything happens, an order ships in %s", probe(t, f.replicas[0], "o-probe-before").Round(time.Millisecond))
	// kill -9 one replica; it comes back with the same instance id, as a
	// restarted pod of a StatefulSet would.
	victim := f.replicas[1]
	f.setDown(victim, true)
	victim.Kill()
	// While it restarts and the probe goes through, no new orders are
	// placed: the probe measures how soon the replica works again, not the
	// backlog of a machine whose two cores the whole test suite shares.
	paused.Store(true)
	restarted := time.Now()
	victim.Restart()
	ready := time.Since(restarted)
	f.setDown(victim, false)
	shipped := probe(t, victim, "o-probe-kill")
	paused.Store(false)
	pausedFor := time.Since(restarted)
	t.Logf("kill -9: the replica was ready %s after its restart; its first new order shipped %s later", ready.Round(time.Millisecond), shipped.Round(time.Millisecond))
	if ready+shipped > 3*time.Second {
		t.Errorf("first order after a kill -9 restart shipped %s after the restart, want within 3s", (ready + shipped).Round(time.Millisecond))
	}

	time.Sleep(time.Second)
	// A fourth replica joins.
	f.add(start(4))
	t.Logf("a fourth replica joined")
	time.Sleep(2 * time.Second)

	// A rolling restart: SIGTERM one after the other, each back before the next.
	f.mu.Lock()
	all := append([]*runner.Process(nil), f.replicas...)
	f.mu.Unlock()
	for i, p := range all {
		f.setDown(p, true)
		began := time.Now()
		p.Restart()
		f.setDown(p, false)
		t.Logf("rolling restart: replica %d back in %s", i+1, time.Since(began).Round(time.Millisecond))
		time.Sleep(500 * time.Millisecond)
	}
	time.Sleep(time.Second)
	stop()
	wg.Wait()
	if len(acked) < 40 {
		t.Fatalf("only %d orders acknowledged", len(acked))
	}
	t.Logf("%d orders acknowledged (%d requests) across a kill -9, a join and a rolling restart of 4: %.1f orders/s while the clients were not paused",
		len(acked), sent.Load(), float64(len(acked))/(time.Since(began)-pausedFor).Seconds())

	checkOrders(t, f.replicas[0], append(acked, "o-probe-before", "o-probe-kill"), 120*time.Second)
	for i, p := range all {
		t.Logf("replica %d handled %d events since its last start", i+1, handled(t, p))
	}
}

// place posts an order until a replica acknowledges it; a refusal (4xx) is
// a failure of the test. It gives up when ctx ends and the order was never
// acknowledged.
func place(ctx context.Context, t *testing.T, f *fleet, sent *atomic.Int64, id string) bool {
	body := fmt.Sprintf(`{"orderId":%q,"customerId":"dora","items":[{"flavour":"lemon","size":"S","quantity":1}]}`, id)
	for attempt := int64(0); ; attempt++ {
		p := f.pick(sent.Add(1) + attempt)
		resp, err := http.Post(p.URL+"/api/v1/order", "application/json", bytes.NewReader([]byte(body)))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode < 300 {
				return true
			}
			if resp.StatusCode < 500 {
				t.Errorf("order %s refused with %d", id, resp.StatusCode)
				return false
			}
		}
		if ctx.Err() != nil && attempt > 50 {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// probe places one order of the customer "probe" on p and returns how long
// it took to ship.
func probe(t *testing.T, p *runner.Process, id string) time.Duration {
	t.Helper()
	began := time.Now()
	r := p.PostJSON(t, "/api/v1/order", fmt.Sprintf(`{"orderId":%q,"customerId":"probe","items":[{"flavour":"vanilla","size":"S","quantity":1}]}`, id))
	if r.Status == http.StatusAccepted {
		for deadline := began.Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			var o struct{ Status, Reason string }
			if r := p.Get(t, "/api/v1/order/"+id); r.Status == http.StatusOK {
				r.JSON(t, &o)
			}
			if o.Status == "shipped" {
				return time.Since(began)
			}
			if o.Status == "cancelled" || o.Status == "failed" {
				t.Fatalf("probe %s ended %s (%s)", id, o.Status, o.Reason)
			}
		}
	}
	t.Fatalf("probe %s not final in 30s (POST %d): %s", id, r.Status, p.Get(t, "/api/v1/order/"+id).Body)
	return 0
}

// checkOrders waits until every acknowledged order is final, then checks
// that no step happened twice and the credit held is what shipped costs.
func checkOrders(t *testing.T, p *runner.Process, acked []string, within time.Duration) {
	t.Helper()
	all := e2e.WaitEnded(t, p, acked, within)
	shipped, cost := e2e.CheckExactlyOnce(t, p, all, "dora")
	if cost > credit {
		t.Errorf("shipped %d cents for a credit of %d", cost, credit)
	}
	t.Logf("%d orders shipped for %d cents, %d cancelled", shipped, cost, len(acked)-2-shipped)
}

var handledLine = regexp.MustCompile(`(?m)^cupcakes_events_total\{[^}]*outcome="handled"[^}]*\} (\S+)$`)

// handled sums the events p handled since it started, from /metrics.
func handled(t *testing.T, p *runner.Process) int {
	t.Helper()
	var n float64
	for _, m := range handledLine.FindAllStringSubmatch(string(p.Get(t, "/metrics").Body), -1) {
		v, _ := strconv.ParseFloat(m[1], 64)
		n += v
	}
	return int(n)
}

// TestABusyCustomersOrdersAllShipOnOneAndOnThreeReplicas is a café that
// orders 200 boxes (BUSY_ORDERS), 64 requests at a time, on one replica and
// on three started at once
// sharing Apache Kafka and MongoDB (FerretDB behind the proxy): every
// credit reservation races for one customer document. Every order ships,
// nothing is dead-lettered, no write gives up, and the credit is exact.
func TestABusyCustomersOrdersAllShipOnOneAndOnThreeReplicas(t *testing.T) {
	if broker.Kind() != "apache" {
		t.Skip("the replica scenario claims Apache Kafka's group behaviour")
	}
	orders, inFlight := 200, 64
	if n, err := strconv.Atoi(os.Getenv("BUSY_ORDERS")); err == nil && n > 0 {
		orders = n
	}
	uri := ferret.Start(t)
	for _, n := range []int{1, 3} {
		t.Run(fmt.Sprintf("%d replicas", n), func(t *testing.T) {
			// A broker of its own: new consumer groups read their topics
			// from the start, the other run's records included.
			k := broker.StartApache(t, 6)
			run := fmt.Sprintf("busy%d", n)
			// Started at the same moment, as a Deployment scales up: each
			// creates the indexes it finds missing, and all become ready.
			var ps []*runner.Process
			for i := 1; i <= n; i++ {
				ps = append(ps, runner.Launch(t, map[string]string{
					"KAFKA_BROKERS": k.Addr, "KAFKA_GROUP_PREFIX": run, "KAFKA_INSTANCE_ID": fmt.Sprintf("%s-%d", run, i),
					"MONGODB_URI": uri, "MONGODB_DATABASE": run, "SEED_DEMO": "false",
					// FerretDB runs a few hundred commands a second: a few
					// records in hand per partition keep its queue short.
					"KAFKA_MAX_IN_FLIGHT": "4",
				}))
			}
			for _, p := range ps {
				p.WaitReady(60 * time.Second)
			}
			e2e.CreateCustomer(t, ps[0], "cafe", int64(orders*price))
			began := time.Now()
			ids := make(chan int, orders)
			for i := range orders {
				ids <- i
			}
			close(ids)
			var wg sync.WaitGroup
			for range inFlight {
				wg.Go(func() {
					for i := range ids {
						id := fmt.Sprintf("o-busy%04d", i)
						r := ps[i%n].PostJSON(t, "/api/v1/order", fmt.Sprintf(
							`{"orderId":%q,"customerId":"cafe","items":[{"flavour":"lemon","size":"S","quantity":1}]}`, id))
						if r.Status != http.StatusAccepted {
							t.Errorf("order %s: %d %s", id, r.Status, r.Body)
						}
					}
				})
			}
			wg.Wait()
			var all []string
			for i := range orders {
				all = append(all, fmt.Sprintf("o-busy%04d", i))
			}
			// Watch the replicas' counters, which cost the store nothing,
			// until every order was packaged; then read the orders once.
			for deadline := time.Now().Add(5 * time.Minute); time.Now().Before(deadline); time.Sleep(time.Second) {
				var packaged float64
				for _, p := range ps {
					packaged += metric(t, p, packagedLine)
				}
				if packaged >= float64(orders) {
					break
				}
			}
			stored := e2e.WaitEnded(t, ps[0], all, 30*time.Second)
			took := time.Since(began)
			shipped, cost := e2e.CheckExactlyOnce(t, ps[0], stored, "cafe")
			if shipped != orders || cost != int64(orders*price) {
				t.Errorf("%d orders shipped for %d cents; want all %d, for %d", shipped, cost, orders, orders*price)
			}
			for i, p := range ps {
				if d := metric(t, p, deadLine); d != 0 {
					l := p.Log()
					t.Errorf("replica %d dead-lettered %.0f events; its log ends:\n%s", i+1, d, l[max(0, len(l)-4000):])
				}
				if strings.Contains(p.Log(), "too many concurrent changes") {
					t.Errorf("replica %d gave up a write: too many concurrent changes", i+1)
				}
			}
			var cmds float64
			for _, p := range ps {
				cmds += metric(t, p, commandLine)
			}
			t.Logf("%d replicas: %d orders of one customer shipped in %s (%.1f orders/s), %.1f MongoDB commands per order",
				n, orders, took.Round(time.Millisecond), float64(orders)/took.Seconds(), cmds/float64(orders))
		})
	}
}

var (
	packagedLine = regexp.MustCompile(`(?m)^cupcakes_events_total\{outcome="handled",type="com.cupcakes.order.packaged"\} (\S+)$`)
	deadLine     = regexp.MustCompile(`(?m)^cupcakes_deadletters_total\{[^}]*\} (\S+)$`)
	commandLine  = regexp.MustCompile(`(?m)^cupcakes_mongodb_commands_total\{[^}]*\} (\S+)$`)
)

// metric sums the samples of p's /metrics that re matches.
func metric(t *testing.T, p *runner.Process, re *regexp.Regexp) float64 {
	t.Helper()
	var n float64
	for _, m := range re.FindAllStringSubmatch(string(p.Get(t, "/metrics").Body), -1) {
		v, _ := strconv.ParseFloat(m[1], 64)
		n += v
	}
	return n
}
