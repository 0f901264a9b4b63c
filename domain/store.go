package domain

import (
	"context"
	"time"
)

// Store is everything the system keeps, as units of work: a function passed
// to UpdateOrder or UpdateCustomer is pure domain code, and the adapter makes
// it atomic (one transaction of the embedded store; one version-checked
// document write on MongoDB, retried on conflict). An order's outbox is part
// of the order, so a state change and the events it emits are one write.
// Functions do not depend on Store: each declares the few methods it uses.
// Every adapter passes the conformance suite in infra/storetest.
type Store interface {
	CreateCustomer(ctx context.Context, c Customer) (Customer, error)
	Customer(ctx context.Context, id string) (Customer, error)
	// UpdateCustomer runs fn on the customer and stores the result; if fn
	// fails nothing is stored and its error is returned.
	UpdateCustomer(ctx context.Context, id string, fn func(*Customer) error) (Customer, error)
	// ChangeCredit makes ch atomically, as one conditional write where the
	// store has one, so that a busy customer's orders do not collide. A
	// change made already changes nothing and is no error; a condition not
	// met is the error Customer.Check gives.
	ChangeCredit(ctx context.Context, ch CreditChange) (Customer, error)

	// CreateOrder stores o (with its outbox) unless an order with its id
	// exists. It returns the stored order and whether it was created now.
	CreateOrder(ctx context.Context, o Order) (Order, bool, error)
	Order(ctx context.Context, id string) (Order, error)
	// Orders returns one page of orders, oldest first. A page's Next is
	// where the following one starts; paging on while orders are added
	// meets each order once (on MongoDB, see its adapter for the caveat).
	Orders(ctx context.Context, q OrderQuery) (OrderPage, error)
	// UpdateOrder runs fn on the order and stores the result; if fn fails
	// nothing is stored, and the order as it was is returned with the error.
	UpdateOrder(ctx context.Context, id string, fn func(*Order) error) (Order, error)
	// Delivered removes delivered messages from an order's outbox.
	Delivered(ctx context.Context, orderID string, ids []string) error
	// Pending lists the ids of orders whose outbox holds messages, the
	// longest waiting first; all of them for limit <= 0.
	Pending(ctx context.Context, limit int) ([]string, error)
	// Abandoned claims, for lease, at most limit orders whose outbox holds
	// a message written before before (the writer did not deliver it: it
	// died, or its broker was down) and that nobody claims right now, and
	// returns their ids, the longest waiting first. Of several processes
	// sharing the store one claims each order; a claim ends by itself
	// when its lease runs out. Its cost does not grow with the number of
	// orders that are not abandoned.
	Abandoned(ctx context.Context, before time.Time, lease time.Duration, limit int) ([]string, error)
	Ping(ctx context.Context) error
	Close() error
}

// OrderQuery asks for one page of orders.
type OrderQuery struct {
	Status string // one state (a station's queue); "" for every order
	After  string // the Next of the previous page; "" for the first page
	Limit  int    // at most this many, 1 or more
}

// OrderPage is one page of orders, oldest first. Next is an opaque cursor
// for the following page, "" on the last one.
type OrderPage struct {
	Orders []Order
	Next   string
}
