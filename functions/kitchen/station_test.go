package kitchen_test

import (
	"context"
	"encoding/json"
	"testing"

	cloudevents "github.com/cloudevents/sdk-go/v2"

	"github.com/cupcake-factory/cupcake-factory/domain"
	"github.com/cupcake-factory/cupcake-factory/events"
	"github.com/cupcake-factory/cupcake-factory/functions/baked"
	"github.com/cupcake-factory/cupcake-factory/functions/decorated"
	"github.com/cupcake-factory/cupcake-factory/functions/internal/fntest"
	"github.com/cupcake-factory/cupcake-factory/functions/kitchen"
	"github.com/cupcake-factory/cupcake-factory/functions/mixed"
	"github.com/cupcake-factory/cupcake-factory/functions/packaged"
	"github.com/cupcake-factory/cupcake-factory/infra/notify"
)

type newStation func(kitchen.Store, kitchen.Notifier, bool) *kitchen.Station

var stations = []struct {
	name       string
	new        newStation
	event      string
	from       string
	wantStatus string
	autoReply  string
	manualRepl string
	inform     string // the notification the next station gets
}{
	{"mixed", mixed.New, events.TypeMixed, events.StatusApproved, events.StatusMixed, events.TypeBaked, "", notify.InformNewOrderToBake},
	{"baked", baked.New, events.TypeBaked, events.StatusMixed, events.StatusBaked, events.TypeDecorated, "", notify.InformNewOrderToDecorate},
	{"decorated", decorated.New, events.TypeDecorated, events.StatusBaked, events.StatusDecorated, events.TypePackaged, "", notify.InformNewOrderToPackage},
	{"packaged ships", packaged.New, events.TypePackaged, events.StatusDecorated, events.StatusShipped, events.TypeShipped, events.TypeShipped, ""},
}

func typeOf(e *cloudevents.Event) string {
	if e == nil {
		return ""
	}
	return e.Type()
}

func TestEachStationRecordsItsStepTellsTheNextAndHandsOnInAutoMode(t *testing.T) {
	for _, st := range stations {
		for _, auto := range []bool{true, false} {
			t.Run(st.name+map[bool]string{true: "/auto", false: "/manual"}[auto], func(t *testing.T) {
				s := fntest.Store(t)
				hub, sub := fntest.Hub(t)
				fntest.OrderIn(t, s, "o-1", st.from)
				reply, err := st.new(s, hub, auto).Handle(context.Background(),
					fntest.Event(t, st.event, "o-1", events.KitchenStep{OrderID: "o-1", By: "maria"}))
				if err != nil {
					t.Fatal(err)
				}
				want := st.manualRepl
				if auto {
					want = st.autoReply
				}
				if typeOf(reply) != want {
					t.Errorf("reply %q, want %q", typeOf(reply), want)
				}
				if reply != nil && reply.Type() != events.TypeShipped {
					var next events.KitchenStep
					_ = json.Unmarshal(reply.Data(), &next)
					if next.OrderID != "o-1" || next.By == "" || reply.Extensions()[events.ExtPartitionKey] != "o-1" {
						t.Errorf("next step %+v, partitionkey %v", next, reply.Extensions()[events.ExtPartitionKey])
					}
				}
				o, _ := s.Order(context.Background(), "o-1")
				if o.Status != st.wantStatus {
					t.Errorf("status %s, want %s", o.Status, st.wantStatus)
				}
				if st.inform != "" {
					found := false
					for _, n := range fntest.Drain(sub) {
						found = found || n.Name == st.inform
					}
					if !found {
						t.Errorf("no %s notification", st.inform)
					}
				}
			})
		}
	}
}

func TestAStepThatDoesNotFitTheOrderIsRefusedAndChangesNothing(t *testing.T) {
	for _, st := range stations {
		t.Run(st.name, func(t *testing.T) {
			s := fntest.Store(t)
			hub, _ := fntest.Hub(t)
			before := fntest.OrderIn(t, s, "o-1", events.StatusCreated) // not approved yet
			_, err := st.new(s, hub, true).Handle(context.Background(),
				fntest.Event(t, st.event, "o-1", events.KitchenStep{OrderID: "o-1", By: "maria"}))
			if domain.KindOf(err) != domain.KindConflict {
				t.Fatalf("err = %v, want conflict", err)
			}
			after, _ := s.Order(context.Background(), "o-1")
			if after.Status != before.Status || len(after.History) != len(before.History) {
				t.Errorf("order changed to %s", after.Status)
			}
		})
	}
}

func TestTheSameStepEventTwiceRecordsOnceAndRepliesTheSame(t *testing.T) {
	for _, st := range stations {
		t.Run(st.name, func(t *testing.T) {
			s := fntest.Store(t)
			hub, _ := fntest.Hub(t)
			fntest.OrderIn(t, s, "o-1", st.from)
			f := st.new(s, hub, true)
			e := fntest.Event(t, st.event, "o-1", events.KitchenStep{OrderID: "o-1", By: "maria"})
			first, err := f.Handle(context.Background(), e)
			if err != nil {
				t.Fatal(err)
			}
			mid, _ := s.Order(context.Background(), "o-1")
			second, err := f.Handle(context.Background(), e)
			if err != nil {
				t.Fatal(err)
			}
			if first.ID() != second.ID() {
				t.Errorf("replies differ: %s %s", first.ID(), second.ID())
			}
			after, _ := s.Order(context.Background(), "o-1")
			if len(after.History) != len(mid.History) {
				t.Errorf("history grew from %d to %d", len(mid.History), len(after.History))
			}
		})
	}
}

func TestReportFailureFailsTheOrderAndGivesItsCreditBack(t *testing.T) {
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
			hub, _ := fntest.Hub(t)
			fntest.OrderIn(t, s, "o-1", tt.from)
			before, _ := s.Customer(ctx, "alice")
			r := events.FailureReport{OrderID: "o-1", By: "maria", Reason: "oven broke"}
			o, ev, err := kitchen.ReportFailure(ctx, s, hub, r, "test k1")
			after, _ := s.Customer(ctx, "alice")
			if tt.wantErr != "" {
				if domain.KindOf(err) != tt.wantErr {
					t.Fatalf("err = %v, want %s", err, tt.wantErr)
				}
				if after.Available != before.Available {
					t.Errorf("credit changed from %d to %d", before.Available, after.Available)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if o.Status != events.StatusFailed || o.Reason != "oven broke" || ev == nil || ev.Type() != events.TypeFailed {
				t.Errorf("order %s (%s), event %v", o.Status, o.Reason, ev)
			}
			if after.Available != before.Available+1200 {
				t.Errorf("available %d, want %d", after.Available, before.Available+1200)
			}
			// The same report again changes nothing more.
			if _, _, err := kitchen.ReportFailure(ctx, s, hub, r, "test k1"); err != nil {
				t.Fatal(err)
			}
			again, _ := s.Customer(ctx, "alice")
			if again.Available != after.Available {
				t.Errorf("second report released again: %d", again.Available)
			}
		})
	}
}
