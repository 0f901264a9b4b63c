package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
	kafka_sarama "github.com/cloudevents/sdk-go/protocol/kafka_sarama/v2"
	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/binding"

	"github.com/cupcake-factory/cupcake-factory/domain"
)

// Dead-letter extensions (headers ce_<name> in binary mode).
const (
	ExtDeadLetterReason    = "deadletterreason"
	ExtDeadLetterTopic     = "deadlettertopic"
	ExtDeadLetterPartition = "deadletterpartition"
	ExtDeadLetterOffset    = "deadletteroffset"
)

// Handler handles one event. What it emits it stores in an outbox, and a
// relay publishes it: when it returns nil, the event's effects are stored.
// It is called concurrently for events of different keys (orders).
type Handler func(ctx context.Context, e cloudevents.Event) error

// DeadLetterer is where dead letters go.
type DeadLetterer interface {
	PublishTo(ctx context.Context, topic string, e cloudevents.Event) error
	Send(msg *sarama.ProducerMessage) error
}

// Retry says how often a transient failure is tried again, and how long to
// wait: Backoff, doubled each time up to MaxBackoff.
type Retry struct {
	Attempts   int
	Backoff    time.Duration
	MaxBackoff time.Duration
}

// DeadLetterCounter counts records sent to the dead-letter topic, by the
// topic they came from and their event type ("" for a record that is not a
// CloudEvent) (infra/metrics).
type DeadLetterCounter interface {
	DeadLettered(topic, eventType string)
}

// ConsumerConfig configures one function's consumer.
type ConsumerConfig struct {
	Brokers    []string
	Group      string
	Topic      string
	EventTypes []string // the only types taken from Topic; none takes any
	DeadLetter string   // the dead-letter topic
	Retry      Retry
	InstanceID string // static membership; "" for dynamic
	// FromNewest starts a new group at the end of the topic (notifications)
	// rather than at the beginning (work).
	FromNewest bool
	// MaxInFlight bounds the records of one partition taken and not yet
	// done: running, or waiting behind an earlier record of their key.
	// 0 means DefaultMaxInFlight.
	MaxInFlight int
	// Metrics, if set, counts dead letters.
	Metrics DeadLetterCounter
}

// DefaultMaxInFlight is the bound on records in hand per partition: enough
// to keep the store's group commit and the producer's batches full, few
// enough that a partition's backlog after a stall stays small.
const DefaultMaxInFlight = 256

// Consumer feeds one topic to one function. Within a partition, records of
// different keys (orders) are handled at once, and records of one key one
// after the other, in offset order (see partition.go). It decides, in one
// place, when a record is done:
//   - handled (its effects and what it emits stored): marked;
//   - refused for good (invalid, wrong state, unexpected type, not a
//     CloudEvent), or still failing after the retries: dead-lettered with the
//     reason, then marked;
//   - not dead-lettered (the broker is down) or shutting down mid-retry: not
//     marked, so it is delivered again.
//
// The offset marked is the lowest one not yet done, so a commit never
// passes a record that is still in hand.
type Consumer struct {
	cfg     ConsumerConfig
	group   sarama.ConsumerGroup
	handle  Handler
	publish DeadLetterer
	log     *slog.Logger
	// ready is set once a session of the group started (partitions
	// assigned, or none to take) and cleared while joining fails.
	ready   atomic.Bool
	lastErr atomic.Pointer[error]
}

// NewConsumer joins cfg.Group.
func NewConsumer(cfg ConsumerConfig, h Handler, p DeadLetterer, log *slog.Logger) (*Consumer, error) {
	sc := SaramaConfig(cfg.Group)
	if cfg.InstanceID != "" {
		sc.Consumer.Group.InstanceId = cfg.InstanceID
	}
	if cfg.FromNewest {
		sc.Consumer.Offsets.Initial = sarama.OffsetNewest
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = DefaultMaxInFlight
	}
	group, err := sarama.NewConsumerGroup(cfg.Brokers, cfg.Group, sc)
	if err != nil {
		return nil, fmt.Errorf("join Kafka consumer group %s on %v: %w", cfg.Group, cfg.Brokers, err)
	}
	c := &Consumer{cfg: cfg, group: group, handle: h, publish: p, log: log.With("group", cfg.Group, "topic", cfg.Topic)}
	c.setNotReady(errors.New("joining"))
	return c, nil
}

// Ready reports whether the consumer is in its group, and if not, why.
func (c *Consumer) Ready() error {
	if c.ready.Load() {
		return nil
	}
	return fmt.Errorf("consumer group %s: %w", c.cfg.Group, *c.lastErr.Load())
}

func (c *Consumer) setNotReady(err error) {
	c.lastErr.Store(&err)
	c.ready.Store(false)
}

// Run consumes until ctx is done; then it finishes the events in hand, and
// returns. Close commits the marked offsets.
func (c *Consumer) Run(ctx context.Context) {
	go func() {
		for err := range c.group.Errors() {
			c.log.Warn("consumer group error", "error", err)
		}
	}()
	wait := connectBackoff.First
	for ctx.Err() == nil {
		err := c.group.Consume(ctx, []string{c.cfg.Topic}, c)
		if err == nil {
			wait = connectBackoff.First
			continue // a rebalance: join again
		}
		if errors.Is(err, sarama.ErrClosedConsumerGroup) {
			return
		}
		// The topic not there yet, its leader not elected, the coordinator
		// moving, the broker gone: try again, not ready meanwhile.
		c.setNotReady(err)
		c.log.Warn("consume; retrying", "retry_in", wait.String(), "error", err)
		sleep(ctx, wait)
		wait = min(2*wait, connectBackoff.Max)
	}
}

// Close leaves the group, committing what was marked.
func (c *Consumer) Close() error {
	if err := c.group.Close(); err != nil {
		return fmt.Errorf("close consumer group %s: %w", c.cfg.Group, err)
	}
	return nil
}

// Setup is part of sarama.ConsumerGroupHandler.
func (c *Consumer) Setup(sarama.ConsumerGroupSession) error {
	c.ready.Store(true)
	return nil
}

// Cleanup is part of sarama.ConsumerGroupHandler.
func (c *Consumer) Cleanup(sarama.ConsumerGroupSession) error { return nil }

// ConsumeClaim processes one partition's records, key by key (see
// partitionWork); it returns when the claim ends, once the records in hand
// are finished and what is done is marked.
func (c *Consumer) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	ctx, cancel := context.WithCancel(sess.Context())
	defer cancel()
	w := newPartitionWork(ctx, c.cfg.MaxInFlight, c.process, func(next int64) {
		sess.MarkOffset(claim.Topic(), claim.Partition(), next, "")
	})
	w.run(claim.Messages(), cancel)
	return nil
}

// process handles one record; it reports whether the record is done with
// (handled or dead-lettered) and may be marked. session ends with the claim.
func (c *Consumer) process(session context.Context, msg *sarama.ConsumerMessage) bool {
	// Work on an event in hand is finished even when the claim ends; only
	// waiting between retries stops early.
	ctx := context.WithoutCancel(session)
	e, err := binding.ToEvent(ctx, kafka_sarama.NewMessageFromConsumerMessage(msg))
	if err != nil {
		return c.deadLetterRecord(session, msg, fmt.Sprintf("not a CloudEvent: %v", err))
	}
	if len(c.cfg.EventTypes) > 0 && !slices.Contains(c.cfg.EventTypes, e.Type()) {
		return c.deadLetter(session, msg, *e, fmt.Sprintf("unexpected event type %q on topic %s (expected %s)", e.Type(), msg.Topic, strings.Join(c.cfg.EventTypes, " or ")))
	}
	ctx, span := startConsume(ctx, msg, *e)
	defer func() { endSpan(span, err) }()
	backoff := c.cfg.Retry.Backoff
	for attempt := 1; ; attempt++ {
		err = c.handle(ctx, *e)
		if err == nil {
			return true
		}
		if domain.Permanent(err) || attempt >= c.cfg.Retry.Attempts {
			return c.deadLetter(session, msg, *e, err.Error())
		}
		c.log.Warn("retrying event", "id", e.ID(), "type", e.Type(), "key", string(msg.Key), "attempt", attempt, "error", err)
		if !sleep(session, backoff) {
			return false
		}
		backoff = min(2*backoff, c.cfg.Retry.MaxBackoff)
	}
}

// deadLetter sends e with the reason and where it came from to the
// dead-letter topic. Until that is acknowledged the record is not done.
func (c *Consumer) deadLetter(session context.Context, msg *sarama.ConsumerMessage, e cloudevents.Event, reason string) bool {
	dl := e.Clone()
	dl.SetExtension(ExtDeadLetterReason, reason)
	dl.SetExtension(ExtDeadLetterTopic, msg.Topic)
	dl.SetExtension(ExtDeadLetterPartition, strconv.Itoa(int(msg.Partition)))
	dl.SetExtension(ExtDeadLetterOffset, strconv.FormatInt(msg.Offset, 10))
	c.log.Warn("dead-lettering event", "id", e.ID(), "type", e.Type(), "partition", msg.Partition, "offset", msg.Offset, "reason", reason)
	return c.counted(msg.Topic, e.Type(), c.untilSent(session, func(ctx context.Context) error { return c.publish.PublishTo(ctx, c.cfg.DeadLetter, dl) }))
}

// counted counts a dead letter that was sent.
func (c *Consumer) counted(topic, eventType string, sent bool) bool {
	if sent && c.cfg.Metrics != nil {
		c.cfg.Metrics.DeadLettered(topic, eventType)
	}
	return sent
}

// deadLetterRecord copies a record that is not a CloudEvent to the
// dead-letter topic as it is, with the reason and origin as headers.
func (c *Consumer) deadLetterRecord(session context.Context, msg *sarama.ConsumerMessage, reason string) bool {
	out := &sarama.ProducerMessage{Topic: c.cfg.DeadLetter, Value: sarama.ByteEncoder(msg.Value)}
	if msg.Key != nil {
		out.Key = sarama.ByteEncoder(msg.Key)
	}
	for _, h := range msg.Headers {
		out.Headers = append(out.Headers, *h)
	}
	for k, v := range map[string]string{
		ExtDeadLetterReason: reason, ExtDeadLetterTopic: msg.Topic,
		ExtDeadLetterPartition: strconv.Itoa(int(msg.Partition)), ExtDeadLetterOffset: strconv.FormatInt(msg.Offset, 10),
	} {
		out.Headers = append(out.Headers, sarama.RecordHeader{Key: []byte("ce_" + k), Value: []byte(v)})
	}
	c.log.Warn("dead-lettering record", "partition", msg.Partition, "offset", msg.Offset, "reason", reason)
	return c.counted(msg.Topic, "", c.untilSent(session, func(context.Context) error { return c.publish.Send(out) }))
}

// untilSent tries send until it succeeds or the session ends.
func (c *Consumer) untilSent(session context.Context, send func(context.Context) error) bool {
	backoff := c.cfg.Retry.Backoff
	for {
		err := send(context.WithoutCancel(session))
		if err == nil {
			return true
		}
		c.log.Error("dead-letter topic unreachable; will retry", "error", err)
		if !sleep(session, backoff) {
			return false
		}
		backoff = min(2*backoff, c.cfg.Retry.MaxBackoff)
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
