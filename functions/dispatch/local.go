package dispatch

import (
	"context"
	"sync"

	cloudevents "github.com/cloudevents/sdk-go/v2"

	"github.com/cupcake-factory/cupcake-factory/events"
)

// Local is the in-process transport: an event goes to the function here
// that takes it, a notification to the notifier (the live hub, or Kafka's
// updates topic for a function that Knative calls over HTTP), and anything
// else back to the HTTP caller waiting for it (see WithReply): the first
// event no function here takes is the answer to a CloudEvent posted to
// POST /, as Knative expects a function's reply.
type Local struct {
	Router   *Router
	Notifier Publisher
}

// Publish delivers e.
func (l Local) Publish(ctx context.Context, e cloudevents.Event) error {
	if l.Router.Handles(e.Type()) {
		return l.Router.Handle(ctx, e)
	}
	captured := false
	if r, ok := ctx.Value(replyKey{}).(*Reply); ok && e.Type() != events.TypeStatusChanged {
		captured = r.set(e)
	}
	if events.IsNotification(e.Type()) {
		return l.Notifier.Publish(ctx, e)
	}
	if !captured {
		return ErrNoRoute
	}
	return nil
}

// Start has nothing to subscribe to: events arrive by Publish.
func (Local) Start(context.Context, func(context.Context, cloudevents.Event) error) error { return nil }

// Close has nothing to close.
func (Local) Close(context.Context) error { return nil }

// Reply holds the first event a chain of in-process handlers produced that
// no function here takes.
type Reply struct {
	mu    sync.Mutex
	event *cloudevents.Event
}

type replyKey struct{}

// WithReply returns a context whose in-process deliveries keep their answer in r.
func WithReply(ctx context.Context, r *Reply) context.Context {
	return context.WithValue(ctx, replyKey{}, r)
}

func (r *Reply) set(e cloudevents.Event) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.event == nil {
		r.event = &e
	}
	return true
}

// Event returns the answer, or nil.
func (r *Reply) Event() *cloudevents.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.event
}
