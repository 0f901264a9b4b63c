package dispatch_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"

	"github.com/cupcake-factory/cupcake-factory/domain"
	"github.com/cupcake-factory/cupcake-factory/events"
	"github.com/cupcake-factory/cupcake-factory/functions"
	"github.com/cupcake-factory/cupcake-factory/functions/dispatch"
	"github.com/cupcake-factory/cupcake-factory/functions/internal/fntest"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func ev(t *testing.T, typ string) cloudevents.Event {
	return fntest.Event(t, typ, "o-1", events.KitchenStep{OrderID: "o-1", By: "x"})
}

// counting returns a handler that counts its calls and returns err.
func counting(calls *int, err error) dispatch.Handler {
	return func(context.Context, cloudevents.Event) error {
		*calls++
		return err
	}
}

// recorder is a Publisher keeping the types of what it was given.
type recorder struct {
	mu    sync.Mutex
	types []string
}

func (r *recorder) Publish(_ context.Context, e cloudevents.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.types = append(r.types, e.Type())
	return nil
}

func (r *recorder) got() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.types)
}

func TestRouterRefusesATypeNoFunctionHandles(t *testing.T) {
	r := dispatch.NewRouter()
	var calls int
	r.Register(events.TypeMixed, "mixed", counting(&calls, nil))
	err := r.Handle(context.Background(), ev(t, events.TypeBaked))
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
	err := r.Handle(context.Background(), ev(t, events.TypeMixed))
	if domain.KindOf(err) != domain.KindConflict || !strings.HasPrefix(err.Error(), "mixed: ") {
		t.Fatalf("err = %v, want a conflict naming mixed", err)
	}
}

func TestRegisterWrapsMiddlewareOutermostFirst(t *testing.T) {
	var trace []string
	mark := func(name string) dispatch.Middleware {
		return func(next dispatch.Handler) dispatch.Handler {
			return func(ctx context.Context, e cloudevents.Event) error {
				trace = append(trace, name+" in")
				err := next(ctx, e)
				trace = append(trace, name+" out")
				return err
			}
		}
	}
	r := dispatch.NewRouter()
	r.Register(events.TypeMixed, "mixed", func(context.Context, cloudevents.Event) error {
		trace = append(trace, "handler")
		return nil
	}, mark("a"), mark("b"))
	if err := r.Handle(context.Background(), ev(t, events.TypeMixed)); err != nil {
		t.Fatal(err)
	}
	if want := []string{"a in", "b in", "handler", "b out", "a out"}; !slices.Equal(trace, want) {
		t.Errorf("trace %v, want %v", trace, want)
	}
}

func TestRecoverTurnsAPanicIntoAnInternalError(t *testing.T) {
	r := dispatch.NewRouter()
	r.Register(events.TypeMixed, "mixed", func(context.Context, cloudevents.Event) error {
		panic("boom")
	}, dispatch.Recover(quiet), dispatch.Log(quiet))
	err := r.Handle(context.Background(), ev(t, events.TypeMixed))
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
			if err := h(context.Background(), ev(t, events.TypeMixed)); err != tt.err {
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
			_ = r.Handle(context.Background(), ev(t, events.TypeMixed))
			want := []observed{{"mixed", events.TypeMixed, tt.want}}
			if !slices.Equal(o.got, want) {
				t.Errorf("observed %v, want %v", o.got, want)
			}
		})
	}
}

// drainer records the orders it was asked to drain.
type drainer struct {
	orders []string
	err    error
}

func (d *drainer) Drain(_ context.Context, id string) error {
	d.orders = append(d.orders, id)
	return d.err
}

func TestDrainAfterDeliversTheOrdersOutboxOnceTheHandlerStoredItsWork(t *testing.T) {
	tests := []struct {
		name       string
		handlerErr error
		drainErr   error
		wantErr    bool
		wantDrain  []string
	}{
		{"handled: drained", nil, nil, false, []string{"o-1"}},
		{"handled, delivery failed: the event is still done", nil, errors.New("broker down"), false, []string{"o-1"}},
		{"refused: nothing drained", domain.Errorf(domain.KindConflict, "no"), nil, true, nil},
		{"failed: nothing drained", errors.New("store down"), nil, true, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := &drainer{err: tt.drainErr}
			var calls int
			err := dispatch.DrainAfter(d, quiet)(counting(&calls, tt.handlerErr))(context.Background(), ev(t, events.TypeMixed))
			if (err != nil) != tt.wantErr || (tt.wantErr && !errors.Is(err, tt.handlerErr)) {
				t.Errorf("err = %v, want the handler's %v", err, tt.handlerErr)
			}
			if !slices.Equal(d.orders, tt.wantDrain) {
				t.Errorf("drained %v, want %v", d.orders, tt.wantDrain)
			}
		})
	}
}

func TestLocalHandsAnEventToTheHandlerHereThatTakesIt(t *testing.T) {
	for _, withReply := range []bool{false, true} {
		r := dispatch.NewRouter()
		var calls int
		r.Register(events.TypeMixed, "mixed", counting(&calls, nil))
		notes := &recorder{}
		ctx, reply := context.Background(), &dispatch.Reply{}
		if withReply {
			ctx = dispatch.WithReply(ctx, reply)
		}
		if err := (dispatch.Local{Router: r, Notifier: notes}).Publish(ctx, ev(t, events.TypeMixed)); err != nil {
			t.Fatal(err)
		}
		if calls != 1 || reply.Event() != nil || len(notes.got()) != 0 {
			t.Errorf("reply waiting %v: %d calls, reply %v, notifier got %v; want handled only", withReply, calls, reply.Event(), notes.got())
		}
	}
}

func TestLocalPassesOnTheHandlersError(t *testing.T) {
	r := dispatch.NewRouter()
	var calls int
	r.Register(events.TypeMixed, "mixed", counting(&calls, domain.Errorf(domain.KindConflict, "no")))
	err := dispatch.Local{Router: r, Notifier: &recorder{}}.Publish(context.Background(), ev(t, events.TypeMixed))
	if domain.KindOf(err) != domain.KindConflict {
		t.Fatalf("err = %v, want the handler's conflict", err)
	}
}

func TestLocalKeepsTheFirstEventNoHandlerHereTakesAsTheReply(t *testing.T) {
	tests := []struct {
		name      string
		publish   []string
		wantReply string // "" = none
		wantNotes []string
	}{
		{"the first of two", []string{events.TypeBaked, events.TypeDecorated}, events.TypeBaked, nil},
		{"a status change is not a reply", []string{events.TypeStatusChanged, events.TypeCreditValidated}, events.TypeCreditValidated, []string{events.TypeStatusChanged}},
		{"a notification type is a reply and a notification", []string{events.TypeStatusChanged, events.TypeShipped},
			events.TypeShipped, []string{events.TypeStatusChanged, events.TypeShipped}},
		{"only status changes: no reply", []string{events.TypeStatusChanged, events.TypeStatusChanged}, "", []string{events.TypeStatusChanged, events.TypeStatusChanged}},
		{"an event handled here is not a reply", []string{events.TypeMixed, events.TypeCancelled}, events.TypeCancelled, []string{events.TypeCancelled}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := dispatch.NewRouter()
			var calls int
			r.Register(events.TypeMixed, "mixed", counting(&calls, nil))
			notes := &recorder{}
			var reply dispatch.Reply
			ctx := dispatch.WithReply(context.Background(), &reply)
			l := dispatch.Local{Router: r, Notifier: notes}
			for _, typ := range tt.publish {
				if err := l.Publish(ctx, ev(t, typ)); err != nil {
					t.Fatalf("publish %s: %v", typ, err)
				}
			}
			got := ""
			if e := reply.Event(); e != nil {
				got = e.Type()
			}
			if got != tt.wantReply {
				t.Errorf("reply %q, want %q", got, tt.wantReply)
			}
			if !slices.Equal(notes.got(), tt.wantNotes) {
				t.Errorf("notifier got %v, want %v", notes.got(), tt.wantNotes)
			}
		})
	}
}

func TestLocalWithNobodyWaitingHasNoRouteForAReply(t *testing.T) {
	tests := []struct {
		typ       string
		wantErr   error
		wantNotes []string
	}{
		{events.TypeCreditValidated, dispatch.ErrNoRoute, nil},
		{events.TypeStatusChanged, nil, []string{events.TypeStatusChanged}},
		{events.TypeCancelled, nil, []string{events.TypeCancelled}},
	}
	for _, tt := range tests {
		t.Run(tt.typ, func(t *testing.T) {
			notes := &recorder{}
			err := dispatch.Local{Router: dispatch.NewRouter(), Notifier: notes}.Publish(context.Background(), ev(t, tt.typ))
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Errorf("err = %v, want %v", err, tt.wantErr)
			}
			if !slices.Equal(notes.got(), tt.wantNotes) {
				t.Errorf("notifier got %v, want %v", notes.got(), tt.wantNotes)
			}
		})
	}
}

// The whole pipeline in one process, wired as the App wires it: one
// order.created runs every function through the relay, the live hub hears
// every state change in order, and nothing is left in the outbox.
func TestLocalRunsTheWholePipelineInProcess(t *testing.T) {
	for _, auto := range []bool{true, false} {
		t.Run(map[bool]string{true: "auto", false: "manual"}[auto], func(t *testing.T) {
			s := fntest.Store(t)
			hub, stream := fntest.Hub(t)
			r := dispatch.NewRouter()
			local := dispatch.Local{Router: r, Notifier: hub}
			relay := dispatch.NewRelay(s, local, quiet)
			for _, step := range events.Pipeline {
				h, err := functions.New(step, s, auto)
				if err != nil {
					t.Fatal(err)
				}
				r.Register(step.Takes, step.Function, h, dispatch.Recover(quiet), dispatch.DrainAfter(relay, quiet))
			}
			var reply dispatch.Reply
			e := fntest.Event(t, events.TypeOrderCreated, "o-1", events.OrderCreated{OrderID: "o-1", CustomerID: "alice",
				Items: []events.Item{{Flavour: "vanilla", Size: "M", Quantity: 6}}})
			if err := local.Publish(dispatch.WithReply(context.Background(), &reply), e); err != nil {
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
			got := ""
			if e := reply.Event(); e != nil {
				got = e.Type()
			}
			if got != wantReply {
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
			if got := fntest.Available(t, s, "alice"); got != 10000-1200 {
				t.Errorf("alice has %d available, want 1200 reserved", got)
			}
		})
	}
}
