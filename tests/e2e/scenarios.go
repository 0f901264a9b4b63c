package e2e

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cupcake-factory/cupcake-factory/tests/internal/runner"
)

// Start starts a cupcake-factory for a scenario with extra environment.
type Start func(t *testing.T, env map[string]string) *runner.Process

// RunScenarios runs every user-level scenario against processes made by start.
func RunScenarios(t *testing.T, start Start) {
	t.Run("AutoKitchen", func(t *testing.T) { autoKitchen(t, start(t, nil)) })
	t.Run("ManualKitchen", func(t *testing.T) { manualKitchen(t, start(t, map[string]string{"KITCHEN_MODE": "manual"})) })
	t.Run("Duplicates", func(t *testing.T) { duplicates(t, start(t, map[string]string{"KITCHEN_MODE": "manual"})) })
	t.Run("BadInput", func(t *testing.T) { badInput(t, start(t, nil)) })
	t.Run("Customers", func(t *testing.T) { customers(t, start(t, nil)) })
	t.Run("Paging", func(t *testing.T) { paging(t, start(t, map[string]string{"KITCHEN_MODE": "manual"})) })
	t.Run("Cancel", func(t *testing.T) { cancel(t, start(t, map[string]string{"KITCHEN_MODE": "manual"})) })
}

// cancel: a customer cancels an order while the kitchen has not decorated
// it (REST or CloudEvent): it becomes cancelled, its credit comes back
// once, and the kitchen can no longer report on it; later, or twice, the
// cancel is refused with 422 and nothing changes.
func cancel(t *testing.T, p *runner.Process) {
	start := GetCustomer(t, p, "alice")
	place := func(t *testing.T, id string) {
		t.Helper()
		if r := PostBinary(t, p, "ev-"+id, "com.cupcakes.order.created", id, OrderData(id, "alice", "vanilla", "M", 6)); r.Status >= 300 {
			t.Fatalf("POST / = %d %s", r.Status, r.Body)
		}
		if o := GetOrder(t, p, id); o.Status != "approved" {
			t.Fatalf("order %s is %s, want approved", id, o.Status)
		}
	}
	cancelREST := func(t *testing.T, id, reason string) runner.Response {
		t.Helper()
		return p.PostJSON(t, "/api/v1/order/cancel", fmt.Sprintf(`{"orderId":%q,"by":"alice","reason":%q}`, id, reason))
	}
	t.Run("an approved order is cancelled over REST and its credit comes back once", func(t *testing.T) {
		place(t, "o-c1")
		r := cancelREST(t, "o-c1", "changed my mind")
		var o Order
		if r.Status != http.StatusOK {
			t.Fatalf("cancel = %d %s, want 200 with the order", r.Status, r.Body)
		}
		r.JSON(t, &o)
		if o.Status != "cancelled" || o.Reason != "changed my mind" {
			t.Errorf("answered %s (%s), want cancelled (changed my mind)", o.Status, o.Reason)
		}
		if c := GetCustomer(t, p, "alice"); c.AvailableCredit != start.AvailableCredit {
			t.Errorf("available %d, want %d: the 1200 back", c.AvailableCredit, start.AvailableCredit)
		}
		if r := cancelREST(t, "o-c1", "again"); r.Status != http.StatusUnprocessableEntity || !strings.Contains(string(r.Body), "no longer be cancelled") {
			t.Errorf("the same cancel again = %d %s, want 422 saying why", r.Status, r.Body)
		}
		if r := p.PostJSON(t, "/api/v1/order/mix", `{"orderId":"o-c1","by":"maria"}`); r.Status != http.StatusUnprocessableEntity {
			t.Errorf("mixing a cancelled order = %d %s, want 422", r.Status, r.Body)
		}
		if c := GetCustomer(t, p, "alice"); c.AvailableCredit != start.AvailableCredit {
			t.Errorf("available %d after the refusals, want %d", c.AvailableCredit, start.AvailableCredit)
		}
		if got := GetOrder(t, p, "o-c1").Statuses(); got != "created,approved,cancelled" {
			t.Errorf("history %s", got)
		}
	})
	t.Run("a baked order is cancelled by a CloudEvent, delivered twice", func(t *testing.T) {
		place(t, "o-c2")
		for _, step := range []string{"mix", "bake"} {
			if r := p.PostJSON(t, "/api/v1/order/"+step, `{"orderId":"o-c2","by":"maria"}`); r.Status != http.StatusAccepted {
				t.Fatalf("%s = %d %s", step, r.Status, r.Body)
			}
		}
		for range 2 {
			r := PostStructured(t, p, "ev-cancel-c2", "com.cupcakes.order.cancel-requested", "o-c2", `{"orderId":"o-c2","by":"alice"}`)
			if r.Status >= 300 {
				t.Fatalf("cancel-requested = %d %s", r.Status, r.Body)
			}
		}
		o := GetOrder(t, p, "o-c2")
		if o.Status != "cancelled" || o.Reason != "customer-cancelled" || o.Statuses() != "created,approved,mixed,baked,cancelled" {
			t.Errorf("order %s (%s), history %s; want cancelled once (customer-cancelled)", o.Status, o.Reason, o.Statuses())
		}
		if c := GetCustomer(t, p, "alice"); c.AvailableCredit != start.AvailableCredit {
			t.Errorf("available %d, want %d: the 1200 back once", c.AvailableCredit, start.AvailableCredit)
		}
	})
	t.Run("a decorated order cannot be cancelled", func(t *testing.T) {
		place(t, "o-c3")
		for _, step := range []string{"mix", "bake", "decorate"} {
			if r := p.PostJSON(t, "/api/v1/order/"+step, `{"orderId":"o-c3","by":"maria"}`); r.Status != http.StatusAccepted {
				t.Fatalf("%s = %d %s", step, r.Status, r.Body)
			}
		}
		if r := cancelREST(t, "o-c3", ""); r.Status != http.StatusUnprocessableEntity || !strings.Contains(string(r.Body), "decorated") {
			t.Errorf("cancel a decorated order = %d %s, want 422 saying it is decorated", r.Status, r.Body)
		}
		if r := PostBinary(t, p, "ev-cancel-c3", "com.cupcakes.order.cancel-requested", "o-c3", `{"orderId":"o-c3","by":"alice"}`); r.Status != http.StatusUnprocessableEntity {
			t.Errorf("cancel-requested for a decorated order = %d %s, want 422", r.Status, r.Body)
		}
		if o := GetOrder(t, p, "o-c3"); o.Status != "decorated" {
			t.Errorf("order %s, want decorated, unchanged", o.Status)
		}
		if c := GetCustomer(t, p, "alice"); c.AvailableCredit != start.AvailableCredit-1200 {
			t.Errorf("available %d, want %d: o-c3 still holds 1200", c.AvailableCredit, start.AvailableCredit-1200)
		}
	})
	t.Run("a cancel of an unknown order is 404, a bad one 400", func(t *testing.T) {
		if r := cancelREST(t, "o-none", ""); r.Status != http.StatusNotFound {
			t.Errorf("unknown order = %d %s, want 404", r.Status, r.Body)
		}
		if r := p.PostJSON(t, "/api/v1/order/cancel", `{"orderId":"o-c1"}`); r.Status != http.StatusBadRequest {
			t.Errorf("no by = %d %s, want 400", r.Status, r.Body)
		}
	})
}

// paging follows next from page to page: every order once, oldest first,
// and the last page has no next; a station's queue pages the same way.
func paging(t *testing.T, p *runner.Process) {
	var want []string
	for i := range 7 {
		id := fmt.Sprintf("o-p%d", i)
		if r := PostBinary(t, p, "ev-"+id, "com.cupcakes.order.created", id, OrderData(id, "alice", "vanilla", "S", 1)); r.Status >= 300 {
			t.Fatalf("POST / = %d %s", r.Status, r.Body)
		}
		want = append(want, id)
	}
	type page struct {
		Orders []Order `json:"orders"`
		Count  int     `json:"count"`
		Next   string  `json:"next"`
	}
	for _, path := range []string{"/api/v1/orders?limit=3", "/api/v1/orders?status=approved&limit=3"} {
		var got []string
		var counts []int
		for next := path; next != ""; {
			var pg page
			p.Get(t, next).JSON(t, &pg)
			counts = append(counts, pg.Count)
			for _, o := range pg.Orders {
				got = append(got, o.OrderID)
			}
			next = pg.Next
		}
		if !slices.Equal(got, want) || !slices.Equal(counts, []int{3, 3, 1}) {
			t.Errorf("%s: pages of %v: %v; want %v in pages of 3, 3, 1", path, counts, got, want)
		}
	}
}

func autoKitchen(t *testing.T, p *runner.Process) {
	tests := []struct {
		name       string
		post       func(testing.TB, *runner.Process, string, string, string, string) runner.Response
		orderID    string
		data       string
		wantReply  string
		wantStatus string
		wantReason string
	}{
		{"binary mode ships", PostBinary, "o-bin", OrderData("o-bin", "alice", "vanilla", "M", 6), "com.cupcakes.order.shipped", "shipped", ""},
		{"structured mode ships", PostStructured, "o-struct", OrderData("o-struct", "alice", "chocolate", "L", 4), "com.cupcakes.order.shipped", "shipped", ""},
		{"over the limit is cancelled", PostBinary, "o-big", OrderData("o-big", "alice", "lemon", "XL", 1000), "com.cupcakes.order.cancelled", "cancelled", "insufficient-credit"},
		{"unknown customer is cancelled", PostStructured, "o-who", OrderData("o-who", "nobody", "carrot", "S", 1), "com.cupcakes.order.cancelled", "cancelled", "unknown-customer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.post(t, p, "ev-"+tt.orderID, "com.cupcakes.order.created", tt.orderID, tt.data)
			if r.Status != http.StatusOK || r.Header.Get("ce-type") != tt.wantReply {
				t.Fatalf("POST / = %d ce-type %q %s, want 200 %s", r.Status, r.Header.Get("ce-type"), r.Body, tt.wantReply)
			}
			if r.Header.Get("ce-subject") != tt.orderID {
				t.Errorf("reply subject %q", r.Header.Get("ce-subject"))
			}
			o := GetOrder(t, p, tt.orderID)
			if o.Status != tt.wantStatus || o.Reason != tt.wantReason {
				t.Errorf("order %s (%q), want %s (%q); history %s", o.Status, o.Reason, tt.wantStatus, tt.wantReason, o.Statuses())
			}
		})
	}
	t.Run("REST order ships", func(t *testing.T) {
		r := p.PostJSON(t, "/api/v1/order", `{"customerId":"alice","items":[{"flavour":"red-velvet","size":"S","quantity":2}]}`)
		if r.Status != http.StatusAccepted {
			t.Fatalf("POST order = %d %s", r.Status, r.Body)
		}
		var a struct{ OrderID, StatusURL string }
		r.JSON(t, &a)
		if a.OrderID == "" || a.StatusURL != "/api/v1/order/"+a.OrderID {
			t.Fatalf("answer %s", r.Body)
		}
		if o := GetOrder(t, p, a.OrderID); o.Status != "shipped" || o.Amount != 300 {
			t.Errorf("order %+v", o)
		}
	})
	t.Run("credit is what the shipped orders took", func(t *testing.T) {
		if c := GetCustomer(t, p, "alice"); c.AvailableCredit != 50000-1200-1000-300 {
			t.Errorf("alice has %d available", c.AvailableCredit)
		}
	})
	t.Run("metrics count the events each function handled and refused", func(t *testing.T) {
		// Delivered messages linger a moment before their removal.
		var m string
		for deadline := time.Now().Add(3 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			if m = string(p.Get(t, "/metrics").Body); strings.Contains(m, "cupcakes_outbox_pending_orders 0") || time.Now().After(deadline) {
				break
			}
		}
		for _, want := range []string{
			`cupcakes_events_total{outcome="handled",type="com.cupcakes.order.created"} 5`,
			`cupcakes_events_total{outcome="handled",type="com.cupcakes.order.packaged"} 3`,
			`cupcakes_http_requests_total{code="200",route="POST /{$}"} 4`,
			`cupcakes_event_duration_seconds_count{function="packaged",outcome="handled",type="com.cupcakes.order.packaged"} 3`,
			`cupcakes_order_end_to_end_seconds_count 3`,
			`cupcakes_http_request_duration_seconds_count{route="POST /{$}"}`,
			`cupcakes_outbox_pending_orders 0`,
			`go_goroutines `,
			`process_cpu_seconds_total `,
		} {
			if !strings.Contains(m, want) {
				t.Errorf("/metrics lacks %s:\n%s", want, m)
			}
		}
	})
	t.Run("data survives a restart", func(t *testing.T) {
		p.Restart()
		if o := GetOrder(t, p, "o-bin"); o.Status != "shipped" {
			t.Errorf("after restart o-bin is %s", o.Status)
		}
		if c := GetCustomer(t, p, "alice"); c.AvailableCredit != 50000-1200-1000-300 {
			t.Errorf("after restart alice has %d available", c.AvailableCredit)
		}
	})
}

func manualKitchen(t *testing.T, p *runner.Process) {
	step := func(t *testing.T, path, orderID string, want int) {
		t.Helper()
		r := p.PostJSON(t, "/api/v1/order/"+path, fmt.Sprintf(`{"orderId":%q,"by":"maria"}`, orderID))
		if r.Status != want {
			t.Fatalf("%s %s = %d %s, want %d", path, orderID, r.Status, r.Body, want)
		}
	}
	r := PostBinary(t, p, "ev-m1", "com.cupcakes.order.created", "o-m1", OrderData("o-m1", "alice", "vanilla", "M", 6))
	if r.Status != http.StatusAccepted {
		t.Fatalf("POST / = %d %s, want 202 (manual kitchen: nothing to reply)", r.Status, r.Body)
	}
	if o := GetOrder(t, p, "o-m1"); o.Status != "approved" {
		t.Fatalf("order is %s, want approved and waiting for the mixer", o.Status)
	}
	queue := func(status string) string { return string(p.Get(t, "/api/v1/orders?status="+status).Body) }
	if !strings.Contains(queue("approved"), `"o-m1"`) {
		t.Errorf("mixer queue does not list o-m1")
	}
	step(t, "bake", "o-m1", http.StatusUnprocessableEntity) // not mixed yet
	for _, s := range []struct{ path, status string }{{"mix", "mixed"}, {"bake", "baked"}, {"decorate", "decorated"}, {"box", "shipped"}} {
		step(t, s.path, "o-m1", http.StatusAccepted)
		if o := GetOrder(t, p, "o-m1"); o.Status != s.status {
			t.Fatalf("after %s order is %s, want %s", s.path, o.Status, s.status)
		}
	}
	if got := GetOrder(t, p, "o-m1").Statuses(); got != "created,approved,mixed,baked,decorated,packaged,shipped" {
		t.Errorf("history %s", got)
	}

	t.Run("reporterror fails the order and gives the credit back", func(t *testing.T) {
		before := GetCustomer(t, p, "alice")
		PostBinary(t, p, "ev-m2", "com.cupcakes.order.created", "o-m2", OrderData("o-m2", "alice", "lemon", "L", 10))
		if c := GetCustomer(t, p, "alice"); c.AvailableCredit != before.AvailableCredit-2500 {
			t.Fatalf("reserved %d, want 2500", before.AvailableCredit-c.AvailableCredit)
		}
		step(t, "mix", "o-m2", http.StatusAccepted)
		r := p.PostJSON(t, "/api/v1/order/reporterror", `{"orderId":"o-m2","by":"ben","reason":"oven broke"}`)
		if r.Status != http.StatusOK {
			t.Fatalf("reporterror = %d %s", r.Status, r.Body)
		}
		if o := GetOrder(t, p, "o-m2"); o.Status != "failed" || o.Reason != "oven broke" {
			t.Errorf("order %s (%s)", o.Status, o.Reason)
		}
		if c := GetCustomer(t, p, "alice"); c.AvailableCredit != before.AvailableCredit {
			t.Errorf("available %d, want %d back", c.AvailableCredit, before.AvailableCredit)
		}
		r = p.PostJSON(t, "/api/v1/order/reporterror", `{"orderId":"o-m2","by":"ben","reason":"again"}`)
		if r.Status != http.StatusUnprocessableEntity {
			t.Errorf("second reporterror = %d, want 422", r.Status)
		}
		step(t, "bake", "o-m2", http.StatusUnprocessableEntity)
	})
}

func duplicates(t *testing.T, p *runner.Process) {
	created := OrderData("o-d1", "alice", "vanilla", "M", 6)
	before := GetCustomer(t, p, "alice")
	t.Run("the same event twice changes state once", func(t *testing.T) {
		for range 2 {
			if r := PostBinary(t, p, "ev-d1", "com.cupcakes.order.created", "o-d1", created); r.Status >= 300 {
				t.Fatalf("POST / = %d %s", r.Status, r.Body)
			}
		}
		mix := `{"orderId":"o-d1","by":"maria"}`
		for range 2 {
			if r := PostStructured(t, p, "ev-mix-d1", "com.cupcakes.order.mixed", "o-d1", mix); r.Status >= 300 {
				t.Fatalf("mixed = %d %s", r.Status, r.Body)
			}
		}
		if got := GetOrder(t, p, "o-d1").Statuses(); got != "created,approved,mixed" {
			t.Errorf("history %s, want each step once", got)
		}
	})
	t.Run("the same order created twice reserves once", func(t *testing.T) {
		if r := PostBinary(t, p, "ev-d1-again", "com.cupcakes.order.created", "o-d1", created); r.Status >= 300 {
			t.Fatalf("POST / = %d %s", r.Status, r.Body)
		}
		if c := GetCustomer(t, p, "alice"); c.AvailableCredit != before.AvailableCredit-1200 {
			t.Errorf("reserved %d, want 1200 once", before.AvailableCredit-c.AvailableCredit)
		}
	})
	t.Run("an order id reused for other items is refused", func(t *testing.T) {
		r := PostBinary(t, p, "ev-d1-other", "com.cupcakes.order.created", "o-d1", OrderData("o-d1", "alice", "lemon", "S", 1))
		if r.Status != http.StatusUnprocessableEntity {
			t.Errorf("= %d %s, want 422", r.Status, r.Body)
		}
	})
	t.Run("an event's source and id used again for other content is refused", func(t *testing.T) {
		// ev-mix-d1 reported the mixing; the same source and id now claim the baking.
		r := PostStructured(t, p, "ev-mix-d1", "com.cupcakes.order.baked", "o-d1", `{"orderId":"o-d1","by":"maria"}`)
		if r.Status != http.StatusUnprocessableEntity || !strings.Contains(string(r.Body), "already used") {
			t.Errorf("= %d %s, want 422 saying the id was already used", r.Status, r.Body)
		}
		if got := GetOrder(t, p, "o-d1").Statuses(); got != "created,approved,mixed" {
			t.Errorf("history %s", got)
		}
	})
	t.Run("an event that does not fit the state is refused and changes nothing", func(t *testing.T) {
		r := PostBinary(t, p, "ev-pack-d1", "com.cupcakes.order.packaged", "o-d1", `{"orderId":"o-d1","by":"maria"}`)
		if r.Status != http.StatusUnprocessableEntity || !strings.Contains(string(r.Body), "it cannot become packaged") {
			t.Errorf("= %d %s, want 422 saying why", r.Status, r.Body)
		}
		if got := GetOrder(t, p, "o-d1").Statuses(); got != "created,approved,mixed" {
			t.Errorf("history %s", got)
		}
	})
}

func badInput(t *testing.T, p *runner.Process) {
	ce := func(typ string) map[string]string { return BinaryHeaders("bad-1", typ, "") }
	js := map[string]string{"Content-Type": "application/json"}
	order := OrderData("o-bad", "alice", "vanilla", "M", 6)
	tests := []struct {
		name   string
		method string
		path   string
		header map[string]string
		body   string
		want   int
	}{
		{"not a CloudEvent", "POST", "/", js, order, 400},
		{"bad JSON data", "POST", "/", ce("com.cupcakes.order.created"), `{"orderId":`, 400},
		{"unknown event type", "POST", "/", ce("com.example.unknown"), order, 400},
		{"notification type", "POST", "/", ce("com.cupcakes.order.shipped"), `{"orderId":"o-bad","status":"shipped"}`, 400},
		{"missing items", "POST", "/", ce("com.cupcakes.order.created"), `{"orderId":"o-bad","customerId":"alice"}`, 400},
		{"wrong field type", "POST", "/", ce("com.cupcakes.order.created"), `{"orderId":"o-bad","customerId":"alice","items":"many"}`, 400},
		{"quantity out of range", "POST", "/", ce("com.cupcakes.order.created"), OrderData("o-bad", "alice", "vanilla", "M", 1001), 400},
		{"text content type", "POST", "/", map[string]string{"Content-Type": "text/plain", "ce-specversion": "1.0", "ce-id": "1", "ce-source": "x", "ce-type": "com.cupcakes.order.created"}, order, 400},
		{"missing ce-id", "POST", "/", map[string]string{"Content-Type": "application/json", "ce-specversion": "1.0", "ce-source": "x", "ce-type": "com.cupcakes.order.created"}, order, 400},
		{"structured without type", "POST", "/", map[string]string{"Content-Type": "application/cloudevents+json"}, `{"specversion":"1.0","id":"1","source":"x","data":{}}`, 400},
		{"structured garbage", "POST", "/", map[string]string{"Content-Type": "application/cloudevents+json"}, `{{{`, 400},
		{"oversized body", "POST", "/", ce("com.cupcakes.order.created"), `{"orderId":"` + strings.Repeat("a", 2<<20) + `"}`, 413},
		{"REST order bad JSON", "POST", "/api/v1/order", js, `{`, 400},
		{"REST order unknown field", "POST", "/api/v1/order", js, `{"customerId":"alice","items":[],"discount":5}`, 400},
		{"REST order wrong content type", "POST", "/api/v1/order", map[string]string{"Content-Type": "text/plain"}, order, 415},
		{"REST order no items", "POST", "/api/v1/order", js, `{"customerId":"alice","items":[]}`, 400},
		{"REST order oversized", "POST", "/api/v1/order", js, `{"customerId":"` + strings.Repeat("a", 2<<20) + `"}`, 413},
		{"station step unknown order", "POST", "/api/v1/order/mix", js, `{"orderId":"o-none","by":"x"}`, 404},
		{"event for an unknown order", "POST", "/", ce("com.cupcakes.order.baked"), `{"orderId":"o-none","by":"x"}`, 422},
		{"station step without by", "POST", "/api/v1/order/bake", js, `{"orderId":"o-bad"}`, 400},
		{"reporterror without reason", "POST", "/api/v1/order/reporterror", js, `{"orderId":"o-bad","by":"x"}`, 400},
		{"order id with an operator", "GET", "/api/v1/order/$where", nil, "", 400},
		{"unknown order", "GET", "/api/v1/order/o-none", nil, "", 404},
		{"unknown status", "GET", "/api/v1/orders?status=eaten", nil, "", 400},
		{"list limit 0", "GET", "/api/v1/orders?limit=0", nil, "", 400},
		{"list limit over 1000", "GET", "/api/v1/orders?limit=1001", nil, "", 400},
		{"list cursor not given out", "GET", "/api/v1/orders?after=yesterday", nil, "", 400},
		{"customer negative credit", "POST", "/api/v1/customers", js, `{"customerId":"neg","name":"N","creditLimit":-1}`, 400},
		{"customer bad id", "POST", "/api/v1/customers", js, `{"customerId":"a/b","name":"N","creditLimit":1}`, 400},
		{"credit without limit", "PUT", "/api/v1/customers/alice/credit", js, `{}`, 400},
		{"credit unknown customer", "PUT", "/api/v1/customers/nobody/credit", js, `{"creditLimit":5}`, 404},
		{"unknown path", "GET", "/api/v2/things", nil, "", 404},
		{"unknown station", "GET", "/api/v1/notifications?station=dishwasher", nil, "", 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := p.Do(t, tt.method, tt.path, tt.header, tt.body)
			if r.Status != tt.want {
				t.Errorf("= %d %s, want %d", r.Status, r.Body, tt.want)
			}
			var e struct {
				Error string `json:"error"`
			}
			r.JSON(t, &e)
			if e.Error == "" {
				t.Errorf("no error message: %s", r.Body)
			}
		})
	}
	if n := OrderCount(t, p); n != 0 {
		t.Errorf("bad input wrote %d orders", n)
	}
	if c := GetCustomer(t, p, "alice"); c.AvailableCredit != 50000 || c.CreditLimit != 50000 {
		t.Errorf("bad input changed alice: %+v", c)
	}
	if strings.Contains(p.Log(), "panic") {
		t.Errorf("the server panicked:\n%s", p.Log())
	}
}

func customers(t *testing.T, p *runner.Process) {
	CreateCustomer(t, p, "carol", 1000)
	if r := p.PostJSON(t, "/api/v1/customers", `{"customerId":"carol","name":"C","creditLimit":5}`); r.Status != http.StatusConflict {
		t.Errorf("duplicate customer = %d, want 409", r.Status)
	}
	PostBinary(t, p, "ev-c1", "com.cupcakes.order.created", "o-c1", OrderData("o-c1", "carol", "vanilla", "L", 4)) // 1000
	if c := GetCustomer(t, p, "carol"); c.AvailableCredit != 0 {
		t.Fatalf("carol has %d available, want 0", c.AvailableCredit)
	}
	r := p.Do(t, http.MethodPut, "/api/v1/customers/carol/credit", map[string]string{"Content-Type": "application/json"}, `{"creditLimit":500}`)
	if r.Status != http.StatusConflict {
		t.Errorf("limit below what is reserved = %d, want 409", r.Status)
	}
	r = p.Do(t, http.MethodPut, "/api/v1/customers/carol/credit", map[string]string{"Content-Type": "application/json"}, `{"creditLimit":3000}`)
	if r.Status != http.StatusOK {
		t.Fatalf("raise limit = %d %s", r.Status, r.Body)
	}
	if c := GetCustomer(t, p, "carol"); c.CreditLimit != 3000 || c.AvailableCredit != 2000 {
		t.Errorf("carol %+v, want limit 3000 available 2000", c)
	}
}
