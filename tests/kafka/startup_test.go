package kafka

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cupcake-factory/cupcake-factory/tests/e2e"
	"github.com/cupcake-factory/cupcake-factory/tests/internal/broker"
	"github.com/cupcake-factory/cupcake-factory/tests/internal/runner"
)

// stayUpUnready checks for a while that p runs and says it is not ready,
// naming Kafka.
func stayUpUnready(t *testing.T, p *runner.Process, d time.Duration) {
	t.Helper()
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
		if p.Exited() {
			t.Fatalf("the process exited while Kafka was not there:\n%s", p.Log())
		}
		status, body := p.Readiness()
		if status == http.StatusOK {
			t.Fatalf("ready without Kafka: %s", body)
		}
		if status == http.StatusServiceUnavailable && !strings.Contains(body, "kafka") {
			t.Fatalf("readiness %d does not say what it waits for: %s", status, body)
		}
	}
}

// TestAStartUpWhileTheBrokerIsDownAndThenElectingLeadersDoesNotExit starts
// the process while its broker is stopped, keeps it waiting, then starts
// the broker: the process meets the broker's start-up (no leaders yet,
// partitions recovering, the group coordinator loading), retries, becomes
// ready and does its work.
func TestAStartUpWhileTheBrokerIsDownAndThenElectingLeadersDoesNotExit(t *testing.T) {
	if broker.Kind() != "apache" {
		t.Skip("stops and starts the broker: Apache Kafka only")
	}
	k := broker.StartApache(t, 3)
	k.Stop()
	p := runner.Launch(t, map[string]string{"KAFKA_BROKERS": k.Addr, "KAFKA_RETRY_BACKOFF": "50ms", "KAFKA_MAX_BACKOFF": "200ms"})
	stayUpUnready(t, p, 3*time.Second)

	k.StartAgain()
	p.WaitReady(30 * time.Second)
	if !strings.Contains(p.Log(), "Kafka not ready; retrying") {
		t.Errorf("no retry logged:\n%s", p.Log())
	}
	r := p.PostJSON(t, "/api/v1/order", `{"orderId":"o-late","customerId":"alice","items":[{"flavour":"carrot","size":"S","quantity":2}]}`)
	if r.Status != http.StatusAccepted {
		t.Fatalf("POST order = %d %s", r.Status, r.Body)
	}
	waitFinal(t, p, []string{"o-late"}, 30*time.Second)
	if o := e2e.GetOrder(t, p, "o-late"); o.Status != "shipped" {
		t.Errorf("o-late %s", o.Status)
	}
}

// TestAStartUpBeforeItsTopicsExistWaitsForThemAndDoesNotExit points the
// process at topics nobody created yet (UNKNOWN_TOPIC_OR_PARTITION): it
// stays up and not ready. Then they are created, with many partitions, and
// it meets them while their leaders are elected (LEADER_NOT_AVAILABLE,
// NOT_LEADER_OR_FOLLOWER): it must wait that out, become ready, and work.
func TestAStartUpBeforeItsTopicsExistWaitsForThemAndDoesNotExit(t *testing.T) {
	addr := broker.Start(t, 1)
	var renames, fresh []string
	for _, topic := range broker.Topics {
		renames = append(renames, topic+":fresh-"+topic)
		fresh = append(fresh, "fresh-"+topic)
	}
	p := runner.Launch(t, map[string]string{"KAFKA_BROKERS": addr, "KAFKA_TOPICS": strings.Join(renames, ","),
		"KAFKA_RETRY_BACKOFF": "50ms", "KAFKA_MAX_BACKOFF": "200ms"})
	if broker.Kind() == "apache" { // kfake creates topics when asked for them
		stayUpUnready(t, p, 2*time.Second)
	}
	broker.CreateTopics(t, addr, 8, fresh...)
	p.WaitReady(45 * time.Second)
	r := p.PostJSON(t, "/api/v1/order", `{"orderId":"o-fresh","customerId":"alice","items":[{"flavour":"lemon","size":"S","quantity":1}]}`)
	if r.Status != http.StatusAccepted {
		t.Fatalf("POST order = %d %s", r.Status, r.Body)
	}
	waitFinal(t, p, []string{"o-fresh"}, 45*time.Second)
	if o := e2e.GetOrder(t, p, "o-fresh"); o.Status != "shipped" {
		t.Errorf("o-fresh %s", o.Status)
	}
	if recs := broker.ReadAll(t, addr, "fresh-readytoship", 1, 5*time.Second); len(recs) != 1 {
		t.Errorf("%d records on fresh-readytoship, want 1", len(recs))
	}
}

// TestARunnerWithSomeFunctionsOnItsOwnEmbeddedStoreRefusesToStart: split
// functions must share a store; each with its own embedded one, every
// kitchen step would be dead-lettered as "order not found".
func TestARunnerWithSomeFunctionsOnItsOwnEmbeddedStoreRefusesToStart(t *testing.T) {
	p := runner.Launch(t, map[string]string{"KAFKA_BROKERS": "127.0.0.1:1", "FUNCTIONS": "mixed,baked"})
	for deadline := time.Now().Add(10 * time.Second); !p.Exited(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("FUNCTIONS=mixed,baked on an embedded store started")
		}
	}
	if log := p.Log(); !strings.Contains(log, "FUNCTIONS=mixed,baked runs only part of the pipeline") || !strings.Contains(log, "set MONGODB_URI") {
		t.Errorf("exit message does not say why:\n%s", log)
	}
}
