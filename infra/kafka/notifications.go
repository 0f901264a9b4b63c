package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/IBM/sarama"
	kafka_sarama "github.com/cloudevents/sdk-go/protocol/kafka_sarama/v2"
	"github.com/cloudevents/sdk-go/v2/binding"
)

// notificationsReader feeds one process's live notifications from the
// updates topic. Each API/UI process wants every notification from now on
// and has nothing to acknowledge, so it reads every partition from its
// newest offset without a consumer group (no group is left behind when the
// process goes, and no offsets are committed). It connects in the
// background, retrying what a broker answers while a topic's leaders settle
// (NOT_LEADER_OR_FOLLOWER, UNKNOWN_TOPIC_OR_PARTITION right after the topic
// was created) or while it is out of reach; it is ready once the newest
// offset of every partition is fixed, so a process that reports ready
// misses nothing published after that. Partitions added later are not
// picked up until the process restarts.
type notificationsReader struct {
	brokers  []string
	clientID string
	topic    string
	notify   Publisher
	log      *slog.Logger

	mu       sync.Mutex
	consumer sarama.Consumer
	parts    []sarama.PartitionConsumer
	ready    atomic.Bool
	lastErr  atomic.Pointer[error]
	stop     context.CancelFunc
	wg       sync.WaitGroup
}

func startNotifications(brokers []string, clientID, topic string, notify Publisher, log *slog.Logger) *notificationsReader {
	ctx, cancel := context.WithCancel(context.Background())
	r := &notificationsReader{brokers: brokers, clientID: clientID, topic: topic, notify: notify,
		log: log.With("topic", topic, "reader", "notifications"), stop: cancel}
	err := fmt.Errorf("notifications reader of %s: %w", topic, errNotConnected)
	r.lastErr.Store(&err)
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		_ = untilConnected(ctx, r.log, "notifications reader", connectBackoff, func() error { return r.connect(ctx) })
	}()
	return r
}

// connect reads every partition from its newest offset, or undoes what it
// started and says why it could not.
func (r *notificationsReader) connect(ctx context.Context) (err error) {
	defer func() {
		if err != nil {
			r.lastErr.Store(&err)
		}
	}()
	c, err := sarama.NewConsumer(r.brokers, SaramaConfig(r.clientID))
	if err != nil {
		return fmt.Errorf("connect notifications reader to %v: %w", r.brokers, err)
	}
	partitions, err := c.Partitions(r.topic)
	if err == nil && len(partitions) == 0 {
		err = sarama.ErrUnknownTopicOrPartition
	}
	if err != nil {
		_ = c.Close()
		return fmt.Errorf("partitions of %s: %w", r.topic, err)
	}
	var parts []sarama.PartitionConsumer
	for _, p := range partitions {
		pc, err := c.ConsumePartition(r.topic, p, sarama.OffsetNewest)
		if err != nil {
			for _, pc := range parts {
				pc.AsyncClose()
			}
			_ = c.Close()
			return fmt.Errorf("read %s/%d: %w", r.topic, p, err)
		}
		parts = append(parts, pc)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if ctx.Err() != nil { // closed meanwhile
		for _, pc := range parts {
			pc.AsyncClose()
		}
		_ = c.Close()
		return ctx.Err()
	}
	r.consumer, r.parts = c, parts
	for _, pc := range parts {
		r.wg.Add(2)
		go func() { defer r.wg.Done(); r.read(pc) }()
		go func() {
			defer r.wg.Done()
			// sarama looks for a partition's new leader by itself; say so.
			for err := range pc.Errors() {
				r.log.Warn("reading notifications; sarama retries", "partition", err.Partition, "error", err.Err)
			}
		}()
	}
	r.ready.Store(true)
	return nil
}

func (r *notificationsReader) read(pc sarama.PartitionConsumer) {
	for msg := range pc.Messages() {
		e, err := binding.ToEvent(context.Background(), kafka_sarama.NewMessageFromConsumerMessage(msg))
		if err != nil {
			r.log.Warn("skipping a record on the updates topic that is not a CloudEvent",
				"partition", msg.Partition, "offset", msg.Offset, "error", err)
			continue
		}
		if err := r.notify.Publish(context.Background(), *e); err != nil {
			r.log.Warn("skipping a notification that cannot be read",
				"partition", msg.Partition, "offset", msg.Offset, "error", err)
		}
	}
}

// Ready reports whether every partition is being read, and if not, why.
func (r *notificationsReader) Ready() error {
	if r.ready.Load() {
		return nil
	}
	return *r.lastErr.Load()
}

func (r *notificationsReader) close() error {
	r.stop()
	r.mu.Lock()
	for _, pc := range r.parts {
		pc.AsyncClose()
	}
	c := r.consumer
	r.mu.Unlock()
	r.wg.Wait()
	if c == nil {
		return nil
	}
	if err := c.Close(); err != nil && !errors.Is(err, sarama.ErrClosedClient) {
		return fmt.Errorf("close notifications reader: %w", err)
	}
	return nil
}
