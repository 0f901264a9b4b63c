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

// TestAKnownPathWithAnotherMethodIs405WithTheMethodsItTakes: the JSON 404
// for unknown paths does not hide a 405; where a literal route and a
// wildcard one both match a path, Allow names the literal route's methods.
func TestAKnownPathWithAnotherMethodIs405WithTheMethodsItTakes(t *testing.T) {
	k := startKitchen(t, "manual")
	for _, tt := range []struct {
		method, path string
		status       int
		allow        string
	}{
		{"TRACE", "/api/v1/config", 405, "GET, HEAD"},
		{"DELETE", "/api/v1/order/cancel", 405, "POST"},
		{"OPTIONS", "/api/v1/order/o-1", 405, "GET, HEAD"},
		{"PUT", "/api/v1/customers/alice/credit", 0, ""}, // taken: a body problem, not a 405
		{"GET", "/api/v1/nothing", 404, ""},
	} {
		res, body := k.do(t, tt.method, tt.path, "", nil, "")
		if tt.status == 0 {
			if res.StatusCode == 405 || res.StatusCode == 404 {
				t.Errorf("%s %s = %d %v, want it routed", tt.method, tt.path, res.StatusCode, body)
			}
			continue
		}
		if res.StatusCode != tt.status || res.Header.Get("Allow") != tt.allow || body["error"] == nil {
			t.Errorf("%s %s = %d, Allow %q, %v; want %d, Allow %q and an error", tt.method, tt.path, res.StatusCode, res.Header.Get("Allow"), body, tt.status, tt.allow)
		}
	}
}

// TestARESTBodyMayWriteAnIntegerAsAnIntegralNumber: 20000.0 and 2e4 are
// the integer JSON Schema says they are; 20000.5 is refused.
func TestARESTBodyMayWriteAnIntegerAsAnIntegralNumber(t *testing.T) {
	k := startKitchen(t, "manual")
	for _, tt := range []struct {
		limit  string
		status int
	}{{"20000.0", 200}, {"2e4", 200}, {"20000.5", 400}, {"1e400", 400}, {"null", 400}, {"20000.0} {\"x\":1", 400}} {
		res, body := k.do(t, "PUT", "/api/v1/customers/alice/credit", "", map[string]string{"Content-Type": "application/json"}, `{"creditLimit":`+tt.limit+`}`)
		if res.StatusCode != tt.status {
			t.Errorf("creditLimit %s = %d %v, want %d", tt.limit, res.StatusCode, body, tt.status)
		}
	}
	res, body := k.do(t, "POST", "/api/v1/customers", "", map[string]string{"Content-Type": "application/json"}, `{"customerId":"bob","name":"Bob"}`)
	if res.StatusCode != 400 || !strings.Contains(body["error"].(string), "creditLimit is required") {
		t.Errorf("a customer without a credit limit = %d %v, want 400", res.StatusCode, body)
	}
}
