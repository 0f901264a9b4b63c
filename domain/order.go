package domain

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/cupcake-factory/cupcake-factory/events"
)

// Order is an order, the history of what happened to it, and its outbox:
// the messages its changes emitted that are not delivered yet. A store keeps
// an order and its outbox in one atomic write, so a state change and what it
// tells the world are never stored one without the other.
type Order struct {
	ID         string        `json:"orderId" bson:"_id"`
	CustomerID string        `json:"customerId" bson:"customerId"`
	Items      []events.Item `json:"items" bson:"items"`
	Amount     int64         `json:"amount" bson:"amount"`
	Status     string        `json:"status" bson:"status"`
	Reason     string        `json:"reason,omitempty" bson:"reason,omitempty"`
	// Reserved is the credit the order holds on its customer, in cents: its
	// amount once order-created reserved it; 0 if credit was refused, and
	// again once it was given back (cancelled, failed).
	Reserved int64 `json:"reserved" bson:"reserved"`
	// Refused is why order-created refused credit ("" if it reserved it).
	Refused   string    `json:"creditRefused,omitempty" bson:"refused,omitempty"`
	CreatedAt time.Time `json:"createdAt" bson:"createdAt"`
	UpdatedAt time.Time `json:"updatedAt" bson:"updatedAt"`
	History   []Step    `json:"history" bson:"history"`
	Outbox    []Message `json:"-" bson:"outbox"`
}

// Step is one entry of an order's history. Event is the key (source and id)
// of the event that caused it; it makes a redelivered event recognisable.
type Step struct {
	Status string    `json:"status" bson:"status"`
	By     string    `json:"by,omitempty" bson:"by,omitempty"`
	Reason string    `json:"reason,omitempty" bson:"reason,omitempty"`
	Event  string    `json:"event,omitempty" bson:"event,omitempty"`
	At     time.Time `json:"at" bson:"at"`
}

// NewOrder makes the record of a new order with the credit decision about
// it: reserved (refused == "") or refused with the reason. It emits the
// created notification.
func NewOrder(d events.OrderCreated, eventKey, refused string, now time.Time) Order {
	now = now.UTC().Truncate(time.Millisecond)
	o := Order{
		ID: d.OrderID, CustomerID: d.CustomerID, Items: d.Items, Amount: Amount(d.Items),
		Status: events.StatusCreated, Refused: refused, CreatedAt: now, UpdatedAt: now,
		History: []Step{{Status: events.StatusCreated, By: d.CustomerID, Event: eventKey, At: now}},
	}
	if refused == "" {
		o.Reserved = o.Amount
	}
	o.notify("")
	return o
}

// SameContent reports whether two records describe the same order, so that
// creating the same order twice can be told from reusing an id.
func (o Order) SameContent(other Order) bool {
	return o.ID == other.ID && o.CustomerID == other.CustomerID && slices.Equal(o.Items, other.Items)
}

// Transition moves an order from one of From to To and records Step.
type Transition struct {
	From []string
	To   string
	Step Step
}

// previous returns the state status follows in the flow ("" for none);
// the kitchen's part comes from the pipeline.
func previous(status string) string {
	switch status {
	case events.StatusApproved, events.StatusCancelled:
		return events.StatusCreated
	}
	prev := events.StatusApproved
	for _, s := range events.Kitchen() {
		if s.Records == status {
			return prev
		}
		prev = s.Records
	}
	if status == events.StatusShipped {
		return prev
	}
	return ""
}

// kitchenStates are the states a station can report a failure in.
func kitchenStates() []string {
	out := []string{events.StatusApproved}
	for _, s := range events.Kitchen() {
		out = append(out, s.Records)
	}
	return out
}

// To returns the transition into status, caused by the event with key
// eventKey, done by by, with an optional reason.
func To(status, by, reason, eventKey string, now time.Time) Transition {
	from := []string{previous(status)}
	if status == events.StatusFailed {
		from = kitchenStates()
	}
	return Transition{From: from, To: status,
		Step: Step{Status: status, By: by, Reason: reason, Event: eventKey, At: now.UTC().Truncate(time.Millisecond)}}
}

// ErrDuplicate marks a transition already applied by the same event.
var ErrDuplicate = errors.New("event already applied")

// Apply performs t on o and emits the status-changed notification. It
// returns ErrDuplicate if the same event already caused a step, and a
// conflict error if the order is not in a state t starts from; in both cases
// o is unchanged.
func (o *Order) Apply(t Transition) error {
	if err := o.replayed(t.Step); err != nil {
		return err
	}
	if !slices.Contains(t.From, o.Status) {
		return Errorf(KindConflict, "order %s is %s; it cannot become %s (only from %s)",
			o.ID, o.Status, t.To, strings.Join(t.From, " or "))
	}
	was := o.Status
	o.Status = t.To
	o.UpdatedAt = t.Step.At
	if t.Step.Reason != "" {
		o.Reason = t.Step.Reason
	}
	o.History = append(o.History, t.Step)
	o.received(t.Step.Event)
	o.notify(was)
	if t.To == events.StatusShipped && o.Reserved > 0 {
		o.Outbox = append(o.Outbox, Message{ID: uuid.NewString(), Settle: o.Reserved, At: t.Step.At})
	}
	return nil
}

// replayed tells a redelivery from a reuse of an event's source and id: it
// returns ErrDuplicate if the event that would cause step already caused the
// same step, a conflict error if that event caused a different step (the
// source and id were used again for other content), and nil if the event is
// new to o.
func (o Order) replayed(step Step) error {
	if step.Event == "" {
		return nil
	}
	i := slices.IndexFunc(o.History, func(s Step) bool { return s.Event == step.Event })
	if i < 0 {
		return nil
	}
	if h := o.History[i]; h.Status != step.Status || h.By != step.By || h.Reason != step.Reason {
		return Errorf(KindConflict, "event %q was already used for another event of order %s (%s by %s): a new event needs a new id",
			step.Event, o.ID, h.Status, h.By)
	}
	return ErrDuplicate
}

// Decide applies a credit verdict: approve or cancel. The money rule: a
// verdict that approves must name the order's customer and amount, and the
// order must hold a reservation of exactly its amount; any other approval is
// refused and changes nothing, whoever sent it. A cancelled order gives back
// any credit it holds.
func (o *Order) Decide(v events.CreditValidated, by, eventKey string, now time.Time) error {
	if !v.Valid {
		return o.end(To(events.StatusCancelled, by, v.Reason, eventKey, now))
	}
	if err := o.replayed(To(events.StatusApproved, by, "", eventKey, now).Step); err != nil {
		return err
	}
	if o.Refused != "" || v.CustomerID != o.CustomerID || v.Amount != o.Amount || o.Reserved != o.Amount {
		return Errorf(KindConflict, "order %s cannot be approved: it holds %d cents of customer %s, the verdict names %d cents of %s",
			o.ID, o.Reserved, o.CustomerID, v.Amount, v.CustomerID)
	}
	return o.Apply(To(events.StatusApproved, by, "", eventKey, now))
}

// Fail fails the order at a station's report and gives its credit back.
func (o *Order) Fail(r events.FailureReport, eventKey string, now time.Time) error {
	return o.end(To(events.StatusFailed, r.By, r.Reason, eventKey, now))
}

// Cancellable lists the states a customer may cancel an order in: until
// it is decorated (created, approved, and the kitchen's states before).
func Cancellable() []string {
	out := []string{events.StatusCreated, events.StatusApproved}
	for _, s := range events.Kitchen() {
		if s.Records == events.StatusDecorated {
			break
		}
		out = append(out, s.Records)
	}
	return out
}

// Cancel cancels the order at its customer's request, with the reason
// given (events.ReasonCustomerCancelled if none), and gives its credit
// back. An order no longer Cancellable (decorated on, or ended) is refused
// with a conflict saying why, and o is unchanged.
func (o *Order) Cancel(r events.CancelRequest, eventKey string, now time.Time) error {
	reason := r.Reason
	if reason == "" {
		reason = events.ReasonCustomerCancelled
	}
	t := Transition{From: Cancellable(), To: events.StatusCancelled,
		Step: Step{Status: events.StatusCancelled, By: r.By, Reason: reason, Event: eventKey, At: now.UTC().Truncate(time.Millisecond)}}
	if err := o.replayed(t.Step); err != nil {
		return err
	}
	if !slices.Contains(t.From, o.Status) {
		return Errorf(KindConflict, "order %s is %s; it can no longer be cancelled (only while %s)",
			o.ID, o.Status, strings.Join(t.From, ", "))
	}
	return o.end(t)
}

// end applies a transition that ends the order unshipped, and emits the
// release of its credit if it holds any.
func (o *Order) end(t Transition) error {
	if err := o.Apply(t); err != nil {
		return err
	}
	if o.Reserved > 0 {
		o.Outbox = append(o.Outbox, Message{ID: uuid.NewString(), Release: o.Reserved, At: t.Step.At})
		o.Reserved = 0
	}
	return nil
}

// Emit adds an event to the outbox.
func (o *Order) Emit(e Event) error {
	m, err := NewMessage(e)
	if err == nil {
		o.Outbox = append(o.Outbox, m)
	}
	return err
}

// received removes from the outbox the message that brought the event with
// key eventKey, and every message before it. The relay sends an event a
// function takes only once those before it are acknowledged, so they were
// delivered: the write of the step an event causes is also the removal of
// what led to it, and a step costs one write, in whichever process or
// service it runs.
func (o *Order) received(eventKey string) {
	if eventKey == "" {
		return
	}
	if i := slices.IndexFunc(o.Outbox, func(m Message) bool { return m.ID == eventKey }); i >= 0 {
		o.Outbox = slices.Delete(o.Outbox, 0, i+1)
	}
}

// EmitAgain emits once more the reply of the step the event with key
// eventKey caused, for a redelivery of that event (the step happened
// already: ErrDuplicate). Knative and Kafka deliver an event again exactly
// when its first delivery's outcome was lost, and the reply is what moves
// the order on, so a reply that was lost on its way must come again. It
// does so only while that step is the last thing that happened to o (once
// the order moved on, its reply evidently arrived) and the outbox does not
// hold the reply still (errReplyPending: the order is delivered again as
// it is); otherwise it returns errNothingToReplay. o is unchanged then. A
// reply's id is the same for the same step of the same order
// (Reply), so a receiver that had it already finds it a duplicate.
func (o *Order) EmitAgain(eventKey string, reply Event) error {
	if !o.lastStepFrom(eventKey) {
		return errNothingToReplay
	}
	if slices.ContainsFunc(o.Outbox, func(m Message) bool { return m.ID == reply.Key() }) {
		return errReplyPending
	}
	return o.Emit(reply)
}

// OrderUpdater is the store's unit of work on an order.
type OrderUpdater interface {
	UpdateOrder(ctx context.Context, id string, fn func(*Order) error) (Order, error)
}

// Replay is what a function does with a redelivered event (its step
// happened already): in one unit of work, it emits the reply of that step
// again if EmitAgain says so. reply computes the step's reply from the
// order as it is (false: the step had none). It returns the order to
// deliver: with the reply again, or as it is while the reply waits in its
// outbox; the zero Order when nothing is to be sent.
func Replay(ctx context.Context, s OrderUpdater, orderID, eventKey string, reply func(Order) (Event, bool)) (Order, error) {
	o, err := s.UpdateOrder(ctx, orderID, func(o *Order) error {
		r, ok := reply(*o)
		if !ok {
			return errNothingToReplay
		}
		return o.EmitAgain(eventKey, r)
	})
	switch {
	case err == nil, errors.Is(err, errReplyPending):
		return o, nil
	case errors.Is(err, errNothingToReplay):
		return Order{}, nil
	}
	return Order{}, fmt.Errorf("replay the reply to %s of order %s: %w", eventKey, orderID, err)
}

// EmitAgain's answers when it emits nothing.
var (
	errNothingToReplay = errors.New("nothing to replay")
	errReplyPending    = errors.New("the reply waits in the outbox")
)

// lastStepFrom reports whether the event with key eventKey caused the last
// steps of o's history (a step's own follow-ups are keyed eventKey#...).
func (o Order) lastStepFrom(eventKey string) bool {
	n := len(o.History)
	return eventKey != "" && n > 0 &&
		(o.History[n-1].Event == eventKey || strings.HasPrefix(o.History[n-1].Event, eventKey+"#"))
}

// Delivered removes the outbox messages with the given ids.
func (o *Order) Delivered(ids ...string) {
	o.Outbox = slices.DeleteFunc(o.Outbox, func(m Message) bool { return slices.Contains(ids, m.ID) })
}

// Update is the order as a notification tells it, after a change from previous.
func (o Order) Update(previous string) events.OrderUpdate {
	u := events.OrderUpdate{
		OrderID: o.ID, CustomerID: o.CustomerID, Status: o.Status, Previous: previous,
		Reason: o.Reason, Amount: o.Amount, Items: o.Items, At: o.UpdatedAt,
	}
	if n := len(o.History); n > 0 {
		u.By = o.History[n-1].By
	}
	return u
}

// NotificationSource is the CloudEvents source of status-changed notifications.
const NotificationSource = events.Source + "/notifications"

// notify emits the status-changed notification of the change from was. It
// is the one place a notification is made, whichever way it travels.
func (o *Order) notify(was string) {
	if err := o.Emit(NewEvent(events.TypeStatusChanged, NotificationSource, o.Update(was))); err != nil {
		panic(err) // an OrderUpdate always encodes
	}
}
