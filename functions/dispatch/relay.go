package dispatch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"go.opentelemetry.io/otel/trace"

	"github.com/cupcake-factory/cupcake-factory/domain"
	"github.com/cupcake-factory/cupcake-factory/telemetry"
)

// Publisher sends an event on its way: to the function that takes it, to a
// Kafka topic, to the live hub. It returns once the event is delivered or
// acknowledged.
type Publisher interface {
	Publish(ctx context.Context, e cloudevents.Event) error
}

// OutboxStore is what the relay reads and changes.
type OutboxStore interface {
	Order(ctx context.Context, id string) (domain.Order, error)
	UpdateOrder(ctx context.Context, id string, fn func(*domain.Order) error) (domain.Order, error)
	ChangeCredit(ctx context.Context, ch domain.CreditChange) (domain.Customer, error)
	Abandoned(ctx context.Context, before time.Time, lease time.Duration, limit int) ([]string, error)
}

// BatchPublisher is a Publisher that can take several events at once, in
// order, and wait for all of their acknowledgements together (Kafka's
// asynchronous producer): one error per event, nil for delivered.
type BatchPublisher interface {
	PublishAll(ctx context.Context, es []cloudevents.Event) []error
}

// ErrNoRoute is a publisher's answer for an event it has nowhere to send
// right now (a reply only a waiting HTTP caller could take). The message
// stays in the outbox: a redelivery of the event that caused it drains it
// again, and it is dropped once older than NoRouteExpiry.
var ErrNoRoute = errors.New("no route for this event here")

// Lease is how long a relay that took over an abandoned outbox has it to
// itself before another process may take it over again.
const Lease = 15 * time.Second

// NoRouteExpiry bounds how long a message nobody can take stays.
const NoRouteExpiry = 10 * time.Minute

// Relay delivers outbox messages and removes each only after its delivery:
// events through the publisher, credit releases and settlements to the
// customer (the saga's second step). Delivery is at least once; every receiver is idempotent.
// Messages of one order are delivered in order: a drain that finds one in
// flight in this process (the drain delivering it may be the caller, as
// in-process chains nest) stops there, and the drain that holds it goes on
// with the rest.
type Relay struct {
	store OutboxStore
	pub   Publisher
	log   *slog.Logger
	// Interval is how often the background round looks for messages left
	// over (by a crash, a broker that was down), and Grace how old a message
	// must be before that round takes it, so that it does not race the
	// handler that is delivering it right now.
	Interval, Grace time.Duration
	// Linger, if above 0, lets delivered messages wait up to that long to
	// be removed by the order's next write in this process (a handler's,
	// through HandOn), so that a step over Kafka costs one write, not two;
	// after that the relay removes them itself. Meanwhile they count as in
	// flight, so nobody delivers them again. A crash before the removal
	// delivers them again after the restart, which receivers absorb as they
	// absorb any redelivery. 0 removes them at once.
	Linger time.Duration

	inflight  sync.Map // message id → struct{}
	mu        sync.Mutex
	lingering map[string]*lingering // by order id
}

// lingering are an order's messages delivered and not removed yet.
type lingering struct {
	ids   []string
	since time.Time
}

// NewRelay returns a relay delivering through pub.
func NewRelay(s OutboxStore, pub Publisher, log *slog.Logger) *Relay {
	return &Relay{store: s, pub: pub, log: log, Interval: time.Second, Grace: 3 * time.Second,
		lingering: map[string]*lingering{}}
}

// linger keeps delivered messages of an order claimed until they are removed.
func (r *Relay) linger(orderID string, ids []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	l, ok := r.lingering[orderID]
	if !ok {
		l = &lingering{since: time.Now()}
		r.lingering[orderID] = l
	}
	l.ids = append(l.ids, ids...)
}

// takeLingering hands an order's delivered messages to the write that
// removes them.
func (r *Relay) takeLingering(orderID string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	l, ok := r.lingering[orderID]
	if !ok {
		return nil
	}
	delete(r.lingering, orderID)
	return l.ids
}

// removed releases the claims of messages no longer in the outbox.
func (r *Relay) removed(ids []string) {
	for _, id := range ids {
		r.inflight.Delete(id)
	}
}

// withoutLingering drops from o's outbox what was delivered already.
func (r *Relay) withoutLingering(o domain.Order) domain.Order {
	r.mu.Lock()
	l, ok := r.lingering[o.ID]
	var ids []string
	if ok {
		ids = slices.Clone(l.ids)
	}
	r.mu.Unlock()
	if len(ids) > 0 {
		o.Outbox = slices.DeleteFunc(slices.Clone(o.Outbox), func(m domain.Message) bool { return slices.Contains(ids, m.ID) })
	}
	return o
}

// flush removes the messages that lingered longer than Linger (all of
// them if all is set), each order in one write.
func (r *Relay) flush(ctx context.Context, all bool) {
	r.mu.Lock()
	due := map[string][]string{}
	for id, l := range r.lingering {
		if all || time.Since(l.since) >= r.Linger {
			due[id] = l.ids
			delete(r.lingering, id)
		}
	}
	r.mu.Unlock()
	// At once, so that the writes share commits.
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	for id, ids := range due {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			_, err := r.store.UpdateOrder(ctx, id, func(o *domain.Order) error {
				o.Delivered(ids...)
				return nil
			})
			if err != nil && domain.KindOf(err) != domain.KindNotFound {
				r.log.WarnContext(ctx, "relay: remove delivered messages; will retry", "order", id, "error", err)
				r.linger(id, ids)
				return
			}
			r.removed(ids)
		})
	}
	wg.Wait()
}

// Drain delivers the messages of one order's outbox, oldest first. Right
// after a handler's write (see DrainAfter and HandOn) it starts from the
// order as that write stored it instead of reading it again.
func (r *Relay) Drain(ctx context.Context, orderID string) error {
	o, ok := takeWritten(ctx, orderID)
	if !ok {
		var err error
		if o, err = r.store.Order(ctx, orderID); err != nil {
			return err
		}
	}
	var err error
	for o = r.withoutLingering(o); len(o.Outbox) > 0; o = r.withoutLingering(o) {
		done, claimed, taken, failed := r.deliverAll(ctx, o)
		if taken {
			// The handler that took the last one removed the messages
			// delivered so far in its own write, and its own drain has
			// gone on with the order's outbox.
			for _, id := range claimed {
				r.inflight.Delete(id)
			}
			return nil
		}
		switch {
		case len(done) > 0 && r.Linger > 0:
			// Removed later, with the order's next write; read on to
			// deliver what was added meanwhile.
			r.linger(orderID, done)
			claimed = slices.DeleteFunc(claimed, func(id string) bool { return slices.Contains(done, id) })
			o, err = r.store.Order(ctx, orderID)
		case len(done) > 0:
			o, err = r.store.UpdateOrder(ctx, orderID, func(o *domain.Order) error {
				o.Delivered(done...)
				return nil
			})
		}
		r.removed(claimed)
		switch {
		case failed != nil:
			return failed
		case err != nil:
			return fmt.Errorf("remove delivered messages of order %s: %w", orderID, err)
		case len(done) == 0:
			return nil // the rest is in flight elsewhere or waits for a caller
		}
	}
	return nil
}

// deliverAll delivers o's messages in order until one fails, or until a
// handler in this process took one and, with it, the ones before (taken).
// With a BatchPublisher, consecutive events go out together.
func (r *Relay) deliverAll(ctx context.Context, o domain.Order) (done, claimed []string, taken bool, failed error) {
	for i := 0; i < len(o.Outbox); {
		run := r.claim(o.Outbox[i:])
		if len(run) == 0 {
			// Another drain is delivering the next one: what follows waits
			// for it, and that drain goes on with the rest once it is done.
			return done, claimed, false, nil
		}
		for _, m := range run {
			claimed = append(claimed, m.ID)
		}
		i += len(run)
		if len(run) > 1 {
			for k, err := range r.publishAll(ctx, run) {
				ok, err := r.outcome(ctx, o, run[k], err)
				if err != nil {
					// Later ones may have gone out too; they stay in the
					// outbox and go again (receivers are idempotent).
					return done, claimed, false, err
				}
				if ok {
					done = append(done, run[k].ID)
				}
			}
			continue
		}
		m := run[0]
		d := &delivery{orderID: o.ID, ids: append(slices.Clone(done), m.ID)}
		err := r.deliver(context.WithValue(ctx, deliveryKey{}, d), o, m)
		if err == nil && d.taken {
			return done, claimed, true, nil
		}
		ok, err := r.outcome(ctx, o, m, err)
		if err != nil {
			return done, claimed, false, err
		}
		if ok {
			done = append(done, m.ID)
		}
	}
	return done, claimed, false, nil
}

// claim marks the next messages as in flight in this process: one, or with
// a BatchPublisher the consecutive events from the first on. It claims none
// if the first is already in flight.
func (r *Relay) claim(ms []domain.Message) []domain.Message {
	_, batch := r.pub.(BatchPublisher)
	var run []domain.Message
	for _, m := range ms {
		if len(run) > 0 && (!batch || m.OnCustomer() || run[0].OnCustomer()) {
			break
		}
		if _, busy := r.inflight.LoadOrStore(m.ID, struct{}{}); busy {
			break
		}
		run = append(run, m)
	}
	return run
}

// publishAll hands events to the BatchPublisher at once, each in a span of
// its own continuing the trace the message was emitted in.
func (r *Relay) publishAll(ctx context.Context, run []domain.Message) []error {
	es := make([]cloudevents.Event, 0, len(run))
	var spans []trace.Span
	for _, m := range run {
		e, err := domain.DecodeMessage(m)
		if err != nil {
			errs := make([]error, len(run))
			for k := range errs {
				errs[k] = err
			}
			for _, span := range spans {
				telemetry.End(span, err)
			}
			return errs
		}
		if telemetry.Enabled() {
			_, span := startDelivery(ctx, m, &e)
			spans = append(spans, span)
		}
		es = append(es, e)
	}
	errs := r.pub.(BatchPublisher).PublishAll(ctx, es)
	for k, span := range spans {
		telemetry.End(span, errs[k])
	}
	return errs
}

// startDelivery starts the span of a message's delivery, as a child of the
// span that emitted it (stored with the message) if there is one, and puts
// its context into the event it delivers (e, nil for a saga step).
func startDelivery(ctx context.Context, m domain.Message, e *cloudevents.Event) (context.Context, trace.Span) {
	ctx = telemetry.Decode(ctx, m.TraceParent, m.TraceState)
	name := "relay release"
	switch {
	case e != nil:
		name = "relay " + e.Type()
	case m.Settle > 0:
		name = "relay settle"
	}
	ctx, span := telemetry.Start(ctx, name, trace.SpanKindProducer)
	if e != nil {
		telemetry.Inject(ctx, e)
		if span.IsRecording() {
			span.SetAttributes(telemetry.AttrEventType.String(e.Type()), telemetry.AttrEventID.String(e.ID()), telemetry.AttrOrder.String(e.Subject()))
		}
	}
	return ctx, span
}

// outcome decides what a delivery's result means for message m: done (to
// remove), kept for later, or a failure that stops the drain.
func (r *Relay) outcome(ctx context.Context, o domain.Order, m domain.Message, err error) (bool, error) {
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, ErrNoRoute):
		if time.Since(m.At) > NoRouteExpiry {
			r.log.WarnContext(ctx, "dropping an outbox message nobody took", "order", o.ID, "message", m.ID)
			return true, nil
		}
		return false, nil
	case domain.Permanent(err):
		// Refused for good (the order moved on meanwhile): as a consumer
		// dead-letters it, the relay drops it with the reason.
		r.log.WarnContext(ctx, "outbox message refused; dropped", "order", o.ID, "message", m.ID, "error", err)
		return true, nil
	}
	return false, fmt.Errorf("deliver outbox message %s of order %s: %w", m.ID, o.ID, err)
}

func (r *Relay) deliver(ctx context.Context, o domain.Order, m domain.Message) (err error) {
	if m.OnCustomer() {
		if telemetry.Enabled() {
			var span trace.Span
			ctx, span = startDelivery(ctx, m, nil)
			defer func() { telemetry.End(span, err) }()
		}
		// Once: a second release or settlement finds nothing held.
		ch := domain.Settle(o.CustomerID, o.ID, m.Settle)
		if m.Release > 0 {
			ch = domain.Release(o.CustomerID, o.ID, m.Release)
		}
		_, err := r.store.ChangeCredit(ctx, ch)
		if domain.KindOf(err) == domain.KindNotFound {
			return nil
		}
		return err
	}
	e, err := domain.DecodeMessage(m)
	if err != nil {
		return err
	}
	if telemetry.Enabled() {
		var span trace.Span
		ctx, span = startDelivery(ctx, m, &e)
		defer func() { telemetry.End(span, err) }()
	}
	return r.pub.Publish(ctx, e)
}

// delivery is what a drain tells the handler of an event it delivers in
// this process: the messages of the order delivered so far, that event's
// included.
type delivery struct {
	orderID string
	ids     []string
	taken   bool // the handler's write removed them
}

type deliveryKey struct{}

// written holds the order as a handler's write stored it, for the drain
// that follows the handler (DrainAfter puts one in the context).
type written struct{ order *domain.Order }

type writtenKey struct{}

func withWritten(ctx context.Context) context.Context {
	return context.WithValue(ctx, writtenKey{}, &written{})
}

// takeWritten returns, once, the order the handler wrote, if it is orderID.
func takeWritten(ctx context.Context, orderID string) (domain.Order, bool) {
	w, _ := ctx.Value(writtenKey{}).(*written)
	if w == nil || w.order == nil || w.order.ID != orderID {
		return domain.Order{}, false
	}
	o := *w.order
	w.order = nil
	return o, true
}

// HandOn wraps the store the functions write through, so that a handler
// and the relay hand an order on instead of writing and reading it again
// (and a handler's write removes what lingered, see Linger):
//   - when a drain delivers an order's event to a handler in this process,
//     the handler's unit of work on that order also removes the messages
//     delivered so far (they are done once that write is stored), and the
//     drain writes nothing: a step of an in-process chain is one write;
//   - the drain that follows a handler (DrainAfter) starts from the order
//     as the handler's write stored it, without reading it back.
//
// A unit of work that fails (a duplicate, a refusal) removes nothing and
// hands nothing on; the drain then removes the messages and reads the
// order as usual.
func (r *Relay) HandOn(s domain.Store) domain.Store { return handOn{Store: s, relay: r} }

type handOn struct {
	domain.Store
	relay *Relay
}

func (s handOn) UpdateOrder(ctx context.Context, id string, fn func(*domain.Order) error) (domain.Order, error) {
	d, _ := ctx.Value(deliveryKey{}).(*delivery)
	take := d != nil && d.orderID == id && !d.taken
	lingered := s.relay.takeLingering(id)
	o, err := s.Store.UpdateOrder(ctx, id, func(o *domain.Order) error {
		if err := fn(o); err != nil {
			return err
		}
		if take {
			o.Delivered(d.ids...)
		}
		o.Delivered(lingered...)
		return nil
	})
	if err != nil {
		if len(lingered) > 0 {
			s.relay.linger(id, lingered)
		}
		return o, err
	}
	s.relay.removed(lingered)
	if take {
		d.taken = true
	}
	handOver(ctx, o)
	return o, nil
}

func (s handOn) CreateOrder(ctx context.Context, o domain.Order) (domain.Order, bool, error) {
	stored, created, err := s.Store.CreateOrder(ctx, o)
	if err == nil {
		handOver(ctx, stored)
	}
	return stored, created, err
}

func handOver(ctx context.Context, o domain.Order) {
	if w, _ := ctx.Value(writtenKey{}).(*written); w != nil {
		w.order = &o
	}
}

// Run delivers what earlier runs left in the outboxes: everything at once
// at start-up, then every Interval what is older than Grace, until ctx ends.
// Removals that lingered are done every Linger, and all at once when ctx ends.
func (r *Relay) Run(ctx context.Context) {
	if r.Linger > 0 {
		var flushing sync.WaitGroup
		defer flushing.Wait() // the last flush is done before Run returns
		flushing.Go(func() {
			t := time.NewTicker(r.Linger)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					r.flush(context.WithoutCancel(ctx), true)
					return
				case <-t.C:
					r.flush(ctx, false)
				}
			}
		})
	}
	grace := time.Duration(0)
	for {
		r.round(ctx, grace)
		grace = r.Grace
		select {
		case <-ctx.Done():
			return
		case <-time.After(r.Interval):
		}
	}
}

// round delivers the outboxes older than grace that this relay could
// claim (see domain.Store.Abandoned): of several processes sharing the
// store, one delivers each, and what a round costs the store depends on
// how much was abandoned, not on how many orders are in flight.
func (r *Relay) round(ctx context.Context, grace time.Duration) {
	ids, err := r.store.Abandoned(ctx, time.Now().Add(-grace), Lease, 1000)
	if err != nil {
		r.log.WarnContext(ctx, "relay: claim abandoned outboxes", "error", err)
	}
	for _, id := range ids {
		if ctx.Err() != nil {
			return
		}
		if err := r.Drain(ctx, id); err != nil {
			r.log.WarnContext(ctx, "relay: outbox not delivered yet", "order", id, "error", err)
		}
	}
}
