package dispatch_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"

	cloudevents "github.com/cloudevents/sdk-go/v2"

	"github.com/cupcake-factory/cupcake-factory/domain"
	"github.com/cupcake-factory/cupcake-factory/events"
	"github.com/cupcake-factory/cupcake-factory/functions/dispatch"
	"github.com/cupcake-factory/cupcake-factory/functions/internal/fntest"
	"github.com/cupcake-factory/cupcake-factory/infra/metrics"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func ev(t *testing.T, typ string) cloudevents.Event {
	return fntest.Event(t, typ, "o-1", events.KitchenStep{OrderID: "o-1", By: "x"})
}

// replyWith returns a handler answering with an event of type t (or none),
// counting its calls.
func replyWith(t *testing.T, typ string, calls *int) dispatch.Handler {
	return func(context.Context, cloudevents.Event) (*cloudevents.Event, error) {
		*calls++
		if typ == "" {
			return nil, nil
		}
		r := ev(t, typ)
		return &r, nil
	}
}

func TestRouterRefusesATypeNoFunctionHandles(t *testing.T) {
	r := dispatch.NewRouter()
	var calls int
	r.Register(events.TypeMixed, "mixed", replyWith(t, "", &calls))
	_, err := r.Handle(context.Background(), ev(t, events.TypeBaked))
	if domain.KindOf(err) != domain.KindInvalid {
		t.Fatalf("err = %v, want invalid", err)
	}
	if calls != 0 {
		t.Error("handler called")
	}
}

func TestLocalFeedsRepliesBackWhileAHandlerHereTakesThem(t *testing.T) {
	tests := []struct {
		name      string
		handlers  []string // types registered; each replies with the next in the list, the last with shipped
		wantReply string
		wantCalls int
	}{
		{"whole chain in-process", []string{events.TypeMixed, events.TypeBaked, events.TypeDecorated}, events.TypeShipped, 3},
		{"one function: reply returned", []string{events.TypeMixed}, events.TypeShipped, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := dispatch.NewRouter()
			var calls int
			for i, typ := range tt.handlers {
				next := events.TypeShipped
				if i+1 < len(tt.handlers) {
					next = tt.handlers[i+1]
				}
				r.Register(typ, typ, replyWith(t, next, &calls))
			}
			reply, err := dispatch.Local{Router: r}.Dispatch(context.Background(), ev(t, tt.handlers[0]))
			if err != nil {
				t.Fatal(err)
			}
			if reply == nil || reply.Type() != tt.wantReply || calls != tt.wantCalls {
				t.Errorf("reply %v after %d calls, want %s after %d", reply, calls, tt.wantReply, tt.wantCalls)
			}
		})
	}
}

func TestLocalStopsAHandlerThatAnswersItself(t *testing.T) {
	r := dispatch.NewRouter()
	var calls int
	r.Register(events.TypeMixed, "loop", replyWith(t, events.TypeMixed, &calls))
	_, err := dispatch.Local{Router: r}.Dispatch(context.Background(), ev(t, events.TypeMixed))
	if err == nil || calls != dispatch.MaxChain {
		t.Fatalf("err %v after %d calls, want an error after %d", err, calls, dispatch.MaxChain)
	}
}

func TestDedupeHandlesAnEventOnceAndRepliesTheSameEveryTime(t *testing.T) {
	s := fntest.Store(t)
	r := dispatch.NewRouter()
	var calls int
	r.Register(events.TypeMixed, "mixed", replyWith(t, events.TypeBaked, &calls), dispatch.Dedupe(s))
	e := ev(t, events.TypeMixed)
	first, err := r.Handle(context.Background(), e)
	if err != nil {
		t.Fatal(err)
	}
	second, err := r.Handle(context.Background(), e)
	if err != nil {
		t.Fatal(err)
	}
	if calls != 1 {
		t.Errorf("handler called %d times, want 1", calls)
	}
	if second == nil || second.ID() != first.ID() || second.Type() != first.Type() || string(second.Data()) != string(first.Data()) {
		t.Errorf("second reply %v, want the first %v", second, first)
	}
	// Another event with the same id from another source is another event.
	other := e.Clone()
	other.SetSource("elsewhere")
	if _, err := r.Handle(context.Background(), other); err != nil || calls != 2 {
		t.Errorf("other source: err %v, calls %d", err, calls)
	}
}

func TestDedupeDoesNotRememberAFailure(t *testing.T) {
	s := fntest.Store(t)
	r := dispatch.NewRouter()
	fail := true
	calls := 0
	r.Register(events.TypeMixed, "mixed", func(context.Context, cloudevents.Event) (*cloudevents.Event, error) {
		calls++
		if fail {
			return nil, errors.New("store down")
		}
		return nil, nil
	}, dispatch.Dedupe(s))
	e := ev(t, events.TypeMixed)
	if _, err := r.Handle(context.Background(), e); err == nil {
		t.Fatal("want the failure")
	}
	fail = false
	if _, err := r.Handle(context.Background(), e); err != nil || calls != 2 {
		t.Fatalf("retry: err %v calls %d, want handled again", err, calls)
	}
}

func TestRecoverTurnsAPanicIntoAnInternalError(t *testing.T) {
	r := dispatch.NewRouter()
	r.Register(events.TypeMixed, "mixed", func(context.Context, cloudevents.Event) (*cloudevents.Event, error) {
		panic("boom")
	}, dispatch.Recover(quiet), dispatch.Log(quiet))
	_, err := r.Handle(context.Background(), ev(t, events.TypeMixed))
	if err == nil || domain.KindOf(err) != domain.KindInternal {
		t.Fatalf("err = %v, want internal", err)
	}
}

func TestCountCountsEachEventByTypeAndOutcome(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"handled", nil, `cupcakes_events_total{type="com.cupcakes.order.mixed",outcome="handled"} 1`},
		{"refused", domain.Errorf(domain.KindConflict, "order o-1 is shipped"), `cupcakes_events_total{type="com.cupcakes.order.mixed",outcome="refused"} 1`},
		{"failed", errors.New("store down"), `cupcakes_events_total{type="com.cupcakes.order.mixed",outcome="failed"} 1`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := metrics.New()
			r := dispatch.NewRouter()
			r.Register(events.TypeMixed, "mixed", func(context.Context, cloudevents.Event) (*cloudevents.Event, error) {
				return nil, tt.err
			}, dispatch.Count(c))
			_, _ = r.Handle(context.Background(), ev(t, events.TypeMixed))
			var out strings.Builder
			if _, err := c.WriteTo(&out); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(out.String(), tt.want) {
				t.Errorf("metrics:\n%s\nwant a line %s", out.String(), tt.want)
			}
		})
	}
}
