package creditvalidated

import (
	"context"
	"testing"

	cloudevents "github.com/cloudevents/sdk-go/v2"

	"github.com/cupcake-factory/cupcake-factory/domain"
	"github.com/cupcake-factory/cupcake-factory/events"
	"github.com/cupcake-factory/cupcake-factory/functions/internal/fntest"
)

func TestHandleApprovesOrCancels(t *testing.T) {
	tests := []struct {
		name       string
		in         events.CreditValidated
		auto       bool
		wantStatus string
		wantReply  string // "" = no reply
	}{
		{"approved, auto kitchen", events.CreditValidated{OrderID: "o-1", CustomerID: "alice", Amount: 1200, Valid: true}, true, events.StatusApproved, events.TypeMixed},
		{"approved, manual kitchen", events.CreditValidated{OrderID: "o-1", CustomerID: "alice", Amount: 1200, Valid: true}, false, events.StatusApproved, ""},
		{"insufficient credit", events.CreditValidated{OrderID: "o-1", CustomerID: "alice", Amount: 1200, Reason: events.ReasonInsufficientCredit}, true, events.StatusCancelled, events.TypeCancelled},
		{"unknown customer", events.CreditValidated{OrderID: "o-1", CustomerID: "alice", Amount: 1200, Reason: events.ReasonUnknownCustomer}, false, events.StatusCancelled, events.TypeCancelled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := fntest.Store(t)
			hub, sub := fntest.Hub(t)
			fntest.OrderIn(t, s, "o-1", events.StatusCreated)
			reply, err := New(s, hub, tt.auto).Handle(context.Background(), fntest.Event(t, events.TypeCreditValidated, "o-1", tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if got := typeOf(reply); got != tt.wantReply {
				t.Errorf("reply %q, want %q", got, tt.wantReply)
			}
			o, _ := s.Order(context.Background(), "o-1")
			if o.Status != tt.wantStatus || o.Reason != tt.in.Reason {
				t.Errorf("order %s (%q), want %s (%q)", o.Status, o.Reason, tt.wantStatus, tt.in.Reason)
			}
			if n := fntest.Drain(sub); len(n) == 0 {
				t.Error("no notification")
			}
			// The order held 1200 cents; a cancelled order holds none.
			want := int64(10000 - 1200)
			if tt.wantStatus == events.StatusCancelled {
				want = 10000
			}
			if c, _ := s.Customer(context.Background(), "alice"); c.Available != want {
				t.Errorf("alice has %d available, want %d", c.Available, want)
			}
		})
	}
}

func typeOf(e *cloudevents.Event) string {
	if e == nil {
		return ""
	}
	return e.Type()
}

func TestTheSameVerdictTwiceAppliesOnceAndRepliesTheSame(t *testing.T) {
	s := fntest.Store(t)
	hub, _ := fntest.Hub(t)
	fntest.OrderIn(t, s, "o-1", events.StatusCreated)
	f := New(s, hub, true)
	e := fntest.Event(t, events.TypeCreditValidated, "o-1", events.CreditValidated{OrderID: "o-1", CustomerID: "alice", Amount: 1200, Valid: true})
	first, err := f.Handle(context.Background(), e)
	if err != nil {
		t.Fatal(err)
	}
	second, err := f.Handle(context.Background(), e)
	if err != nil {
		t.Fatal(err)
	}
	if first.ID() != second.ID() {
		t.Errorf("replies %s and %s differ", first.ID(), second.ID())
	}
	o, _ := s.Order(context.Background(), "o-1")
	if len(o.History) != 2 {
		t.Errorf("history has %d steps, want created and approved once", len(o.History))
	}
}

func TestAVerdictThatDoesNotFitTheStateIsRefusedAndChangesNothing(t *testing.T) {
	s := fntest.Store(t)
	hub, _ := fntest.Hub(t)
	before := fntest.OrderIn(t, s, "o-1", events.StatusMixed)
	_, err := New(s, hub, true).Handle(context.Background(), fntest.Event(t, events.TypeCreditValidated, "o-1",
		events.CreditValidated{OrderID: "o-1", CustomerID: "alice", Amount: 1200, Reason: events.ReasonInsufficientCredit}))
	if domain.KindOf(err) != domain.KindConflict {
		t.Fatalf("err = %v, want conflict", err)
	}
	after, _ := s.Order(context.Background(), "o-1")
	if after.Status != before.Status || len(after.History) != len(before.History) {
		t.Errorf("order changed: %s → %s", before.Status, after.Status)
	}
}

func TestAVerdictForAnUnknownOrderIsNotFound(t *testing.T) {
	s := fntest.Store(t)
	hub, _ := fntest.Hub(t)
	_, err := New(s, hub, true).Handle(context.Background(), fntest.Event(t, events.TypeCreditValidated, "o-9",
		events.CreditValidated{OrderID: "o-9", CustomerID: "alice", Amount: 1, Valid: true}))
	if domain.KindOf(err) != domain.KindNotFound {
		t.Fatalf("err = %v, want not found", err)
	}
}
