package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/cupcake-factory/cupcake-factory/events"
	"github.com/cupcake-factory/cupcake-factory/tests/internal/broker"
	"github.com/cupcake-factory/cupcake-factory/tests/internal/runner"
)

// Callers of the trust matrix: each role's static token, a token nobody
// issued, and no token at all.
var callers = []struct{ name, token string }{
	{"admin", "e2e-admin-token-0123456789"},
	{"shop", "e2e-shop-token-0123456789"},
	{"staff", "e2e-staff-token-0123456789"},
	{"events", "e2e-events-token-0123456789"},
	{"forged", "e2e-forged-token-0123456789"},
	{"none", ""},
}

func authTokens() string {
	var pairs []string
	for _, c := range callers[:4] {
		pairs = append(pairs, c.name+":"+c.token)
	}
	return strings.Join(pairs, ",")
}

func tokenOf(name string) string {
	for _, c := range callers {
		if c.name == name {
			return c.token
		}
	}
	panic(name)
}

// request is one HTTP request of the matrix.
type request struct {
	method, path, body string
	header             map[string]string
}

// send sends r with token and returns the status. A notification stream's
// status is read from its headers; the stream is then closed.
func send(t *testing.T, p *runner.Process, token string, r request) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, r.method, p.URL+r.path, strings.NewReader(r.body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range r.header {
		req.Header.Set(k, v)
	}
	if r.body != "" && req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.Header.Get("Content-Type") == "text/event-stream" {
		return res.StatusCode, ""
	}
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// as sends r as the admin, for preparing and checking state.
func as(t *testing.T, p *runner.Process, r request, want int) string {
	t.Helper()
	st, body := send(t, p, tokenOf("admin"), r)
	if st != want {
		t.Fatalf("admin %s %s: %d %s, want %d", r.method, r.path, st, body, want)
	}
	return body
}

func get(path string) request { return request{method: http.MethodGet, path: path} }
func post(path, body string) request {
	return request{method: http.MethodPost, path: path, body: body}
}

// statusOf reads an order's state as the admin ("" if there is none).
func statusOf(t *testing.T, p *runner.Process, id string) string {
	t.Helper()
	st, body := send(t, p, tokenOf("admin"), get("/api/v1/order/"+id))
	if st == http.StatusNotFound {
		return ""
	}
	if st != http.StatusOK {
		t.Fatalf("GET order %s: %d %s", id, st, body)
	}
	var o Order
	runner.Response{Status: st, Body: []byte(body)}.JSON(t, &o)
	return o.Status
}

// kitchenWalk is the REST path that takes an approved order to each state.
var kitchenWalk = []struct{ route, reaches string }{
	{"mix", events.StatusMixed}, {"bake", events.StatusBaked}, {"decorate", events.StatusDecorated}, {"box", events.StatusShipped},
}

// orderIn places order id for the trust customer (manual kitchen: it stops
// at approved) and walks it to status.
func orderIn(t *testing.T, p *runner.Process, id, status string) {
	t.Helper()
	as(t, p, post("/api/v1/order", fmt.Sprintf(`{"orderId":%q,"customerId":"trust","items":[{"flavour":"lemon","size":"S","quantity":1}]}`, id)), http.StatusAccepted)
	for _, s := range kitchenWalk {
		if statusOf(t, p, id) == status {
			return
		}
		as(t, p, post("/api/v1/order/"+s.route, fmt.Sprintf(`{"orderId":%q,"by":"e2e"}`, id)), http.StatusAccepted)
	}
	if got := statusOf(t, p, id); got != status {
		t.Fatalf("order %s is %s, want %s", id, got, status)
	}
}

// matrixCase is a route or an event type, who may use it, and what it
// writes: try prepares the state for one caller and returns the request
// and a check that the write happened if and only if the caller was let in.
type matrixCase struct {
	name    string
	open    bool
	allowed []string // roles besides admin
	ok      int      // the status of an allowed request
	try     func(t *testing.T, caller string) (request, func(t *testing.T, written bool))
}

func (c matrixCase) want(caller string) int {
	switch {
	case c.open:
		return c.ok
	case caller == "none" || caller == "forged":
		return http.StatusUnauthorized
	case caller == "admin" || slices.Contains(c.allowed, caller):
		return c.ok
	}
	return http.StatusForbidden
}

func runMatrix(t *testing.T, p *runner.Process, cases []matrixCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, caller := range callers {
				t.Run(caller.name, func(t *testing.T) {
					r, check := c.try(t, caller.name)
					want := c.want(caller.name)
					st, body := send(t, p, caller.token, r)
					if st != want {
						t.Fatalf("%s %s as %s: %d %s, want %d", r.method, r.path, caller.name, st, body, want)
					}
					if st == http.StatusUnauthorized || st == http.StatusForbidden {
						if !strings.Contains(body, `"error"`) {
							t.Errorf("refusal body %q is not {\"error\"}", body)
						}
						if strings.Contains(body, "0123456789") {
							t.Errorf("refusal shows a token: %s", body)
						}
					}
					if check != nil {
						check(t, st < 300)
					}
				})
			}
		})
	}
}

func reads(r request) func(*testing.T, string) (request, func(*testing.T, bool)) {
	return func(*testing.T, string) (request, func(*testing.T, bool)) { return r, nil }
}

// orderMoves: the request moves an order from one state to another, and a
// refused one leaves it where it was.
func orderMoves(p *runner.Process, from, to string, r func(id string) request) func(*testing.T, string) (request, func(*testing.T, bool)) {
	return func(t *testing.T, caller string) (request, func(*testing.T, bool)) {
		id := fmt.Sprintf("o-%s-%s-%d", caller, to, time.Now().UnixNano()%1e9)
		orderIn(t, p, id, from)
		return r(id), func(t *testing.T, written bool) {
			want := from
			if written {
				want = to
			}
			if got := statusOf(t, p, id); got != want {
				t.Errorf("order %s is %s, want %s", id, got, want)
			}
		}
	}
}

// orderCreated: the request creates order id, and a refused one does not.
func orderCreated(p *runner.Process, r func(id string) request) func(*testing.T, string) (request, func(*testing.T, bool)) {
	return func(t *testing.T, caller string) (request, func(*testing.T, bool)) {
		id := fmt.Sprintf("o-new-%s-%d", caller, time.Now().UnixNano()%1e9)
		return r(id), func(t *testing.T, written bool) {
			got := statusOf(t, p, id)
			if written != (got != "") {
				t.Errorf("order %s: status %q after a request that was let in=%v", id, got, written)
			}
		}
	}
}

func cloudEvent(typ, id, data string) request {
	return request{method: http.MethodPost, path: "/", body: data, header: BinaryHeaders("trust-"+typ+"-"+id, typ, id)}
}

func kitchenData(id string) string { return fmt.Sprintf(`{"orderId":%q,"by":"e2e"}`, id) }

// TestEveryRouteAndEventTypeUnderEveryRole walks the contract's routes and
// event types with each role's token, a forged token and none: each answer
// is the 2xx, 401 or 403 of the role table, a refusal is JSON, and a
// refused request writes nothing.
func TestEveryRouteAndEventTypeUnderEveryRole(t *testing.T) {
	p := runner.Start(t, map[string]string{
		"AUTH_TOKENS": authTokens(), "KITCHEN_MODE": "manual",
		// First only order-created: its credit-validated replies are kept
		// for the credit-validated row, with the money they reserved.
		"FUNCTIONS": events.FuncOrderCreated, "ALLOW_PARTIAL_EMBEDDED_STORE": "true",
	})
	as(t, p, post("/api/v1/customers", `{"customerId":"trust","name":"Trust Test","creditLimit":10000000}`), http.StatusCreated)
	verdicts := map[string]request{}
	for _, c := range callers {
		id := "o-verdict-" + c.name
		r := cloudEvent(events.TypeOrderCreated, id, fmt.Sprintf(`{"orderId":%q,"customerId":"trust","items":[{"flavour":"lemon","size":"S","quantity":1}]}`, id))
		res := p.Do(t, r.method, r.path, withAuth(r.header, tokenOf("admin")), r.body)
		if res.Status != http.StatusOK || res.Header.Get("ce-type") != events.TypeCreditValidated {
			t.Fatalf("order-created alone: %d %s %s", res.Status, res.Header.Get("ce-type"), res.Body)
		}
		h := map[string]string{}
		for k := range res.Header {
			if strings.HasPrefix(strings.ToLower(k), "ce-") || strings.EqualFold(k, "Content-Type") {
				h[k] = res.Header.Get(k)
			}
		}
		verdicts[c.name] = request{method: http.MethodPost, path: "/", body: string(res.Body), header: h}
	}
	delete(p.Env, "FUNCTIONS") // now all six
	p.Restart()

	var cases []matrixCase
	for _, path := range []string{"/health/readiness", "/health/liveness", "/metrics", "/", "/ui/app.js", "/ui/app.css", "/api/v1/config"} {
		cases = append(cases, matrixCase{name: "GET " + path, open: true, ok: http.StatusOK, try: reads(get(path))})
	}
	reader := []string{"shop", "staff", "events"}
	orderIn(t, p, "o-read", events.StatusApproved)
	for _, path := range []string{"/api/v1/customers/trust", "/api/v1/order/o-read", "/api/v1/orders", "/api/v1/orders?status=approved&limit=5", "/api/v1/notifications", "/api/v1/notifications?station=baker"} {
		cases = append(cases, matrixCase{name: "GET " + path, allowed: reader, ok: http.StatusOK, try: reads(get(path))})
	}
	cases = append(cases,
		matrixCase{name: "POST /api/v1/customers", ok: http.StatusCreated, try: func(t *testing.T, caller string) (request, func(*testing.T, bool)) {
			id := "c-" + caller
			return post("/api/v1/customers", fmt.Sprintf(`{"customerId":%q,"name":"New","creditLimit":100}`, id)), func(t *testing.T, written bool) {
				st, _ := send(t, p, tokenOf("admin"), get("/api/v1/customers/"+id))
				if written != (st == http.StatusOK) {
					t.Errorf("customer %s: GET %d after a request that was let in=%v", id, st, written)
				}
			}
		}},
		matrixCase{name: "PUT /api/v1/customers/{id}/credit", ok: http.StatusOK, try: func(t *testing.T, caller string) (request, func(*testing.T, bool)) {
			id := "c-credit-" + caller
			as(t, p, post("/api/v1/customers", fmt.Sprintf(`{"customerId":%q,"name":"Limit","creditLimit":100}`, id)), http.StatusCreated)
			r := request{method: http.MethodPut, path: "/api/v1/customers/" + id + "/credit", body: `{"creditLimit":99999999}`}
			return r, func(t *testing.T, written bool) {
				var c Customer
				runner.Response{Body: []byte(as(t, p, get("/api/v1/customers/"+id), http.StatusOK))}.JSON(t, &c)
				if want := map[bool]int64{true: 99999999, false: 100}[written]; c.CreditLimit != want {
					t.Errorf("credit limit %d, want %d", c.CreditLimit, want)
				}
			}
		}},
		matrixCase{name: "POST /api/v1/order", allowed: []string{"shop"}, ok: http.StatusAccepted, try: orderCreated(p, func(id string) request {
			return post("/api/v1/order", fmt.Sprintf(`{"orderId":%q,"customerId":"trust","items":[{"flavour":"carrot","size":"M","quantity":2}]}`, id))
		})},
	)
	from := events.StatusApproved
	for _, s := range kitchenWalk {
		cases = append(cases, matrixCase{name: "POST /api/v1/order/" + s.route, allowed: []string{"staff"}, ok: http.StatusAccepted,
			try: orderMoves(p, from, s.reaches, func(id string) request { return post("/api/v1/order/"+s.route, kitchenData(id)) })})
		from = s.reaches
	}
	cases = append(cases, matrixCase{name: "POST /api/v1/order/cancel", allowed: []string{"shop"}, ok: http.StatusOK,
		try: orderMoves(p, events.StatusApproved, events.StatusCancelled, func(id string) request {
			return post("/api/v1/order/cancel", fmt.Sprintf(`{"orderId":%q,"by":"trust"}`, id))
		})})
	cases = append(cases, matrixCase{name: "POST /api/v1/order/reporterror", allowed: []string{"staff"}, ok: http.StatusOK,
		try: orderMoves(p, events.StatusMixed, events.StatusFailed, func(id string) request {
			return post("/api/v1/order/reporterror", fmt.Sprintf(`{"orderId":%q,"by":"e2e","reason":"dropped"}`, id))
		})})

	// CloudEvents on POST /, each type of the contract this process handles.
	cases = append(cases,
		matrixCase{name: "POST / " + events.TypeOrderCreated, allowed: []string{"shop", "events"}, ok: http.StatusAccepted, try: orderCreated(p, func(id string) request {
			return cloudEvent(events.TypeOrderCreated, id, fmt.Sprintf(`{"orderId":%q,"customerId":"trust","items":[{"flavour":"vanilla","size":"L","quantity":3}]}`, id))
		})},
		matrixCase{name: "POST / " + events.TypeCreditValidated, allowed: []string{"events"}, ok: http.StatusAccepted,
			try: func(t *testing.T, caller string) (request, func(*testing.T, bool)) {
				id := "o-verdict-" + caller
				if got := statusOf(t, p, id); got != events.StatusCreated {
					t.Fatalf("order %s is %s before its verdict", id, got)
				}
				return verdicts[caller], func(t *testing.T, written bool) {
					want := map[bool]string{true: events.StatusApproved, false: events.StatusCreated}[written]
					if got := statusOf(t, p, id); got != want {
						t.Errorf("order %s is %s, want %s", id, got, want)
					}
				}
			}},
	)
	cases = append(cases, matrixCase{name: "POST / " + events.TypeCancelRequested, allowed: []string{"shop", "events"}, ok: http.StatusOK,
		try: orderMoves(p, events.StatusMixed, events.StatusCancelled, func(id string) request {
			return cloudEvent(events.TypeCancelRequested, id, fmt.Sprintf(`{"orderId":%q,"by":"trust"}`, id))
		})})
	from = events.StatusApproved
	for _, typ := range []string{events.TypeMixed, events.TypeBaked, events.TypeDecorated, events.TypePackaged} {
		to := map[string]string{events.TypeMixed: events.StatusMixed, events.TypeBaked: events.StatusBaked,
			events.TypeDecorated: events.StatusDecorated, events.TypePackaged: events.StatusShipped}[typ]
		ok := http.StatusAccepted
		if typ == events.TypePackaged {
			ok = http.StatusOK // with the shipped event as its reply
		}
		cases = append(cases, matrixCase{name: "POST / " + typ, allowed: []string{"staff", "events"}, ok: ok,
			try: orderMoves(p, from, to, func(id string) request { return cloudEvent(typ, id, kitchenData(id)) })})
		from = to
	}
	runMatrix(t, p, cases)
}

// TestNotificationTypesOnlyFromThePlatform posts the notification types
// (shipped, cancelled, failed, status-changed) to an API process that
// forwards them to Kafka: only the events role (and admin) may, and a
// refused one never reaches the updates topic.
func TestNotificationTypesOnlyFromThePlatform(t *testing.T) {
	addr := broker.Start(t, 1)
	p := runner.Start(t, map[string]string{"AUTH_TOKENS": authTokens(), "FUNCTIONS": "none", "KAFKA_BROKERS": addr, "ALLOW_PARTIAL_EMBEDDED_STORE": "true"})
	client, err := sarama.NewClient([]string{addr}, broker.Config())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	updates := func() int64 {
		n, err := client.GetOffset(events.TopicOrderUpdates, 0, sarama.OffsetNewest)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	var cases []matrixCase
	for _, typ := range []string{events.TypeShipped, events.TypeCancelled, events.TypeFailed, events.TypeStatusChanged} {
		status := map[string]string{events.TypeShipped: events.StatusShipped, events.TypeCancelled: events.StatusCancelled,
			events.TypeFailed: events.StatusFailed, events.TypeStatusChanged: events.StatusBaked}[typ]
		cases = append(cases, matrixCase{name: "POST / " + typ, allowed: []string{"events"}, ok: http.StatusAccepted,
			try: func(t *testing.T, caller string) (request, func(*testing.T, bool)) {
				before := updates()
				id := "o-note-" + caller
				return cloudEvent(typ, id, fmt.Sprintf(`{"orderId":%q,"status":%q}`, id, status)), func(t *testing.T, written bool) {
					if got := updates() - before; got != map[bool]int64{true: 1, false: 0}[written] {
						t.Errorf("%d records reached %s after a request that was let in=%v", got, events.TopicOrderUpdates, written)
					}
				}
			}})
	}
	runMatrix(t, p, cases)
}

func withAuth(h map[string]string, token string) map[string]string {
	out := map[string]string{"Authorization": "Bearer " + token}
	for k, v := range h {
		out[k] = v
	}
	return out
}
