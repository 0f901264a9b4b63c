// Package dispatch routes CloudEvents to functions by event type, the way a
// Knative Trigger filters on type. Cross-cutting behaviour (recovering from
// panics, skipping redelivered events, logging) is middleware wrapped around
// the handlers, not code inside them.
package dispatch

import (
	"context"
	"fmt"
	"sort"

	cloudevents "github.com/cloudevents/sdk-go/v2"

	"github.com/cupcake-factory/cupcake-factory/domain"
)

// Handler is a CloudEvents function: an event in, at most one reply out.
type Handler func(ctx context.Context, e cloudevents.Event) (*cloudevents.Event, error)

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
func (r *Router) Handle(ctx context.Context, e cloudevents.Event) (*cloudevents.Event, error) {
	h, ok := r.handlers[e.Type()]
	if !ok {
		return nil, domain.Errorf(domain.KindInvalid, "no function here handles event type %q (handled: %v)", e.Type(), r.Types())
	}
	reply, err := h(ctx, e)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", r.names[e.Type()], err)
	}
	return reply, nil
}
