// Package e2e drives the real cupcake-factory binary over HTTP the way the
// README tells users to: curl-style requests, CloudEvents in binary and
// structured mode, the REST API. The same scenarios run on every store.
package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cupcake-factory/cupcake-factory/tests/internal/runner"
)

// Order is the part of GET /api/v1/order/{id} the scenarios look at.
type Order struct {
	OrderID    string `json:"orderId"`
	CustomerID string `json:"customerId"`
	Status     string `json:"status"`
	Reason     string `json:"reason"`
	Amount     int64  `json:"amount"`
	History    []struct {
		Status string `json:"status"`
		By     string `json:"by"`
	} `json:"history"`
}

// Customer is the part of GET /api/v1/customers/{id} the scenarios look at.
type Customer struct {
	CustomerID      string `json:"customerId"`
	CreditLimit     int64  `json:"creditLimit"`
	AvailableCredit int64  `json:"availableCredit"`
}

// GetOrder reads an order, failing the test if it is not there.
func GetOrder(tb testing.TB, p *runner.Process, id string) Order {
	tb.Helper()
	r := p.Get(tb, "/api/v1/order/"+id)
	if r.Status != http.StatusOK {
		tb.Fatalf("GET order %s: %d %s", id, r.Status, r.Body)
	}
	var o Order
	r.JSON(tb, &o)
	return o
}

// AllOrders reads every order stored, a page of 1000 at a time.
func AllOrders(tb testing.TB, p *runner.Process) []Order {
	tb.Helper()
	var all []Order
	for next := "/api/v1/orders?limit=1000"; next != ""; {
		var page struct {
			Orders []Order
			Next   string
		}
		p.Get(tb, next).JSON(tb, &page)
		all, next = append(all, page.Orders...), page.Next
	}
	return all
}

// WaitEnded waits until every order in ids has shipped or was cancelled and
// returns every order stored. It says every 10 s how many are still open,
// and fails the test, naming some, if they are not all done within the time
// given.
func WaitEnded(tb testing.TB, p *runner.Process, ids []string, within time.Duration) []Order {
	tb.Helper()
	lastReport := time.Now()
	for deadline := time.Now().Add(within); ; time.Sleep(200 * time.Millisecond) {
		all := AllOrders(tb, p)
		status := make(map[string]string, len(all))
		for _, o := range all {
			status[o.OrderID] = o.Status
		}
		var open []string
		for _, id := range ids {
			if st := status[id]; st != "shipped" && st != "cancelled" {
				open = append(open, id+"="+st)
			}
		}
		switch {
		case len(open) == 0:
			return all
		case time.Now().After(deadline):
			tb.Fatalf("%d of %d orders not shipped or cancelled after %s, e.g. %v\n%s",
				len(open), len(ids), within, open[:min(len(open), 20)], p.Log())
		case time.Since(lastReport) > 10*time.Second:
			tb.Logf("%d of %d orders not shipped or cancelled yet", len(open), len(ids))
			lastReport = time.Now()
		}
	}
}

// CheckExactlyOnce checks orders as the credit saga must leave them, however
// often their events were delivered: none went through a state twice, and
// customer holds exactly the credit its shipped orders cost. It returns how
// many of customer's orders shipped and what they cost.
func CheckExactlyOnce(tb testing.TB, p *runner.Process, orders []Order, customer string) (shipped int, cost int64) {
	tb.Helper()
	for _, o := range orders {
		seen := map[string]bool{}
		for _, h := range o.History {
			if seen[h.Status] {
				tb.Errorf("order %s went through %s twice", o.OrderID, h.Status)
			}
			seen[h.Status] = true
		}
		if o.Status == "shipped" && o.CustomerID == customer {
			shipped++
			cost += o.Amount
		}
	}
	c := GetCustomer(tb, p, customer)
	if held := c.CreditLimit - c.AvailableCredit; held != cost || c.AvailableCredit < 0 {
		tb.Errorf("%s: limit %d, available %d: it holds %d cents; its %d shipped orders cost %d",
			customer, c.CreditLimit, c.AvailableCredit, held, shipped, cost)
	}
	return shipped, cost
}

// GetCustomer reads a customer.
func GetCustomer(tb testing.TB, p *runner.Process, id string) Customer {
	tb.Helper()
	r := p.Get(tb, "/api/v1/customers/"+id)
	if r.Status != http.StatusOK {
		tb.Fatalf("GET customer %s: %d %s", id, r.Status, r.Body)
	}
	var c Customer
	r.JSON(tb, &c)
	return c
}

// CreateCustomer creates a customer with a credit limit in cents.
func CreateCustomer(tb testing.TB, p *runner.Process, id string, limit int64) {
	tb.Helper()
	r := p.PostJSON(tb, "/api/v1/customers", fmt.Sprintf(`{"customerId":%q,"name":"Test %s","creditLimit":%d}`, id, id, limit))
	if r.Status != http.StatusCreated {
		tb.Fatalf("create customer %s: %d %s", id, r.Status, r.Body)
	}
}

// OrderData is the JSON data of an order.created event.
func OrderData(orderID, customerID, flavour, size string, quantity int) string {
	return fmt.Sprintf(`{"orderId":%q,"customerId":%q,"items":[{"flavour":%q,"size":%q,"quantity":%d}]}`,
		orderID, customerID, flavour, size, quantity)
}

// BinaryHeaders are the headers of a binary-mode CloudEvent.
func BinaryHeaders(id, typ, subject string) map[string]string {
	h := map[string]string{
		"Content-Type":   "application/json",
		"ce-specversion": "1.0",
		"ce-id":          id,
		"ce-source":      "curl",
		"ce-type":        typ,
	}
	if subject != "" {
		h["ce-subject"] = subject
		h["ce-partitionkey"] = subject
	}
	return h
}

// PostBinary posts a binary-mode CloudEvent.
func PostBinary(tb testing.TB, p *runner.Process, id, typ, subject, data string) runner.Response {
	tb.Helper()
	return p.Do(tb, http.MethodPost, "/", BinaryHeaders(id, typ, subject), data)
}

// PostStructured posts a structured-mode CloudEvent.
func PostStructured(tb testing.TB, p *runner.Process, id, typ, subject, data string) runner.Response {
	tb.Helper()
	body := fmt.Sprintf(`{"specversion":"1.0","id":%q,"source":"curl","type":%q,"subject":%q,"partitionkey":%q,"datacontenttype":"application/json","data":%s}`,
		id, typ, subject, subject, data)
	return p.Do(tb, http.MethodPost, "/", map[string]string{"Content-Type": "application/cloudevents+json"}, body)
}

// OrderCount is how many orders the system holds.
func OrderCount(tb testing.TB, p *runner.Process) int {
	tb.Helper()
	var list struct {
		Count int `json:"count"`
	}
	p.Get(tb, "/api/v1/orders?limit=1000").JSON(tb, &list)
	return list.Count
}

// Statuses lists the statuses in an order's history.
func (o Order) Statuses() string {
	var s []string
	for _, h := range o.History {
		s = append(s, h.Status)
	}
	return strings.Join(s, ",")
}
