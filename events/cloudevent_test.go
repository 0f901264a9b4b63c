package events

import (
	"strings"
	"testing"

	cloudevents "github.com/cloudevents/sdk-go/v2"
)

func TestNewSetsSubjectPartitionKeyAndJSON(t *testing.T) {
	e, err := New(TypeOrderCreated, "test", "o-1", OrderCreated{"o-1", "alice", []Item{{"vanilla", "M", 6}}})
	if err != nil {
		t.Fatal(err)
	}
	if e.Subject() != "o-1" || e.Extensions()[ExtPartitionKey] != "o-1" {
		t.Errorf("subject %q partitionkey %v, want o-1", e.Subject(), e.Extensions()[ExtPartitionKey])
	}
	if e.DataContentType() != "application/json" || e.SpecVersion() != "1.0" {
		t.Errorf("datacontenttype %q specversion %q", e.DataContentType(), e.SpecVersion())
	}
	if !strings.Contains(string(e.Data()), `"customerId":"alice"`) {
		t.Errorf("data not camelCase JSON: %s", e.Data())
	}
}

func TestReplyIDIsTheSameForTheSameStepOfTheSameOrder(t *testing.T) {
	a, _ := Reply(TypeMixed, "src", "o-1", KitchenStep{"o-1", "x"})
	b, _ := Reply(TypeMixed, "src", "o-1", KitchenStep{"o-1", "x"})
	c, _ := Reply(TypeMixed, "src", "o-2", KitchenStep{"o-2", "x"})
	d, _ := Reply(TypeBaked, "src", "o-1", KitchenStep{"o-1", "x"})
	if a.ID() != b.ID() {
		t.Errorf("same step, different ids %s %s", a.ID(), b.ID())
	}
	if a.ID() == c.ID() || a.ID() == d.ID() {
		t.Errorf("different steps share an id")
	}
}

func event(t, contentType, data string, ext map[string]string) cloudevents.Event {
	e := cloudevents.NewEvent()
	e.SetID("1")
	e.SetSource("test")
	e.SetType(t)
	if data != "" {
		_ = e.SetData(contentType, []byte(data))
	} else if contentType != "" {
		e.SetDataContentType(contentType)
	}
	for k, v := range ext {
		if k == "subject" {
			e.SetSubject(v)
		} else {
			e.SetExtension(k, v)
		}
	}
	return e
}

func TestDecodeDataRefusesWhatIsWrongAndSaysWhy(t *testing.T) {
	order := `{"orderId":"o-1","customerId":"alice","items":[{"flavour":"vanilla","size":"M","quantity":6}]}`
	tests := []struct {
		name string
		e    cloudevents.Event
		want string // "" = accepted
	}{
		{"valid order", event(TypeOrderCreated, "application/json", order, nil), ""},
		{"valid with matching subject", event(TypeOrderCreated, "application/json", order, map[string]string{"subject": "o-1", "partitionkey": "o-1"}), ""},
		{"unknown type", event("com.example.other", "application/json", order, nil), "unknown event type"},
		{"a null field", event(TypeMixed, "application/json", `{"orderId":"o-1","by":null}`, nil), "by must not be null"},
		{"a null item", event(TypeOrderCreated, "application/json", `{"orderId":"o-1","customerId":"alice","items":[null]}`, nil), "items[0] must not be null"},
		{"null data", event(TypeMixed, "application/json", `null`, nil), "null instead of an object"},
		{"cancel without by", event(TypeCancelRequested, "application/json", `{"orderId":"o-1"}`, nil), "by is required"},
		{"cancel", event(TypeCancelRequested, "application/json", `{"orderId":"o-1","by":"alice"}`, nil), ""},
		{"text data", event(TypeOrderCreated, "text/plain", order, nil), "datacontenttype must be application/json"},
		{"no data", event(TypeOrderCreated, "application/json", "", nil), "data is required"},
		{"bad JSON", event(TypeOrderCreated, "application/json", `{"orderId":`, nil), "invalid JSON"},
		{"unknown field", event(TypeOrderCreated, "application/json", `{"orderId":"o-1","customerId":"a","items":[],"x":1}`, nil), "unknown field"},
		{"trailing data", event(TypeOrderCreated, "application/json", order+`{}`, nil), "unexpected data"},
		{"wrong field type", event(TypeOrderCreated, "application/json", `{"orderId":1}`, nil), "invalid JSON"},
		{"subject of another order", event(TypeOrderCreated, "application/json", order, map[string]string{"subject": "o-2"}), "subject"},
		{"partitionkey of another order", event(TypeOrderCreated, "application/json", order, map[string]string{"partitionkey": "o-2"}), "partitionkey"},
		{"kitchen step", event(TypeMixed, "application/json", `{"orderId":"o-1","by":"maria"}`, nil), ""},
		{"kitchen step without by", event(TypeBaked, "application/json", `{"orderId":"o-1"}`, nil), "by is required"},
		{"credit validated", event(TypeCreditValidated, "application/json", `{"orderId":"o-1","customerId":"a","amount":5,"valid":true}`, nil), ""},
		{"notification types are not handled", event(TypeShipped, "application/json", `{"orderId":"o-1","status":"shipped"}`, nil), "unknown event type"},
		{"specversion 0.3", func() cloudevents.Event {
			e := event(TypeOrderCreated, "application/json", order, nil)
			e.SetSpecVersion(cloudevents.VersionV03)
			return e
		}(), "specversion must be 1.0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := DecodeData(tt.e)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("want accepted, got %v", err)
				}
				return
			}
			if err == nil || !IsValidation(err) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("want a validation error mentioning %q, got %v", tt.want, err)
			}
		})
	}
}
