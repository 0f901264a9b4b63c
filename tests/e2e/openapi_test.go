package e2e

import (
	"net/http"
	"strings"
	"testing"

	"github.com/cupcake-factory/cupcake-factory/tests/internal/apidoc"
	"github.com/cupcake-factory/cupcake-factory/tests/internal/runner"
)

var jsonCT = map[string]string{"Content-Type": "application/json"}

// call is one request of a conformance run, in order: later ones may rely
// on what earlier ones made.
type call struct {
	name         string
	method, path string
	header       map[string]string
	body         string
	want         int
}

func conform(t *testing.T, p *runner.Process, calls []call) {
	t.Helper()
	doc := apidoc.Load(t, p)
	for _, c := range calls {
		t.Run(c.name, func(t *testing.T) {
			r := doc.Do(t, c.method, c.path, c.header, c.body)
			if r.Status != c.want {
				t.Errorf("%s %s = %d %s, want %d", c.method, c.path, r.Status, r.Body, c.want)
			}
		})
	}
}

func TestAnswersOfTheMainRoutesConformToTheOpenAPIDocument(t *testing.T) {
	p := runner.Start(t, nil)
	order := OrderData("o-oa1", "alice", "vanilla", "M", 6)
	conform(t, p, []call{
		{"liveness", "GET", "/health/liveness", nil, "", 200},
		{"readiness", "GET", "/health/readiness", nil, "", 200},
		{"metrics", "GET", "/metrics", nil, "", 200},
		{"the document itself", "GET", "/openapi.json", nil, "", 200},
		{"ui config", "GET", "/api/v1/config", nil, "", 200},
		{"ui page", "GET", "/", nil, "", 200},
		{"ui script", "GET", "/ui/app.js", nil, "", 200},
		{"ui style", "GET", "/ui/app.css", nil, "", 200},
		{"ui file missing", "GET", "/ui/nope.js", nil, "", 404},
		{"create customer", "POST", "/api/v1/customers", jsonCT, `{"customerId":"bob","name":"Bob","creditLimit":20000}`, 201},
		{"create customer again", "POST", "/api/v1/customers", jsonCT, `{"customerId":"bob","name":"Bob","creditLimit":20000}`, 409},
		{"create customer, bad JSON", "POST", "/api/v1/customers", jsonCT, `{"customerId":`, 400},
		{"create customer, not JSON", "POST", "/api/v1/customers", map[string]string{"Content-Type": "text/plain"}, `x`, 415},
		{"get customer", "GET", "/api/v1/customers/bob", nil, "", 200},
		{"get unknown customer", "GET", "/api/v1/customers/nobody", nil, "", 404},
		{"get customer, bad id", "GET", "/api/v1/customers/b%21b", nil, "", 400},
		{"set credit", "PUT", "/api/v1/customers/bob/credit", jsonCT, `{"creditLimit":30000}`, 200},
		{"set credit, unknown customer", "PUT", "/api/v1/customers/nobody/credit", jsonCT, `{"creditLimit":1}`, 404},
		{"set credit, no limit", "PUT", "/api/v1/customers/bob/credit", jsonCT, `{}`, 400},
		{"binary CloudEvent ships", "POST", "/", BinaryHeaders("e-oa1", "com.cupcakes.order.created", "o-oa1"), order, 200},
		{"structured CloudEvent is cancelled", "POST", "/", map[string]string{"Content-Type": "application/cloudevents+json"},
			`{"specversion":"1.0","id":"e-oa2","source":"e2e","type":"com.cupcakes.order.created","subject":"o-oa2","datacontenttype":"application/json","data":` +
				OrderData("o-oa2", "alice", "lemon", "XL", 1000) + `}`, 200},
		{"not a CloudEvent", "POST", "/", jsonCT, order, 400},
		{"a step of an unknown order", "POST", "/", BinaryHeaders("e-oa3", "com.cupcakes.order.mixed", "o-none"), `{"orderId":"o-none","by":"x"}`, 422},
		{"REST order", "POST", "/api/v1/order", jsonCT, `{"customerId":"alice","items":[{"flavour":"carrot","size":"S","quantity":2}]}`, 202},
		{"REST order, bad items", "POST", "/api/v1/order", jsonCT, `{"customerId":"alice","items":[]}`, 400},
		{"REST order, id reused for other items", "POST", "/api/v1/order", jsonCT, `{"orderId":"o-oa1","customerId":"alice","items":[{"flavour":"carrot","size":"S","quantity":1}]}`, 409},
		{"get order", "GET", "/api/v1/order/o-oa1", nil, "", 200},
		{"get unknown order", "GET", "/api/v1/order/o-none", nil, "", 404},
		{"list orders, first page", "GET", "/api/v1/orders?limit=1", nil, "", 200},
		{"list orders, a later page", "GET", "/api/v1/orders?limit=1&after=" + afterOf(t, p), nil, "", 200},
		{"list a station's queue", "GET", "/api/v1/orders?status=shipped", nil, "", 200},
		{"list orders, bad status", "GET", "/api/v1/orders?status=bogus", nil, "", 400},
		{"list orders, bad limit", "GET", "/api/v1/orders?limit=0", nil, "", 400},
		{"a step the state does not allow", "POST", "/api/v1/order/mix", jsonCT, `{"orderId":"o-oa1","by":"maria"}`, 422},
		{"a step of an unknown order", "POST", "/api/v1/order/bake", jsonCT, `{"orderId":"o-none","by":"maria"}`, 404},
		{"a failure of a shipped order", "POST", "/api/v1/order/reporterror", jsonCT, `{"orderId":"o-oa1","by":"ben","reason":"oven"}`, 422},
		{"notifications, bad station", "GET", "/api/v1/notifications?station=nope", nil, "", 400},
		{"list orders, limit too big", "GET", "/api/v1/orders?limit=1001", nil, "", 400},
	})
}

// afterOf returns the cursor of the first page of one order.
func afterOf(t *testing.T, p *runner.Process) string {
	var page struct{ Next string }
	p.Get(t, "/api/v1/orders?limit=1").JSON(t, &page)
	_, q, _ := strings.Cut(page.Next, "after=")
	after, _, _ := strings.Cut(q, "&")
	return after
}

func TestTheManualKitchensAnswersConformToTheOpenAPIDocument(t *testing.T) {
	p := runner.Start(t, map[string]string{"KITCHEN_MODE": "manual"})
	conform(t, p, []call{
		{"order waits for the kitchen", "POST", "/api/v1/order", jsonCT, `{"orderId":"o-m1","customerId":"alice","items":[{"flavour":"carrot","size":"S","quantity":2}]}`, 202},
		{"mix", "POST", "/api/v1/order/mix", jsonCT, `{"orderId":"o-m1","by":"maria"}`, 202},
		{"bake over POST /, no reply", "POST", "/", BinaryHeaders("e-m1", "com.cupcakes.order.baked", "o-m1"), `{"orderId":"o-m1","by":"maria"}`, 202},
		{"decorate", "POST", "/api/v1/order/decorate", jsonCT, `{"orderId":"o-m1","by":"maria"}`, 202},
		{"box ships", "POST", "/api/v1/order/box", jsonCT, `{"orderId":"o-m1","by":"maria"}`, 202},
		{"another order", "POST", "/api/v1/order", jsonCT, `{"orderId":"o-m2","customerId":"alice","items":[{"flavour":"carrot","size":"S","quantity":2}]}`, 202},
		{"report a failure", "POST", "/api/v1/order/reporterror", jsonCT, `{"orderId":"o-m2","by":"ben","reason":"oven broke"}`, 200},
		{"the failed order", "GET", "/api/v1/order/o-m2", nil, "", 200},
	})
}

func TestRefusedCallersGetAnswersTheOpenAPIDocumentDescribes(t *testing.T) {
	p := runner.Start(t, map[string]string{"AUTH_TOKENS": "shop:tok-shop-e2e-0123456789,admin:tok-admin-e2e-0123456789"})
	shop := map[string]string{"Authorization": "Bearer tok-shop-e2e-0123456789", "Content-Type": "application/json"}
	conform(t, p, []call{
		{"no token", "GET", "/api/v1/orders", nil, "", http.StatusUnauthorized},
		{"a forged token", "GET", "/api/v1/order/o-1", map[string]string{"Authorization": "Bearer forged"}, "", http.StatusUnauthorized},
		{"shop may not create customers", "POST", "/api/v1/customers", shop, `{"customerId":"eve","name":"Eve","creditLimit":1}`, http.StatusForbidden},
		{"shop may not post a verdict", "POST", "/", withAuth(BinaryHeaders("e-v1", "com.cupcakes.order.credit-validated", "o-1"), "tok-shop-e2e-0123456789"),
			`{"orderId":"o-1","customerId":"alice","amount":1,"valid":true}`, http.StatusForbidden},
		{"shop reads", "GET", "/api/v1/orders", shop, "", http.StatusOK},
		{"probes stay open", "GET", "/health/readiness", nil, "", http.StatusOK},
		{"the document stays open", "GET", "/openapi.json", nil, "", http.StatusOK},
	})
}
