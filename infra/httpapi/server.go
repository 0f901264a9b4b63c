// Package httpapi is the HTTP face of cupcake-factory: CloudEvents on POST /,
// the REST API of the contract, the notifications stream, the web UI, health
// probes and metrics. Every error is a JSON body {"error": "..."} with the
// status its kind maps to; a 5xx always means the server failed.
package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/google/uuid"

	"github.com/cupcake-factory/cupcake-factory/domain"
	"github.com/cupcake-factory/cupcake-factory/events"
	"github.com/cupcake-factory/cupcake-factory/infra/auth"
	"github.com/cupcake-factory/cupcake-factory/infra/metrics"
	"github.com/cupcake-factory/cupcake-factory/infra/notify"
	"github.com/cupcake-factory/cupcake-factory/infra/telemetry"
)

// MaxBody is the largest request body accepted, in bytes.
const MaxBody = 1 << 20

// Source is the CloudEvents source of events the REST API makes.
const Source = events.Source + "/api"

// App is what the API needs from the running system.
type App interface {
	Ingest(ctx context.Context, e cloudevents.Event) (*cloudevents.Event, error)
	CreateCustomer(ctx context.Context, c domain.NewCustomer) (domain.Customer, error)
	SetCreditLimit(ctx context.Context, id string, limit int64) (domain.Customer, error)
	ReportFailure(ctx context.Context, r events.FailureReport, key string) (domain.Order, error)
	Cancel(ctx context.Context, r events.CancelRequest, key string) (domain.Order, error)
	Ready(ctx context.Context) error
}

// Store is what the API reads and changes directly.
type Store interface {
	Customer(ctx context.Context, id string) (domain.Customer, error)
	Order(ctx context.Context, id string) (domain.Order, error)
	Orders(ctx context.Context, q domain.OrderQuery) (domain.OrderPage, error)
}

// Server serves the API.
type Server struct {
	app     App
	store   Store
	hub     *notify.Hub
	log     *slog.Logger
	metrics *metrics.Metrics
	mux     *http.ServeMux
	// KeepAlive is how often an idle notification stream gets a comment.
	KeepAlive time.Duration
	// KitchenMode ("auto" or "manual") tells the web UI whether stations
	// report their steps or watch the chain run by itself.
	KitchenMode string
	// Auth decides who may use each route and post each event type (the
	// table in infra/auth). Nil: everything is open.
	Auth *auth.Authenticator
	// MaxSSEClients caps the notification streams held at once; beyond it
	// the answer is 503 with Retry-After.
	MaxSSEClients int
	// SSEBatch is how long a stream, woken by a notification, waits for
	// the rest of the burst before it writes them all at once.
	SSEBatch time.Duration
	release  releaser
	patterns []string // the routes registered, for Routes
}

// New returns the API over a running app.
func New(app App, store Store, hub *notify.Hub, m *metrics.Metrics, log *slog.Logger) *Server {
	s := &Server{app: app, store: store, hub: hub, log: log, metrics: m, mux: http.NewServeMux(), KeepAlive: 15 * time.Second, KitchenMode: "auto", MaxSSEClients: 1000, SSEBatch: 50 * time.Millisecond}
	s.routes()
	return s
}

func (s *Server) routes() {
	s.handle("POST /{$}", s.postEvent)
	s.handle("GET /{$}", s.ui)
	s.handle("GET /ui/{name}", s.uiAsset)
	s.handle("GET /api/v1/config", s.uiConfig)
	s.handle("GET /api/v1/me", s.me)
	s.handle("POST /api/v1/customers", s.createCustomer)
	s.handle("GET /api/v1/customers/{id}", s.getCustomer)
	s.handle("PUT /api/v1/customers/{id}/credit", s.setCredit)
	s.handle("POST /api/v1/order", s.createOrder)
	s.handle("GET /api/v1/order/{id}", s.getOrder)
	s.handle("GET /api/v1/orders", s.listOrders)
	for _, step := range events.Kitchen() {
		s.handle(auth.KitchenRoute(step), s.station(step.Takes))
	}
	s.handle("POST /api/v1/order/reporterror", s.reportError)
	s.handle("POST /api/v1/order/cancel", s.cancelOrder)
	s.handle("GET /api/v1/notifications", s.notifications)
	s.handle("GET /openapi.json", func(w http.ResponseWriter, _ *http.Request) error {
		w.Header().Set("Content-Type", "application/json")
		_, err := w.Write(OpenAPI)
		return err
	})
	s.handle("GET /health/readiness", s.readiness)
	s.handle("GET /health/liveness", func(w http.ResponseWriter, _ *http.Request) error {
		writeJSON(w, http.StatusOK, map[string]string{"status": "alive"})
		return nil
	})
	metricsHandler := s.metrics.Handler()
	s.handle("GET /metrics", func(w http.ResponseWriter, r *http.Request) error {
		metricsHandler.ServeHTTP(w, r)
		return nil
	})
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		setSecurityHeaders(w.Header())
		status := http.StatusNotFound
		defer func() { s.metrics.ObserveRequest(r.Pattern, status, time.Since(start)) }()
		if allow := s.allowed(r); len(allow) > 0 {
			status = http.StatusMethodNotAllowed
			w.Header().Set("Allow", strings.Join(allow, ", "))
			writeError(w, status, fmt.Sprintf("%s %s: the route takes %s", r.Method, r.URL.Path, strings.Join(allow, ", ")))
			return
		}
		writeError(w, status, fmt.Sprintf("no route for %s %s", r.Method, r.URL.Path))
	})
}

// allowed lists the methods the route of r's path takes (none: no route):
// the catch-all that answers unknown paths with a JSON 404 would otherwise
// hide the mux's 405 for a known path and another method. Where a literal
// route and a wildcard one both match (POST /api/v1/order/cancel, GET
// /api/v1/order/{id}), the path is the literal route's.
func (s *Server) allowed(r *http.Request) []string {
	byPath := map[string][]string{}
	for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, pattern := s.mux.Handler(probe); pattern != "" && pattern != "/" {
			_, path, _ := strings.Cut(pattern, " ")
			byPath[path] = append(byPath[path], m)
		}
	}
	var out []string
	wildcards := -1
	for path, methods := range byPath {
		if n := strings.Count(path, "{"); wildcards < 0 || n < wildcards {
			wildcards, out = n, methods
		}
	}
	return out
}

// mayHoldAFraction reports whether b has a digit followed by '.', 'e' or
// 'E', which a number with a fraction or an exponent has.
func mayHoldAFraction(b []byte) bool {
	for i := 1; i < len(b); i++ {
		if c := b[i]; (c == '.' || c == 'e' || c == 'E') && b[i-1] >= '0' && b[i-1] <= '9' {
			return true
		}
	}
	return false
}

// Routes lists the patterns of the routes registered, in order ("GET
// /api/v1/order/{id}"); the OpenAPI document describes exactly these.
func (s *Server) Routes() []string { return slices.Clone(s.patterns) }

// ServeHTTP serves a request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// handlerFunc is a handler that returns its error for one place to report.
type handlerFunc func(http.ResponseWriter, *http.Request) error

// handle registers h and turns its error into a response: the status the
// error's kind maps to, and a JSON body. Internal errors are logged, and
// their details are not shown to the client. Every route is in the role
// table of infra/auth (registering one that is not fails at start): the
// caller is checked against it before h runs, so a refused request (401,
// 403) reads and writes nothing.
func (s *Server) handle(pattern string, h handlerFunc) {
	if _, ok := auth.RouteAccess(pattern); !ok {
		panic(fmt.Sprintf("httpapi: route %q is not in the role table of infra/auth", pattern))
	}
	s.patterns = append(s.patterns, pattern)
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		setSecurityHeaders(w.Header())
		sw := &statusWriter{ResponseWriter: w}
		start := time.Now()
		span := noSpan
		if telemetry.Enabled() && traced(pattern) {
			r, span = startSpan(r, pattern)
		}
		defer func() {
			if p := recover(); p != nil {
				s.log.ErrorContext(r.Context(), "http handler panicked", "path", r.URL.Path, "panic", p)
				if sw.status == 0 {
					writeError(sw, http.StatusInternalServerError, "internal error")
				}
			}
			status := sw.status
			if status == 0 {
				status = http.StatusOK
			}
			s.metrics.ObserveRequest(pattern, status, time.Since(start))
			endSpan(span, status)
		}()
		r, err := s.Auth.Authorize(r, pattern)
		if err == nil {
			r.Body = http.MaxBytesReader(sw, r.Body, MaxBody)
			err = h(sw, r)
		}
		if err == nil {
			return
		}
		status := StatusOf(err)
		msg := err.Error()
		var ae *auth.Error
		switch {
		case errors.As(err, &ae):
			// Who was refused, never with what token.
			s.log.DebugContext(r.Context(), "request refused", "method", r.Method, "path", r.URL.Path, "status", status, "reason", msg)
			if status == http.StatusUnauthorized {
				sw.Header().Set("WWW-Authenticate", ae.Challenge())
			}
			if status == http.StatusServiceUnavailable {
				sw.Header().Set("Retry-After", "5")
			}
		case status >= 500:
			s.log.ErrorContext(r.Context(), "request failed", "method", r.Method, "path", r.URL.Path, "error", err)
			msg = "internal error; see the server log"
		}
		if sw.status == 0 {
			writeError(sw, status, msg)
		}
	})
}

// StatusOf maps an error to the HTTP status that reports it.
func StatusOf(err error) int {
	if st := auth.StatusOf(err); st != 0 {
		return st
	}
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return http.StatusRequestEntityTooLarge
	}
	var ue *unsupportedMedia
	if errors.As(err, &ue) {
		return http.StatusUnsupportedMediaType
	}
	var sr *stateRefusal
	if errors.As(err, &sr) {
		return http.StatusUnprocessableEntity
	}
	switch domain.KindOf(err) {
	case domain.KindInvalid:
		return http.StatusBadRequest
	case domain.KindNotFound:
		return http.StatusNotFound
	case domain.KindConflict:
		return http.StatusConflict
	}
	return http.StatusInternalServerError
}

// EventStatusOf maps the error of handling a CloudEvent to the status that
// reports it. An event refused for good because it does not fit (an unknown
// order, a step the order's state does not allow) is 422, not 404 or 409:
// Knative's delivery retries 404 and 409, and retrying a refusal only holds
// up the partition behind it before it ends in the dead letters anyway.
func EventStatusOf(err error) int {
	switch st := StatusOf(err); st {
	case http.StatusNotFound, http.StatusConflict:
		return http.StatusUnprocessableEntity
	default:
		return st
	}
}

type unsupportedMedia struct{ got string }

func (e *unsupportedMedia) Error() string {
	return fmt.Sprintf("Content-Type must be application/json, got %q", e.got)
}

// readJSON decodes a JSON request body strictly into v.
func readJSON(r *http.Request, v any) error {
	ct := r.Header.Get("Content-Type")
	if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
		return &unsupportedMedia{got: ct}
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return fmt.Errorf("read body: %w", asInvalid(err))
	}
	return events.Unmarshal(integralNumbers(body), v)
}

// integralNumbers writes the integral numbers of a JSON body that carry a
// fraction or an exponent (6.0, 1e3) as integers: JSON Schema counts them
// as integers, and a client's JSON library may write them so; the decoder
// would refuse them for an integer field. Bodies without a digit followed
// by '.', 'e' or 'E' are returned as they are.
func integralNumbers(body []byte) []byte {
	if !mayHoldAFraction(body) {
		return body
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if dec.Decode(&v) != nil || dec.More() {
		return body // the strict decoder says what is wrong with it
	}
	changed := false
	var walk func(v any) any
	walk = func(v any) any {
		switch v := v.(type) {
		case map[string]any:
			for k, e := range v {
				v[k] = walk(e)
			}
		case []any:
			for i, e := range v {
				v[i] = walk(e)
			}
		case json.Number:
			s := v.String()
			if !strings.ContainsAny(s, ".eE") {
				return v
			}
			// Only what a float64 holds exactly: 1e400 is left to the
			// decoder to refuse, not expanded to 400 digits.
			if f, err := strconv.ParseFloat(s, 64); err == nil && f == math.Trunc(f) && math.Abs(f) <= 1<<53 {
				changed = true
				return json.Number(strconv.FormatInt(int64(f), 10))
			}
		}
		return v
	}
	v = walk(v)
	if !changed {
		return body
	}
	out, err := json.Marshal(v)
	if err != nil {
		return body
	}
	return out
}

// asInvalid keeps a too-large body recognisable and makes any other read
// failure the client's.
func asInvalid(err error) error {
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return err
	}
	return domain.Errorf(domain.KindInvalid, "read body: %v", err)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Flush lets the notifications stream push each event out.
func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the connection.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// contentSecurityPolicy lets the UI load its own files and nothing else:
// no inline script or style, no framing (frame-ancestors), no plugins.
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// setSecurityHeaders goes on every answer, the UI's and the API's alike.
func setSecurityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
}

func newKey() string { return Source + " " + uuid.NewString() }
