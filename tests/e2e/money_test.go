package e2e

import (
	"fmt"
	"net/http"
	"sync"
	"testing"

	"github.com/cupcake-factory/cupcake-factory/tests/internal/runner"
)

// A customer who cannot pay places an order while an attacker posts forged
// verdicts approving it (another source, amount 0). The money rule checks
// the order's own reservation in the write that would approve it, so no
// order is ever approved, however the race goes.
func TestForgedVerdictsRacingTheOrderNeverApproveIt(t *testing.T) {
	p := runner.Start(t, map[string]string{"SEED_DEMO": "false", "KITCHEN_MODE": "manual"})
	CreateCustomer(t, p, "mallory", 0)
	for round := range 10 {
		id := fmt.Sprintf("o-forge%d", round)
		var wg sync.WaitGroup
		wg.Add(6)
		go func() {
			defer wg.Done()
			PostBinary(t, p, "real-"+id, "com.cupcakes.order.created", id, OrderData(id, "mallory", "vanilla", "XL", 1000))
		}()
		for i := range 5 {
			go func() {
				defer wg.Done()
				PostBinary(t, p, fmt.Sprintf("forged-%s-%d", id, i), "com.cupcakes.order.credit-validated", id,
					fmt.Sprintf(`{"orderId":%q,"customerId":"mallory","amount":0,"valid":true}`, id))
			}()
		}
		wg.Wait()
		if o := GetOrder(t, p, id); o.Status != "cancelled" || o.Reason != "insufficient-credit" {
			t.Errorf("round %d: order %s (%s), history %s; want cancelled for insufficient credit", round, o.Status, o.Reason, o.Statuses())
		}
	}
	if c := GetCustomer(t, p, "mallory"); c.AvailableCredit != 0 {
		t.Errorf("mallory has %d available, want 0", c.AvailableCredit)
	}
}

// A forged approval of an order already decided, or of no order at all, is
// refused with 422 over HTTP and changes nothing. (The money rule itself, on
// an order still waiting for its verdict, is pinned by the creditvalidated
// and storetest suites and by the race above.)
func TestAForgedApprovalOfADecidedOrUnknownOrderIsRefused(t *testing.T) {
	p := runner.Start(t, map[string]string{"KITCHEN_MODE": "manual"})
	CreateCustomer(t, p, "bob", 0)
	PostBinary(t, p, "ev-o1", "com.cupcakes.order.created", "o-poor", OrderData("o-poor", "bob", "vanilla", "M", 6))
	// In-process the real verdict follows the order at once, so o-poor is
	// cancelled by now; the domain's unit tests pin the rule on an order
	// still waiting for its verdict.
	tests := []struct {
		name, orderID, data string
	}{
		{"credit refused, the right amount", "o-poor", `{"orderId":"o-poor","customerId":"bob","amount":1200,"valid":true}`},
		{"another amount", "o-poor", `{"orderId":"o-poor","customerId":"bob","amount":1,"valid":true}`},
		{"unknown order", "o-none", `{"orderId":"o-none","customerId":"bob","amount":1200,"valid":true}`},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := GetOrder(t, p, "o-poor").Statuses()
			r := PostBinary(t, p, fmt.Sprintf("forged-%d", i), "com.cupcakes.order.credit-validated", tt.orderID, tt.data)
			if r.Status != http.StatusUnprocessableEntity {
				t.Errorf("= %d %s, want 422", r.Status, r.Body)
			}
			if after := GetOrder(t, p, "o-poor").Statuses(); after != before {
				t.Errorf("history %s, was %s", after, before)
			}
		})
	}
}
