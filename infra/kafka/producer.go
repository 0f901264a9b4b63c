// Package kafka is the Kafka transport: CloudEvents produced to and consumed
// from the contract's topics with IBM/sarama, encoded by the CloudEvents
// kafka_sarama binding (binary or structured mode). Each function consumes
// its own topic in its own consumer group, processes each partition's
// records of one key (order) in order and of different keys at once, and
// marks an offset only once the handler's writes of it and of every record
// before it are stored, with what they emit in the orders' outboxes (which
// the relay then produces through one idempotent, batching producer).
package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
	kafka_sarama "github.com/cloudevents/sdk-go/protocol/kafka_sarama/v2"
	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/binding"
	"go.opentelemetry.io/otel/trace"

	"github.com/cupcake-factory/cupcake-factory/events"
	"github.com/cupcake-factory/cupcake-factory/infra/telemetry"
)

// Content modes of produced events.
const (
	ModeBinary     = "binary"
	ModeStructured = "structured"
)

// SaramaConfig is the client configuration shared by producers and
// consumers: records acknowledged by all in-sync replicas and partitioned by
// order id as the Java client would; consumer offsets committed in the
// background and on close.
func SaramaConfig(clientID string) *sarama.Config {
	c := sarama.NewConfig()
	c.ClientID = clientID
	c.Version = sarama.V2_8_0_0
	c.Net.DialTimeout = 5 * time.Second
	c.Metadata.Retry.Max = 5
	c.Producer.RequiredAcks = sarama.WaitForAll
	c.Producer.Return.Successes = true
	// A send meeting a leader election (NOT_LEADER_OR_FOLLOWER) is retried
	// for about 3 s in all: 100 ms doubling to 1 s, five times.
	c.Producer.Retry.Max = 5
	c.Producer.Retry.BackoffFunc = func(retries, _ int) time.Duration {
		return min(100*time.Millisecond<<max(retries-1, 0), time.Second)
	}
	// A partition consumer whose leader moved looks for the new one soon.
	c.Consumer.Retry.Backoff = 250 * time.Millisecond
	c.Producer.Partitioner = NewKafkaPartitioner
	c.Consumer.Offsets.Initial = sarama.OffsetOldest
	c.Consumer.Offsets.AutoCommit.Enable = true
	c.Consumer.Offsets.AutoCommit.Interval = time.Second
	c.Consumer.Return.Errors = true
	c.Consumer.Group.Rebalance.GroupStrategies = []sarama.BalanceStrategy{sarama.NewBalanceStrategySticky()}
	return c
}

// ProducerConfig is SaramaConfig for a producer: idempotent, so that the
// retries of a batch write no duplicates and keep the partition's order
// (which the idempotent protocol requires: acks from all in-sync replicas,
// one request in flight per broker, at least one retry, Kafka 0.11 or
// later). It is a config of its own because Net.MaxOpenRequests is the
// client's, and consumers keep sarama's pipelined fetches.
func ProducerConfig(clientID string) *sarama.Config {
	c := SaramaConfig(clientID)
	c.Producer.Idempotent = true
	c.Producer.RequiredAcks = sarama.WaitForAll
	c.Net.MaxOpenRequests = 1
	c.Producer.Retry.Max = 5
	c.Producer.Return.Successes = true
	c.Producer.Return.Errors = true
	return c
}

// ErrProducerClosed is what a send after Close gets.
var ErrProducerClosed = errors.New("kafka producer closed")

// Producer sends CloudEvents to Kafka with sarama's asynchronous producer.
// Each send still returns only once the broker acknowledged its record (the
// relay removes a message from an outbox only then), but the callers share
// batches: while one produce request is in flight, the records sent meanwhile
// gather into the next, so no record waits for a round trip of its own.
// One dispatcher goroutine reads Successes and Errors and hands each result
// to the caller waiting for it, through a channel carried in the record's
// Metadata.
//
// A producer made by StartProducer connects in the background: until the
// brokers answer, sends fail with a retriable error and Ready says why.
type Producer struct {
	topicFor func(eventType string) string
	mode     string

	// mu guards producer (nil until connected) and closed: Input must not be
	// written once it is closed, so senders hold the read lock while they
	// hand a record over.
	mu         sync.RWMutex
	producer   sarama.AsyncProducer
	lastErr    atomic.Pointer[error] // why it is not connected
	stop       context.CancelFunc    // ends connecting in the background
	connecting sync.WaitGroup
	closed     bool
	closing    atomic.Bool   // set before the flush: failures from then on go to Close too
	dispatched chan struct{} // closed when the dispatcher has returned every result
	closeErrs  []error       // failures during Close's flush; the dispatcher's until it returns
}

// NewProducer connects a producer now. topicFor names the topic of each
// event type.
func NewProducer(brokers []string, clientID, mode string, topicFor func(string) string) (*Producer, error) {
	if err := checkMode(mode); err != nil {
		return nil, err
	}
	ap, err := sarama.NewAsyncProducer(brokers, ProducerConfig(clientID))
	if err != nil {
		return nil, fmt.Errorf("connect Kafka producer to %v: %w", brokers, err)
	}
	return newProducer(ap, topicFor, mode), nil
}

// StartProducer returns a producer that connects in the background, trying
// again with backoff until the brokers answer; until then sends fail with
// a retriable error and Ready says why.
func StartProducer(brokers []string, clientID, mode string, topicFor func(string) string, log *slog.Logger) (*Producer, error) {
	if err := checkMode(mode); err != nil {
		return nil, err
	}
	if err := ProducerConfig(clientID).Validate(); err != nil {
		return nil, fmt.Errorf("kafka producer configuration: %w", err)
	}
	p := unconnected(topicFor, mode)
	ctx, cancel := context.WithCancel(context.Background())
	p.stop = cancel
	p.connecting.Add(1)
	go func() {
		defer p.connecting.Done()
		_ = untilConnected(ctx, log, "producer", connectBackoff, func() error {
			ap, err := sarama.NewAsyncProducer(brokers, ProducerConfig(clientID))
			if err != nil {
				err = fmt.Errorf("connect Kafka producer to %v: %w", brokers, err)
				p.lastErr.Store(&err)
				return err
			}
			if !p.attach(ap) {
				_ = ap.Close() // closed meanwhile
			}
			return nil
		})
	}()
	return p, nil
}

func checkMode(mode string) error {
	if mode != ModeBinary && mode != ModeStructured {
		return fmt.Errorf("kafka content mode must be %q or %q, got %q", ModeBinary, ModeStructured, mode)
	}
	return nil
}

func unconnected(topicFor func(string) string, mode string) *Producer {
	p := &Producer{topicFor: topicFor, mode: mode, stop: func() {}, dispatched: make(chan struct{})}
	err := fmt.Errorf("producer: %w", errNotConnected)
	p.lastErr.Store(&err)
	return p
}

func newProducer(ap sarama.AsyncProducer, topicFor func(string) string, mode string) *Producer {
	p := unconnected(topicFor, mode)
	p.attach(ap)
	return p
}

// attach starts using ap, unless the producer was closed meanwhile.
func (p *Producer) attach(ap sarama.AsyncProducer) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.producer = ap
	go p.dispatch(ap)
	return true
}

// Ready reports whether the producer is connected, and if not, why.
func (p *Producer) Ready() error {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.producer != nil {
		return nil
	}
	return *p.lastErr.Load()
}

// dispatch hands each acknowledgement and each failure to its caller, until
// the producer has closed both channels.
func (p *Producer) dispatch(ap sarama.AsyncProducer) {
	defer close(p.dispatched)
	successes, errs := ap.Successes(), ap.Errors()
	for successes != nil || errs != nil {
		select {
		case msg, ok := <-successes:
			if !ok {
				successes = nil
				continue
			}
			reply(msg, nil)
		case perr, ok := <-errs:
			if !ok {
				errs = nil
				continue
			}
			err := fmt.Errorf("produce to %s: %w", perr.Msg.Topic, perr.Err)
			closing := p.closing.Load() // before the reply, which may let the caller close
			if !reply(perr.Msg, err) || closing {
				// Its caller may have given up waiting; Close reports it.
				p.closeErrs = append(p.closeErrs, err)
			}
		}
	}
}

// reply gives a result to the send waiting for msg; it reports whether msg
// was one of ours.
func reply(msg *sarama.ProducerMessage, err error) bool {
	done, ok := msg.Metadata.(chan error)
	if ok {
		done <- err // buffered for this one result: never blocks
	}
	return ok
}

// Publish produces e to the topic of its type, keyed by its partitionkey.
func (p *Producer) Publish(ctx context.Context, e cloudevents.Event) error {
	return p.PublishTo(ctx, p.topicFor(e.Type()), e)
}

// PublishTo produces e to topic and returns once the broker acknowledged
// it, or when ctx is done (see SendContext).
func (p *Producer) PublishTo(ctx context.Context, topic string, e cloudevents.Event) (err error) {
	span := startProduce(ctx, topic, &e)
	defer func() { endSpan(span, err) }()
	msg, err := p.Encode(ctx, topic, e)
	if err != nil {
		return err
	}
	return p.SendContext(ctx, msg)
}

// Encode turns e into a record for topic in the producer's content mode. The
// partitionkey extension (the order id) becomes the record key.
func (p *Producer) Encode(ctx context.Context, topic string, e cloudevents.Event) (*sarama.ProducerMessage, error) {
	msg := &sarama.ProducerMessage{Topic: topic}
	if p.mode == ModeStructured {
		ctx = binding.WithForceStructured(ctx)
	}
	if err := kafka_sarama.WriteProducerMessage(ctx, binding.ToMessage(&e), msg); err != nil {
		return nil, fmt.Errorf("encode %s event %s for Kafka: %w", e.Type(), e.ID(), err)
	}
	if msg.Key == nil {
		if k, ok := e.Extensions()[events.ExtPartitionKey].(string); ok && k != "" {
			msg.Key = sarama.StringEncoder(k)
		} else if e.Subject() != "" {
			msg.Key = sarama.StringEncoder(e.Subject())
		}
	}
	return msg, nil
}

// PublishAll produces events to the topics of their types, handing them to
// the producer in the given order (records of one partition are written in
// that order) before waiting for any acknowledgement, so they share
// produce requests. It returns one error per event, nil for acknowledged.
func (p *Producer) PublishAll(ctx context.Context, es []cloudevents.Event) []error {
	errs := make([]error, len(es))
	dones := make([]chan error, len(es))
	var spans []trace.Span
	if telemetry.Enabled() {
		spans = make([]trace.Span, len(es))
		defer func() {
			for i, span := range spans {
				endSpan(span, errs[i])
			}
		}()
	}
	for i, e := range es {
		topic := p.topicFor(e.Type())
		if spans != nil {
			spans[i] = startProduce(ctx, topic, &e)
		}
		msg, err := p.Encode(ctx, topic, e)
		if err == nil {
			dones[i] = make(chan error, 1)
			msg.Metadata = dones[i]
			if err = p.enqueue(ctx, msg); err != nil {
				err = fmt.Errorf("produce to %s: %w", msg.Topic, err)
			}
		}
		if err != nil {
			errs[i], dones[i] = err, nil
		}
	}
	for i, done := range dones {
		if done == nil {
			continue
		}
		select {
		case errs[i] = <-done:
		case <-ctx.Done():
			errs[i] = fmt.Errorf("produce %s: not acknowledged yet, may still be written: %w", es[i].Type(), ctx.Err())
		}
	}
	return errs
}

// Send produces a record and waits for the broker's acknowledgement. It
// uses msg.Metadata to find its way back.
func (p *Producer) Send(msg *sarama.ProducerMessage) error {
	return p.SendContext(context.Background(), msg)
}

// SendContext is Send, giving up waiting when ctx is done. A record handed
// over before that may still be written to Kafka: to the caller it is
// unacknowledged, so it is sent again (the relay keeps it in the outbox),
// and receivers are idempotent.
func (p *Producer) SendContext(ctx context.Context, msg *sarama.ProducerMessage) error {
	done := make(chan error, 1)
	msg.Metadata = done
	if err := p.enqueue(ctx, msg); err != nil {
		return fmt.Errorf("produce to %s: %w", msg.Topic, err)
	}
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("produce to %s: not acknowledged yet, may still be written: %w", msg.Topic, ctx.Err())
	}
}

// enqueue hands msg to the producer, unless it is closed or ctx ends first
// (the input backs up when the broker is slow or gone).
func (p *Producer) enqueue(ctx context.Context, msg *sarama.ProducerMessage) error {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		return ErrProducerClosed
	}
	if p.producer == nil {
		return *p.lastErr.Load() // retriable: not connected yet
	}
	select {
	case p.producer.Input() <- msg:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close sends what was handed over, waits for every result, and returns the
// failures nobody was waiting for any more. Sends after Close fail with
// ErrProducerClosed.
func (p *Producer) Close() error {
	p.stop()
	p.connecting.Wait()
	p.mu.Lock()
	if p.producer == nil { // never connected: nothing was handed over
		p.closed = true
		p.mu.Unlock()
		return nil
	}
	if p.closed {
		p.mu.Unlock()
		<-p.dispatched
		return nil
	}
	p.closed = true
	p.closing.Store(true)
	p.mu.Unlock()
	// AsyncClose, not Close: Close would drain Successes and Errors itself,
	// and the callers waiting for those results would never get them.
	p.producer.AsyncClose()
	<-p.dispatched
	if err := errors.Join(p.closeErrs...); err != nil {
		return fmt.Errorf("close Kafka producer: %w", err)
	}
	return nil
}
