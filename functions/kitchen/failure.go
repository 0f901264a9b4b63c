package kitchen

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cupcake-factory/cupcake-factory/domain"
	"github.com/cupcake-factory/cupcake-factory/events"
)

// FailureSource is the CloudEvents source of com.cupcakes.order.failed.
const FailureSource = events.Source + "/kitchen"

// ReportFailure fails an order in a kitchen state, in one write with the
// failed event and the release of its credit (delivered by the relay). key
// identifies the report: the same report applied twice fails it once.
func ReportFailure(ctx context.Context, s Store, r events.FailureReport, key string) (domain.Order, error) {
	if err := r.Validate(); err != nil {
		return domain.Order{}, err
	}
	o, err := s.UpdateOrder(ctx, r.OrderID, func(o *domain.Order) error {
		was := o.Status
		if err := o.Fail(r, key, time.Now()); err != nil {
			return err
		}
		return o.Emit(domain.Reply(events.TypeFailed, FailureSource, o.ID, o.Update(was)))
	})
	if err != nil && !errors.Is(err, domain.ErrDuplicate) {
		return o, fmt.Errorf("report failure: %w", err)
	}
	return o, nil
}
