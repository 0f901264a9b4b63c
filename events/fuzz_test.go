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
		if o, ok := v.(*OrderCreated); ok {
			if err := o.ValidateIDs(true); err != nil {
				t.Fatalf("accepted an order with invalid ids: %v", err)
			}
		}
	})
}
