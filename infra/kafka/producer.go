// Package kafka is the Kafka transport: CloudEvents produced to and consumed
// from the contract's topics with IBM/sarama, encoded by the CloudEvents
// kafka_sarama binding (binary or structured mode). Each function consumes
// its own topic in its own consumer group, processes each partition in
// order, and marks an offset only once the handler's write is stored, with
// what it emits in the order's outbox (which the relay then produces).
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

	"github.com/cupcake-factory/cupcake-factory/events"
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

// Producer sends CloudEvents to Kafka with a synchronous producer: Publish
// returns once the broker has acknowledged the record.
type Producer struct {
	producer atomic.Pointer[sarama.SyncProducer] // nil until connected
	lastErr  atomic.Pointer[error]               // why it is not connected
	topicFor func(eventType string) string
	mode     string
	stop     context.CancelFunc
	wg       sync.WaitGroup
}

// NewProducer connects a producer now. topicFor names the topic of each
// event type.
func NewProducer(brokers []string, clientID, mode string, topicFor func(string) string) (*Producer, error) {
	p, err := newProducer(mode, topicFor)
	if err != nil {
		return nil, err
	}
	if err := p.connect(brokers, clientID); err != nil {
		return nil, err
	}
	return p, nil
}

// StartProducer returns a producer that connects in the background, trying
// again with backoff until the brokers answer; until then sends fail with
// a retriable error and Ready says why.
func StartProducer(brokers []string, clientID, mode string, topicFor func(string) string, log *slog.Logger) (*Producer, error) {
	p, err := newProducer(mode, topicFor)
	if err != nil {
		return nil, err
	}
	if err := SaramaConfig(clientID).Validate(); err != nil {
		return nil, fmt.Errorf("kafka producer configuration: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p.stop = cancel
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		_ = untilConnected(ctx, log, "producer", connectBackoff, func() error { return p.connect(brokers, clientID) })
	}()
	return p, nil
}

func newProducer(mode string, topicFor func(string) string) (*Producer, error) {
	if mode != ModeBinary && mode != ModeStructured {
		return nil, fmt.Errorf("kafka content mode must be %q or %q, got %q", ModeBinary, ModeStructured, mode)
	}
	p := &Producer{topicFor: topicFor, mode: mode, stop: func() {}}
	err := fmt.Errorf("producer: %w", errNotConnected)
	p.lastErr.Store(&err)
	return p, nil
}

func (p *Producer) connect(brokers []string, clientID string) error {
	sp, err := sarama.NewSyncProducer(brokers, SaramaConfig(clientID))
	if err != nil {
		err = fmt.Errorf("connect Kafka producer to %v: %w", brokers, err)
		p.lastErr.Store(&err)
		return err
	}
	p.producer.Store(&sp)
	return nil
}

// Ready reports whether the producer is connected, and if not, why.
func (p *Producer) Ready() error {
	if p.producer.Load() != nil {
		return nil
	}
	return *p.lastErr.Load()
}

// Publish produces e to the topic of its type, keyed by its partitionkey.
func (p *Producer) Publish(ctx context.Context, e cloudevents.Event) error {
	return p.PublishTo(ctx, p.topicFor(e.Type()), e)
}

// PublishTo produces e to topic.
func (p *Producer) PublishTo(ctx context.Context, topic string, e cloudevents.Event) error {
	msg, err := p.Encode(ctx, topic, e)
	if err != nil {
		return err
	}
	return p.Send(msg)
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

// Send produces a record and waits for the broker's acknowledgement.
func (p *Producer) Send(msg *sarama.ProducerMessage) error {
	sp := p.producer.Load()
	if sp == nil {
		return fmt.Errorf("produce to %s: %w", msg.Topic, p.Ready())
	}
	if _, _, err := (*sp).SendMessage(msg); err != nil {
		return fmt.Errorf("produce to %s: %w", msg.Topic, err)
	}
	return nil
}

// Close flushes and closes the producer.
func (p *Producer) Close() error {
	p.stop()
	p.wg.Wait()
	sp := p.producer.Load()
	if sp == nil {
		return nil
	}
	if err := (*sp).Close(); err != nil && !errors.Is(err, sarama.ErrClosedClient) {
		return fmt.Errorf("close Kafka producer: %w", err)
	}
	return nil
}
