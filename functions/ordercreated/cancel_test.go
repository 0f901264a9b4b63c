package ordercreated

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/cupcake-factory/cupcake-factory/domain"
	"github.com/cupcake-factory/cupcake-factory/events"
	"github.com/cupcake-factory/cupcake-factory/functions/internal/fntest"
)

func cancelEvent(t *testing.T, orderID, reason string) events.CancelRequest {
	t.Helper()
	return events.CancelRequest{OrderID: orderID, By: "alice", Reason: reason}
}

func TestACancelRequestCancelsTheOrderAndGivesItsCreditBackOnceFromEveryCancellableState(t *testing.T) {
	for _, from := range domain.Cancellable() {
		t.Run(from, func(t *testing.T) {
			ctx := context.Background()
			s := fntest.Store(t)
			fntest.OrderIn(t, s, "o-1", from)
			e := fntest.Event(t, events.TypeCancelRequested, "o-1", cancelEvent(t, "o-1", ""))
			o, err := New(s).Handle(ctx, e)
			if err != nil {
				t.Fatal(err)
			}
			if o.Status != events.StatusCancelled || o.Reason != events.ReasonCustomerCancelled || o.Reserved != 0 {
				t.Errorf("order %s (%q), reserved %d; want cancelled (customer-cancelled), nothing reserved", o.Status, o.Reason, o.Reserved)
			}
			if last := o.History[len(o.History)-1]; last.By != "alice" || last.Status != events.StatusCancelled {
				t.Errorf("last step %+v, want cancelled by alice", last)
			}
			want := []string{events.TypeStatusChanged, "release", events.TypeCancelled}
			if got := fntest.Types(fntest.Emitted(t, s, "o-1")); !slices.Equal(got, want) {
				t.Fatalf("emitted %v, want %v", got, want)
			}
			cancelled := fntest.Emitted(t, s, "o-1")[2]
			if u := fntest.Data[events.OrderUpdate](t, cancelled); u.Status != events.StatusCancelled || u.Previous != from {
				t.Errorf("cancelled event says %s from %s, want cancelled from %s", u.Status, u.Previous, from)
			}

			// The same request again: the effect of one; the cancelled
			// event is answered again while the cancellation is the last step.
			again, err := New(s).Handle(ctx, e)
			if err != nil {
				t.Fatal(err)
			}
			if got := fntest.Types(fntest.Emitted(t, s, "o-1")); !slices.Equal(got, want) {
				t.Errorf("after the same request again: emitted %v, want %v (one release)", got, want)
			}
			if again.ID != "o-1" {
				t.Errorf("the redelivery returned %+v, want the order to deliver", again)
			}
		})
	}
}

func TestACancelRequestFromDecoratingOnOrOnceEndedIsRefusedAndChangesNothing(t *testing.T) {
	var late []string
	for _, st := range events.Statuses() {
		if !slices.Contains(domain.Cancellable(), st) && st != events.StatusFailed {
			late = append(late, st)
		}
	}
	if !slices.Contains(late, events.StatusDecorated) {
		t.Fatalf("%v: decorated should be past cancelling", late)
	}
	for _, from := range late {
		t.Run(from, func(t *testing.T) {
			s := fntest.Store(t)
			before := fntest.OrderIn(t, s, "o-1", from)
			_, err := New(s).Handle(context.Background(), fntest.Event(t, events.TypeCancelRequested, "o-1", cancelEvent(t, "o-1", "too late")))
			if domain.KindOf(err) != domain.KindConflict || errors.Is(err, domain.ErrDuplicate) {
				t.Fatalf("cancel a %s order: %v; want a conflict", from, err)
			}
			after := fntest.Order(t, s, "o-1")
			if after.Status != before.Status || len(after.History) != len(before.History) || len(after.Outbox) != 0 {
				t.Errorf("order changed: %s, %d steps, %d messages", after.Status, len(after.History), len(after.Outbox))
			}
		})
	}
}

func TestACancelRequestKeepsItsReasonAndRefusesBadInput(t *testing.T) {
	s := fntest.Store(t)
	fntest.OrderIn(t, s, "o-1", events.StatusApproved)
	for _, bad := range []events.CancelRequest{{OrderID: "o-1"}, {OrderID: "o.1", By: "alice"}, {OrderID: "o-1", By: "alice", Reason: "a\nb"}} {
		if _, err := Cancel(context.Background(), s, bad, "test bad", time.Now()); domain.KindOf(err) != domain.KindInvalid {
			t.Errorf("cancel %+v: %v; want invalid", bad, err)
		}
	}
	if o := fntest.Order(t, s, "o-1"); o.Status != events.StatusApproved {
		t.Fatalf("bad requests changed the order: %s", o.Status)
	}
	o, err := Cancel(context.Background(), s, cancelEvent(t, "o-1", "changed my mind"), "test c1", time.Now())
	if err != nil || o.Reason != "changed my mind" {
		t.Errorf("cancel with a reason: %q, %v", o.Reason, err)
	}
}
