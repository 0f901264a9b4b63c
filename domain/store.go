package domain

import "context"

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

	// CreateOrder stores o (with its outbox) unless an order with its id
	// exists. It returns the stored order and whether it was created now.
	CreateOrder(ctx context.Context, o Order) (Order, bool, error)
	Order(ctx context.Context, id string) (Order, error)
	// Orders lists orders in a state (all orders for ""), oldest first.
	Orders(ctx context.Context, status string, limit int) ([]Order, error)
	// UpdateOrder runs fn on the order and stores the result; if fn fails
	// nothing is stored, and the order as it was is returned with the error.
	UpdateOrder(ctx context.Context, id string, fn func(*Order) error) (Order, error)
	// Pending lists the ids of orders whose outbox holds messages, the
	// longest waiting first; all of them for limit <= 0.
	Pending(ctx context.Context, limit int) ([]string, error)

	Ping(ctx context.Context) error
	Close() error
}
