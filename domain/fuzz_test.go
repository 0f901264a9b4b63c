package domain

import (
	"testing"

	"github.com/cupcake-factory/cupcake-factory/events"
)

// FuzzValidateOrder checks that validation never panics and that a valid
// order always has a positive amount within bounds.
func FuzzValidateOrder(f *testing.F) {
	f.Add([]byte(`{"orderId":"o-1","customerId":"alice","items":[{"flavour":"vanilla","size":"M","quantity":6}]}`))
	f.Add([]byte(`{"items":[{"quantity":-1}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		var o events.OrderCreated
		if err := events.Unmarshal(body, &o); err != nil {
			if !events.IsValidation(err) {
				t.Fatalf("not a validation error: %v", err)
			}
			return
		}
		if err := ValidateOrder(o, false); err != nil {
			if !events.IsValidation(err) {
				t.Fatalf("not a validation error: %v", err)
			}
			return
		}
		if a := Amount(o.Items); a <= 0 || a > MaxItems*MaxQuantity*300 {
			t.Fatalf("valid order with amount %d", a)
		}
	})
}
