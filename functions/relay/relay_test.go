package relay_test

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"

	"github.com/cupcake-factory/cupcake-factory/domain"
	"github.com/cupcake-factory/cupcake-factory/events"
	"github.com/cupcake-factory/cupcake-factory/functions/internal/fntest"
	"github.com/cupcake-factory/cupcake-factory/functions/kitchen"
	"github.com/cupcake-factory/cupcake-factory/functions/relay"
	"github.com/cupcake-factory/cupcake-factory/infra/bolt"
)

var quiet = slog.New(slog.DiscardHandler)

// capture keeps the events it is given; refuse, if set, decides an error
// for an event.
type capture struct {
	mu     sync.Mutex
	events []cloudevents.Event
	refuse func(cloudevents.Event) error
}

func (c *capture) PublishAll(_ context.Context, es []cloudevents.Event) []error {
	c.mu.Lock()
	defer c.mu.Unlock()
	errs := make([]error, len(es))
	for i, e := range es {
		if c.refuse != nil {
			if errs[i] = c.refuse(e); errs[i] != nil {
				continue
			}
		}
		c.events = append(c.events, e)
	}
	return errs
}

func (c *capture) got() []cloudevents.Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]cloudevents.Event(nil), c.events...)
}

func (c *capture) types() []string {
	var ts []string
	for _, e := range c.got() {
		ts = append(ts, e.Type())
	}
	return ts
}

// mixedAt has the mixing station (automatic kitchen) take order o-1, which
// is approved, and returns the order as its write left it: a status change
// and the baked event for the oven.
func mixedAt(t *testing.T, s *bolt.Store) domain.Order {
	t.Helper()
	fntest.OrderIn(t, s, "o-1", events.StatusApproved)
	step, _ := events.StepNamed(events.FuncMixed)
	o, err := kitchen.New(step, s, true).Handle(context.Background(),
		fntest.Event(t, events.TypeMixed, "o-1", events.KitchenStep{OrderID: "o-1", By: "maria"}))
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func TestDeliverLeavesAStepsEventForTheWriteOfTheStepItCauses(t *testing.T) {
	for _, handOn := range []bool{false, true} {
		t.Run(map[bool]string{false: "over Kafka", true: "handed on"}[handOn], func(t *testing.T) {
			s := fntest.Store(t)
			o := mixedAt(t, s)
			pub := &capture{}
			r := relay.New(s, pub, quiet)
			r.HandOn = handOn
			next, err := r.Deliver(context.Background(), o)
			if err != nil {
				t.Fatal(err)
			}
			want := []string{events.TypeStatusChanged, events.TypeBaked}
			if handOn {
				want = want[:1]
				if next == nil || next.Type() != events.TypeBaked {
					t.Errorf("handed on %v; want the %s event", next, events.TypeBaked)
				}
			}
			if got := pub.types(); !slices.Equal(got, want) {
				t.Errorf("published %q; want %q", got, want)
			}
			if left := fntest.Order(t, s, "o-1").Outbox; len(left) != len(o.Outbox) {
				t.Errorf("%d messages left; want all %d kept until the oven's write", len(left), len(o.Outbox))
			}
			// The oven's write removes them: one write for its step.
			step, _ := events.StepNamed(events.FuncBaked)
			baked := kitchen.New(step, s, true)
			if next == nil {
				next = &pub.got()[1]
			}
			after, err := baked.Handle(context.Background(), *next)
			if err != nil {
				t.Fatal(err)
			}
			if got := msgTypes(t, after.Outbox); !slices.Equal(got, []string{events.TypeStatusChanged, events.TypeDecorated}) {
				t.Errorf("after the oven's write the outbox holds %q; want only what the oven emitted", got)
			}
		})
	}
}

func TestDeliverRemovesWhatNoStepWillTake(t *testing.T) {
	s := fntest.Store(t)
	fntest.OrderIn(t, s, "o-1", events.StatusBaked)
	mustReserveOther(t, s)
	o, err := kitchen.ReportFailure(context.Background(), s, events.FailureReport{OrderID: "o-1", By: "oven", Reason: "burnt"}, "test burnt")
	if err != nil {
		t.Fatal(err)
	}
	pub := &capture{}
	r := relay.New(s, pub, quiet)
	r.HandOn = true
	next, err := r.Deliver(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if next == nil || next.Type() != events.TypeFailed {
		t.Errorf("handed on %v; want the order's end, %s", next, events.TypeFailed)
	}
	if got := pub.types(); !slices.Equal(got, []string{events.TypeStatusChanged, events.TypeFailed}) {
		t.Errorf("published %q; want the status change and the end, which the notifier takes too", got)
	}
	if left := fntest.Order(t, s, "o-1").Outbox; len(left) != 0 {
		t.Errorf("%d messages left; want none", len(left))
	}
	if got := fntest.Available(t, s, "alice"); got != 10000-500 {
		t.Errorf("alice has %d available; want the failed order's 1200 back once", got)
	}
}

// mustReserveOther has alice hold 500 for another order, so that a release
// that gave back too much would show.
func mustReserveOther(t *testing.T, s *bolt.Store) {
	t.Helper()
	if _, err := s.ChangeCredit(context.Background(), domain.Reserve("alice", "o-other", 500)); err != nil {
		t.Fatal(err)
	}
}

func TestAFailedPublishStopsTheDeliveryAndKeepsTheRestWhileARefusedOneIsDropped(t *testing.T) {
	tests := []struct {
		name     string
		err      error
		wantErr  bool
		wantLeft int
	}{
		{"broker down", errors.New("broker down"), true, 1},
		{"refused for good", domain.Errorf(domain.KindInvalid, "no such topic"), false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := fntest.Store(t)
			fntest.OrderIn(t, s, "o-1", events.StatusDecorated)
			step, _ := events.StepNamed(events.FuncPackaged)
			o, err := kitchen.New(step, s, true).Handle(context.Background(),
				fntest.Event(t, events.TypePackaged, "o-1", events.KitchenStep{OrderID: "o-1", By: "maria"}))
			if err != nil {
				t.Fatal(err)
			}
			// packaged, shipped, the settlement, and the shipped event.
			pub := &capture{refuse: func(e cloudevents.Event) error {
				if e.Type() == events.TypeShipped {
					return tt.err
				}
				return nil
			}}
			_, err = relay.New(s, pub, quiet).Deliver(context.Background(), o)
			if (err != nil) != tt.wantErr {
				t.Errorf("Deliver: %v; want an error %v", err, tt.wantErr)
			}
			if left := fntest.Order(t, s, "o-1").Outbox; len(left) != tt.wantLeft {
				t.Errorf("%d messages left (%q); want %d", len(left), msgTypes(t, left), tt.wantLeft)
			}
		})
	}
}

func TestRunTakesOverWhatWasLeftAndHandsEachOrderToResume(t *testing.T) {
	s := fntest.Store(t)
	o := mixedAt(t, s) // written, never delivered: its process died
	r := relay.New(s, &capture{}, quiet)
	r.Interval = 10 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	resumed := make(chan domain.Order, 10)
	done := make(chan struct{})
	go func() { defer close(done); r.Run(ctx, func(_ context.Context, o domain.Order) { resumed <- o }) }()
	select {
	case got := <-resumed:
		if got.ID != o.ID || len(got.Outbox) != len(o.Outbox) {
			t.Errorf("resumed order %s with %d messages; want %s with %d", got.ID, len(got.Outbox), o.ID, len(o.Outbox))
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the start-up round resumed nothing")
	}
	cancel()
	<-done
}

func TestDropRemovesTheMessagesUpToTheOneGiven(t *testing.T) {
	s := fntest.Store(t)
	o := mixedAt(t, s)
	r := relay.New(s, &capture{}, quiet)
	if err := r.Drop(context.Background(), "o-1", o.Outbox[len(o.Outbox)-1].ID); err != nil {
		t.Fatal(err)
	}
	if left := fntest.Order(t, s, "o-1").Outbox; len(left) != 0 {
		t.Errorf("%d messages left; want none", len(left))
	}
}

// msgTypes is what an outbox holds: event types, "credit" for a saga step.
func msgTypes(t *testing.T, ms []domain.Message) []string {
	t.Helper()
	var out []string
	for _, m := range ms {
		if m.OnCustomer() {
			out = append(out, "credit")
			continue
		}
		out = append(out, m.Type)
	}
	return out
}

// TestAMessageKeptWholeByAnEarlierVersionIsDeliveredAsItWas: outboxes
// written before messages kept type and data apart hold the structured
// CloudEvent; after an upgrade the relay delivers it unchanged.
func TestAMessageKeptWholeByAnEarlierVersionIsDeliveredAsItWas(t *testing.T) {
	legacy := `{"specversion":"1.0","id":"e-1","source":"cupcake-factory/order-created","type":"com.cupcakes.order.credit-validated",` +
		`"subject":"o-1","partitionkey":"o-1","datacontenttype":"application/json","data":{"orderId":"o-1"}}`
	e, err := relay.Event("o-1", domain.Message{ID: "cupcake-factory/order-created e-1", Legacy: legacy})
	if err != nil {
		t.Fatal(err)
	}
	if e.ID() != "e-1" || e.Type() != events.TypeCreditValidated || e.Subject() != "o-1" || string(e.Data()) != `{"orderId":"o-1"}` {
		t.Errorf("delivered %s", e)
	}
	if _, err := relay.Event("o-1", domain.Message{ID: "x", Legacy: "{"}); domain.KindOf(err) != domain.KindInternal {
		t.Errorf("a message that does not decode: %v, want an internal error", err)
	}
}

// TestAMessageIsDeliveredAsTheEventTheDomainEmitted: type, source, id,
// data as emitted; subject and partitionkey the order; the time it was
// written.
func TestAMessageIsDeliveredAsTheEventTheDomainEmitted(t *testing.T) {
	m, err := domain.NewMessage(domain.Reply(events.TypeCreditValidated, "cupcake-factory/order-created", "o-1", events.CreditValidated{OrderID: "o-1", CustomerID: "alice", Amount: 1200, Valid: true}))
	if err != nil {
		t.Fatal(err)
	}
	e, err := relay.Event("o-1", m)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Validate(); err != nil {
		t.Fatal(err)
	}
	if events.Key(e) != m.ID || e.Type() != events.TypeCreditValidated || e.Subject() != "o-1" || e.Extensions()[events.ExtPartitionKey] != "o-1" ||
		!e.Time().Equal(m.At) || e.DataContentType() != "application/json" {
		t.Errorf("delivered %s from %+v", e, m)
	}
	var v events.CreditValidated
	if err := events.DecodePayload(e, &v); err != nil || v.Amount != 1200 || !v.Valid {
		t.Errorf("data %s: %+v %v", e.Data(), v, err)
	}
}
