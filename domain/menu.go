package domain

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/cupcake-factory/cupcake-factory/events"
)

// The menu and the limits of an order.
const (
	MaxItems    = 50
	MaxQuantity = 1000
)

// Prices in cents per cupcake, by size.
var Prices = map[string]int64{"S": 150, "M": 200, "L": 250, "XL": 300}

// Flavours on the menu.
var Flavours = []string{"vanilla", "chocolate", "red-velvet", "lemon", "carrot"}

// ValidateOrder checks an order: its ids (events.OrderCreated.ValidateIDs;
// requireID says whether orderId must be present) and its items, every
// problem named.
func ValidateOrder(o events.OrderCreated, requireID bool) error {
	var p []string
	if err := o.ValidateIDs(requireID); err != nil {
		var v *events.ValidationError
		if !errors.As(err, &v) {
			return err
		}
		p = append(p, v.Problems...)
	}
	p = append(p, itemProblems(o.Items)...)
	if len(p) > 0 {
		return &events.ValidationError{Problems: p}
	}
	return nil
}

// ValidateItems checks the items of an order against the menu and the
// limits.
func ValidateItems(items []events.Item) error {
	if p := itemProblems(items); len(p) > 0 {
		return &events.ValidationError{Problems: p}
	}
	return nil
}

func itemProblems(items []events.Item) []string {
	var p []string
	if len(items) < 1 || len(items) > MaxItems {
		p = append(p, fmt.Sprintf("items must hold 1..%d items, got %d", MaxItems, len(items)))
		if len(items) > MaxItems {
			return p
		}
	}
	for i, it := range items {
		if !slices.Contains(Flavours, it.Flavour) {
			p = append(p, fmt.Sprintf("items[%d].flavour must be one of %s, got %q", i, strings.Join(Flavours, ", "), it.Flavour))
		}
		if _, ok := Prices[it.Size]; !ok {
			p = append(p, fmt.Sprintf("items[%d].size must be one of S, M, L, XL, got %q", i, it.Size))
		}
		if it.Quantity < 1 || it.Quantity > MaxQuantity {
			p = append(p, fmt.Sprintf("items[%d].quantity must be 1..%d, got %d", i, MaxQuantity, it.Quantity))
		}
	}
	return p
}

// Amount is the price of the items in cents. It assumes valid items.
func Amount(items []events.Item) int64 {
	var total int64
	for _, it := range items {
		total += int64(it.Quantity) * Prices[it.Size]
	}
	return total
}
