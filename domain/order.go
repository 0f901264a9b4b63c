package domain

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/cupcake-factory/cupcake-factory/events"
)

// Customer is a customer with a credit line. Available is the credit left
// after the reservations of its orders. Reservations remember which orders
// hold credit, so reserving for the same order twice reserves once.
type Customer struct {
	ID           string        `json:"customerId" bson:"_id"`
	Name         string        `json:"name" bson:"name"`
	CreditLimit  int64         `json:"creditLimit" bson:"creditLimit"`
	Available    int64         `json:"availableCredit" bson:"availableCredit"`
	Reservations []Reservation `json:"-" bson:"reservations"`
	CreatedAt    time.Time     `json:"createdAt" bson:"createdAt"`
	UpdatedAt    time.Time     `json:"updatedAt" bson:"updatedAt"`
}

// Reservation is the credit an order holds.
type Reservation struct {
	OrderID string `json:"orderId" bson:"orderId"`
	Amount  int64  `json:"amount" bson:"amount"`
}

// NewCustomer is the input of customer creation.
type NewCustomer struct {
	ID          string `json:"customerId"`
	Name        string `json:"name"`
	CreditLimit int64  `json:"creditLimit"`
}

// MaxCreditLimit bounds a credit limit (one hundred million, in cents).
const MaxCreditLimit = 10_000_000_000

// Validate checks the input of customer creation.
func (c NewCustomer) Validate() error {
	var p []string
	if !events.ValidID(c.ID) {
		p = append(p, "customerId is required: letters, digits, '-' or '_', at most 64 characters")
	}
	if strings.TrimSpace(c.Name) == "" || len(c.Name) > 200 {
		p = append(p, "name is required, at most 200 characters")
	} else if events.HasControlChars(c.Name) {
		p = append(p, "name must not contain control characters")
	}
	if err := ValidateCreditLimit(c.CreditLimit); err != nil {
		p = append(p, err.Error())
	}
	if len(p) > 0 {
		return &events.ValidationError{Problems: p}
	}
	return nil
}

// ValidateCreditLimit checks a credit limit in cents.
func ValidateCreditLimit(limit int64) error {
	if limit < 0 || limit > MaxCreditLimit {
		return &events.ValidationError{Problems: []string{
			fmt.Sprintf("creditLimit must be 0..%d cents, got %d", int64(MaxCreditLimit), limit)}}
	}
	return nil
}

// Order is an order and the history of what happened to it.
type Order struct {
	ID         string        `json:"orderId" bson:"_id"`
	CustomerID string        `json:"customerId" bson:"customerId"`
	Items      []events.Item `json:"items" bson:"items"`
	Amount     int64         `json:"amount" bson:"amount"`
	Status     string        `json:"status" bson:"status"`
	Reason     string        `json:"reason,omitempty" bson:"reason,omitempty"`
	CreatedAt  time.Time     `json:"createdAt" bson:"createdAt"`
	UpdatedAt  time.Time     `json:"updatedAt" bson:"updatedAt"`
	History    []Step        `json:"history" bson:"history"`
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

// NewOrder makes the record of a freshly created order.
func NewOrder(d events.OrderCreated, eventKey string, now time.Time) Order {
	now = now.UTC().Truncate(time.Millisecond)
	return Order{
		ID:         d.OrderID,
		CustomerID: d.CustomerID,
		Items:      d.Items,
		Amount:     events.Amount(d.Items),
		Status:     events.StatusCreated,
		CreatedAt:  now,
		UpdatedAt:  now,
		History:    []Step{{Status: events.StatusCreated, By: d.CustomerID, Event: eventKey, At: now}},
	}
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

// kitchenStates are the states a station can report a failure in.
var kitchenStates = []string{
	events.StatusApproved, events.StatusMixed, events.StatusBaked,
	events.StatusDecorated, events.StatusPackaged,
}

// previous maps each forward state to the state it follows.
var previous = map[string]string{
	events.StatusApproved:  events.StatusCreated,
	events.StatusCancelled: events.StatusCreated,
	events.StatusMixed:     events.StatusApproved,
	events.StatusBaked:     events.StatusMixed,
	events.StatusDecorated: events.StatusBaked,
	events.StatusPackaged:  events.StatusDecorated,
	events.StatusShipped:   events.StatusPackaged,
}

// To returns the transition into status, caused by the event with key
// eventKey, done by by, with an optional reason.
func To(status, by, reason, eventKey string, now time.Time) Transition {
	from := []string{previous[status]}
	if status == events.StatusFailed {
		from = kitchenStates
	}
	return Transition{
		From: from,
		To:   status,
		Step: Step{Status: status, By: by, Reason: reason, Event: eventKey, At: now.UTC().Truncate(time.Millisecond)},
	}
}

// ErrDuplicate marks a transition already applied by the same event.
var ErrDuplicate = errors.New("event already applied")

// Apply performs t on o. It returns ErrDuplicate if the same event already
// caused a step, and a conflict error if the order is not in a state t
// starts from; in both cases o is unchanged.
func (o *Order) Apply(t Transition) error {
	if t.Step.Event != "" && o.HasEvent(t.Step.Event) {
		return ErrDuplicate
	}
	if !slices.Contains(t.From, o.Status) {
		return WrongState(o.ID, o.Status, t)
	}
	o.Status = t.To
	o.UpdatedAt = t.Step.At
	if t.Step.Reason != "" {
		o.Reason = t.Step.Reason
	}
	o.History = append(o.History, t.Step)
	return nil
}

// WrongState is the error for a transition that does not fit the order.
func WrongState(orderID, status string, t Transition) error {
	return Errorf(KindConflict, "order %s is %s; it cannot become %s (only from %s)",
		orderID, status, t.To, strings.Join(t.From, " or "))
}

// HasEvent reports whether the event with key caused a step of o.
func (o Order) HasEvent(key string) bool {
	return slices.ContainsFunc(o.History, func(s Step) bool { return s.Event == key })
}

// Credit errors.
var (
	ErrUnknownCustomer    = &Error{Kind: KindNotFound, Message: events.ReasonUnknownCustomer}
	ErrInsufficientCredit = &Error{Kind: KindConflict, Message: events.ReasonInsufficientCredit}
)

// Reserve takes amount from c's available credit for orderID. Reserving for
// an order that already holds credit changes nothing.
func (c *Customer) Reserve(orderID string, amount int64) error {
	if c.HasReservation(orderID) {
		return nil
	}
	if c.Available < amount {
		return fmt.Errorf("customer %s has %d cents available, order %s needs %d: %w",
			c.ID, c.Available, orderID, amount, ErrInsufficientCredit)
	}
	c.Available -= amount
	c.Reservations = append(c.Reservations, Reservation{OrderID: orderID, Amount: amount})
	return nil
}

// Release gives back the credit orderID holds; it reports whether there was any.
func (c *Customer) Release(orderID string) bool {
	i := slices.IndexFunc(c.Reservations, func(r Reservation) bool { return r.OrderID == orderID })
	if i < 0 {
		return false
	}
	c.Available += c.Reservations[i].Amount
	c.Reservations = slices.Delete(c.Reservations, i, i+1)
	return true
}

// HasReservation reports whether orderID holds credit of c.
func (c Customer) HasReservation(orderID string) bool {
	return slices.ContainsFunc(c.Reservations, func(r Reservation) bool { return r.OrderID == orderID })
}

// SetCreditLimit changes the limit, keeping the reservations; it refuses a
// limit below what is already reserved.
func (c *Customer) SetCreditLimit(limit int64) error {
	reserved := c.CreditLimit - c.Available
	if limit < reserved {
		return Errorf(KindConflict, "customer %s has %d cents reserved; the credit limit cannot go below that", c.ID, reserved)
	}
	c.Available = limit - reserved
	c.CreditLimit = limit
	return nil
}

// Change is a state change of an order, as told to notifiers.
type Change struct {
	Order    Order
	Previous string
}
