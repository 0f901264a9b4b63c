package creditvalidated

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/cupcake-factory/cupcake-factory/domain"
	"github.com/cupcake-factory/cupcake-factory/events"
	"github.com/cupcake-factory/cupcake-factory/functions/internal/fntest"
)

func verdict(valid bool, reason string) events.CreditValidated {
	return events.CreditValidated{OrderID: "o-1", CustomerID: "alice", Amount: 1200, Valid: valid, Reason: reason}
}

func TestHandleApprovesOrCancelsAndEmitsWhatFollows(t *testing.T) {
	tests := []struct {
		name        string
		refused     string // "" = the order holds its credit (1200 cents)
		in          events.CreditValidated
		auto        bool
		wantStatus  string
		wantEmitted []string
	}{
		{"approved, auto kitchen", "", verdict(true, ""), true, events.StatusApproved,
			[]string{events.TypeStatusChanged, events.TypeMixed}},
		{"approved, manual kitchen", "", verdict(true, ""), false, events.StatusApproved,
			[]string{events.TypeStatusChanged}},
		{"insufficient credit, nothing held", events.ReasonInsufficientCredit, verdict(false, events.ReasonInsufficientCredit), true, events.StatusCancelled,
			[]string{events.TypeStatusChanged, events.TypeCancelled}},
		{"unknown customer, nothing held", events.ReasonUnknownCustomer, verdict(false, events.ReasonUnknownCustomer), false, events.StatusCancelled,
			[]string{events.TypeStatusChanged, events.TypeCancelled}},
		{"cancelled while holding credit: released", "", verdict(false, events.ReasonInsufficientCredit), true, events.StatusCancelled,
			[]string{events.TypeStatusChanged, "release", events.TypeCancelled}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := fntest.Store(t)
			if tt.refused == "" {
				fntest.OrderIn(t, s, "o-1", events.StatusCreated)
			} else {
				fntest.Refused(t, s, "o-1", tt.refused)
			}
			credit := fntest.Available(t, s, "alice")
			if _, err := New(s, tt.auto).Handle(context.Background(), fntest.Event(t, events.TypeCreditValidated, "o-1", tt.in)); err != nil {
				t.Fatal(err)
			}
			o := fntest.Order(t, s, "o-1")
			if o.Status != tt.wantStatus || o.Reason != tt.in.Reason || !slices.Equal(fntest.Statuses(o), []string{events.StatusCreated, tt.wantStatus}) {
				t.Errorf("order %s (%q), history %v; want %s (%q)", o.Status, o.Reason, fntest.Statuses(o), tt.wantStatus, tt.in.Reason)
			}
			if got := o.History[len(o.History)-1].By; got != Source {
				t.Errorf("step by %q, want %q", got, Source)
			}
			emitted := fntest.Emitted(t, s, "o-1")
			if got := fntest.Types(emitted); !slices.Equal(got, tt.wantEmitted) {
				t.Fatalf("emitted %v, want %v", got, tt.wantEmitted)
			}
			if u := fntest.Data[events.OrderUpdate](t, emitted[0]); u.Status != tt.wantStatus || u.Previous != events.StatusCreated {
				t.Errorf("status-changed %+v, want %s from created", u, tt.wantStatus)
			}
			last := emitted[len(emitted)-1]
			switch last.Type() {
			case events.TypeMixed:
				first := events.Kitchen()[0]
				step := fntest.Data[events.KitchenStep](t, last)
				if step.OrderID != "o-1" || step.By != first.AutoBy() || step.By != "auto-mixer" ||
					last.Source() != Source || last.Extensions()[events.ExtPartitionKey] != "o-1" {
					t.Errorf("first kitchen step %+v from %s, partitionkey %v; want o-1 by auto-mixer",
						step, last.Source(), last.Extensions()[events.ExtPartitionKey])
				}
			case events.TypeCancelled:
				if u := fntest.Data[events.OrderUpdate](t, last); u.OrderID != "o-1" || u.Status != events.StatusCancelled || u.Reason != tt.in.Reason {
					t.Errorf("cancelled %+v", u)
				}
			}
			// Credit goes back only when the relay delivers the release.
			if o.Reserved != 0 && tt.wantStatus == events.StatusCancelled {
				t.Errorf("a cancelled order still holds %d", o.Reserved)
			}
			if got := fntest.Available(t, s, "alice"); got != credit {
				t.Errorf("alice has %d available, want %d until the release is relayed", got, credit)
			}
		})
	}
}

// The money rule: only an order holding a reservation of exactly its
// amount, for the customer the verdict names, is approved. Any other valid
// verdict, whoever sent it, is refused and changes nothing.
func TestAnApprovalThatBreaksTheMoneyRuleIsRefusedAndChangesNothing(t *testing.T) {
	tests := []struct {
		name    string
		refused string // the order was refused credit for this
		in      events.CreditValidated
	}{
		{"order refused credit", events.ReasonInsufficientCredit, verdict(true, "")},
		{"order of an unknown customer", events.ReasonUnknownCustomer, verdict(true, "")},
		{"another amount", "", events.CreditValidated{OrderID: "o-1", CustomerID: "alice", Amount: 1, Valid: true}},
		{"a bigger amount", "", events.CreditValidated{OrderID: "o-1", CustomerID: "alice", Amount: 120000, Valid: true}},
		{"another customer", "", events.CreditValidated{OrderID: "o-1", CustomerID: "mallory", Amount: 1200, Valid: true}},
	}
	for _, tt := range tests {
		for _, auto := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/auto=%v", tt.name, auto), func(t *testing.T) {
				s := fntest.Store(t)
				var before domain.Order
				if tt.refused == "" {
					before = fntest.OrderIn(t, s, "o-1", events.StatusCreated)
				} else {
					before = fntest.Refused(t, s, "o-1", tt.refused)
				}
				credit := fntest.Available(t, s, "alice")
				_, err := New(s, auto).Handle(context.Background(), fntest.Event(t, events.TypeCreditValidated, "o-1", tt.in))
				if domain.KindOf(err) != domain.KindConflict {
					t.Fatalf("err = %v, want conflict", err)
				}
				after := fntest.Order(t, s, "o-1")
				if after.Status != events.StatusCreated || len(after.History) != len(before.History) || after.Reserved != before.Reserved {
					t.Errorf("order changed: %s, %d steps, reserved %d", after.Status, len(after.History), after.Reserved)
				}
				if len(after.Outbox) != 0 {
					t.Errorf("emitted %v", fntest.Types(fntest.Emitted(t, s, "o-1")))
				}
				if got := fntest.Available(t, s, "alice"); got != credit {
					t.Errorf("alice has %d available, want %d", got, credit)
				}
			})
		}
	}
}

func TestTheSameVerdictTwiceAppliesOnce(t *testing.T) {
	tests := []struct {
		name string
		in   events.CreditValidated
	}{
		{"approval", verdict(true, "")},
		{"cancellation", verdict(false, events.ReasonInsufficientCredit)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := fntest.Store(t)
			fntest.OrderIn(t, s, "o-1", events.StatusCreated)
			f := New(s, true)
			e := fntest.Event(t, events.TypeCreditValidated, "o-1", tt.in)
			if _, err := f.Handle(context.Background(), e); err != nil {
				t.Fatal(err)
			}
			first := fntest.Order(t, s, "o-1")
			if _, err := f.Handle(context.Background(), e); err != nil {
				t.Fatalf("redelivery: %v, want it accepted (delivered twice = applied once)", err)
			}
			o := fntest.Order(t, s, "o-1")
			if len(o.History) != 2 || len(o.Outbox) != len(first.Outbox) {
				t.Errorf("history %v and %d messages; want created and one decision, the first's %d messages",
					fntest.Statuses(o), len(o.Outbox), len(first.Outbox))
			}
		})
	}
}

func TestAVerdictThatDoesNotFitTheStateIsRefusedAndChangesNothing(t *testing.T) {
	tests := []struct {
		name string
		from string
		in   events.CreditValidated
	}{
		{"cancel a mixed order", events.StatusMixed, verdict(false, events.ReasonInsufficientCredit)},
		{"approve a mixed order", events.StatusMixed, verdict(true, "")},
		{"approve an approved order again (another event)", events.StatusApproved, verdict(true, "")},
		{"cancel a shipped order", events.StatusShipped, verdict(false, events.ReasonUnknownCustomer)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := fntest.Store(t)
			before := fntest.OrderIn(t, s, "o-1", tt.from)
			_, err := New(s, true).Handle(context.Background(), fntest.Event(t, events.TypeCreditValidated, "o-1", tt.in))
			if domain.KindOf(err) != domain.KindConflict {
				t.Fatalf("err = %v, want conflict", err)
			}
			after := fntest.Order(t, s, "o-1")
			if after.Status != before.Status || len(after.History) != len(before.History) || len(after.Outbox) != 0 {
				t.Errorf("order changed: %s → %s, %d messages", before.Status, after.Status, len(after.Outbox))
			}
		})
	}
}

func TestAVerdictForAnUnknownOrderIsNotFound(t *testing.T) {
	s := fntest.Store(t)
	_, err := New(s, true).Handle(context.Background(), fntest.Event(t, events.TypeCreditValidated, "o-9",
		events.CreditValidated{OrderID: "o-9", CustomerID: "alice", Amount: 1, Valid: true}))
	if domain.KindOf(err) != domain.KindNotFound {
		t.Fatalf("err = %v, want not found", err)
	}
}

func TestAMalformedVerdictIsInvalid(t *testing.T) {
	tests := []struct {
		name    string
		subject string
		data    any
	}{
		{"no order id", "o-1", events.CreditValidated{CustomerID: "alice", Amount: 1200, Valid: true}},
		{"subject names another order", "o-2", verdict(true, "")},
		{"unknown field", "o-1", map[string]any{"orderId": "o-1", "customerId": "alice", "amount": 1200, "valid": true, "approvedBy": "me"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := fntest.Store(t)
			fntest.OrderIn(t, s, "o-1", events.StatusCreated)
			_, err := New(s, true).Handle(context.Background(), fntest.Event(t, events.TypeCreditValidated, tt.subject, tt.data))
			if domain.KindOf(err) != domain.KindInvalid {
				t.Fatalf("err = %v, want invalid", err)
			}
			if o := fntest.Order(t, s, "o-1"); o.Status != events.StatusCreated || len(o.Outbox) != 0 {
				t.Errorf("order %s with %d messages, want unchanged", o.Status, len(o.Outbox))
			}
		})
	}
}
