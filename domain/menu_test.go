package domain

import (
	"strings"
	"testing"

	"github.com/cupcake-factory/cupcake-factory/events"
)

func it(flavour, size string, quantity int) events.Item {
	return events.Item{Flavour: flavour, Size: size, Quantity: quantity}
}

func order(id, customer string, items []events.Item) events.OrderCreated {
	return events.OrderCreated{OrderID: id, CustomerID: customer, Items: items}
}

func TestValidateOrderNamesEachProblem(t *testing.T) {
	item := it("vanilla", "M", 6)
	many := make([]events.Item, MaxItems+1)
	for i := range many {
		many[i] = item
	}
	tests := []struct {
		name      string
		order     events.OrderCreated
		requireID bool
		want      []string // substrings of the error; none means valid
	}{
		{"valid order", order("o-1", "alice", []events.Item{item}), true, nil},
		{"order id optional on REST", order("", "alice", []events.Item{item}), false, nil},
		{"order id required in an event", order("", "alice", []events.Item{item}), true, []string{"orderId is required"}},
		{"order id with a dot", order("o.1", "alice", []events.Item{item}), true, []string{"orderId must be letters"}},
		{"order id with an operator", order("$gt", "alice", []events.Item{item}), true, []string{"orderId must be letters"}},
		{"order id too long", order(strings.Repeat("a", 65), "alice", []events.Item{item}), true, []string{"orderId must be at most 64"}},
		{"customer missing", order("o-1", "", []events.Item{item}), true, []string{"customerId is required"}},
		{"no items", order("o-1", "alice", nil), true, []string{"items must hold 1..50 items, got 0"}},
		{"too many items", order("o-1", "alice", many), true, []string{"items must hold 1..50 items, got 51"}},
		{"unknown flavour", order("o-1", "alice", []events.Item{it("mint", "M", 1)}), true, []string{`items[0].flavour must be one of`}},
		{"unknown size", order("o-1", "alice", []events.Item{item, it("lemon", "XXL", 1)}), true, []string{`items[1].size must be one of S, M, L, XL, got "XXL"`}},
		{"zero quantity", order("o-1", "alice", []events.Item{item, item, it("lemon", "S", 0)}), true, []string{"items[2].quantity must be 1..1000, got 0"}},
		{"quantity too large", order("o-1", "alice", []events.Item{it("lemon", "S", 1001)}), true, []string{"items[0].quantity must be 1..1000, got 1001"}},
		{"every problem at once", order("", "", []events.Item{it("x", "y", -1)}), true, []string{"orderId", "customerId", "flavour", "size", "quantity"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateOrder(tt.order, tt.requireID)
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("want valid, got %v", err)
				}
				return
			}
			if err == nil || !events.IsValidation(err) {
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
		items []events.Item
		want  int64
	}{
		{[]events.Item{it("vanilla", "S", 1)}, 150},
		{[]events.Item{it("vanilla", "M", 6)}, 1200},
		{[]events.Item{it("lemon", "L", 2), it("carrot", "XL", 3)}, 500 + 900},
		{[]events.Item{it("lemon", "XL", 1000)}, 300000},
	}
	for _, tt := range tests {
		if got := Amount(tt.items); got != tt.want {
			t.Errorf("Amount(%v) = %d, want %d", tt.items, got, tt.want)
		}
	}
}
