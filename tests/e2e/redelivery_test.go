package e2e

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cupcake-factory/cupcake-factory/events"
	"github.com/cupcake-factory/cupcake-factory/tests/internal/ferret"
	"github.com/cupcake-factory/cupcake-factory/tests/internal/runner"
)

// TestALostReplyIsAnsweredAgainOnRedeliveryAndTheOrderShips runs the
// pipeline as Knative does with one service per function, sharing MongoDB:
// order-created alone, and the rest in a second service, each reached only
// by POSTing CloudEvents, the reply of one posted to the other as a
// Trigger would. The first reply of order-created is lost (this test, in
// Knative's place, drops it); Knative delivers the same CloudEvent again,
// and the answer is the same reply, which completes the order, with the
// credit reserved once.
func TestALostReplyIsAnsweredAgainOnRedeliveryAndTheOrderShips(t *testing.T) {
	uri := ferret.Start(t)
	service := func(functions string) *runner.Process {
		return runner.Start(t, map[string]string{"MONGODB_URI": uri, "MONGODB_DATABASE": "knative",
			"FUNCTIONS": functions, "SEED_DEMO": "false"})
	}
	created := service(events.FuncOrderCreated)
	rest := service(strings.Join([]string{events.FuncCreditValidated, events.FuncMixed, events.FuncBaked,
		events.FuncDecorated, events.FuncPackaged}, ","))
	CreateCustomer(t, created, "knative", 10_000)

	data := `{"orderId":"o-lost","customerId":"knative","items":[{"flavour":"vanilla","size":"M","quantity":6}]}`
	send := func(p *runner.Process, h map[string]string, body string) runner.Response {
		t.Helper()
		r := p.Do(t, http.MethodPost, "/", h, body)
		if r.Status != http.StatusOK && r.Status != http.StatusAccepted {
			t.Fatalf("POST / %s: %d %s", h["ce-type"], r.Status, r.Body)
		}
		return r
	}
	event := BinaryHeaders("lost-1", events.TypeOrderCreated, "o-lost")
	first := send(created, event, data) // its answer is lost on the way
	again := send(created, event, data)
	for _, r := range []runner.Response{first, again} {
		if r.Status != http.StatusOK || r.Header.Get("ce-type") != events.TypeCreditValidated {
			t.Fatalf("order.created answered %d %q; want 200 with %s, both times", r.Status, r.Header.Get("ce-type"), events.TypeCreditValidated)
		}
	}
	if a, b := first.Header.Get("ce-id"), again.Header.Get("ce-id"); a != b || string(first.Body) != string(again.Body) {
		t.Errorf("the redelivery answered %s %s; want the same reply as the first, %s %s", b, again.Body, a, first.Body)
	}

	// The Trigger delivers the reply to the next service; in one process
	// the kitchen runs to the end, and its answer is the shipped event.
	h := map[string]string{}
	for k := range again.Header {
		if strings.HasPrefix(strings.ToLower(k), "ce-") || strings.EqualFold(k, "Content-Type") {
			h[k] = again.Header.Get(k)
		}
	}
	end := send(rest, h, string(again.Body))
	if end.Header.Get("ce-type") != events.TypeShipped {
		t.Fatalf("credit-validated answered %d %q; want %s", end.Status, end.Header.Get("ce-type"), events.TypeShipped)
	}
	orders := WaitEnded(t, rest, []string{"o-lost"}, 10*time.Second)
	if orders[0].Status != events.StatusShipped || len(orders[0].History) != 7 {
		t.Errorf("order %s with %d steps; want shipped in 7", orders[0].Status, len(orders[0].History))
	}
	var c struct {
		AvailableCredit int64 `json:"availableCredit"`
	}
	rest.Get(t, "/api/v1/customers/knative").JSON(t, &c)
	if c.AvailableCredit != 10_000-1200 {
		t.Errorf("available credit %d; want 8800: reserved once, settled once", c.AvailableCredit)
	}
}
