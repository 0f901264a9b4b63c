package kafka

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
)

// fakeAsync is the part of sarama's AsyncProducer the Producer uses, with
// the broker's answers in the test's hands.
type fakeAsync struct {
	sarama.AsyncProducer // the rest is not used
	input                chan *sarama.ProducerMessage
	successes            chan *sarama.ProducerMessage
	errors               chan *sarama.ProducerError
	closeOnce            sync.Once
}

func newFakeAsync() *fakeAsync {
	return &fakeAsync{
		input:     make(chan *sarama.ProducerMessage),
		successes: make(chan *sarama.ProducerMessage),
		errors:    make(chan *sarama.ProducerError),
	}
}

func (f *fakeAsync) Input() chan<- *sarama.ProducerMessage     { return f.input }
func (f *fakeAsync) Successes() <-chan *sarama.ProducerMessage { return f.successes }
func (f *fakeAsync) Errors() <-chan *sarama.ProducerError      { return f.errors }
func (f *fakeAsync) AsyncClose()                               { f.closeOnce.Do(func() { close(f.input) }) }
func (f *fakeAsync) received(t *testing.T) *sarama.ProducerMessage {
	t.Helper()
	return recv(t, f.input)
}

// finish closes the result channels, as sarama does once it has flushed.
func (f *fakeAsync) finish() { close(f.successes); close(f.errors) }

func recv[T any](t *testing.T, c <-chan T) T {
	t.Helper()
	select {
	case v := <-c:
		return v
	case <-time.After(5 * time.Second):
		t.Fatal("timed out")
		panic("unreachable")
	}
}

func sendAsync(p *Producer, ctx context.Context, topic string) <-chan error {
	out := make(chan error, 1)
	go func() { out <- p.SendContext(ctx, &sarama.ProducerMessage{Topic: topic}) }()
	return out
}

func TestProducerSendReturnsOnlyWithTheBrokersAnswer(t *testing.T) {
	refused := errors.New("NOT_ENOUGH_REPLICAS")
	for _, tc := range []struct {
		name   string
		answer func(f *fakeAsync, msg *sarama.ProducerMessage)
		want   error
	}{
		{"acknowledged", func(f *fakeAsync, msg *sarama.ProducerMessage) { f.successes <- msg }, nil},
		{"refused", func(f *fakeAsync, msg *sarama.ProducerMessage) {
			f.errors <- &sarama.ProducerError{Msg: msg, Err: refused}
		}, refused},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeAsync()
			p := newProducer(f, nil, ModeBinary)
			done := sendAsync(p, context.Background(), "t")
			msg := f.received(t)
			select {
			case err := <-done:
				t.Fatalf("send returned (%v) before the broker answered", err)
			case <-time.After(20 * time.Millisecond):
			}
			tc.answer(f, msg)
			if err := recv(t, done); !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("send = %v, want %v", err, tc.want)
			}
			go f.finish()
			if err := p.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestProducerGivesEachConcurrentCallerItsOwnAnswer(t *testing.T) {
	// Answers come back in another order than the sends, as from
	// different partitions; each caller gets the answer to its record.
	f := newFakeAsync()
	p := newProducer(f, nil, ModeBinary)
	topics := []string{"a", "b", "c", "d"}
	results := map[string]<-chan error{}
	var msgs []*sarama.ProducerMessage
	for _, topic := range topics {
		results[topic] = sendAsync(p, context.Background(), topic)
		msgs = append(msgs, f.received(t))
	}
	for i := len(msgs) - 1; i >= 0; i-- {
		if msgs[i].Topic == "b" {
			f.errors <- &sarama.ProducerError{Msg: msgs[i], Err: sarama.ErrUnknownTopicOrPartition}
		} else {
			f.successes <- msgs[i]
		}
	}
	for _, topic := range topics {
		err := recv(t, results[topic])
		if (topic == "b") != errors.Is(err, sarama.ErrUnknownTopicOrPartition) || (topic != "b" && err != nil) {
			t.Errorf("send to %s = %v", topic, err)
		}
	}
	go f.finish()
	_ = p.Close()
}

func TestProducerCallerThatGivesUpGetsTheContextErrorAndCloseTheLateFailure(t *testing.T) {
	f := newFakeAsync()
	p := newProducer(f, nil, ModeBinary)
	ctx, cancel := context.WithCancel(context.Background())
	done := sendAsync(p, ctx, "t")
	msg := f.received(t)
	cancel()
	if err := recv(t, done); !errors.Is(err, context.Canceled) {
		t.Fatalf("send = %v, want context.Canceled", err)
	}
	closed := make(chan error, 1)
	go func() { closed <- p.Close() }()
	recv(t, f.input) // AsyncClose closed the input; receiving from it returns at once
	// The record handed over fails during the flush: nobody waits for it
	// any more, so Close reports it.
	f.errors <- &sarama.ProducerError{Msg: msg, Err: sarama.ErrOutOfBrokers}
	f.finish()
	if err := recv(t, closed); !errors.Is(err, sarama.ErrOutOfBrokers) {
		t.Fatalf("Close = %v, want the flush failure", err)
	}
}

func TestProducerSendAfterCloseFails(t *testing.T) {
	f := newFakeAsync()
	p := newProducer(f, nil, ModeBinary)
	f.finish()
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := p.Send(&sarama.ProducerMessage{Topic: "t"}); !errors.Is(err, ErrProducerClosed) {
		t.Fatalf("send after Close = %v, want ErrProducerClosed", err)
	}
	if err := p.Close(); err != nil {
		t.Fatalf("second Close = %v", err)
	}
}

func TestProducerConfigIsIdempotentAndLeavesConsumersAlone(t *testing.T) {
	pc, sc := ProducerConfig("x"), SaramaConfig("x")
	if err := pc.Validate(); err != nil {
		t.Fatalf("producer config invalid: %v", err)
	}
	if !pc.Producer.Idempotent || pc.Producer.RequiredAcks != sarama.WaitForAll || pc.Net.MaxOpenRequests != 1 {
		t.Errorf("producer config: idempotent %v, acks %v, max open requests %d", pc.Producer.Idempotent, pc.Producer.RequiredAcks, pc.Net.MaxOpenRequests)
	}
	if sc.Net.MaxOpenRequests == 1 || sc.Producer.Idempotent {
		t.Error("the consumers' config changed with the producer's")
	}
}
