package dispatch

import (
	"context"

	cloudevents "github.com/cloudevents/sdk-go/v2"

	"github.com/cupcake-factory/cupcake-factory/domain"
)

// MaxChain bounds how many replies one event may lead to in-process, so a
// handler that answered its own type could not loop forever.
const MaxChain = 16

// Local is the in-process transport: it hands an event to its handler and
// feeds each reply back into routing while a handler here takes it. The
// first reply no handler here takes is returned, for the caller to route
// (Knative does that with a function's reply) or to report.
type Local struct {
	Router *Router
}

// Dispatch handles e and its chain of replies.
func (l Local) Dispatch(ctx context.Context, e cloudevents.Event) (*cloudevents.Event, error) {
	for range MaxChain {
		reply, err := l.Router.Handle(ctx, e)
		if err != nil || reply == nil || !l.Router.Handles(reply.Type()) {
			return reply, err
		}
		e = *reply
	}
	return nil, domain.Errorf(domain.KindInternal, "event %s led to more than %d replies", e.ID(), MaxChain)
}
