package httpapi_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/cupcake-factory/cupcake-factory/events"
)

// TestOrderIDsTheServerMakesFollowTheOrderTheyWerePlacedIn: an order placed
// without an id gets one that sorts after every id made before it (a UUIDv7
// after "o-"), so the orders in the works sit together at the end of the
// embedded store's B-trees; each is a valid, distinct order id.
func TestOrderIDsTheServerMakesFollowTheOrderTheyWerePlacedIn(t *testing.T) {
	k := startKitchen(t, "manual")
	var ids []string
	for range 20 {
		ids = append(ids, k.placeOrder(t))
	}
	for _, id := range ids {
		if !strings.HasPrefix(id, "o-") || !events.ValidID(id) {
			t.Errorf("order id %q: want o- and a valid id", id)
		}
	}
	if !slices.IsSorted(ids) {
		t.Errorf("ids out of the order they were made in: %v", ids)
	}
	if len(slices.Compact(slices.Clone(ids))) != len(ids) {
		t.Errorf("ids repeat: %v", ids)
	}
}
