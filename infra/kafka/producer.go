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
	c.Producer.Retry.Max = 5
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
	producer sarama.SyncProducer
	topicFor func(eventType string) string
	mode     string
}

// NewProducer connects a producer. topicFor names the topic of each event type.
func NewProducer(brokers []string, clientID, mode string, topicFor func(string) string) (*Producer, error) {
	if mode != ModeBinary && mode != ModeStructured {
		return nil, fmt.Errorf("kafka content mode must be %q or %q, got %q", ModeBinary, ModeStructured, mode)
	}
	p, err := sarama.NewSyncProducer(brokers, SaramaConfig(clientID))
	if err != nil {
		return nil, fmt.Errorf("connect Kafka producer to %v: %w", brokers, err)
	}
	return &Producer{producer: p, topicFor: topicFor, mode: mode}, nil
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
	if _, _, err := p.producer.SendMessage(msg); err != nil {
		return fmt.Errorf("produce to %s: %w", msg.Topic, err)
	}
	return nil
}

// Close flushes and closes the producer.
func (p *Producer) Close() error {
	if err := p.producer.Close(); err != nil && !errors.Is(err, sarama.ErrClosedClient) {
		return fmt.Errorf("close Kafka producer: %w", err)
	}
	return nil
}
