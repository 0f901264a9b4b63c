// Package dispatch routes CloudEvents to functions by event type, the way a
// Knative Trigger filters on type, and runs the chain of a process: each
// handler stores its state change and the events it emits in one write (an
// order's outbox) and returns the order as written; the Dispatcher has the
// relay deliver that outbox, and hands an event the relay hands back to
// the function here that takes it. Cross-cutting behaviour (recovering
// from panics, logging, counting, tracing) is middleware wrapped around the
// handlers, not code inside them.
package dispatch

import (
	"context"
	"fmt"
	"sort"

	cloudevents "github.com/cloudevents/sdk-go/v2"

	"github.com/cupcake-factory/cupcake-factory/domain"
)

// Handler is a CloudEvents function. It returns the order as its write
// stored it, whose outbox holds what it answers (the zero Order if it
// wrote nothing: a redelivery with nothing to send again).
type Handler func(ctx context.Context, e cloudevents.Event) (domain.Order, error)

// Middleware wraps a handler.
type Middleware func(Handler) Handler

// Router maps event types to handlers.
type Router struct {
	handlers map[string]Handler
	names    map[string]string
}

// NewRouter returns an empty router.
func NewRouter() *Router {
	return &Router{handlers: map[string]Handler{}, names: map[string]string{}}
}

// Register routes events of type t to h, wrapped in mw (outermost first);
// name is the function's name, for logs and errors.
func (r *Router) Register(t, name string, h Handler, mw ...Middleware) {
	for i := len(mw) - 1; i >= 0; i-- {
		h = mw[i](h)
	}
	r.handlers[t] = h
	r.names[t] = name
}

// Handles reports whether a handler is registered for t.
func (r *Router) Handles(t string) bool {
	_, ok := r.handlers[t]
	return ok
}

// Types lists the registered event types.
func (r *Router) Types() []string {
	out := make([]string, 0, len(r.handlers))
	for t := range r.handlers {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

// Handle routes e to the handler for its type. An event of a type no
// handler here takes is refused as invalid.
func (r *Router) Handle(ctx context.Context, e cloudevents.Event) (domain.Order, error) {
	h, ok := r.handlers[e.Type()]
	if !ok {
		return domain.Order{}, domain.Errorf(domain.KindInvalid, "no function here handles event type %q (handled: %v)", e.Type(), r.Types())
	}
	o, err := h(ctx, e)
	if err != nil {
		return o, fmt.Errorf("%s: %w", r.names[e.Type()], err)
	}
	return o, nil
}
