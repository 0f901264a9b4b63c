package kitchen_test

import (
	"context"
	"slices"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"

	"github.com/cupcake-factory/cupcake-factory/domain"
	"github.com/cupcake-factory/cupcake-factory/events"
	"github.com/cupcake-factory/cupcake-factory/functions/internal/fntest"
	"github.com/cupcake-factory/cupcake-factory/functions/kitchen"
)

// station is one kitchen row of the pipeline with what the tests expect of it.
type station struct {
	step events.Step
	from string       // the state the step starts from
	next *events.Step // the following step; nil for the last, which ships
}

func stations(t *testing.T) []station {
	t.Helper()
	k := events.Kitchen()
	if len(k) == 0 {
		t.Fatal("the pipeline has no kitchen steps")
	}
	var out []station
	from := events.StatusApproved
	for i, s := range k {
		st := station{step: s, from: from}
		if i+1 < len(k) {
			st.next = &k[i+1]
		}
		out = append(out, st)
		from = s.Records
	}
	return out
}

func stepEvent(t *testing.T, st station) cloudevents.Event {
	return fntest.Event(t, st.step.Takes, "o-1", events.KitchenStep{OrderID: "o-1", By: "maria"})
}

func TestEachStationRecordsItsStepTellsTheNextAndHandsOnInAutoMode(t *testing.T) {
	for _, st := range stations(t) {
		for _, auto := range []bool{true, false} {
			t.Run(st.step.Function+map[bool]string{true: "/auto", false: "/manual"}[auto], func(t *testing.T) {
				s := fntest.Store(t)
				before := fntest.OrderIn(t, s, "o-1", st.from)
				if _, err := kitchen.New(st.step, s, auto).Handle(context.Background(), stepEvent(t, st)); err != nil {
					t.Fatal(err)
				}
				o := fntest.Order(t, s, "o-1")
				wantHistory := append(fntest.Statuses(before), st.step.Records)
				wantEmitted := []string{events.TypeStatusChanged}
				switch {
				case st.next == nil: // the last step ships in the same write
					wantHistory = append(wantHistory, events.StatusShipped)
					wantEmitted = []string{events.TypeStatusChanged, events.TypeStatusChanged, "settle", events.TypeShipped}
				case auto:
					wantEmitted = append(wantEmitted, st.next.Takes)
				}
				if got := fntest.Statuses(o); !slices.Equal(got, wantHistory) {
					t.Errorf("history %v, want %v", got, wantHistory)
				}
				if o.Status != wantHistory[len(wantHistory)-1] || o.History[len(before.History)].By != "maria" {
					t.Errorf("status %s, step by %q", o.Status, o.History[len(before.History)].By)
				}
				emitted := fntest.Emitted(t, s, "o-1")
				if got := fntest.Types(emitted); !slices.Equal(got, wantEmitted) {
					t.Fatalf("emitted %v, want %v", got, wantEmitted)
				}

				// The notification of the step, which tells the next station.
				u := fntest.Data[events.OrderUpdate](t, emitted[0])
				if u.OrderID != "o-1" || u.Status != st.step.Records || u.Previous != st.from || u.By != "maria" {
					t.Errorf("status-changed %+v, want %s from %s by maria", u, st.step.Records, st.from)
				}
				hub, stream := fntest.Hub(t)
				if err := hub.Publish(context.Background(), emitted[0]); err != nil {
					t.Fatal(err)
				}
				var names []string
				for _, n := range fntest.Drain(t, stream) {
					names = append(names, n.Name)
				}
				if st.next != nil && !slices.Contains(names, st.next.Inform) {
					t.Errorf("notifications %v, want %s for the %s", names, st.next.Inform, st.next.Station)
				}

				last := emitted[len(emitted)-1]
				switch {
				case st.next == nil:
					shippedNote := fntest.Data[events.OrderUpdate](t, emitted[1])
					shipped := fntest.Data[events.OrderUpdate](t, last)
					if shippedNote.Status != events.StatusShipped || shippedNote.Previous != st.step.Records ||
						shipped.OrderID != "o-1" || shipped.Status != events.StatusShipped || shipped.Previous != st.step.Records {
						t.Errorf("status-changed %+v and shipped %+v, want shipped from %s", shippedNote, shipped, st.step.Records)
					}
				case auto:
					next := fntest.Data[events.KitchenStep](t, last)
					if next.OrderID != "o-1" || next.By != st.next.AutoBy() || last.Extensions()[events.ExtPartitionKey] != "o-1" {
						t.Errorf("next step %+v, partitionkey %v; want o-1 by %s", next, last.Extensions()[events.ExtPartitionKey], st.next.AutoBy())
					}
				}
				if last.Type() != events.TypeStatusChanged && last.Source() != events.Source+"/"+st.step.Function {
					t.Errorf("%s from %q, want the station's source", last.Type(), last.Source())
				}
			})
		}
	}
}

func TestAStepThatDoesNotFitTheOrderIsRefusedAndChangesNothing(t *testing.T) {
	for _, st := range stations(t) {
		for _, from := range []string{events.StatusCreated, events.StatusCancelled, events.StatusShipped} {
			t.Run(st.step.Function+"/from "+from, func(t *testing.T) {
				s := fntest.Store(t)
				before := fntest.OrderIn(t, s, "o-1", from)
				_, err := kitchen.New(st.step, s, true).Handle(context.Background(), stepEvent(t, st))
				if domain.KindOf(err) != domain.KindConflict {
					t.Fatalf("err = %v, want conflict", err)
				}
				after := fntest.Order(t, s, "o-1")
				if after.Status != before.Status || len(after.History) != len(before.History) || len(after.Outbox) != 0 {
					t.Errorf("order changed to %s, %d messages", after.Status, len(after.Outbox))
				}
			})
		}
	}
}

func TestTheSameStepEventTwiceRecordsOnce(t *testing.T) {
	for _, st := range stations(t) {
		t.Run(st.step.Function, func(t *testing.T) {
			s := fntest.Store(t)
			fntest.OrderIn(t, s, "o-1", st.from)
			f := kitchen.New(st.step, s, true)
			e := stepEvent(t, st)
			if _, err := f.Handle(context.Background(), e); err != nil {
				t.Fatal(err)
			}
			mid := fntest.Order(t, s, "o-1")
			if _, err := f.Handle(context.Background(), e); err != nil {
				t.Fatalf("redelivery: %v, want it accepted", err)
			}
			after := fntest.Order(t, s, "o-1")
			if len(after.History) != len(mid.History) || len(after.Outbox) != len(mid.Outbox) {
				t.Errorf("history grew from %d to %d, outbox from %d to %d",
					len(mid.History), len(after.History), len(mid.Outbox), len(after.Outbox))
			}
		})
	}
}

// A redelivery comes when the outcome of the first delivery was lost, as
// a reply is when the caller (Knative's dispatcher) went away after the
// write: the step's reply is emitted again, with the same id, as long as
// the step is the last thing that happened to the order and the outbox
// does not hold the reply still; once the order moved on, never.
func TestARedeliveredStepEventEmitsItsLostReplyAgainWhileTheOrderHasNotMovedOn(t *testing.T) {
	ctx := context.Background()
	for _, st := range stations(t) {
		t.Run(st.step.Function, func(t *testing.T) {
			s := fntest.Store(t)
			fntest.OrderIn(t, s, "o-1", st.from)
			f := kitchen.New(st.step, s, true)
			e := stepEvent(t, st)
			if _, err := f.Handle(ctx, e); err != nil {
				t.Fatal(err)
			}
			first := fntest.Order(t, s, "o-1")
			reply := first.Outbox[len(first.Outbox)-1]
			replies := func() []string {
				var keys []string
				for _, m := range fntest.Order(t, s, "o-1").Outbox {
					if m.Type == reply.Type {
						keys = append(keys, m.ID)
					}
				}
				return keys
			}
			if _, err := f.Handle(ctx, e); err != nil {
				t.Fatal(err)
			}
			if got := replies(); len(got) != 1 {
				t.Errorf("redelivered while the reply waits in the outbox: %d replies there, want the one", len(got))
			}
			delivered := func(move func(*domain.Order) error) {
				t.Helper()
				if _, err := s.UpdateOrder(ctx, "o-1", func(o *domain.Order) error { o.Outbox = nil; return move(o) }); err != nil {
					t.Fatal(err)
				}
			}
			delivered(func(*domain.Order) error { return nil })
			if _, err := f.Handle(ctx, e); err != nil {
				t.Fatal(err)
			}
			if got := replies(); !slices.Equal(got, []string{reply.ID}) {
				t.Errorf("redelivered after the reply went: replies %q in the outbox, want %q again", got, reply.ID)
			}
			if st.next == nil {
				return // shipped: the order cannot move on
			}
			delivered(func(o *domain.Order) error {
				return o.Apply(domain.To(st.next.Records, "test", "", "test next", time.Now()))
			})
			if _, err := f.Handle(ctx, e); err != nil {
				t.Fatal(err)
			}
			if got := replies(); len(got) != 0 {
				t.Errorf("redelivered after the order moved on: replies %q emitted, want none", got)
			}
		})
	}
}

func TestAMalformedStepEventIsInvalid(t *testing.T) {
	st := stations(t)[0]
	tests := []struct {
		name    string
		subject string
		data    any
	}{
		{"no order id", "o-1", events.KitchenStep{By: "maria"}},
		{"subject names another order", "o-2", events.KitchenStep{OrderID: "o-1", By: "maria"}},
		{"not a step", "o-1", map[string]int{"orderId": 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := fntest.Store(t)
			fntest.OrderIn(t, s, "o-1", st.from)
			_, err := kitchen.New(st.step, s, true).Handle(context.Background(), fntest.Event(t, st.step.Takes, tt.subject, tt.data))
			if domain.KindOf(err) != domain.KindInvalid {
				t.Fatalf("err = %v, want invalid", err)
			}
			if o := fntest.Order(t, s, "o-1"); o.Status != st.from || len(o.Outbox) != 0 {
				t.Errorf("order %s with %d messages, want unchanged", o.Status, len(o.Outbox))
			}
		})
	}
}

func TestReportFailureFailsTheOrderAndEmitsFailedAndTheRelease(t *testing.T) {
	tests := []struct {
		from    string
		wantErr domain.Kind
	}{
		{events.StatusApproved, ""},
		{events.StatusMixed, ""},
		{events.StatusBaked, ""},
		{events.StatusDecorated, ""},
		{events.StatusPackaged, ""},
		{events.StatusShipped, domain.KindConflict},
		{events.StatusCancelled, domain.KindConflict},
		{events.StatusCreated, domain.KindConflict},
	}
	for _, tt := range tests {
		t.Run(tt.from, func(t *testing.T) {
			ctx := context.Background()
			s := fntest.Store(t)
			before := fntest.OrderIn(t, s, "o-1", tt.from)
			credit := fntest.Available(t, s, "alice")
			r := events.FailureReport{OrderID: "o-1", By: "maria", Reason: "oven broke"}
			o, err := kitchen.ReportFailure(ctx, s, r, "test k1")
			if tt.wantErr != "" {
				if domain.KindOf(err) != tt.wantErr {
					t.Fatalf("err = %v, want %s", err, tt.wantErr)
				}
				after := fntest.Order(t, s, "o-1")
				if after.Status != before.Status || len(after.History) != len(before.History) || len(after.Outbox) != 0 {
					t.Errorf("order changed to %s, %d messages", after.Status, len(after.Outbox))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if o.Status != events.StatusFailed || o.Reason != "oven broke" || o.Reserved != 0 || o.History[len(o.History)-1].By != "maria" {
				t.Errorf("order %s (%s), reserved %d, history %v", o.Status, o.Reason, o.Reserved, o.History)
			}
			emitted := fntest.Emitted(t, s, "o-1")
			if got, want := fntest.Types(emitted), []string{events.TypeStatusChanged, "release", events.TypeFailed}; !slices.Equal(got, want) {
				t.Fatalf("emitted %v, want %v", got, want)
			}
			if f := fntest.Data[events.OrderUpdate](t, emitted[2]); f.OrderID != "o-1" || f.Status != events.StatusFailed ||
				f.Previous != tt.from || f.Reason != "oven broke" || emitted[2].Source() != kitchen.FailureSource {
				t.Errorf("failed event %+v from %s", f, emitted[2].Source())
			}
			stored := fntest.Order(t, s, "o-1")
			if rel := stored.Outbox[1]; rel.Release != 1200 {
				t.Errorf("release of %d, want the 1200 the order held", rel.Release)
			}
			if got := fntest.Available(t, s, "alice"); got != credit {
				t.Errorf("alice has %d available before the release is relayed, want %d", got, credit)
			}

			// The same report again changes nothing.
			if _, err := kitchen.ReportFailure(ctx, s, r, "test k1"); err != nil {
				t.Fatalf("same report again: %v", err)
			}
			if again := fntest.Order(t, s, "o-1"); len(again.History) != len(stored.History) || len(again.Outbox) != len(stored.Outbox) {
				t.Errorf("the same report applied twice: %d steps, %d messages", len(again.History), len(again.Outbox))
			}
			// Another report on a failed order is refused.
			if _, err := kitchen.ReportFailure(ctx, s, r, "test k2"); domain.KindOf(err) != domain.KindConflict {
				t.Fatalf("second report: err = %v, want conflict", err)
			}
			if again := fntest.Order(t, s, "o-1"); len(again.History) != len(stored.History) || len(again.Outbox) != len(stored.Outbox) {
				t.Errorf("a second report changed the order: %d steps, %d messages", len(again.History), len(again.Outbox))
			}
		})
	}
}

func TestReportFailureRefusesAnIncompleteReport(t *testing.T) {
	s := fntest.Store(t)
	fntest.OrderIn(t, s, "o-1", events.StatusMixed)
	_, err := kitchen.ReportFailure(context.Background(), s, events.FailureReport{OrderID: "o-1"}, "test k1")
	if domain.KindOf(err) != domain.KindInvalid {
		t.Fatalf("err = %v, want invalid", err)
	}
	if o := fntest.Order(t, s, "o-1"); o.Status != events.StatusMixed {
		t.Errorf("order %s, want mixed", o.Status)
	}
}
