// Package kafka tests cupcake-factory with events over Kafka: the real
// binary, configured with KAFKA_BROKERS, against Apache Kafka itself (one
// KRaft node per test, see tests/internal/broker; KAFKA_BROKER=kfake runs
// them on kfake) on loopback, read and written with plain sarama clients
// as a user's other systems would.
package kafka

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/cupcake-factory/cupcake-factory/tests/e2e"
	"github.com/cupcake-factory/cupcake-factory/tests/internal/broker"
	"github.com/cupcake-factory/cupcake-factory/tests/internal/runner"
)

func startApp(t *testing.T, addr string, env map[string]string) *runner.Process {
	t.Helper()
	full := map[string]string{"KAFKA_BROKERS": addr, "KAFKA_RETRY_BACKOFF": "50ms", "KAFKA_MAX_BACKOFF": "200ms"}
	for k, v := range env {
		full[k] = v
	}
	return runner.Start(t, full)
}

type listed struct {
	Orders []e2e.Order `json:"orders"`
}

func final(status string) bool {
	return status == "shipped" || status == "cancelled" || status == "failed"
}

// waitFinal waits until every order in ids is in a final state and returns
// the listing.
func waitFinal(t *testing.T, p *runner.Process, ids []string, timeout time.Duration) listed {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var l listed
		p.Get(t, "/api/v1/orders?limit=1000").JSON(t, &l)
		done := map[string]bool{}
		for _, o := range l.Orders {
			if final(o.Status) {
				done[o.OrderID] = true
			}
		}
		missing := 0
		for _, id := range ids {
			if !done[id] {
				missing++
			}
		}
		if missing == 0 {
			return l
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d orders not final after %s\n%s", missing, len(ids), timeout, p.Log())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// checkExactlyOnce checks the orders of l: none went through a state
// twice, exactly shipped of customer's shipped, and customer holds exactly
// what they cost.
func checkExactlyOnce(t *testing.T, p *runner.Process, l listed, customer string, shipped int) {
	t.Helper()
	if n, _ := e2e.CheckExactlyOnce(t, p, l.Orders, customer); n != shipped {
		t.Errorf("%d shipped, want exactly %d", n, shipped)
	}
}

// waitShipped waits until at least n orders have shipped.
func waitShipped(t *testing.T, p *runner.Process, n int) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		var l listed
		p.Get(t, "/api/v1/orders?status=shipped&limit=1000").JSON(t, &l)
		if len(l.Orders) >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d orders shipped in 30s:\n%s", len(l.Orders), n, p.Log())
		}
	}
}

// orderRecord is a binary-mode CloudEvent record as a plain Kafka client
// writes it: ce_ headers, JSON value, order id as key.
func orderRecord(id, customer string, quantity int) *sarama.ProducerMessage {
	return &sarama.ProducerMessage{
		Topic: "orderrequests",
		Key:   sarama.StringEncoder(id),
		Value: sarama.StringEncoder(e2e.OrderData(id, customer, "vanilla", "S", quantity)),
		Headers: []sarama.RecordHeader{
			{Key: []byte("ce_specversion"), Value: []byte("1.0")},
			{Key: []byte("ce_id"), Value: []byte("plain-" + id)},
			{Key: []byte("ce_source"), Value: []byte("plain-kafka-client")},
			{Key: []byte("ce_type"), Value: []byte("com.cupcakes.order.created")},
			{Key: []byte("ce_subject"), Value: []byte(id)},
			{Key: []byte("content-type"), Value: []byte("application/json")},
		},
	}
}

func TestFullFlowOverKafkaInBothContentModes(t *testing.T) {
	for _, mode := range []string{"binary", "structured"} {
		t.Run(mode, func(t *testing.T) {
			addr := broker.Start(t, 2)
			p := startApp(t, addr, map[string]string{"KAFKA_CONTENT_MODE": mode})
			r := e2e.PostBinary(t, p, "k-1", "com.cupcakes.order.created", "o-k1", e2e.OrderData("o-k1", "alice", "vanilla", "M", 6))
			if r.Status != http.StatusAccepted {
				t.Fatalf("POST / = %d %s, want 202 (published to Kafka)", r.Status, r.Body)
			}
			r = e2e.PostStructured(t, p, "k-2", "com.cupcakes.order.created", "o-k2", e2e.OrderData("o-k2", "alice", "lemon", "XL", 1000))
			if r.Status != http.StatusAccepted {
				t.Fatalf("POST / = %d %s", r.Status, r.Body)
			}
			r = p.PostJSON(t, "/api/v1/order", `{"orderId":"o-k3","customerId":"alice","items":[{"flavour":"carrot","size":"S","quantity":2}]}`)
			if r.Status != http.StatusAccepted {
				t.Fatalf("POST order = %d %s", r.Status, r.Body)
			}
			waitFinal(t, p, []string{"o-k1", "o-k2", "o-k3"}, 30*time.Second)
			if o := e2e.GetOrder(t, p, "o-k1"); o.Status != "shipped" || o.Statuses() != "created,approved,mixed,baked,decorated,packaged,shipped" {
				t.Errorf("o-k1 %s: %s", o.Status, o.Statuses())
			}
			if o := e2e.GetOrder(t, p, "o-k2"); o.Status != "cancelled" || o.Reason != "insufficient-credit" {
				t.Errorf("o-k2 %s (%s)", o.Status, o.Reason)
			}
			if o := e2e.GetOrder(t, p, "o-k3"); o.Status != "shipped" {
				t.Errorf("o-k3 %s", o.Status)
			}

			// What travelled: each record keyed by the order id, in the mode asked for.
			recs := broker.ReadAll(t, addr, "readytobake", 2, 2*time.Second)
			if len(recs) != 2 {
				t.Fatalf("%d records on readytobake, want 2", len(recs))
			}
			for _, m := range recs {
				ct := broker.Header(m, "content-type")
				switch mode {
				case "binary":
					if broker.Header(m, "ce_type") != "com.cupcakes.order.mixed" || ct != "application/json" {
						t.Errorf("binary record headers %v", m.Headers)
					}
				case "structured":
					if !strings.HasPrefix(ct, "application/cloudevents+json") || !strings.Contains(string(m.Value), `"type":"com.cupcakes.order.mixed"`) {
						t.Errorf("structured record content-type %q value %s", ct, m.Value)
					}
				}
				var data struct{ OrderID string }
				body := m.Value
				if mode == "structured" {
					var env struct{ Data json.RawMessage }
					_ = json.Unmarshal(m.Value, &env)
					body = env.Data
				}
				if err := json.Unmarshal(body, &data); err != nil || string(m.Key) != data.OrderID {
					t.Errorf("record key %q, data %s", m.Key, body)
				}
			}
			if upd := broker.ReadAll(t, addr, "orderupdates", 0, 2*time.Second); len(upd) == 0 {
				t.Error("nothing on orderupdates")
			}
		})
	}
}

func TestARecordFromAPlainKafkaClientIsProcessedLikeOneSentOverHTTP(t *testing.T) {
	addr := broker.Start(t, 1)
	p := startApp(t, addr, nil)
	broker.Produce(t, addr, orderRecord("o-plain", "alice", 3))
	waitFinal(t, p, []string{"o-plain"}, 30*time.Second)
	if o := e2e.GetOrder(t, p, "o-plain"); o.Status != "shipped" || o.Amount != 450 {
		t.Errorf("o-plain %s amount %d", o.Status, o.Amount)
	}
}

func TestPoisonRecordsAreDeadLetteredAndTheOrdersAfterThemFlow(t *testing.T) {
	addr := broker.Start(t, 1)
	p := startApp(t, addr, nil)
	wrongType := orderRecord("o-wrong", "alice", 1)
	wrongType.Headers[3].Value = []byte("com.cupcakes.order.mixed")
	noOrderID := orderRecord("o-noid", "alice", 1)
	noOrderID.Value = sarama.StringEncoder(`{"customerId":"alice","items":[{"flavour":"vanilla","size":"S","quantity":1}]}`)
	broker.Produce(t, addr,
		&sarama.ProducerMessage{Topic: "orderrequests", Key: sarama.StringEncoder("x"), Value: sarama.StringEncoder("not a cloudevent")},
		wrongType,
		noOrderID,
		orderRecord("o-after", "alice", 2),
	)
	waitFinal(t, p, []string{"o-after"}, 30*time.Second)
	dead := broker.ReadAll(t, addr, "deadletters", 3, 10*time.Second)
	if len(dead) != 3 {
		t.Fatalf("%d dead letters, want 3", len(dead))
	}
	// Each dead letter is counted, by where it came from and its type.
	metrics := string(p.Get(t, "/metrics").Body)
	for _, want := range []string{
		`cupcakes_deadletters_total{topic="orderrequests",type=""} 1`,
		`cupcakes_deadletters_total{topic="orderrequests",type="com.cupcakes.order.mixed"} 1`,
		`cupcakes_deadletters_total{topic="orderrequests",type="com.cupcakes.order.created"} 1`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s:\n%s", want, metrics)
		}
	}
	// Records of different keys are handled at once, so their dead letters
	// may come in any order: each is found by the offset it names.
	slices.SortFunc(dead, func(a, b *sarama.ConsumerMessage) int {
		return strings.Compare(broker.Header(a, "ce_deadletteroffset"), broker.Header(b, "ce_deadletteroffset"))
	})
	wantReasons := []string{"not a CloudEvent", "unexpected event type", "orderId is required"}
	for i, m := range dead {
		reason := broker.Header(m, "ce_deadletterreason")
		if !strings.Contains(reason, wantReasons[i]) {
			t.Errorf("dead letter %d reason %q, want %q", i, reason, wantReasons[i])
		}
		if broker.Header(m, "ce_deadlettertopic") != "orderrequests" || broker.Header(m, "ce_deadletterpartition") != "0" ||
			broker.Header(m, "ce_deadletteroffset") != fmt.Sprint(i) {
			t.Errorf("dead letter %d origin %v", i, m.Headers)
		}
	}
}

func TestTwoInstancesInOneConsumerGroupShareTheWork(t *testing.T) {
	// Two order-created instances in group cupcake-factory-order-created,
	// each with its own embedded store: what each stores is what it
	// consumed. Together they must take every order, each exactly once.
	const n = 60
	addr := broker.Start(t, 4)
	env := map[string]string{"FUNCTIONS": "order-created", "ALLOW_PARTIAL_EMBEDDED_STORE": "true"}
	a, b := startApp(t, addr, env), startApp(t, addr, env)
	var ids []string
	var msgs []*sarama.ProducerMessage
	for i := range n {
		id := fmt.Sprintf("o-g%02d", i)
		ids = append(ids, id)
		msgs = append(msgs, orderRecord(id, "alice", 1))
	}
	waitMembers(t, addr, "cupcake-factory-order-created", 2)
	broker.Produce(t, addr, msgs...)
	owner := map[string]string{}
	for deadline := time.Now().Add(30 * time.Second); len(owner) < n; time.Sleep(100 * time.Millisecond) {
		for name, p := range map[string]*runner.Process{"a": a, "b": b} {
			var l listed
			p.Get(t, "/api/v1/orders?limit=1000").JSON(t, &l)
			for _, o := range l.Orders {
				if prev, ok := owner[o.OrderID]; ok && prev != name {
					t.Fatalf("order %s consumed by both instances", o.OrderID)
				}
				owner[o.OrderID] = name
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d orders consumed", len(owner), n)
		}
	}
	shares := map[string]int{}
	for _, id := range ids {
		shares[owner[id]]++
	}
	if shares["a"] == 0 || shares["b"] == 0 {
		t.Errorf("one instance did all the work: %v", shares)
	}
	t.Logf("shares: %v", shares)
}

// waitMembers waits until group has members members.
func waitMembers(t *testing.T, addr, group string, members int) {
	t.Helper()
	admin, err := sarama.NewClusterAdmin([]string{addr}, broker.Config())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		groups, err := admin.DescribeConsumerGroups([]string{group})
		if err == nil && len(groups) == 1 && len(groups[0].Members) == members && groups[0].State == "Stable" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("group %s never had %d stable members: %v", group, members, err)
		}
	}
}

func TestAProcessStoppedMidStreamLeavesEveryOrderFinalWithCreditReservedOnce(t *testing.T) {
	tests := []struct {
		name string
		stop func(p *runner.Process)
	}{
		{"killed", func(p *runner.Process) { p.Kill() }},
		{"SIGTERM", func(p *runner.Process) { p.Stop() }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			const n = 150
			addr := broker.Start(t, 3)
			p := startApp(t, addr, map[string]string{"SEED_DEMO": "false"})
			e2e.CreateCustomer(t, p, "dora", 100*150) // covers 100 of the 1-cupcake orders below
			var msgs []*sarama.ProducerMessage
			var ids []string
			for i := range n {
				id := fmt.Sprintf("o-s%03d", i)
				ids = append(ids, id)
				msgs = append(msgs, orderRecord(id, "dora", 1))
			}
			broker.Produce(t, addr, msgs...)
			// Let part of the stream through, then stop the process.
			waitShipped(t, p, 10)
			tt.stop(p)
			p.Restart()
			checkExactlyOnce(t, p, waitFinal(t, p, ids, 60*time.Second), "dora", 100) // the 100 the credit covers
		})
	}
}

func TestEventsFromHTTPAreKeyedByOrderAndNotificationsAreForwarded(t *testing.T) {
	addr := broker.Start(t, 3)
	api := startApp(t, addr, map[string]string{"FUNCTIONS": "none", "ALLOW_PARTIAL_EMBEDDED_STORE": "true"})
	// No subject, no partitionkey: the order id still becomes the key.
	r := e2e.PostBinary(t, api, "nk-1", "com.cupcakes.order.created", "", e2e.OrderData("o-nokey", "alice", "vanilla", "S", 1))
	if r.Status != http.StatusAccepted {
		t.Fatalf("POST / = %d %s", r.Status, r.Body)
	}
	// A function's reply routed through the API on Knative (source flavour).
	r = e2e.PostBinary(t, api, "nk-2", "com.cupcakes.order.cancelled", "o-nokey", `{"orderId":"o-nokey","status":"cancelled","reason":"insufficient-credit"}`)
	if r.Status != http.StatusAccepted {
		t.Fatalf("POST / cancelled = %d %s", r.Status, r.Body)
	}
	if r := e2e.PostBinary(t, api, "nk-3", "com.cupcakes.order.shipped", "o-x", `{"orderId":"o-x","status":"eaten"}`); r.Status != http.StatusBadRequest {
		t.Errorf("bad notification = %d, want 400", r.Status)
	}
	reqs := broker.ReadAll(t, addr, "orderrequests", 1, 5*time.Second)
	if len(reqs) != 1 || string(reqs[0].Key) != "o-nokey" || broker.Header(reqs[0], "ce_partitionkey") != "o-nokey" {
		t.Fatalf("orderrequests %v", reqs)
	}
	upd := broker.ReadAll(t, addr, "orderupdates", 1, 5*time.Second)
	if len(upd) != 1 || broker.Header(upd[0], "ce_type") != "com.cupcakes.order.cancelled" || string(upd[0].Key) != "o-nokey" {
		t.Fatalf("orderupdates %v", upd)
	}
}

// TestACancelOverKafkaGivesTheCreditBackOnceAndTheKitchenCannotGoOn: in the
// manual kitchen over Apache Kafka, a cancel-requested record on
// orderrequests (from a plain client, delivered twice) and a REST cancel
// each cancel an approved order once, give its credit back once and put
// order.cancelled on orderupdates; a station's later report is refused, and
// a decorated order's cancel is refused.
func TestACancelOverKafkaGivesTheCreditBackOnceAndTheKitchenCannotGoOn(t *testing.T) {
	addr := broker.Start(t, 2)
	p := startApp(t, addr, map[string]string{"KITCHEN_MODE": "manual"})
	start := e2e.GetCustomer(t, p, "alice")
	for _, id := range []string{"o-kc1", "o-kc2", "o-kc3"} {
		if r := e2e.PostBinary(t, p, "ev-"+id, "com.cupcakes.order.created", id, e2e.OrderData(id, "alice", "vanilla", "M", 6)); r.Status != http.StatusAccepted {
			t.Fatalf("POST / = %d %s", r.Status, r.Body)
		}
	}
	waitStatus := func(id, status string) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			var o e2e.Order
			if r := p.Get(t, "/api/v1/order/"+id); r.Status == http.StatusOK {
				r.JSON(t, &o)
			}
			if o.Status == status {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("order %s is %q, want %s\n%s", id, o.Status, status, p.Log())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	for _, id := range []string{"o-kc1", "o-kc2", "o-kc3"} {
		waitStatus(id, "approved")
	}

	cancel := &sarama.ProducerMessage{
		Topic: "orderrequests", Key: sarama.StringEncoder("o-kc1"),
		Value: sarama.StringEncoder(`{"orderId":"o-kc1","by":"alice","reason":"changed my mind"}`),
		Headers: []sarama.RecordHeader{
			{Key: []byte("ce_specversion"), Value: []byte("1.0")},
			{Key: []byte("ce_id"), Value: []byte("cancel-kc1")},
			{Key: []byte("ce_source"), Value: []byte("plain-kafka-client")},
			{Key: []byte("ce_type"), Value: []byte("com.cupcakes.order.cancel-requested")},
			{Key: []byte("ce_subject"), Value: []byte("o-kc1")},
			{Key: []byte("content-type"), Value: []byte("application/json")},
		},
	}
	broker.Produce(t, addr, cancel)
	broker.Produce(t, addr, cancel) // delivered twice
	waitStatus("o-kc1", "cancelled")

	if r := p.PostJSON(t, "/api/v1/order/cancel", `{"orderId":"o-kc2","by":"alice"}`); r.Status != http.StatusOK {
		t.Fatalf("REST cancel = %d %s", r.Status, r.Body)
	}
	for _, s := range []string{"mix", "bake", "decorate"} {
		if r := p.PostJSON(t, "/api/v1/order/"+s, `{"orderId":"o-kc3","by":"maria"}`); r.Status != http.StatusAccepted {
			t.Fatalf("%s = %d %s", s, r.Status, r.Body)
		}
		waitStatus("o-kc3", map[string]string{"mix": "mixed", "bake": "baked", "decorate": "decorated"}[s])
	}
	if r := p.PostJSON(t, "/api/v1/order/cancel", `{"orderId":"o-kc3","by":"alice"}`); r.Status != http.StatusUnprocessableEntity {
		t.Errorf("cancel a decorated order = %d %s, want 422", r.Status, r.Body)
	}
	if r := p.PostJSON(t, "/api/v1/order/mix", `{"orderId":"o-kc2","by":"maria"}`); r.Status != http.StatusAccepted && r.Status != http.StatusUnprocessableEntity {
		t.Errorf("mix a cancelled order = %d %s", r.Status, r.Body) // over Kafka the refusal happens in the consumer
	}

	deadline := time.Now().Add(10 * time.Second)
	for e2e.GetCustomer(t, p, "alice").AvailableCredit != start.AvailableCredit-1200 {
		if time.Now().After(deadline) {
			t.Fatalf("available %d, want %d: o-kc1 and o-kc2 back once, o-kc3 held", e2e.GetCustomer(t, p, "alice").AvailableCredit, start.AvailableCredit-1200)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, id := range []string{"o-kc1", "o-kc2"} {
		if got := e2e.GetOrder(t, p, id).Statuses(); got != "created,approved,cancelled" {
			t.Errorf("%s history %s, want cancelled once", id, got)
		}
	}
	if o := e2e.GetOrder(t, p, "o-kc1"); o.Reason != "changed my mind" {
		t.Errorf("o-kc1 reason %q", o.Reason)
	}
	cancelled := map[string]int{}
	for _, m := range broker.ReadAll(t, addr, "orderupdates", 0, 3*time.Second) {
		if broker.Header(m, "ce_type") == "com.cupcakes.order.cancelled" {
			cancelled[string(m.Key)]++
		}
	}
	if cancelled["o-kc1"] < 1 || cancelled["o-kc2"] < 1 || cancelled["o-kc3"] != 0 {
		t.Errorf("order.cancelled records on orderupdates by key: %v; want o-kc1 and o-kc2", cancelled)
	}
	// Still credit back once, after everything settled.
	time.Sleep(500 * time.Millisecond)
	if c := e2e.GetCustomer(t, p, "alice"); c.AvailableCredit != start.AvailableCredit-1200 {
		t.Errorf("available %d, want %d", c.AvailableCredit, start.AvailableCredit-1200)
	}
}

// TestInTheAutomaticKitchenACancelRacesTheChainAndOneWriteWins: orders
// placed and at once cancelled over Apache Kafka end either cancelled
// (credit back) or past cancelling and shipped (credit spent), never both,
// each step once; a refused cancel says why.
func TestInTheAutomaticKitchenACancelRacesTheChainAndOneWriteWins(t *testing.T) {
	addr := broker.Start(t, 3)
	p := startApp(t, addr, nil)
	e2e.CreateCustomer(t, p, "racer", 1_000_000)
	var ids []string
	for i := range 20 {
		id := fmt.Sprintf("o-race-%d", i)
		ids = append(ids, id)
		if r := p.PostJSON(t, "/api/v1/order", fmt.Sprintf(`{"orderId":%q,"customerId":"racer","items":[{"flavour":"lemon","size":"S","quantity":2}]}`, id)); r.Status != http.StatusAccepted {
			t.Fatalf("POST order = %d %s", r.Status, r.Body)
		}
	}
	refused := 0
	for _, id := range ids {
		r := p.PostJSON(t, "/api/v1/order/cancel", fmt.Sprintf(`{"orderId":%q,"by":"racer"}`, id))
		switch r.Status {
		case http.StatusOK:
		case http.StatusUnprocessableEntity, http.StatusNotFound: // past cancelling, or not recorded yet
			refused++
		default:
			t.Fatalf("cancel %s = %d %s", id, r.Status, r.Body)
		}
	}
	l := waitFinal(t, p, ids, 60*time.Second)
	var cancelled, shipped int
	for _, o := range l.Orders {
		switch {
		case o.Status == "cancelled" && strings.HasSuffix(o.Statuses(), ",cancelled") && !strings.Contains(o.Statuses(), "decorated"):
			cancelled++
		case o.Status == "shipped":
			shipped++
		case slices.Contains(ids, o.OrderID):
			t.Errorf("%s ended %s after %s", o.OrderID, o.Status, o.Statuses())
		}
	}
	if cancelled+shipped != len(ids) {
		t.Errorf("%d cancelled + %d shipped of %d", cancelled, shipped, len(ids))
	}
	// Credit back once for every cancelled order, spent for every shipped one.
	deadline := time.Now().Add(10 * time.Second)
	want := int64(1_000_000 - shipped*300)
	for e2e.GetCustomer(t, p, "racer").AvailableCredit != want {
		if time.Now().After(deadline) {
			t.Fatalf("available %d, want %d (%d shipped at 300, %d cancelled)", e2e.GetCustomer(t, p, "racer").AvailableCredit, want, shipped, cancelled)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("%d cancelled, %d shipped, %d cancels refused", cancelled, shipped, refused)
}
