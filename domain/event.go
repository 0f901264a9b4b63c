package domain

import (
	"encoding/json"
	"time"

	"github.com/google/uuid"

	"github.com/cupcake-factory/cupcake-factory/events"
)

// Event is what a change of an order emits, as the domain knows it: a
// contract event type, who sends it, its id and its data. How it travels
// (a CloudEvent over HTTP or Kafka) is the relay's business; the outbox
// keeps it as this, its data encoded.
type Event struct {
	Type   string
	Source string // who sends it ("cupcake-factory/order-created")
	ID     string // unique for Source
	Data   any
}

// NewEvent is an event with a fresh id.
func NewEvent(t, source string, data any) Event {
	return Event{Type: t, Source: source, ID: uuid.NewString(), Data: data}
}

// Reply is the event of type t a step of orderID answers with. Its id is
// the same however often the step answers (events.ReplyID), so a receiver
// that had it already finds it a duplicate.
func Reply(t, source, orderID string, data any) Event {
	return Event{Type: t, Source: source, ID: events.ReplyID(source, t, orderID), Data: data}
}

// Key identifies the event (events.KeyOf): an outbox message's id.
func (e Event) Key() string { return events.KeyOf(e.Source, e.ID) }

// Message is an outbox entry: an event to deliver, or a saga step on the
// order's customer (a write to another aggregate, done by the relay):
// Release gives the order's credit back (cancelled, failed); Settle closes
// the reservation of a shipped order, its credit spent, so that a customer
// keeps only the reservations of orders still open. TraceParent and
// TraceState are the W3C trace context of the span that emitted it (empty
// without tracing), so that its delivery, whenever the relay makes it,
// continues that trace.
type Message struct {
	// ID is the event's key (Event.Key), a saga step's own id.
	ID      string `json:"id" bson:"id"`
	Type    string `json:"type,omitempty" bson:"type,omitempty"`
	Source  string `json:"source,omitempty" bson:"source,omitempty"`
	EventID string `json:"eventId,omitempty" bson:"eventId,omitempty"`
	Data    string `json:"data,omitempty" bson:"data,omitempty"` // the event's data, JSON
	// Legacy is a whole event as structured CloudEvents JSON, the way
	// versions before December 2026 kept it; the relay still delivers it.
	Legacy      string    `json:"event,omitempty" bson:"event,omitempty"`
	Release     int64     `json:"release,omitempty" bson:"release,omitempty"`
	Settle      int64     `json:"settle,omitempty" bson:"settle,omitempty"`
	At          time.Time `json:"at" bson:"at"`
	TraceParent string    `json:"traceparent,omitempty" bson:"traceparent,omitempty"`
	TraceState  string    `json:"tracestate,omitempty" bson:"tracestate,omitempty"`
}

// OnCustomer reports whether m is a saga step on the customer rather than
// an event.
func (m Message) OnCustomer() bool { return m.Release > 0 || m.Settle > 0 }

// NewMessage is the outbox message of an event, its data encoded as JSON.
// Its id is the event's key, so the handler that receives the event can
// tell which message brought it (see received).
func NewMessage(e Event) (Message, error) {
	data, err := json.Marshal(e.Data)
	if err != nil {
		return Message{}, Errorf(KindInternal, "encode the data of %s %s: %v", e.Type, e.ID, err)
	}
	return Message{ID: e.Key(), Type: e.Type, Source: e.Source, EventID: e.ID, Data: string(data),
		At: time.Now().UTC().Truncate(time.Millisecond)}, nil
}
