package domain

import "context"

// Store is everything the system keeps. Functions do not depend on it: each
// declares the few methods it uses. It is the contract every adapter meets
// (see infra/storetest) and what the wiring passes around.
type Store interface {
	CreateCustomer(ctx context.Context, c Customer) (Customer, error)
	Customer(ctx context.Context, id string) (Customer, error)
	SetCreditLimit(ctx context.Context, id string, limit int64) (Customer, error)

	// CreateOrder stores o unless an order with its id exists. It returns the
	// stored order and whether it was created now; an existing order with
	// other content is a conflict.
	CreateOrder(ctx context.Context, o Order) (Order, bool, error)
	Order(ctx context.Context, id string) (Order, error)
	// Orders lists orders in a state (all orders for ""), oldest first.
	Orders(ctx context.Context, status string, limit int) ([]Order, error)
	// Advance applies t to the order atomically. If the same event already
	// caused a step it returns the order and an error wrapping ErrDuplicate.
	Advance(ctx context.Context, orderID string, t Transition) (Order, error)

	// ReserveCredit takes amount for orderID from the customer's available
	// credit atomically, once per order. Errors wrap ErrUnknownCustomer or
	// ErrInsufficientCredit.
	ReserveCredit(ctx context.Context, customerID, orderID string, amount int64) error
	// ReleaseCredit gives back what orderID reserved, once.
	ReleaseCredit(ctx context.Context, customerID, orderID string) (bool, error)

	// ProcessedReply returns the reply stored for an event key by
	// MarkProcessed, and whether there was one.
	ProcessedReply(ctx context.Context, key string) ([]byte, bool, error)
	MarkProcessed(ctx context.Context, key string, reply []byte) error

	Ping(ctx context.Context) error
	Close() error
}
