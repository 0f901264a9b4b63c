package events

import (
	"bytes"
	"encoding/json"
	"fmt"
	"mime"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/google/uuid"
)

// Source is the CloudEvents source of events made by this system, suffixed
// with the part that made them ("cupcake-factory/order-created").
const Source = "cupcake-factory"

// New builds an event of type t about orderID, with subject and partitionkey
// set to the order id and data encoded as application/json.
func New(t, source, orderID string, data any) (cloudevents.Event, error) {
	return newEvent(uuid.NewString(), t, source, orderID, data)
}

// Reply builds the event a handler answers with. Its id is derived from the
// source, the type and the order, because each order passes each step once:
// however often a handler re-emits its reply (after a redelivery or a
// crash), the next handler sees the same source and id and applies it once.
func Reply(t, source, orderID string, data any) (cloudevents.Event, error) {
	return newEvent(ReplyID(source, t, orderID), t, source, orderID, data)
}

// ReplyID is the id of the reply of type t that source sends about orderID
// (see Reply).
func ReplyID(source, t, orderID string) string {
	return uuid.NewSHA1(uuid.NameSpaceURL, []byte(source+"\x00"+t+"\x00"+orderID)).String()
}

// Wrap is the CloudEvent of type t about orderID whose data is already
// JSON: an event the domain emitted, as the relay delivers it.
func Wrap(id, t, source, orderID string, at time.Time, data []byte) cloudevents.Event {
	e := cloudevents.NewEvent()
	e.SetID(id)
	e.SetType(t)
	e.SetSource(source)
	e.SetSubject(orderID)
	e.SetTime(at)
	e.SetExtension(ExtPartitionKey, orderID)
	e.SetDataContentType(cloudevents.ApplicationJSON)
	e.DataEncoded = data
	return e
}

func newEvent(id, t, source, orderID string, data any) (cloudevents.Event, error) {
	e := cloudevents.NewEvent()
	e.SetID(id)
	e.SetType(t)
	e.SetSource(source)
	e.SetSubject(orderID)
	e.SetTime(time.Now().UTC())
	e.SetExtension(ExtPartitionKey, orderID)
	if err := e.SetData(cloudevents.ApplicationJSON, data); err != nil {
		return e, fmt.Errorf("encode %s data: %w", t, err)
	}
	return e, nil
}

// Key identifies an event for deduplication: the same source and id are the
// same event, however many times it is delivered.
func Key(e cloudevents.Event) string { return KeyOf(e.Source(), e.ID()) }

// KeyOf is the key of the event with that source and id.
func KeyOf(source, id string) string { return source + " " + id }

// Decode checks an event's envelope and decodes its JSON data into v, refusing
// unknown fields. It returns a *ValidationError for anything the sender got
// wrong.
func Decode(e cloudevents.Event, v any) error {
	var p problems
	if err := e.Validate(); err != nil {
		p.addf("invalid CloudEvent: %v", err)
	}
	// Every ingress (HTTP, Kafka, the kn func entry point) decodes here, so
	// this is where older versions of the spec are refused.
	if v := e.SpecVersion(); v != cloudevents.VersionV1 {
		p.addf("specversion must be %s, got %q", cloudevents.VersionV1, v)
	}
	if ct := e.DataContentType(); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && mt != "text/json") {
			p.addf("datacontenttype must be application/json, got %q", ct)
		}
	}
	if len(e.Data()) == 0 {
		p.addf("data is required")
	}
	if len(p) > 0 {
		return p.err()
	}
	if err := strictUnmarshal(e.Data(), v); err != nil {
		return &ValidationError{Problems: []string{fmt.Sprintf("data of %s: %v", e.Type(), err)}}
	}
	return nil
}

// Unmarshal decodes a JSON body into v, refusing unknown fields and trailing
// data, and reports problems as a *ValidationError.
func Unmarshal(body []byte, v any) error {
	if err := strictUnmarshal(body, v); err != nil {
		return &ValidationError{Problems: []string{err.Error()}}
	}
	return nil
}

func strictUnmarshal(b []byte, v any) error {
	if err := refuseNulls(b); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("invalid JSON: %w", err)
	}
	if dec.More() {
		return fmt.Errorf("invalid JSON: unexpected data after the object")
	}
	return nil
}

// refuseNulls refuses a JSON null anywhere in b: no field of the contract
// may be null, and decoding would quietly take one for its zero value (a
// credit limit of 0). Only input that holds the word is walked.
func refuseNulls(b []byte) error {
	if !bytes.Contains(b, []byte("null")) {
		return nil
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return nil // the decoder says what is wrong with it
	}
	return nullIn(v, "")
}

func nullIn(v any, path string) error {
	switch v := v.(type) {
	case nil:
		if path == "" {
			return fmt.Errorf("invalid JSON: null instead of an object")
		}
		return fmt.Errorf("%s must not be null", path)
	case map[string]any:
		for k, e := range v {
			p := k
			if path != "" {
				p = path + "." + k
			}
			if err := nullIn(e, p); err != nil {
				return err
			}
		}
	case []any:
		for i, e := range v {
			if err := nullIn(e, fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
	}
	return nil
}

// CheckSubject refuses an event whose subject or partitionkey names another
// order than its data.
func CheckSubject(e cloudevents.Event, orderID string) error {
	var p problems
	if s := e.Subject(); s != "" && s != orderID {
		p.addf("subject %q does not match data orderId %q", s, orderID)
	}
	if k, ok := e.Extensions()[ExtPartitionKey]; ok {
		if ks, _ := k.(string); ks != orderID {
			p.addf("partitionkey %v does not match data orderId %q", k, orderID)
		}
	}
	return p.err()
}

// Payload is event data that checks itself and names the order it is about.
type Payload interface {
	Validate() error
	Order() string
}

// DecodePayload decodes e's data into d, validates it, and refuses an event
// whose subject or partitionkey names another order.
func DecodePayload(e cloudevents.Event, d Payload) error {
	if err := Decode(e, d); err != nil {
		return err
	}
	if err := d.Validate(); err != nil {
		return err
	}
	return CheckSubject(e, d.Order())
}

// DecodeData decodes and checks the data of an event of a type this system
// handles, returning the payload and the order id it is about. It checks
// what the wire needs (the ids, the fields' shapes); an order's items are
// the menu's to check (domain.ValidateOrder).
func DecodeData(e cloudevents.Event) (Payload, string, error) {
	var d Payload
	switch step, ok := StepFor(e.Type()); {
	case e.Type() == TypeOrderCreated:
		d = &OrderCreated{}
	case e.Type() == TypeCreditValidated:
		d = &CreditValidated{}
	case e.Type() == TypeCancelRequested:
		d = &CancelRequest{}
	case ok && step.Records != "":
		d = &KitchenStep{}
	default:
		return nil, "", &ValidationError{Problems: []string{fmt.Sprintf("unknown event type %q", e.Type())}}
	}
	if err := DecodePayload(e, d); err != nil {
		return nil, "", err
	}
	return d, d.Order(), nil
}

// OrderOf returns the order an event is about: its subject, else its
// partitionkey, else the orderId of its data ("" if none can be read).
func OrderOf(e cloudevents.Event) string {
	if s := e.Subject(); s != "" {
		return s
	}
	if k, ok := e.Extensions()[ExtPartitionKey].(string); ok && k != "" {
		return k
	}
	var d struct {
		OrderID string `json:"orderId"`
	}
	_ = json.Unmarshal(e.Data(), &d)
	return d.OrderID
}
