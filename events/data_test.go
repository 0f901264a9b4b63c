package events

import (
	"strings"
	"testing"
)

func TestOrderCreatedValidateNamesEachProblem(t *testing.T) {
	item := Item{Flavour: "vanilla", Size: "M", Quantity: 6}
	many := make([]Item, MaxItems+1)
	for i := range many {
		many[i] = item
	}
	tests := []struct {
		name      string
		order     OrderCreated
		requireID bool
		want      []string // substrings of the error; none means valid
	}{
		{"valid order", OrderCreated{"o-1", "alice", []Item{item}}, true, nil},
		{"order id optional on REST", OrderCreated{"", "alice", []Item{item}}, false, nil},
		{"order id required in an event", OrderCreated{"", "alice", []Item{item}}, true, []string{"orderId is required"}},
		{"order id with a dot", OrderCreated{"o.1", "alice", []Item{item}}, true, []string{"orderId must be letters"}},
		{"order id with an operator", OrderCreated{"$gt", "alice", []Item{item}}, true, []string{"orderId must be letters"}},
		{"order id too long", OrderCreated{strings.Repeat("a", 65), "alice", []Item{item}}, true, []string{"orderId must be at most 64"}},
		{"customer missing", OrderCreated{"o-1", "", []Item{item}}, true, []string{"customerId is required"}},
		{"no items", OrderCreated{"o-1", "alice", nil}, true, []string{"items must hold 1..50 items, got 0"}},
		{"too many items", OrderCreated{"o-1", "alice", many}, true, []string{"items must hold 1..50 items, got 51"}},
		{"unknown flavour", OrderCreated{"o-1", "alice", []Item{{"mint", "M", 1}}}, true, []string{`items[0].flavour must be one of`}},
		{"unknown size", OrderCreated{"o-1", "alice", []Item{item, {"lemon", "XXL", 1}}}, true, []string{`items[1].size must be one of S, M, L, XL, got "XXL"`}},
		{"zero quantity", OrderCreated{"o-1", "alice", []Item{item, item, {"lemon", "S", 0}}}, true, []string{"items[2].quantity must be 1..1000, got 0"}},
		{"quantity too large", OrderCreated{"o-1", "alice", []Item{{"lemon", "S", 1001}}}, true, []string{"items[0].quantity must be 1..1000, got 1001"}},
		{"every problem at once", OrderCreated{"", "", []Item{{"x", "y", -1}}}, true, []string{"orderId", "customerId", "flavour", "size", "quantity"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.order.Validate(tt.requireID)
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("want valid, got %v", err)
				}
				return
			}
			if err == nil || !IsValidation(err) {
				t.Fatalf("want a validation error, got %v", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestAmountIsQuantityTimesPriceInCents(t *testing.T) {
	tests := []struct {
		items []Item
		want  int64
	}{
		{[]Item{{"vanilla", "S", 1}}, 150},
		{[]Item{{"vanilla", "M", 6}}, 1200},
		{[]Item{{"lemon", "L", 2}, {"carrot", "XL", 3}}, 500 + 900},
		{[]Item{{"lemon", "XL", 1000}}, 300000},
	}
	for _, tt := range tests {
		if got := Amount(tt.items); got != tt.want {
			t.Errorf("Amount(%v) = %d, want %d", tt.items, got, tt.want)
		}
	}
}

func TestCreditValidatedValidateRequiresAReasonOnlyWhenNotValid(t *testing.T) {
	tests := []struct {
		name string
		in   CreditValidated
		ok   bool
	}{
		{"approved", CreditValidated{"o-1", "alice", 100, true, ""}, true},
		{"refused with reason", CreditValidated{"o-1", "alice", 100, false, ReasonInsufficientCredit}, true},
		{"refused without reason", CreditValidated{"o-1", "alice", 100, false, ""}, false},
		{"refused with unknown reason", CreditValidated{"o-1", "alice", 100, false, "nope"}, false},
		{"approved with reason", CreditValidated{"o-1", "alice", 100, true, ReasonUnknownCustomer}, false},
		{"negative amount", CreditValidated{"o-1", "alice", -1, true, ""}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.in.Validate(); (err == nil) != tt.ok {
				t.Fatalf("Validate() = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

func TestKitchenStepAndFailureReportValidate(t *testing.T) {
	tests := []struct {
		name string
		err  error
		ok   bool
	}{
		{"step ok", KitchenStep{"o-1", "maria"}.Validate(), true},
		{"step without by", KitchenStep{"o-1", " "}.Validate(), false},
		{"step with control characters", KitchenStep{"o-1", "a\nb"}.Validate(), false},
		{"step without order", KitchenStep{"", "maria"}.Validate(), false},
		{"failure ok", FailureReport{"o-1", "maria", "oven broke"}.Validate(), true},
		{"failure without reason", FailureReport{"o-1", "maria", ""}.Validate(), false},
		{"failure reason too long", FailureReport{"o-1", "maria", strings.Repeat("x", MaxReason+1)}.Validate(), false},
	}
	for _, tt := range tests {
		if (tt.err == nil) != tt.ok {
			t.Errorf("%s: got %v, want ok=%v", tt.name, tt.err, tt.ok)
		}
	}
}
