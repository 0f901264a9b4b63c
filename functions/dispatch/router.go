// Package dispatch routes CloudEvents to functions by event type, the way a
// Knative Trigger filters on type, and relays what they emit: each handler
// stores its state change and the events it emits in one write (an order's
// outbox), and the relay delivers them afterwards, over whichever transport
// is wired in. Cross-cutting behaviour (recovering from panics, logging,
// counting, relaying) is middleware wrapped around the handlers, not code
// inside them.
package dispatch

import (
	"context"
	"fmt"
	"sort"

	cloudevents "github.com/cloudevents/sdk-go/v2"

	"github.com/cupcake-factory/cupcake-factory/domain"
)

// Handler is a CloudEvents function. What it answers is not returned: it is
// stored in the order's outbox with the state change, and relayed.
type Handler func(ctx context.Context, e cloudevents.Event) error

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
func (r *Router) Handle(ctx context.Context, e cloudevents.Event) error {
	h, ok := r.handlers[e.Type()]
	if !ok {
		return domain.Errorf(domain.KindInvalid, "no function here handles event type %q (handled: %v)", e.Type(), r.Types())
	}
	if err := h(ctx, e); err != nil {
		return fmt.Errorf("%s: %w", r.names[e.Type()], err)
	}
	return nil
}

// Publish hands e to its handler: the router as the way into the functions
// of this process.
func (r *Router) Publish(ctx context.Context, e cloudevents.Event) error { return r.Handle(ctx, e) }
