// Package relaytest is the relay's part of the store conformance suite
// (infra/storetest): the same relay, delivering outboxes from every store
// implementation (the embedded store in infra/bolt, the MongoDB store in
// tests/mongo), gives each event at least once and each credit back once,
// across crashes and stores that fail in the middle.
package relaytest

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"

	"github.com/cupcake-factory/cupcake-factory/domain"
	"github.com/cupcake-factory/cupcake-factory/events"
	"github.com/cupcake-factory/cupcake-factory/functions/relay"
	"github.com/cupcake-factory/cupcake-factory/infra/storetest"
)

var quiet = slog.New(slog.DiscardHandler)

// recorder is a publisher that records the ids of the events it delivers,
// in order. fail, if set, decides whether a delivery fails.
type recorder struct {
	mu   sync.Mutex
	ids  []string
	fail func(e cloudevents.Event) error
}

func (r *recorder) Publish(_ context.Context, e cloudevents.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail != nil {
		if err := r.fail(e); err != nil {
			return err
		}
	}
	r.ids = append(r.ids, e.ID())
	return nil
}

func (r *recorder) PublishAll(ctx context.Context, es []cloudevents.Event) []error {
	errs := make([]error, len(es))
	for i, e := range es {
		errs[i] = r.Publish(ctx, e)
	}
	return errs
}

// deliver has r deliver the outbox of o-1 as stored.
func deliver(t *testing.T, r *relay.Relay, s domain.Store) error {
	t.Helper()
	_, err := r.Deliver(t.Context(), storetest.MustOrder(t, s, "o-1"))
	return err
}

func (r *recorder) delivered() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.ids)
}

// failedOrder stores alice (credit limit 5000, 500 held by o-other) and her
// order o-1 (1200 cents, reserved), fails it at the oven in one unit of work
// with the failed reply, and returns it and the ids of the events in its
// outbox: the status-changed notification, then (after the release of its
// credit) the reply.
func failedOrder(t *testing.T, s domain.Store) (domain.Order, []string) {
	t.Helper()
	storetest.OrderIn(t, s, events.Kitchen()[1].Records)
	storetest.MustReserve(t, s, "alice", "o-other", 500)
	reply := storetest.NewEvent(t, events.TypeFailed, "o-1")
	o := storetest.MustUpdateOrder(t, s, "o-1", func(o *domain.Order) error {
		if err := o.Fail(events.FailureReport{OrderID: "o-1", By: "oven", Reason: "burnt"}, "test burnt", storetest.T0.Add(time.Hour)); err != nil {
			return err
		}
		return o.Emit(reply)
	})
	storetest.WantKinds(t, "failed order", o, "status-changed failed", "release 1200", events.TypeFailed)
	wantCreditHeld(t, s)
	return o, eventIDs(t, o)
}

// wantCreditHeld checks alice's credit while o-1 still holds its 1200.
func wantCreditHeld(t *testing.T, s domain.Store) {
	t.Helper()
	storetest.WantCredit(t, s, "alice", 5000, 3300,
		domain.Reservation{OrderID: "o-1", Amount: 1200}, domain.Reservation{OrderID: "o-other", Amount: 500})
}

// wantCreditBack checks alice's credit once o-1's 1200 came back, once.
func wantCreditBack(t *testing.T, s domain.Store) {
	t.Helper()
	storetest.WantCredit(t, s, "alice", 5000, 4500, domain.Reservation{OrderID: "o-other", Amount: 500})
}

// eventIDs returns the ids of the events in an order's outbox, in order.
func eventIDs(t *testing.T, o domain.Order) []string {
	t.Helper()
	var ids []string
	for _, m := range o.Outbox {
		if m.OnCustomer() {
			continue
		}
		ids = append(ids, m.EventID)
	}
	return ids
}

// wantDrained checks that o-1's outbox is empty and nothing is pending.
func wantDrained(t *testing.T, s domain.Store) {
	t.Helper()
	if left := storetest.MustOrder(t, s, "o-1").Outbox; len(left) != 0 {
		t.Errorf("outbox after the relay: %q", storetest.Kinds(t, storetest.MustOrder(t, s, "o-1")))
	}
	storetest.WantPending(t, s)
}

// unsure is a store whose removal of delivered messages fails the first
// times, as when the relay's process dies after delivering them.
type unsure struct {
	domain.Store
	fails atomic.Int32
}

func (u *unsure) Delivered(ctx context.Context, id string, ids []string) error {
	if u.fails.Add(-1) >= 0 {
		return errors.New("the process died before this write")
	}
	return u.Store.Delivered(ctx, id, ids)
}

// Run runs the relay's part of the conformance suite on the stores open
// makes: delivery at least once, credit back once, a crash or a store
// that fails between the publish and the removal.
func Run(t *testing.T, open storetest.Open) {
	t.Run("MessagesWrittenBeforeACrashAreDeliveredAfterReopening", func(t *testing.T) {
		s, reopen := open(t)
		if reopen == nil {
			t.Skip("the adapter cannot reopen its data")
		}
		failed, ids := failedOrder(t, s)
		// The process stops between the write and the publish.
		if err := s.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		s = reopen()
		storetest.WantPending(t, s, "o-1")
		storetest.WantOrder(t, "order after reopening", storetest.MustOrder(t, s, "o-1"), failed)
		wantCreditHeld(t, s)

		// What a new process does at start-up: its relay delivers what is pending.
		pub := &recorder{}
		r := relay.New(s, pub, quiet)
		r.Interval = time.Hour // only the start-up round
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() {
			defer close(done)
			r.Run(ctx, func(ctx context.Context, o domain.Order) { _, _ = r.Deliver(ctx, o) })
		}()
		for deadline := time.Now().Add(20 * time.Second); len(storetest.Pending(t, s, 10)) > 0; time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("the relay did not deliver within 20s; pending %q, delivered %q", storetest.Pending(t, s, 10), pub.delivered())
			}
		}
		cancel()
		<-done
		if got := pub.delivered(); !slices.Equal(got, ids) {
			t.Errorf("delivered %q; want %q", got, ids)
		}
		wantDrained(t, s)
		wantCreditBack(t, s)

		// And that is durable too.
		if err := s.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		s = reopen()
		wantDrained(t, s)
		wantCreditBack(t, s)
	})

	t.Run("DrainingTwiceDeliversEachMessageOnce", func(t *testing.T) {
		s := storetest.Store(t, open)
		_, ids := failedOrder(t, s)
		pub := &recorder{}
		r := relay.New(s, pub, quiet)
		for i := range 2 {
			if err := deliver(t, r, s); err != nil {
				t.Fatalf("Deliver #%d: %v", i+1, err)
			}
		}
		if got := pub.delivered(); !slices.Equal(got, ids) {
			t.Errorf("delivered %q; want %q, once each", got, ids)
		}
		wantDrained(t, s)
		wantCreditBack(t, s)
	})

	t.Run("AFailedPublishLeavesTheMessagePendingAndTheNextDrainDeliversIt", func(t *testing.T) {
		cases := []struct {
			name   string
			failOn int      // index in the event ids of the one the broker refuses
			left   []string // what the outbox keeps after the failure
			back   bool     // whether the credit came back already
		}{
			{"BeforeTheRelease", 0, []string{"status-changed failed", "release 1200", events.TypeFailed}, false},
			{"AfterTheRelease", 1, []string{events.TypeFailed}, true},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				s := storetest.Store(t, open)
				_, ids := failedOrder(t, s)
				var down atomic.Bool
				down.Store(true)
				pub := &recorder{fail: func(e cloudevents.Event) error {
					if down.Load() && e.ID() == ids[tc.failOn] {
						return errors.New("broker down")
					}
					return nil
				}}
				r := relay.New(s, pub, quiet)
				err := deliver(t, r, s)
				if err == nil || domain.Permanent(err) {
					t.Fatalf("Deliver with the broker down: %v; want a transient error", err)
				}
				if got := pub.delivered(); !slices.Equal(got, ids[:tc.failOn]) {
					t.Errorf("delivered %q; want %q", got, ids[:tc.failOn])
				}
				storetest.WantKinds(t, "after the failure", storetest.MustOrder(t, s, "o-1"), tc.left...)
				storetest.WantPending(t, s, "o-1")
				if tc.back {
					wantCreditBack(t, s)
				} else {
					wantCreditHeld(t, s)
				}

				down.Store(false)
				if err := deliver(t, r, s); err != nil {
					t.Fatalf("Deliver with the broker back: %v", err)
				}
				if got := pub.delivered(); !slices.Equal(got, ids) {
					t.Errorf("delivered %q; want %q, once each", got, ids)
				}
				wantDrained(t, s)
				wantCreditBack(t, s)
			})
		}
	})

	t.Run("TheCreditComesBackOnceWhenTheRelayDeliversAgain", func(t *testing.T) {
		// The relay delivers everything, the release included, and dies
		// before removing the messages; the next run delivers them again.
		s := storetest.Store(t, open)
		_, ids := failedOrder(t, s)
		pub := &recorder{}
		dying := &unsure{Store: s}
		dying.fails.Store(1)
		if err := deliver(t, relay.New(dying, pub, quiet), s); err == nil {
			t.Fatal("Deliver whose removal failed: no error")
		}
		storetest.WantKinds(t, "after the crash", storetest.MustOrder(t, s, "o-1"), "status-changed failed", "release 1200", events.TypeFailed)
		storetest.WantPending(t, s, "o-1")
		wantCreditBack(t, s)

		if err := deliver(t, relay.New(s, pub, quiet), s); err != nil {
			t.Fatalf("Deliver after the crash: %v", err)
		}
		if got, want := pub.delivered(), append(slices.Clone(ids), ids...); !slices.Equal(got, want) {
			t.Errorf("delivered %q; want %q (at least once)", got, want)
		}
		wantDrained(t, s)
		wantCreditBack(t, s)
	})

	t.Run("ConcurrentRelaysDeliverEverythingAndGiveTheCreditBackOnce", func(t *testing.T) {
		// Relays of several processes drain the same outbox at once.
		s := storetest.Store(t, open)
		_, ids := failedOrder(t, s)
		pub := &recorder{}
		o := storetest.MustOrder(t, s, "o-1")
		errs := storetest.Together(5, func(int) error {
			_, err := relay.New(s, pub, quiet).Deliver(t.Context(), o)
			return err
		})
		for i, err := range errs {
			if err != nil {
				t.Errorf("relay %d: %v", i, err)
			}
		}
		got := pub.delivered()
		for _, id := range ids {
			if !slices.Contains(got, id) {
				t.Errorf("event %s was never delivered (delivered %q)", id, got)
			}
		}
		wantDrained(t, s)
		wantCreditBack(t, s)
	})
}
