package httpapi

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/google/uuid"

	"github.com/cupcake-factory/cupcake-factory/domain"
	"github.com/cupcake-factory/cupcake-factory/events"
)

func (s *Server) createCustomer(w http.ResponseWriter, r *http.Request) error {
	var in struct {
		ID          string `json:"customerId"`
		Name        string `json:"name"`
		CreditLimit *int64 `json:"creditLimit"`
	}
	if err := readJSON(r, &in); err != nil {
		return err
	}
	if in.CreditLimit == nil {
		return &events.ValidationError{Problems: []string{"creditLimit is required"}}
	}
	c, err := s.app.CreateCustomer(r.Context(), domain.NewCustomer{ID: in.ID, Name: in.Name, CreditLimit: *in.CreditLimit})
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/api/v1/customers/"+c.ID)
	writeJSON(w, http.StatusCreated, c)
	return nil
}

func (s *Server) getCustomer(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "customer")
	if err != nil {
		return err
	}
	c, err := s.store.Customer(r.Context(), id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, c)
	return nil
}

func (s *Server) setCredit(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "customer")
	if err != nil {
		return err
	}
	var in struct {
		CreditLimit *int64 `json:"creditLimit"`
	}
	if err := readJSON(r, &in); err != nil {
		return err
	}
	if in.CreditLimit == nil {
		return &events.ValidationError{Problems: []string{"creditLimit is required"}}
	}
	if err := domain.ValidateCreditLimit(*in.CreditLimit); err != nil {
		return err
	}
	c, err := s.app.SetCreditLimit(r.Context(), id, *in.CreditLimit)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, c)
	return nil
}

// accepted is the answer to a command that was taken.
type accepted struct {
	OrderID   string `json:"orderId"`
	Status    string `json:"status,omitempty"`
	StatusURL string `json:"statusUrl"`
}

func (s *Server) accept(w http.ResponseWriter, r *http.Request, orderID string) {
	a := accepted{OrderID: orderID, StatusURL: "/api/v1/order/" + orderID}
	if o, err := s.store.Order(r.Context(), orderID); err == nil {
		a.Status = o.Status // in-process the chain has run; over Kafka it may not have
	}
	w.Header().Set("Location", a.StatusURL)
	writeJSON(w, http.StatusAccepted, a)
}

func (s *Server) createOrder(w http.ResponseWriter, r *http.Request) error {
	var in events.OrderCreated
	if err := readJSON(r, &in); err != nil {
		return err
	}
	if err := domain.ValidateOrder(in, false); err != nil {
		return err
	}
	if in.OrderID == "" {
		in.OrderID = "o-" + uuid.Must(uuid.NewV7()).String()
	}
	e, err := events.New(events.TypeOrderCreated, Source, in.OrderID, in)
	if err != nil {
		return err
	}
	if _, err := s.app.Ingest(r.Context(), e); err != nil {
		return err
	}
	s.accept(w, r, in.OrderID)
	return nil
}

func (s *Server) getOrder(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "order")
	if err != nil {
		return err
	}
	o, err := s.store.Order(r.Context(), id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, o)
	return nil
}

// Page sizes of GET /api/v1/orders.
const (
	MaxList     = 1000
	DefaultList = 100
)

// listOrders answers one page of orders, oldest first; next is the path of
// the following page, absent on the last.
func (s *Server) listOrders(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	status := q.Get("status")
	if q.Has("status") && !events.ValidStatus(status) {
		return &events.ValidationError{Problems: []string{"status must be one of " + strings.Join(events.Statuses(), ", ")}}
	}
	limit := DefaultList
	if q.Has("limit") {
		n, err := strconv.Atoi(q.Get("limit"))
		if err != nil || n < 1 || n > MaxList {
			return &events.ValidationError{Problems: []string{fmt.Sprintf("limit must be 1..%d", MaxList)}}
		}
		limit = n
	}
	page, err := s.store.Orders(r.Context(), domain.OrderQuery{Status: status, After: q.Get("after"), Limit: limit})
	if err != nil {
		return err
	}
	body := map[string]any{"orders": page.Orders, "count": len(page.Orders)}
	if page.Orders == nil {
		body["orders"] = []domain.Order{}
	}
	if page.Next != "" {
		next := url.Values{"limit": {strconv.Itoa(limit)}, "after": {page.Next}}
		if status != "" {
			next.Set("status", status)
		}
		body["next"] = "/api/v1/orders?" + next.Encode()
	}
	writeJSON(w, http.StatusOK, body)
	return nil
}

// station returns the handler of a station's report: it becomes the
// kitchen event of type t, handled like any other.
func (s *Server) station(t string) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		var in events.KitchenStep
		if err := readJSON(r, &in); err != nil {
			return err
		}
		if err := in.Validate(); err != nil {
			return err
		}
		if _, err := s.store.Order(r.Context(), in.OrderID); err != nil {
			return err
		}
		e, err := events.New(t, Source, in.OrderID, in)
		if err != nil {
			return err
		}
		if _, err := s.app.Ingest(r.Context(), e); err != nil {
			return refusedByState(err)
		}
		s.accept(w, r, in.OrderID)
		return nil
	}
}

func (s *Server) reportError(w http.ResponseWriter, r *http.Request) error {
	var in events.FailureReport
	if err := readJSON(r, &in); err != nil {
		return err
	}
	o, err := s.app.ReportFailure(r.Context(), in, newKey())
	if err != nil {
		return refusedByState(err)
	}
	writeJSON(w, http.StatusOK, o)
	return nil
}

// cancelOrder cancels an order at its customer's request and answers the
// order as it is now: cancelled, or unchanged with a 422 saying why not.
func (s *Server) cancelOrder(w http.ResponseWriter, r *http.Request) error {
	var in events.CancelRequest
	if err := readJSON(r, &in); err != nil {
		return err
	}
	o, err := s.app.Cancel(r.Context(), in, newKey())
	if err != nil {
		return refusedByState(err)
	}
	writeJSON(w, http.StatusOK, o)
	return nil
}

// refusedByState is err, marked as the refusal of a command on an order
// whose state does not allow it (a step out of turn, a cancel too late, a
// failure of an ended order): the contract's 422, as for an event that does
// not fit, not the 409 of a conflicting creation.
func refusedByState(err error) error {
	if domain.KindOf(err) == domain.KindConflict {
		return &stateRefusal{err}
	}
	return err
}

type stateRefusal struct{ error }

func (e *stateRefusal) Unwrap() error { return e.error }

func pathID(r *http.Request, what string) (string, error) {
	id := r.PathValue("id")
	if !events.ValidID(id) {
		return "", &events.ValidationError{Problems: []string{what + " id must be letters, digits, '-' or '_', at most 64 characters"}}
	}
	return id, nil
}

func (s *Server) readiness(w http.ResponseWriter, r *http.Request) error {
	if err := s.app.Ready(r.Context()); err != nil {
		s.log.WarnContext(r.Context(), "not ready", "error", err)
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "not ready", "error": err.Error()})
		return nil
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	return nil
}
