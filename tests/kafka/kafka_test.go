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
