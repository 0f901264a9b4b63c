package dispatch_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"

	"github.com/cupcake-factory/cupcake-factory/domain"
	"github.com/cupcake-factory/cupcake-factory/events"
	"github.com/cupcake-factory/cupcake-factory/functions/dispatch"
	"github.com/cupcake-factory/cupcake-factory/functions/internal/fntest"
	"github.com/cupcake-factory/cupcake-factory/functions/kitchen"
	"github.com/cupcake-factory/cupcake-factory/infra/bolt"
)

// publisher records the ids of the events it is given, in order, and
// answers each with what answer says (nil: delivered).
type publisher struct {
	mu     sync.Mutex
	ids    []string
	delay  time.Duration
	answer func(id string) error
}

func (p *publisher) Publish(_ context.Context, e cloudevents.Event) error {
	time.Sleep(p.delay)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.ids = append(p.ids, e.ID())
	if p.answer != nil {
		return p.answer(e.ID())
	}
	return nil
}

func (p *publisher) got() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.ids)
}

// withOutbox stores order id (approved, credit reserved) with n events
// waiting in its outbox, and returns their ids in order.
func withOutbox(t *testing.T, s *bolt.Store, id string, n int) []string {
	t.Helper()
	fntest.OrderIn(t, s, id, events.StatusApproved)
	var ids []string
	_, err := s.UpdateOrder(context.Background(), id, func(o *domain.Order) error {
		for i := range n {
			e := fntest.Event(t, events.TypeMixed, id, events.KitchenStep{OrderID: id, By: fmt.Sprint("m", i)})
			ids = append(ids, e.ID())
			if err := o.Emit(e); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

// waiting returns the ids of the events left in an order's outbox.
func waiting(t *testing.T, s *bolt.Store, id string) []string {
	t.Helper()
	var out []string
	for _, e := range fntest.Emitted(t, s, id) {
		out = append(out, e.ID())
	}
	return out
}

func pending(t *testing.T, s *bolt.Store) []string {
	t.Helper()
	ids, err := s.Pending(context.Background(), 100)
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

func TestDrainDeliversAnOrdersMessagesInOrderAndRemovesThem(t *testing.T) {
	s := fntest.Store(t)
	ids := withOutbox(t, s, "o-1", 3)
	other := withOutbox(t, s, "o-2", 2)
	pub := &publisher{}
	if err := dispatch.NewRelay(s, pub, quiet).Drain(context.Background(), "o-1"); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(pub.got(), ids) {
		t.Errorf("delivered %v, want %v", pub.got(), ids)
	}
	if left := waiting(t, s, "o-1"); len(left) != 0 {
		t.Errorf("left %v", left)
	}
	if left := waiting(t, s, "o-2"); !slices.Equal(left, other) {
		t.Errorf("another order's outbox changed: %v, want %v", left, other)
	}
	if p := pending(t, s); !slices.Equal(p, []string{"o-2"}) {
		t.Errorf("pending %v, want only o-2", p)
	}
}

func TestDrainOfAnUnknownOrderIsNotFound(t *testing.T) {
	s := fntest.Store(t)
	err := dispatch.NewRelay(s, &publisher{}, quiet).Drain(context.Background(), "o-9")
	if domain.KindOf(err) != domain.KindNotFound {
		t.Fatalf("err = %v, want not found", err)
	}
}

func TestDrainStopsAtTheFirstFailedDeliveryAndKeepsTheRest(t *testing.T) {
	s := fntest.Store(t)
	ids := withOutbox(t, s, "o-1", 3)
	down := true
	pub := &publisher{answer: func(id string) error {
		if down && id == ids[1] {
			return errors.New("broker down")
		}
		return nil
	}}
	relay := dispatch.NewRelay(s, pub, quiet)
	err := relay.Drain(context.Background(), "o-1")
	if err == nil || domain.Permanent(err) {
		t.Fatalf("err = %v, want the transient failure", err)
	}
	if got := pub.got(); !slices.Equal(got, ids[:2]) {
		t.Errorf("tried %v, want %v: nothing after the failure", got, ids[:2])
	}
	if left := waiting(t, s, "o-1"); !slices.Equal(left, ids[1:]) {
		t.Errorf("left %v, want %v", left, ids[1:])
	}

	// Once the broker is back the rest goes, in order; the first not again.
	down = false
	if err := relay.Drain(context.Background(), "o-1"); err != nil {
		t.Fatal(err)
	}
	if got, want := pub.got(), append(slices.Clone(ids[:2]), ids[1:]...); !slices.Equal(got, want) {
		t.Errorf("delivered %v, want %v", got, want)
	}
	if left := waiting(t, s, "o-1"); len(left) != 0 {
		t.Errorf("left %v", left)
	}
}

func TestDrainDropsAMessageRefusedForGood(t *testing.T) {
	for _, refusal := range []error{
		domain.Errorf(domain.KindConflict, "order o-1 is shipped"),
		&events.ValidationError{Problems: []string{"bad"}},
		domain.Errorf(domain.KindNotFound, "order o-1 not found"),
	} {
		t.Run(string(domain.KindOf(refusal)), func(t *testing.T) {
			s := fntest.Store(t)
			ids := withOutbox(t, s, "o-1", 3)
			pub := &publisher{answer: func(id string) error {
				if id == ids[1] {
					return refusal
				}
				return nil
			}}
			if err := dispatch.NewRelay(s, pub, quiet).Drain(context.Background(), "o-1"); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(pub.got(), ids) {
				t.Errorf("delivered %v, want %v", pub.got(), ids)
			}
			if left := waiting(t, s, "o-1"); len(left) != 0 {
				t.Errorf("left %v, want the refused one dropped", left)
			}
		})
	}
}

func TestAMessageNobodyHereCanTakeStaysUntilItExpires(t *testing.T) {
	tests := []struct {
		name     string
		age      time.Duration
		wantLeft bool
	}{
		{"fresh: stays for a redelivery to take", 0, true},
		{"older than the expiry: dropped", dispatch.NoRouteExpiry + time.Minute, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := fntest.Store(t)
			ids := withOutbox(t, s, "o-1", 2)
			if _, err := s.UpdateOrder(context.Background(), "o-1", func(o *domain.Order) error {
				o.Outbox[0].At = time.Now().Add(-tt.age)
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			pub := &publisher{answer: func(id string) error {
				if id == ids[0] {
					return fmt.Errorf("reply: %w", dispatch.ErrNoRoute)
				}
				return nil
			}}
			if err := dispatch.NewRelay(s, pub, quiet).Drain(context.Background(), "o-1"); err != nil {
				t.Fatalf("err = %v, want none: no route is not a failure", err)
			}
			want := []string(nil)
			if tt.wantLeft {
				want = ids[:1]
			}
			if left := waiting(t, s, "o-1"); !slices.Equal(left, want) {
				t.Errorf("left %v, want %v", left, want)
			}
			// The one after is not held up (the drain may offer the first
			// again on its way out; it is still nobody's).
			if got := pub.got(); len(got) < 2 || !slices.Equal(got[:2], ids) || slices.Index(got[2:], ids[1]) >= 0 {
				t.Errorf("delivered %v, want %v, the second once", got, ids)
			}
		})
	}
}

// failOnce fails the first removal of delivered messages, as a crash right
// after the deliveries would: the relay delivers them again next time.
type failOnce struct {
	*bolt.Store
	mu     sync.Mutex
	failed bool
}

func (f *failOnce) UpdateOrder(ctx context.Context, id string, fn func(*domain.Order) error) (domain.Order, error) {
	f.mu.Lock()
	fail := !f.failed
	f.failed = true
	f.mu.Unlock()
	if fail {
		o, _ := f.Store.Order(ctx, id)
		return o, errors.New("store down")
	}
	return f.Store.UpdateOrder(ctx, id, fn)
}

func TestAReleaseGivesTheCreditBackOnce(t *testing.T) {
	tests := []struct {
		name string
		// store is what the first drain uses.
		store func(*bolt.Store) dispatch.OutboxStore
	}{
		{"drained twice", func(s *bolt.Store) dispatch.OutboxStore { return s }},
		{"delivered again after a crash before the removal", func(s *bolt.Store) dispatch.OutboxStore { return &failOnce{Store: s} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			s := fntest.Store(t)
			fntest.OrderIn(t, s, "o-1", events.StatusBaked)
			fntest.OrderIn(t, s, "o-2", events.StatusApproved) // holds 1200 too, and keeps it
			if _, err := kitchen.ReportFailure(ctx, s, events.FailureReport{OrderID: "o-1", By: "ben", Reason: "burnt"}, "test k1"); err != nil {
				t.Fatal(err)
			}
			if got := fntest.Available(t, s, "alice"); got != 10000-2400 {
				t.Fatalf("alice has %d available before the relay, want %d", got, 10000-2400)
			}
			pub := &publisher{}
			_ = dispatch.NewRelay(tt.store(s), pub, quiet).Drain(ctx, "o-1")
			if err := dispatch.NewRelay(s, pub, quiet).Drain(ctx, "o-1"); err != nil {
				t.Fatal(err)
			}
			if err := dispatch.NewRelay(s, pub, quiet).Drain(ctx, "o-1"); err != nil {
				t.Fatal(err)
			}
			c, _ := s.Customer(ctx, "alice")
			if _, held := c.Reservation("o-2"); c.Available != 10000-1200 || !held || len(c.Reservations) != 1 {
				t.Errorf("alice has %d available, reservations %+v; want o-1's 1200 back once and o-2's kept", c.Available, c.Reservations)
			}
			if left := fntest.Emitted(t, s, "o-1"); len(left) != 0 {
				t.Errorf("left %v", fntest.Types(left))
			}
			if n := len(pub.got()); n < 2 {
				t.Errorf("published %d events, want the status change and failed", n)
			}
		})
	}
}

func TestAShippedOrdersReservationIsSettledOnceAndItsCreditStaysSpent(t *testing.T) {
	ctx := context.Background()
	s := fntest.Store(t)
	fntest.OrderIn(t, s, "o-1", events.StatusPackaged)
	fntest.OrderIn(t, s, "o-2", events.StatusApproved) // holds 1200 too, and keeps it
	if _, err := s.UpdateOrder(ctx, "o-1", func(o *domain.Order) error {
		return o.Apply(domain.To(events.StatusShipped, "ben", "", "test ship", time.Now()))
	}); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := dispatch.NewRelay(s, &publisher{}, quiet).Drain(ctx, "o-1"); err != nil {
			t.Fatal(err)
		}
	}
	c, _ := s.Customer(ctx, "alice")
	if _, held := c.Reservation("o-2"); c.Available != 10000-2400 || !held || len(c.Reservations) != 1 {
		t.Errorf("alice has %d available, reservations %+v; want o-1's 1200 spent and forgotten, o-2's kept", c.Available, c.Reservations)
	}
	if left := fntest.Emitted(t, s, "o-1"); len(left) != 0 {
		t.Errorf("left %v", fntest.Types(left))
	}
}

// drainTwiceAtOnce runs two drains of o-1 at once through a slow publisher
// and returns the ids of the messages and of the deliveries.
func drainTwiceAtOnce(t *testing.T) (s *bolt.Store, ids, got []string) {
	t.Helper()
	s = fntest.Store(t)
	ids = withOutbox(t, s, "o-1", 6)
	pub := &publisher{delay: 20 * time.Millisecond}
	relay := dispatch.NewRelay(s, pub, quiet)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			<-start
			if err := relay.Drain(context.Background(), "o-1"); err != nil {
				t.Error(err)
			}
		})
	}
	close(start)
	wg.Wait()
	return s, ids, pub.got()
}

func TestConcurrentDrainsDeliverEachMessageOnce(t *testing.T) {
	s, ids, got := drainTwiceAtOnce(t)
	count := map[string]int{}
	for _, id := range got {
		count[id]++
	}
	for _, id := range ids {
		if count[id] != 1 {
			t.Errorf("message %s delivered %d times, want once", id, count[id])
		}
	}
	if len(got) != len(ids) {
		t.Errorf("%d deliveries of %d messages", len(got), len(ids))
	}
	if left := waiting(t, s, "o-1"); len(left) != 0 {
		t.Errorf("left %v", left)
	}
}

// "Messages of one order are delivered in order", also when two drains of
// the order overlap (the relay's round and a handler's DrainAfter, or two
// consumers): a drain must not pass a message another drain holds.
func TestConcurrentDrainsKeepAnOrdersMessagesInOrder(t *testing.T) {
	_, ids, got := drainTwiceAtOnce(t)
	if !slices.Equal(got, ids) {
		t.Errorf("delivered\n%v\nwant\n%v", got, ids)
	}
}

func TestRunDeliversWhatAnEarlierRunLeft(t *testing.T) {
	s := fntest.Store(t)
	first := withOutbox(t, s, "o-1", 2)
	second := withOutbox(t, s, "o-2", 3)
	pub := &publisher{}
	relay := dispatch.NewRelay(s, pub, quiet)
	relay.Interval = 10 * time.Millisecond
	relay.Grace = time.Hour // at start-up everything goes, however young
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); relay.Run(ctx) }()
	defer func() {
		cancel()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Error("Run did not stop when its context ended")
		}
	}()

	deadline := time.Now().Add(5 * time.Second)
	for len(pending(t, s)) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("still pending after 5s: %v", pending(t, s))
		}
		time.Sleep(5 * time.Millisecond)
	}
	got := pub.got()
	for _, ids := range [][]string{first, second} {
		var order []string
		for _, id := range got {
			if slices.Contains(ids, id) {
				order = append(order, id)
			}
		}
		if !slices.Equal(order, ids) {
			t.Errorf("delivered %v, want %v in order", order, ids)
		}
	}
	if len(got) != len(first)+len(second) {
		t.Errorf("%d deliveries, want %d", len(got), len(first)+len(second))
	}

	// Later rounds leave a message younger than Grace to the handler that
	// is delivering it.
	fresh := withOutbox(t, s, "o-3", 1)
	time.Sleep(100 * time.Millisecond)
	if left := waiting(t, s, "o-3"); !slices.Equal(left, fresh) {
		t.Errorf("a fresh message was taken by a background round: left %v", left)
	}
}

// writes counts the units of work on orders, and the reads of orders, that
// reach the store.
type writes struct {
	*bolt.Store
	mu    sync.Mutex
	n     int
	reads int
}

func (w *writes) UpdateOrder(ctx context.Context, id string, fn func(*domain.Order) error) (domain.Order, error) {
	w.mu.Lock()
	w.n++
	w.mu.Unlock()
	return w.Store.UpdateOrder(ctx, id, fn)
}

func (w *writes) count() int { w.mu.Lock(); defer w.mu.Unlock(); return w.n }

func (w *writes) Order(ctx context.Context, id string) (domain.Order, error) {
	w.mu.Lock()
	w.reads++
	w.mu.Unlock()
	return w.Store.Order(ctx, id)
}

func TestTheDrainAfterAHandlerStartsFromTheOrderItsWriteStored(t *testing.T) {
	s := fntest.Store(t)
	fntest.OrderIn(t, s, "o-1", events.StatusApproved)
	w := &writes{Store: s}
	pub := &publisher{}
	relay := dispatch.NewRelay(w, pub, quiet)
	store := relay.HandOn(w)
	handler := dispatch.DrainAfter(relay, quiet)(func(ctx context.Context, e cloudevents.Event) error {
		_, err := store.UpdateOrder(ctx, "o-1", func(o *domain.Order) error {
			return o.Apply(domain.To(events.StatusMixed, "maria", "", events.Key(e), time.Now()))
		})
		return err
	})
	if err := handler(context.Background(), fntest.Event(t, events.TypeMixed, "o-1", events.KitchenStep{OrderID: "o-1", By: "maria"})); err != nil {
		t.Fatal(err)
	}
	if len(pub.got()) != 1 || len(waiting(t, s, "o-1")) != 0 {
		t.Errorf("published %v, left %v; want the status change delivered", pub.got(), waiting(t, s, "o-1"))
	}
	if w.reads != 0 {
		t.Errorf("the drain read the order %d times; want it handed on", w.reads)
	}
}

// handlerHere is a Local transport whose only function is a handler of
// mixed events that runs fn on the order through TakeDelivered(s).
func handlerHere(s domain.Store, fn func(*domain.Order) error) dispatch.Local {
	store := dispatch.NewRelay(s, nil, quiet).HandOn(s) // a relay that lets nothing linger
	router := dispatch.NewRouter()
	router.Register(events.TypeMixed, events.FuncMixed, func(ctx context.Context, e cloudevents.Event) error {
		if _, err := store.UpdateOrder(ctx, events.OrderOf(e), fn); err != nil && !errors.Is(err, domain.ErrDuplicate) {
			return err
		}
		return nil // a duplicate is done, as the functions answer it
	})
	return dispatch.Local{Router: router, Notifier: &publisher{}}
}

func TestAHandlerHereRemovesTheMessagesDeliveredToItInItsOwnWrite(t *testing.T) {
	tests := []struct {
		name       string
		fn         func(*domain.Order) error
		wantWrites int // units of work: the handler's, and the drain's if the handler's did not write
	}{
		{"the handler writes: one write", func(o *domain.Order) error { o.Reason = "noted"; return nil }, 1},
		{"the handler refuses: the drain removes them", func(*domain.Order) error { return domain.ErrDuplicate }, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := fntest.Store(t)
			withOutbox(t, s, "o-1", 1)
			w := &writes{Store: s}
			if err := dispatch.NewRelay(w, handlerHere(w, tt.fn), quiet).Drain(context.Background(), "o-1"); err != nil {
				t.Fatal(err)
			}
			if left := waiting(t, s, "o-1"); len(left) != 0 {
				t.Errorf("left in the outbox: %v", left)
			}
			if got := w.count(); got != tt.wantWrites {
				t.Errorf("%d writes to the order; want %d", got, tt.wantWrites)
			}
		})
	}
}

// batches is a BatchPublisher that records each call's event ids and
// fails the events whose ids fail names.
type batches struct {
	mu    sync.Mutex
	calls [][]string
	fail  map[string]bool
}

func (b *batches) Publish(ctx context.Context, e cloudevents.Event) error {
	return b.PublishAll(ctx, []cloudevents.Event{e})[0]
}

func (b *batches) PublishAll(_ context.Context, es []cloudevents.Event) []error {
	b.mu.Lock()
	defer b.mu.Unlock()
	var ids []string
	errs := make([]error, len(es))
	for i, e := range es {
		ids = append(ids, e.ID())
		if b.fail[e.ID()] {
			errs[i] = errors.New("broker said no")
		}
	}
	b.calls = append(b.calls, ids)
	return errs
}

func TestABatchPublisherGetsConsecutiveEventsAtOnceAndAFailureKeepsItAndTheRest(t *testing.T) {
	tests := []struct {
		name     string
		fail     int // index of the event that fails; -1 for none
		wantLeft int
	}{
		{"all acknowledged", -1, 0},
		{"the third fails", 2, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := fntest.Store(t)
			ids := withOutbox(t, s, "o-1", 5)
			pub := &batches{fail: map[string]bool{}}
			if tt.fail >= 0 {
				pub.fail[ids[tt.fail]] = true
			}
			err := dispatch.NewRelay(s, pub, quiet).Drain(context.Background(), "o-1")
			if (err != nil) != (tt.fail >= 0) {
				t.Fatalf("drain: %v", err)
			}
			if len(pub.calls) != 1 || !slices.Equal(pub.calls[0], ids) {
				t.Errorf("calls %v; want the five events in one call, in order", pub.calls)
			}
			if left := waiting(t, s, "o-1"); !slices.Equal(left, ids[len(ids)-tt.wantLeft:]) {
				t.Errorf("left %v; want %v", left, ids[len(ids)-tt.wantLeft:])
			}
		})
	}
}

func TestDeliveredMessagesLingerUntilTheOrdersNextWriteOrTheFlushRemovesThem(t *testing.T) {
	tests := []struct {
		name   string
		remove func(t *testing.T, r *dispatch.Relay, s *bolt.Store)
	}{
		{"the next write here takes them", func(t *testing.T, r *dispatch.Relay, s *bolt.Store) {
			if _, err := r.HandOn(s).UpdateOrder(context.Background(), "o-1", func(o *domain.Order) error {
				o.Reason = "noted"
				return nil
			}); err != nil {
				t.Fatal(err)
			}
		}},
		{"the flush removes them", func(t *testing.T, r *dispatch.Relay, s *bolt.Store) {
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { defer close(done); r.Run(ctx) }()
			for deadline := time.Now().Add(5 * time.Second); len(waiting(t, s, "o-1")) > 0 && time.Now().Before(deadline); {
				time.Sleep(10 * time.Millisecond)
			}
			cancel()
			<-done
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := fntest.Store(t)
			ids := withOutbox(t, s, "o-1", 2)
			pub := &publisher{}
			r := dispatch.NewRelay(s, pub, quiet)
			r.Linger = 50 * time.Millisecond
			for range 2 { // the second drain finds them delivered
				if err := r.Drain(context.Background(), "o-1"); err != nil {
					t.Fatal(err)
				}
			}
			if got := pub.got(); !slices.Equal(got, ids) {
				t.Errorf("delivered %v; want %v once", got, ids)
			}
			if left := waiting(t, s, "o-1"); len(left) != 2 {
				t.Errorf("left %v; want both still stored, lingering", left)
			}
			tt.remove(t, r, s)
			if left := waiting(t, s, "o-1"); len(left) != 0 {
				t.Errorf("left %v; want them removed", left)
			}
			if got := pub.got(); !slices.Equal(got, ids) {
				t.Errorf("delivered %v; want %v once", got, ids)
			}
		})
	}
}
