package kafka

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/twmb/franz-go/pkg/kfake"

	ckafka "github.com/cupcake-factory/cupcake-factory/infra/kafka"
	"github.com/cupcake-factory/cupcake-factory/tests/internal/broker"
)

func TestProducerManyConcurrentPublishesAllReturnAcknowledged(t *testing.T) {
	const n = 500
	addr := broker.Start(t, 3)
	broker.CreateTopics(t, addr, 3, "many")
	p := mustProducer(t, addr)
	es := make([]cloudevents.Event, n)
	for i := range es {
		es[i] = stepEvent(t, "o-"+string(rune('a'+i%26)))
	}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	start := time.Now()
	for _, e := range es {
		wg.Go(func() { errs <- p.PublishTo(context.Background(), "many", e) })
	}
	wg.Wait()
	took := time.Since(start)
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	// Every Publish has returned acknowledged: every record is on the
	// broker now, once.
	got := broker.ReadAll(t, addr, "many", n, 2*time.Second)
	seen := map[string]int{}
	for _, m := range got {
		seen[broker.Header(m, "ce_id")]++
	}
	for _, e := range es {
		if seen[e.ID()] != 1 {
			t.Errorf("event %s is on the topic %d times, want once", e.ID(), seen[e.ID()])
		}
	}
	t.Logf("%d concurrent publishes acknowledged in %s", n, took)
}

func TestProducerErrorsReachTheCaller(t *testing.T) {
	// A broker without auto-creation: a topic that does not exist is an
	// error for the record's caller, after sarama's retries.
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "exists"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	addr := strings.Join(c.ListenAddrs(), ",")
	p, err := ckafka.NewProducer([]string{addr}, "test", ckafka.ModeBinary, func(string) string { return "exists" })
	if err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name  string
		topic string
		want  error
	}{
		{"a topic that exists", "exists", nil},
		{"a topic that does not exist", "missing", sarama.ErrUnknownTopicOrPartition},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			err := p.PublishTo(ctx, tc.topic, stepEvent(t, "o-1"))
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("PublishTo(%s) = %v, want %v", tc.topic, err, tc.want)
			}
		})
	}

	if err := p.Close(); err != nil {
		t.Fatalf("Close = %v", err)
	}
	if err := p.Publish(context.Background(), stepEvent(t, "o-2")); !errors.Is(err, ckafka.ErrProducerClosed) {
		t.Fatalf("Publish after Close = %v, want ErrProducerClosed", err)
	}
}

func TestProducerWaitingCallerGivesUpWithItsContext(t *testing.T) {
	// A broker that is gone: the record cannot be acknowledged, and the
	// caller's deadline, not the producer's retries, decides when it stops
	// waiting.
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "t"))
	if err != nil {
		t.Fatal(err)
	}
	addr := strings.Join(c.ListenAddrs(), ",")
	p, err := ckafka.NewProducer([]string{addr}, "test", ckafka.ModeBinary, func(string) string { return "t" })
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = p.PublishTo(ctx, "t", stepEvent(t, "o-1"))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("PublishTo = %v, want the deadline", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("gave up after %s, want about the 300ms deadline", took)
	}
	// Close flushes: the record still fails, and Close says so.
	if err := p.Close(); err == nil {
		t.Error("Close = nil, want the record that could not be sent")
	}
}
