package kafka

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"

	"github.com/cupcake-factory/cupcake-factory/events"
	ckafka "github.com/cupcake-factory/cupcake-factory/infra/kafka"
	"github.com/cupcake-factory/cupcake-factory/tests/internal/broker"
)

// The consumer against a real broker, on one partition: records of
// different orders are handled at once, one order's in order, and the
// committed offset never passes a record that is not done.

func startConsumer(t *testing.T, addr string, cfg ckafka.ConsumerConfig, h ckafka.Handler) (stop func()) {
	t.Helper()
	cfg.Brokers, cfg.Group, cfg.EventTypes, cfg.DeadLetter = []string{addr}, "g-"+cfg.Topic, []string{events.TypeMixed}, "deadletters"
	if cfg.Retry.Attempts == 0 {
		cfg.Retry = ckafka.Retry{Attempts: 5, Backoff: 20 * time.Millisecond, MaxBackoff: 50 * time.Millisecond}
	}
	c, err := ckafka.NewConsumer(cfg, h, mustProducer(t, addr), quiet)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { c.Run(ctx); close(done) }()
	return func() {
		cancel()
		<-done
		if err := c.Close(); err != nil {
			t.Error(err)
		}
	}
}

// journal records which events a handler saw, in the order it saw them.
type journal struct {
	mu  sync.Mutex
	ids []string
	by  map[string][]string // order id → event ids
}

func (j *journal) add(e cloudevents.Event) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.by == nil {
		j.by = map[string][]string{}
	}
	j.ids = append(j.ids, e.ID())
	j.by[e.Subject()] = append(j.by[e.Subject()], e.ID())
}

func (j *journal) count() int {
	j.mu.Lock()
	defer j.mu.Unlock()
	return len(j.ids)
}

func (j *journal) has(id string) bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	return slices.Contains(j.ids, id)
}

// gauge tracks how many handlers run at once, and the most seen.
type gauge struct{ now, most atomic.Int32 }

func (g *gauge) enter() {
	n := g.now.Add(1)
	for m := g.most.Load(); n > m && !g.most.CompareAndSwap(m, n); m = g.most.Load() {
	}
}
func (g *gauge) leave() { g.now.Add(-1) }

func stepEvents(t *testing.T, orderIDs ...string) []cloudevents.Event {
	var es []cloudevents.Event
	for _, id := range orderIDs {
		es = append(es, stepEvent(t, id))
	}
	return es
}

func ids(es []cloudevents.Event) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.ID())
	}
	return out
}

func TestConsumerHandlesOneOrdersEventsInOrderWhileOrdersOverlap(t *testing.T) {
	const orders, perOrder = 40, 25
	addr := broker.Start(t, 1)
	broker.CreateTopics(t, addr, 1, "inorder")
	// Each order's events produced in order, the orders at once: they
	// interleave on the partition, and the producer's batches are shared.
	want := map[string][]string{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	p := mustProducer(t, addr)
	for o := range orders {
		id := fmt.Sprintf("o-%d", o)
		wg.Go(func() {
			for range perOrder {
				e := stepEvent(t, id)
				if err := p.PublishTo(context.Background(), "inorder", e); err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				want[id] = append(want[id], e.ID())
				mu.Unlock()
			}
		})
	}
	wg.Wait()

	var j journal
	var g gauge
	stop := startConsumer(t, addr, ckafka.ConsumerConfig{Topic: "inorder"}, func(_ context.Context, e cloudevents.Event) error {
		g.enter()
		defer g.leave()
		time.Sleep(time.Duration(rand.IntN(2000)) * time.Microsecond)
		j.add(e)
		return nil
	})
	waitFor(t, "every event handled", func() bool { return j.count() >= orders*perOrder })
	waitFor(t, "the commit past every event", func() bool { return committed(t, addr, "g-inorder", "inorder") == orders*perOrder })
	stop()

	j.mu.Lock()
	defer j.mu.Unlock()
	for id, w := range want {
		if got := j.by[id]; !slices.Equal(got, w) {
			t.Errorf("order %s: handled %d events out of order or twice (want %d in produced order)", id, len(got), len(w))
		}
	}
	if g.most.Load() < 2 {
		t.Errorf("at most %d handlers ran at once; different orders should overlap", g.most.Load())
	}
	t.Logf("%d events, up to %d handlers at once", len(j.ids), g.most.Load())
}

func TestConsumerCommitStaysBelowAnEventInHandUntilItIsDone(t *testing.T) {
	addr := broker.Start(t, 1)
	broker.CreateTopics(t, addr, 1, "inhand")
	before := stepEvents(t, "o-0", "o-1", "o-2", "o-3", "o-4")
	blocked := stepEvent(t, "o-blocked")
	var after []cloudevents.Event
	for i := range 20 {
		after = append(after, stepEvent(t, fmt.Sprintf("o-%d", 6+i)))
	}
	produceEvents(t, addr, "inhand", append(append(before, blocked), after...)...)

	release := make(chan struct{})
	var releaseOnce sync.Once
	unblock := func() { releaseOnce.Do(func() { close(release) }) }
	var j journal
	stop := startConsumer(t, addr, ckafka.ConsumerConfig{Topic: "inhand"}, func(_ context.Context, e cloudevents.Event) error {
		if e.ID() == blocked.ID() {
			<-release
		}
		j.add(e)
		return nil
	})
	defer stop()
	defer unblock() // before stop: a failed check must not leave the handler blocked
	waitFor(t, "every other event handled", func() bool { return j.count() == 25 })
	waitFor(t, "the commit of the events before the one in hand", func() bool { return committed(t, addr, "g-inhand", "inhand") >= 5 })
	time.Sleep(1500 * time.Millisecond) // more than the commit interval: it stays there
	if off := committed(t, addr, "g-inhand", "inhand"); off != 5 {
		t.Fatalf("committed offset %d while offset 5 is in hand; want 5", off)
	}
	unblock()
	waitFor(t, "the commit past every event", func() bool { return committed(t, addr, "g-inhand", "inhand") == 26 })
}

func TestConsumerDeadLettersAFailingOrderAfterItsRetriesWhileOtherOrdersProceed(t *testing.T) {
	addr := broker.Start(t, 1)
	broker.CreateTopics(t, addr, 1, "failing")
	bad, badLater := stepEvent(t, "o-bad"), stepEvent(t, "o-bad")
	others := stepEvents(t, "o-1", "o-2", "o-3", "o-4", "o-5", "o-6", "o-7", "o-8")
	produceEvents(t, addr, "failing", append(append([]cloudevents.Event{bad}, others...), badLater)...)

	const attempts = 5
	var badCalls atomic.Int32
	var callsWhenOthersDone atomic.Int32
	var j journal
	var laterAfterDeadLetter atomic.Bool
	stop := startConsumer(t, addr, ckafka.ConsumerConfig{
		Topic: "failing",
		Retry: ckafka.Retry{Attempts: attempts, Backoff: 100 * time.Millisecond, MaxBackoff: 200 * time.Millisecond},
	}, func(_ context.Context, e cloudevents.Event) error {
		switch e.ID() {
		case bad.ID():
			badCalls.Add(1)
			return errors.New("store unavailable")
		case badLater.ID():
			laterAfterDeadLetter.Store(badCalls.Load() == attempts)
		}
		j.add(e)
		if j.count() == len(others) && !j.has(badLater.ID()) {
			callsWhenOthersDone.Store(badCalls.Load())
		}
		return nil
	})
	waitFor(t, "the later event of o-bad", func() bool { return j.has(badLater.ID()) })
	waitFor(t, "the commit past every event", func() bool { return committed(t, addr, "g-failing", "failing") == 10 })
	stop()

	// The other orders did not wait for o-bad's retries (they may even be
	// done before its first attempt: its lane runs on its own).
	if n := callsWhenOthersDone.Load(); n >= attempts {
		t.Errorf("o-bad had %d attempts when the other orders were done; want them done before it was dead-lettered", n)
	}
	if !laterAfterDeadLetter.Load() {
		t.Error("o-bad's later event ran before its failing one was dead-lettered")
	}
	dl := broker.ReadAll(t, addr, "deadletters", 1, 5*time.Second)
	if len(dl) != 1 || broker.Header(dl[0], "ce_id") != bad.ID() || broker.Header(dl[0], "ce_deadletterreason") != "store unavailable" {
		t.Fatalf("dead letters %v, want o-bad's failing event", dl)
	}
}

func TestConsumerRestartedAfterAStopRedeliversFromTheOldestEventNotDone(t *testing.T) {
	addr := broker.Start(t, 1)
	broker.CreateTopics(t, addr, 1, "restart")
	before := stepEvents(t, "o-0", "o-1", "o-2", "o-3", "o-4")
	stuck := stepEvent(t, "o-stuck")
	after := stepEvents(t, "o-6", "o-7", "o-8", "o-9", "o-stuck", "o-10")
	all := append(append(append([]cloudevents.Event{}, before...), stuck), after...)
	produceEvents(t, addr, "restart", all...)

	// First run: o-stuck fails and is still being retried when it stops;
	// so is the event of o-stuck after it, waiting behind it.
	var first journal
	stop := startConsumer(t, addr, ckafka.ConsumerConfig{
		Topic: "restart", Retry: ckafka.Retry{Attempts: 1000, Backoff: 20 * time.Millisecond, MaxBackoff: 50 * time.Millisecond},
	}, func(_ context.Context, e cloudevents.Event) error {
		if e.Subject() == "o-stuck" {
			return errors.New("store unavailable")
		}
		first.add(e)
		return nil
	})
	waitFor(t, "the other events", func() bool { return first.count() == len(all)-2 })
	stop()
	if off := committed(t, addr, "g-restart", "restart"); off != 5 {
		t.Fatalf("committed offset %d after the stop, want 5 (o-stuck not done)", off)
	}

	var second journal
	stop = startConsumer(t, addr, ckafka.ConsumerConfig{Topic: "restart"}, func(_ context.Context, e cloudevents.Event) error {
		second.add(e)
		return nil
	})
	waitFor(t, "the commit past every event", func() bool { return committed(t, addr, "g-restart", "restart") == int64(len(all)) })
	stop()

	second.mu.Lock()
	defer second.mu.Unlock()
	// Nothing below the commit comes again; everything from it does (the
	// done ones among them once more: at least once, and the handlers are
	// idempotent); nothing is lost.
	if want := ids(all[5:]); !slices.Equal(slices.Sorted(slices.Values(second.ids)), slices.Sorted(slices.Values(want))) {
		t.Errorf("second run handled %v, want the events from offset 5 on, %v", second.ids, want)
	}
	if got := second.by["o-stuck"]; !slices.Equal(got, []string{stuck.ID(), after[4].ID()}) {
		t.Errorf("o-stuck's events came back as %v, want both in order", got)
	}
}
