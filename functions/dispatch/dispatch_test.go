package dispatch_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"

	"github.com/cupcake-factory/cupcake-factory/domain"
	"github.com/cupcake-factory/cupcake-factory/events"
	"github.com/cupcake-factory/cupcake-factory/functions"
	"github.com/cupcake-factory/cupcake-factory/functions/dispatch"
	"github.com/cupcake-factory/cupcake-factory/functions/internal/fntest"
	"github.com/cupcake-factory/cupcake-factory/functions/relay"
	"github.com/cupcake-factory/cupcake-factory/infra/bolt"
	"github.com/cupcake-factory/cupcake-factory/infra/notify"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func ev(t *testing.T, typ string) cloudevents.Event {
	return fntest.Event(t, typ, "o-1", events.KitchenStep{OrderID: "o-1", By: "x"})
}

// counting returns a handler that counts its calls and returns err.
func counting(calls *int, err error) dispatch.Handler {
	return func(context.Context, cloudevents.Event) (domain.Order, error) {
		*calls++
		return domain.Order{}, err
	}
}

func TestRouterRefusesATypeNoFunctionHandles(t *testing.T) {
	r := dispatch.NewRouter()
	var calls int
	r.Register(events.TypeMixed, "mixed", counting(&calls, nil))
	_, err := r.Handle(context.Background(), ev(t, events.TypeBaked))
	if domain.KindOf(err) != domain.KindInvalid {
		t.Fatalf("err = %v, want invalid", err)
	}
	if calls != 0 {
		t.Error("handler called")
	}
	if !r.Handles(events.TypeMixed) || r.Handles(events.TypeBaked) || !slices.Equal(r.Types(), []string{events.TypeMixed}) {
		t.Errorf("Handles/Types disagree with what was registered: %v", r.Types())
	}
}

func TestRouterNamesTheFunctionInAnErrorAndKeepsItsKind(t *testing.T) {
	r := dispatch.NewRouter()
	var calls int
	r.Register(events.TypeMixed, "mixed", counting(&calls, domain.Errorf(domain.KindConflict, "order o-1 is shipped")))
	_, err := r.Handle(context.Background(), ev(t, events.TypeMixed))
	if domain.KindOf(err) != domain.KindConflict || !strings.HasPrefix(err.Error(), "mixed: ") {
		t.Fatalf("err = %v, want a conflict naming mixed", err)
	}
}

func TestRegisterWrapsMiddlewareOutermostFirst(t *testing.T) {
	var trace []string
	mark := func(name string) dispatch.Middleware {
		return func(next dispatch.Handler) dispatch.Handler {
			return func(ctx context.Context, e cloudevents.Event) (domain.Order, error) {
				trace = append(trace, name+" in")
				o, err := next(ctx, e)
				trace = append(trace, name+" out")
				return o, err
			}
		}
	}
	r := dispatch.NewRouter()
	r.Register(events.TypeMixed, "mixed", func(context.Context, cloudevents.Event) (domain.Order, error) {
		trace = append(trace, "handler")
		return domain.Order{}, nil
	}, mark("a"), mark("b"))
	if _, err := r.Handle(context.Background(), ev(t, events.TypeMixed)); err != nil {
		t.Fatal(err)
	}
	if want := []string{"a in", "b in", "handler", "b out", "a out"}; !slices.Equal(trace, want) {
		t.Errorf("trace %v, want %v", trace, want)
	}
}

func TestRecoverTurnsAPanicIntoAnInternalError(t *testing.T) {
	r := dispatch.NewRouter()
	r.Register(events.TypeMixed, "mixed", func(context.Context, cloudevents.Event) (domain.Order, error) {
		panic("boom")
	}, dispatch.Recover(quiet), dispatch.Log(quiet))
	_, err := r.Handle(context.Background(), ev(t, events.TypeMixed))
	if err == nil || domain.KindOf(err) != domain.KindInternal {
		t.Fatalf("err = %v, want internal", err)
	}
}

func TestLogLogsEachOutcomeAtItsLevel(t *testing.T) {
	tests := []struct {
		name      string
		err       error
		wantLevel string
		wantMsg   string
	}{
		{"handled", nil, "DEBUG", "handled event"},
		{"refused", domain.Errorf(domain.KindConflict, "order o-1 is shipped"), "WARN", "refused event"},
		{"invalid", &events.ValidationError{Problems: []string{"orderId is required"}}, "WARN", "refused event"},
		{"failed", errors.New("store down"), "ERROR", "event failed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
			var calls int
			h := dispatch.Log(log)(counting(&calls, tt.err))
			if _, err := h(context.Background(), ev(t, events.TypeMixed)); err != tt.err {
				t.Errorf("err = %v, want the handler's %v", err, tt.err)
			}
			out := buf.String()
			if !strings.Contains(out, "level="+tt.wantLevel) || !strings.Contains(out, tt.wantMsg) ||
				!strings.Contains(out, "type="+events.TypeMixed) || !strings.Contains(out, "subject=o-1") {
				t.Errorf("log:\n%s\nwant %s %q with the type and subject", out, tt.wantLevel, tt.wantMsg)
			}
		})
	}
}

// observed records what Count reports.
type observed struct{ function, typ, outcome string }

type observer struct{ got []observed }

func (o *observer) ObserveEvent(function, typ, outcome string, took time.Duration) {
	o.got = append(o.got, observed{function, typ, outcome})
}

func TestCountReportsEachEventByFunctionTypeAndOutcome(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"handled", nil, "handled"},
		{"refused", domain.Errorf(domain.KindConflict, "order o-1 is shipped"), "refused"},
		{"invalid", &events.ValidationError{Problems: []string{"x"}}, "refused"},
		{"not found", domain.Errorf(domain.KindNotFound, "order o-1 not found"), "refused"},
		{"failed", errors.New("store down"), "failed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var o observer
			r := dispatch.NewRouter()
			var calls int
			r.Register(events.TypeMixed, "mixed", counting(&calls, tt.err), dispatch.Count(&o, "mixed"))
			_, _ = r.Handle(context.Background(), ev(t, events.TypeMixed))
			want := []observed{{"mixed", events.TypeMixed, tt.want}}
			if !slices.Equal(o.got, want) {
				t.Errorf("observed %v, want %v", o.got, want)
			}
		})
	}
}

// pipeline wires the functions named (all of them if none) over an
// embedded store, with the live hub as the relay's publisher, as the App
// wires one process.
func pipeline(t *testing.T, auto bool, only ...string) (*dispatch.Dispatcher, *bolt.Store, *notify.Stream) {
	t.Helper()
	s := fntest.Store(t)
	hub, stream := fntest.Hub(t)
	rl := relay.New(s, hub, quiet)
	d := &dispatch.Dispatcher{Router: dispatch.NewRouter(), Relay: rl, Log: quiet}
	rl.HandOn, rl.Takes = true, d.Router.Handles
	for _, step := range events.Pipeline {
		if len(only) > 0 && !slices.Contains(only, step.Function) {
			continue
		}
		h, err := functions.New(step, s, auto)
		if err != nil {
			t.Fatal(err)
		}
		d.Router.Register(step.Takes, step.Function, h, dispatch.Recover(quiet))
	}
	return d, s, stream
}

func orderCreated(t *testing.T) cloudevents.Event {
	return fntest.Event(t, events.TypeOrderCreated, "o-1", events.OrderCreated{OrderID: "o-1", CustomerID: "alice",
		Items: []events.Item{{Flavour: "vanilla", Size: "M", Quantity: 6}}})
}

// The whole pipeline in one process: one order.created runs every
// function, each step's event handed on by the relay, the live hub hears
// every state change in order, the reply is the order's end, and nothing
// is left in the outbox.
func TestTheDispatcherRunsTheWholePipelineInProcess(t *testing.T) {
	for _, auto := range []bool{true, false} {
		t.Run(map[bool]string{true: "auto", false: "manual"}[auto], func(t *testing.T) {
			d, s, stream := pipeline(t, auto)
			reply, err := d.Handle(context.Background(), orderCreated(t))
			if err != nil {
				t.Fatal(err)
			}
			o := fntest.Order(t, s, "o-1")
			wantStatuses := []string{events.StatusCreated, events.StatusApproved}
			wantReply := ""
			if auto {
				for _, k := range events.Kitchen() {
					wantStatuses = append(wantStatuses, k.Records)
				}
				wantStatuses = append(wantStatuses, events.StatusShipped)
				wantReply = events.TypeShipped
			}
			if got := fntest.Statuses(o); !slices.Equal(got, wantStatuses) || len(o.Outbox) != 0 {
				t.Errorf("history %v with %d messages left, want %v and none", got, len(o.Outbox), wantStatuses)
			}
			if got := typeOf(reply); got != wantReply {
				t.Errorf("reply %q, want %q", got, wantReply)
			}
			var heard []string
			for _, n := range fntest.Drain(t, stream) {
				if n.Name == "OrderStatusChanged" {
					heard = append(heard, n.Data.Status)
				}
			}
			if !slices.Equal(heard, wantStatuses) {
				t.Errorf("hub heard %v, want %v", heard, wantStatuses)
			}
			wantAvailable := int64(10000 - 1200)
			if got := fntest.Available(t, s, "alice"); got != wantAvailable {
				t.Errorf("alice has %d available, want %d", got, wantAvailable)
			}
		})
	}
}

func typeOf(e *cloudevents.Event) string {
	if e == nil {
		return ""
	}
	return e.Type()
}

// One function per process, as Knative runs it: the reply is the event
// the function emitted for the next one, delivered once it is the HTTP
// answer; the same CloudEvent again (Knative lost that answer) answers the
// same reply, with the same id.
func TestAOneFunctionProcessRepliesWithTheNextStepsEventAndTheSameOneAgainOnRedelivery(t *testing.T) {
	d, s, _ := pipeline(t, true, events.FuncOrderCreated)
	e := orderCreated(t)
	first, err := d.Handle(context.Background(), e)
	if err != nil || typeOf(first) != events.TypeCreditValidated {
		t.Fatalf("reply %q, %v; want %s", typeOf(first), err, events.TypeCreditValidated)
	}
	if o := fntest.Order(t, s, "o-1"); len(o.Outbox) != 0 {
		t.Errorf("outbox %d messages; want none once the reply is the answer", len(o.Outbox))
	}
	again, err := d.Handle(context.Background(), e)
	if err != nil || again == nil || events.Key(*again) != events.Key(*first) || string(again.Data()) != string(first.Data()) {
		t.Fatalf("the same event again: reply %v, %v; want the first reply %s again", again, err, events.Key(*first))
	}
	if got := fntest.Available(t, s, "alice"); got != 10000-1200 {
		t.Errorf("alice has %d available, want 1200 reserved once", got)
	}
}

// A step later in the chain that refuses its event for good (here: an
// order whose credit was refused reaches the kitchen): the caller's event
// was handled, and the refused event leaves the outbox with what led to it.
func TestALaterStepsRefusalLeavesTheCallerAnsweredAndDropsItsEvent(t *testing.T) {
	d, s, _ := pipeline(t, true, events.FuncOrderCreated, events.FuncMixed)
	refuse := func(context.Context, cloudevents.Event) (domain.Order, error) {
		return domain.Order{}, domain.Errorf(domain.KindConflict, "not now")
	}
	d.Router.Register(events.TypeCreditValidated, events.FuncCreditValidated, refuse)
	reply, err := d.Handle(context.Background(), orderCreated(t))
	if err != nil || reply != nil {
		t.Fatalf("reply %v, %v; want none and no error", reply, err)
	}
	if o := fntest.Order(t, s, "o-1"); len(o.Outbox) != 0 {
		t.Errorf("%d messages left; want the refused event dropped", len(o.Outbox))
	}
}

func TestTheCallersOwnEventsErrorIsReturned(t *testing.T) {
	d, _, _ := pipeline(t, true)
	e := fntest.Event(t, events.TypeOrderCreated, "o-1", events.OrderCreated{CustomerID: "alice"})
	if _, err := d.Handle(context.Background(), e); !events.IsValidation(err) {
		t.Fatalf("err = %v; want the validation error", err)
	}
}
