package events

import (
	"testing"

	cloudevents "github.com/cloudevents/sdk-go/v2"
)

// FuzzDecodeData feeds arbitrary types, content types and data to the
// decoder: it must never panic, and what it accepts must be valid.
func FuzzDecodeData(f *testing.F) {
	f.Add(TypeOrderCreated, "application/json", []byte(`{"orderId":"o-1","customerId":"alice","items":[{"flavour":"vanilla","size":"M","quantity":6}]}`))
	f.Add(TypeMixed, "application/json", []byte(`{"orderId":"o-1","by":"x"}`))
	f.Add(TypeCreditValidated, "application/json; charset=utf-8", []byte(`{"orderId":"o-1","customerId":"a","amount":1,"valid":false,"reason":"unknown-customer"}`))
	f.Add("x", "text/plain", []byte("\x00\xff"))
	f.Fuzz(func(t *testing.T, typ, contentType string, data []byte) {
		e := cloudevents.NewEvent()
		e.SetID("1")
		e.SetSource("fuzz")
		e.SetType(typ)
		_ = e.SetData(contentType, data)
		v, orderID, err := DecodeData(e)
		if err != nil {
			if !IsValidation(err) {
				t.Fatalf("error is not a validation error: %v", err)
			}
			return
		}
		if !ValidID(orderID) {
			t.Fatalf("accepted an invalid order id %q", orderID)
		}
		if o, ok := v.(*orderInEvent); ok {
			if err := o.OrderCreated.Validate(true); err != nil {
				t.Fatalf("accepted an invalid order: %v", err)
			}
			if a := Amount(o.Items); a <= 0 || a > MaxItems*MaxQuantity*300 {
				t.Fatalf("amount %d out of range", a)
			}
		}
	})
}

// FuzzValidateOrder checks that validation never panics and that a valid
// order always has a positive amount within bounds.
func FuzzValidateOrder(f *testing.F) {
	f.Add([]byte(`{"orderId":"o-1","customerId":"alice","items":[{"flavour":"vanilla","size":"M","quantity":6}]}`))
	f.Add([]byte(`{"items":[{"quantity":-1}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		var o OrderCreated
		if err := Unmarshal(body, &o); err != nil {
			if !IsValidation(err) {
				t.Fatalf("not a validation error: %v", err)
			}
			return
		}
		if err := o.Validate(false); err != nil {
			if !IsValidation(err) {
				t.Fatalf("not a validation error: %v", err)
			}
			return
		}
		if a := Amount(o.Items); a <= 0 {
			t.Fatalf("valid order with amount %d", a)
		}
	})
}
