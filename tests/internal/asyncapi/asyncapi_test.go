package asyncapi_test

import (
	"testing"

	cloudevents "github.com/cloudevents/sdk-go/v2"

	"github.com/cupcake-factory/cupcake-factory/events"
	"github.com/cupcake-factory/cupcake-factory/tests/internal/asyncapi"
)

func mustEvent(t *testing.T, typ, orderID string, data any) cloudevents.Event {
	t.Helper()
	e, err := events.Reply(typ, events.Source+"/test", orderID, data)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestEventsTheProductBuildsFitTheDocumentAndOthersDoNot(t *testing.T) {
	items := []events.Item{{Flavour: "vanilla", Size: "M", Quantity: 2}}
	update := events.OrderUpdate{OrderID: "o-1", CustomerID: "alice", Status: "failed", Previous: "baked", By: "ben", Reason: "oven broke", Amount: 400, Items: items}
	tests := []struct {
		name    string
		topic   string
		event   func(t *testing.T) cloudevents.Event
		wantErr bool
	}{
		{"order created", "orderrequests", func(t *testing.T) cloudevents.Event {
			return mustEvent(t, events.TypeOrderCreated, "o-1", events.OrderCreated{OrderID: "o-1", CustomerID: "alice", Items: items})
		}, false},
		{"credit refused", "ordervalidations", func(t *testing.T) cloudevents.Event {
			return mustEvent(t, events.TypeCreditValidated, "o-1", events.CreditValidated{OrderID: "o-1", CustomerID: "alice", Amount: 400, Reason: "insufficient-credit"})
		}, false},
		{"kitchen step", "readytoship", func(t *testing.T) cloudevents.Event {
			return mustEvent(t, events.TypePackaged, "o-1", events.KitchenStep{OrderID: "o-1", By: "auto-packaging"})
		}, false},
		{"failed", "orderupdates", func(t *testing.T) cloudevents.Event { return mustEvent(t, events.TypeFailed, "o-1", update) }, false},
		{"a type on the wrong topic", "readytobake", func(t *testing.T) cloudevents.Event {
			return mustEvent(t, events.TypePackaged, "o-1", events.KitchenStep{OrderID: "o-1", By: "x"})
		}, true},
		{"a topic that is not in the document", "elsewhere", func(t *testing.T) cloudevents.Event {
			return mustEvent(t, events.TypeMixed, "o-1", events.KitchenStep{OrderID: "o-1", By: "x"})
		}, true},
		{"data missing a field", "readytobake", func(t *testing.T) cloudevents.Event {
			return mustEvent(t, events.TypeMixed, "o-1", map[string]string{"orderId": "o-1"})
		}, true},
		{"data with an unknown size", "orderrequests", func(t *testing.T) cloudevents.Event {
			return mustEvent(t, events.TypeOrderCreated, "o-1", events.OrderCreated{OrderID: "o-1", CustomerID: "alice", Items: []events.Item{{Flavour: "vanilla", Size: "XXL", Quantity: 1}}})
		}, true},
		{"subject naming another order", "readytobake", func(t *testing.T) cloudevents.Event {
			e := mustEvent(t, events.TypeMixed, "o-1", events.KitchenStep{OrderID: "o-1", By: "x"})
			e.SetSubject("o-2")
			return e
		}, true},
		{"no partitionkey", "readytobake", func(t *testing.T) cloudevents.Event {
			e := mustEvent(t, events.TypeMixed, "o-1", events.KitchenStep{OrderID: "o-1", By: "x"})
			e.SetExtension(events.ExtPartitionKey, nil)
			return e
		}, true},
		{"a dead letter of any type with its reason", "deadletters", func(t *testing.T) cloudevents.Event {
			e := mustEvent(t, events.TypeMixed, "o-1", map[string]string{"junk": "x"})
			for k, v := range map[string]string{"deadletterreason": "invalid", "deadlettertopic": "readytobake", "deadletterpartition": "0", "deadletteroffset": "7"} {
				e.SetExtension(k, v)
			}
			return e
		}, false},
		{"a dead letter without its reason", "deadletters", func(t *testing.T) cloudevents.Event {
			return mustEvent(t, events.TypeMixed, "o-1", events.KitchenStep{OrderID: "o-1", By: "x"})
		}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := asyncapi.Validate(tt.topic, tt.event(t))
			if (err != nil) != tt.wantErr {
				t.Errorf("Validate = %v, want error %v", err, tt.wantErr)
			}
		})
	}
}
