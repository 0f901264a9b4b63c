package domain

import (
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/cupcake-factory/cupcake-factory/events"
)

// Customer is a customer with a credit line. Available is the credit left
// after its orders took theirs. Reservations are the orders still open that
// hold credit, so reserving for the same order twice reserves once; a
// shipped order's reservation is settled (removed, its credit spent) and an
// order that ends unshipped releases it (removed, its credit given back).
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
	if strings.TrimSpace(c.Name) == "" || utf8.RuneCountInString(c.Name) > 200 {
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

// Customer returns the record of a new customer.
func (c NewCustomer) Customer(now time.Time) Customer {
	now = now.UTC().Truncate(time.Millisecond)
	return Customer{ID: c.ID, Name: c.Name, CreditLimit: c.CreditLimit, Available: c.CreditLimit, CreatedAt: now, UpdatedAt: now}
}

// ValidateCreditLimit checks a credit limit in cents.
func ValidateCreditLimit(limit int64) error {
	if limit < 0 || limit > MaxCreditLimit {
		return &events.ValidationError{Problems: []string{
			fmt.Sprintf("creditLimit must be 0..%d cents, got %d", int64(MaxCreditLimit), limit)}}
	}
	return nil
}

// Credit errors.
var (
	ErrUnknownCustomer    = &Error{Kind: KindNotFound, Message: events.ReasonUnknownCustomer}
	ErrInsufficientCredit = &Error{Kind: KindConflict, Message: events.ReasonInsufficientCredit}
)

// Reserve takes amount from c's available credit for orderID (see
// CreditChange.Check for what it refuses).
func (c *Customer) Reserve(orderID string, amount int64) error {
	_, err := c.Apply(Reserve(c.ID, orderID, amount))
	return err
}

// Release gives back the credit orderID holds; it reports whether there was any.
func (c *Customer) Release(orderID string) bool {
	r, ok := c.Reservation(orderID)
	if ok {
		ok, _ = c.Apply(Release(c.ID, orderID, r.Amount))
	}
	return ok
}

// Settle closes the reservation of a shipped order: its credit stays spent,
// and c no longer remembers it, so a customer record grows with its open
// orders only, never with its history. It reports whether there was one.
func (c *Customer) Settle(orderID string) bool {
	r, ok := c.Reservation(orderID)
	if ok {
		ok, _ = c.Apply(Settle(c.ID, orderID, r.Amount))
	}
	return ok
}

// Reservation returns the credit orderID holds of c.
func (c Customer) Reservation(orderID string) (Reservation, bool) {
	i := slices.IndexFunc(c.Reservations, func(r Reservation) bool { return r.OrderID == orderID })
	if i < 0 {
		return Reservation{}, false
	}
	return c.Reservations[i], true
}

// SetCreditLimit changes the limit, keeping the reservations; it refuses a
// limit below what is already reserved.
func (c *Customer) SetCreditLimit(limit int64) error {
	if err := ValidateCreditLimit(limit); err != nil {
		return err
	}
	reserved := c.CreditLimit - c.Available
	if limit < reserved {
		return Errorf(KindConflict, "customer %s has %d cents reserved; the credit limit cannot go below that", c.ID, reserved)
	}
	c.Available = limit - reserved
	c.CreditLimit = limit
	return nil
}
