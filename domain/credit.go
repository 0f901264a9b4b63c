package domain

import (
	"fmt"
	"slices"
)

// CreditChange is one change to a customer's credit, as data: a condition
// the customer must meet and what changes when it does. Customer.Apply is
// the rule on a value; a store may apply the same change as one atomic
// conditional command instead of a read and a write (on MongoDB, the
// condition becomes the filter and the change $inc, $push and $pull), so
// that many orders of one busy customer never collide on a version.
//
// A change already made (the order holds its reservation; nothing is held
// any more) is met, not refused: the same change applied twice has the
// effect of one.
type CreditChange struct {
	CustomerID string
	OrderID    string
	// The condition: at least MinAvailable cents available; the order
	// holds no reservation (Unheld) or holds exactly Held cents (Held > 0).
	MinAvailable int64
	Unheld       bool
	Held         int64
	// The change: Add cents to the available credit; Hold a reservation
	// of that many cents for the order (> 0); Unhold its reservation.
	Add    int64
	Hold   int64
	Unhold bool
}

// Reserve takes amount from the customer's available credit for an order.
func Reserve(customerID, orderID string, amount int64) CreditChange {
	return CreditChange{CustomerID: customerID, OrderID: orderID, MinAvailable: amount, Unheld: true, Add: -amount, Hold: amount}
}

// Release gives back the amount an order holds (it ended unshipped).
func Release(customerID, orderID string, amount int64) CreditChange {
	return CreditChange{CustomerID: customerID, OrderID: orderID, Held: amount, Add: amount, Unhold: true}
}

// Settle closes the reservation of a shipped order: its credit stays spent.
func Settle(customerID, orderID string, amount int64) CreditChange {
	return CreditChange{CustomerID: customerID, OrderID: orderID, Held: amount, Unhold: true}
}

// Check tells what ch would do to c: apply (the condition holds), nothing
// (the change was made already), or an error saying why it cannot be made:
// ErrInsufficientCredit, or a conflict when the order holds another amount
// than the change names (its id was reused).
func (c Customer) Check(ch CreditChange) (apply bool, err error) {
	r, held := c.Reservation(ch.OrderID)
	switch {
	case ch.Unheld && held && r.Amount == ch.Hold:
		return false, nil // reserved already
	case ch.Unheld && held, ch.Held > 0 && held && r.Amount != ch.Held:
		return false, Errorf(KindConflict, "order %s already holds %d cents of customer %s, not %d",
			ch.OrderID, r.Amount, c.ID, max(ch.Hold, ch.Held))
	case ch.Held > 0 && !held:
		return false, nil // released or settled already
	case c.Available < ch.MinAvailable:
		return false, fmt.Errorf("customer %s has %d cents available, order %s needs %d: %w",
			c.ID, c.Available, ch.OrderID, ch.MinAvailable, ErrInsufficientCredit)
	}
	return true, nil
}

// Apply makes ch on c if its condition holds; it reports whether c changed.
func (c *Customer) Apply(ch CreditChange) (bool, error) {
	apply, err := c.Check(ch)
	if !apply || err != nil {
		return false, err
	}
	c.Available += ch.Add
	if ch.Unhold {
		c.Reservations = slices.DeleteFunc(c.Reservations, func(r Reservation) bool { return r.OrderID == ch.OrderID })
	}
	if ch.Hold > 0 {
		c.Reservations = append(c.Reservations, Reservation{OrderID: ch.OrderID, Amount: ch.Hold})
	}
	return true, nil
}
