package ordercreated

import (
	"context"
	"errors"
	"fmt"

	"github.com/cupcake-factory/cupcake-factory/domain"
	"github.com/cupcake-factory/cupcake-factory/events"
)

// reserve reserves the order's amount; it returns why credit was refused,
// or "" if it is reserved.
func (f *Function) reserve(ctx context.Context, o domain.Order) (string, error) {
	_, err := f.store.ChangeCredit(ctx, domain.Reserve(o.CustomerID, o.ID, o.Amount))
	switch {
	case err == nil:
		return "", nil
	case domain.KindOf(err) == domain.KindNotFound:
		return events.ReasonUnknownCustomer, nil
	case errors.Is(err, domain.ErrInsufficientCredit):
		return events.ReasonInsufficientCredit, nil
	}
	return "", fmt.Errorf("reserve credit for order %s: %w", o.ID, err)
}

// sameOrder accepts the same order created again (one effect) and refuses
// an order id reused for another customer or other items.
func sameOrder(stored, o domain.Order) error {
	if !stored.SameContent(o) {
		return domain.Errorf(domain.KindConflict, "order %s already exists with another customer or items", o.ID)
	}
	return nil
}

// release gives back the credit reserved for an order that lost the race to
// be recorded.
func (f *Function) release(ctx context.Context, o domain.Order) error {
	_, err := f.store.ChangeCredit(ctx, domain.Release(o.CustomerID, o.ID, o.Amount))
	if err != nil && domain.KindOf(err) != domain.KindNotFound {
		return fmt.Errorf("give back credit of order %s: %w", o.ID, err)
	}
	return nil
}
