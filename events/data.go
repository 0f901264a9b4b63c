package events

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"
)

// Limits of the text fields: the wire's, since ids become Kafka keys, URL
// segments and store keys, and names are shown in logs and screens. The
// menu and the limits of an order are the domain's (domain/menu.go).
const (
	MaxIDLength = 64
	MaxByLength = 64
	MaxReason   = 200
)

// Item is one line of an order.
type Item struct {
	Flavour  string `json:"flavour" bson:"flavour"`
	Size     string `json:"size" bson:"size"`
	Quantity int    `json:"quantity" bson:"quantity"`
}

// OrderCreated is the data of com.cupcakes.order.created.
type OrderCreated struct {
	OrderID    string `json:"orderId"`
	CustomerID string `json:"customerId"`
	Items      []Item `json:"items"`
}

// CreditValidated is the data of com.cupcakes.order.credit-validated.
type CreditValidated struct {
	OrderID    string `json:"orderId"`
	CustomerID string `json:"customerId"`
	Amount     int64  `json:"amount"`
	Valid      bool   `json:"valid"`
	Reason     string `json:"reason,omitempty"`
}

// KitchenStep is the data of the kitchen events (mixed, baked, decorated,
// packaged). By is the person or station that did the step.
type KitchenStep struct {
	OrderID string `json:"orderId"`
	By      string `json:"by"`
}

// OrderUpdate is the data of the notification events on the updates topic
// (shipped, cancelled, failed, status-changed). Amount, Items and At are
// filled in status-changed notifications.
type OrderUpdate struct {
	OrderID    string    `json:"orderId"`
	CustomerID string    `json:"customerId,omitempty"`
	Status     string    `json:"status"`
	Previous   string    `json:"previous,omitempty"`
	By         string    `json:"by,omitempty"`
	Reason     string    `json:"reason,omitempty"`
	Amount     int64     `json:"amount,omitempty"`
	Items      []Item    `json:"items,omitempty"`
	At         time.Time `json:"at,omitzero"`
}

// ValidationError lists every problem found in an input, each naming the
// field it is about ("items[2].quantity must be 1..1000").
type ValidationError struct {
	Problems []string
}

func (e *ValidationError) Error() string { return strings.Join(e.Problems, "; ") }

// IsValidation reports whether err is (or wraps) a *ValidationError.
func IsValidation(err error) bool {
	var v *ValidationError
	return errors.As(err, &v)
}

type problems []string

func (p *problems) addf(format string, args ...any) { *p = append(*p, fmt.Sprintf(format, args...)) }

func (p problems) err() error {
	if len(p) == 0 {
		return nil
	}
	return &ValidationError{Problems: p}
}

// idPattern keeps ids safe as keys everywhere they go: Kafka record keys, URL
// path segments, bbolt keys, MongoDB values.
var idPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]*$`)

func checkID(p *problems, field, v string) {
	switch {
	case v == "":
		p.addf("%s is required", field)
	case len(v) > MaxIDLength:
		p.addf("%s must be at most %d characters", field, MaxIDLength)
	case !idPattern.MatchString(v):
		p.addf("%s must be letters, digits, '-' or '_' (starting with a letter or digit)", field)
	}
}

// ValidID reports whether v is acceptable as an order or customer id.
func ValidID(v string) bool {
	var p problems
	checkID(&p, "id", v)
	return len(p) == 0
}

func checkText(p *problems, field, v string, max int) {
	switch {
	case strings.TrimSpace(v) == "":
		p.addf("%s is required", field)
	case utf8.RuneCountInString(v) > max:
		p.addf("%s must be at most %d characters", field, max)
	case HasControlChars(v):
		p.addf("%s must not contain control characters", field)
	}
}

// HasControlChars reports whether s holds an ASCII control character (NUL,
// ESC, newline, DEL, ...): text that could forge log lines or terminal
// escapes where it is shown.
func HasControlChars(s string) bool {
	return strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f })
}

// ValidateIDs checks the order and customer ids; requireID says whether
// orderId must be present (it must in a CloudEvent, it may be left out on
// REST). An order whose ids are usable can be recorded and refused, one
// whose ids are not cannot. Its items are the menu's to check
// (domain.ValidateOrder).
func (o OrderCreated) ValidateIDs(requireID bool) error {
	var p problems
	if requireID || o.OrderID != "" {
		checkID(&p, "orderId", o.OrderID)
	}
	checkID(&p, "customerId", o.CustomerID)
	return p.err()
}

// Validate checks an order as an event carries it: both ids.
func (o OrderCreated) Validate() error { return o.ValidateIDs(true) }

// Order returns the order id.
func (o OrderCreated) Order() string { return o.OrderID }

// Order returns the order id.
func (c CreditValidated) Order() string { return c.OrderID }

// Order returns the order id.
func (k KitchenStep) Order() string { return k.OrderID }

// Order returns the order id.
func (u OrderUpdate) Order() string { return u.OrderID }

// Validate checks a notification payload.
func (u OrderUpdate) Validate() error {
	var p problems
	checkID(&p, "orderId", u.OrderID)
	if !ValidStatus(u.Status) {
		p.addf("status must be one of %s, got %q", strings.Join(Statuses(), ", "), u.Status)
	}
	return p.err()
}

// Validate checks a credit-validated payload.
func (c CreditValidated) Validate() error {
	var p problems
	checkID(&p, "orderId", c.OrderID)
	checkID(&p, "customerId", c.CustomerID)
	if c.Amount < 0 {
		p.addf("amount must not be negative, got %d", c.Amount)
	}
	switch {
	case c.Valid && c.Reason != "":
		p.addf("reason must be empty when valid is true")
	case !c.Valid:
		switch c.Reason {
		case ReasonInsufficientCredit, ReasonUnknownCustomer, ReasonInvalidOrder:
		default:
			p.addf("reason must be one of %s, %s, %s when valid is false, got %q",
				ReasonInsufficientCredit, ReasonUnknownCustomer, ReasonInvalidOrder, c.Reason)
		}
	}
	return p.err()
}

// Validate checks a kitchen step payload.
func (k KitchenStep) Validate() error {
	var p problems
	checkID(&p, "orderId", k.OrderID)
	checkText(&p, "by", k.By, MaxByLength)
	return p.err()
}

// CancelRequest is the data of com.cupcakes.order.cancel-requested and the
// body of POST /api/v1/order/cancel: By (the customer, or whoever acts for
// them) cancels the order, for Reason (ReasonCustomerCancelled if empty).
type CancelRequest struct {
	OrderID string `json:"orderId"`
	By      string `json:"by"`
	Reason  string `json:"reason,omitempty"`
}

// Order returns the order id.
func (c CancelRequest) Order() string { return c.OrderID }

// Validate checks a cancel request.
func (c CancelRequest) Validate() error {
	var p problems
	checkID(&p, "orderId", c.OrderID)
	checkText(&p, "by", c.By, MaxByLength)
	if c.Reason != "" {
		checkText(&p, "reason", c.Reason, MaxReason)
	}
	return p.err()
}

// FailureReport is what a station sends when an order cannot be finished.
type FailureReport struct {
	OrderID string `json:"orderId"`
	By      string `json:"by"`
	Reason  string `json:"reason"`
}

// Validate checks a failure report.
func (f FailureReport) Validate() error {
	var p problems
	checkID(&p, "orderId", f.OrderID)
	checkText(&p, "by", f.By, MaxByLength)
	checkText(&p, "reason", f.Reason, MaxReason)
	return p.err()
}
