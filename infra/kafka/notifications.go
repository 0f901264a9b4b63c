package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/IBM/sarama"
	kafka_sarama "github.com/cloudevents/sdk-go/protocol/kafka_sarama/v2"
	"github.com/cloudevents/sdk-go/v2/binding"
)

// notificationsReader feeds one process's live notifications from the
// updates topic. Each API/UI process wants every notification from now on
// and has nothing to acknowledge, so it reads every partition from its
// newest offset without a consumer group (no group is left behind when the
// process goes, and no offsets are committed). The newest offsets are fixed
// before start returns, so a process that reports ready misses nothing
// published after that. Partitions added later are not picked up until the
// process restarts.
type notificationsReader struct {
	consumer sarama.Consumer
	parts    []sarama.PartitionConsumer
	wg       sync.WaitGroup
}

func startNotifications(brokers []string, clientID, topic string, notify Publisher, log *slog.Logger) (*notificationsReader, error) {
	c, err := sarama.NewConsumer(brokers, SaramaConfig(clientID))
	if err != nil {
		return nil, fmt.Errorf("connect notifications reader to %v: %w", brokers, err)
	}
	r := &notificationsReader{consumer: c}
	partitions, err := c.Partitions(topic)
	if err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("partitions of %s: %w", topic, err)
	}
	for _, p := range partitions {
		pc, err := c.ConsumePartition(topic, p, sarama.OffsetNewest)
		if err != nil {
			_ = r.close()
			return nil, fmt.Errorf("read %s/%d: %w", topic, p, err)
		}
		r.parts = append(r.parts, pc)
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			for msg := range pc.Messages() {
				e, err := binding.ToEvent(context.Background(), kafka_sarama.NewMessageFromConsumerMessage(msg))
				if err != nil {
					log.Warn("skipping a record on the updates topic that is not a CloudEvent",
						"topic", topic, "partition", msg.Partition, "offset", msg.Offset, "error", err)
					continue
				}
				if err := notify.Publish(context.Background(), *e); err != nil {
					log.Warn("skipping a notification that cannot be read",
						"topic", topic, "partition", msg.Partition, "offset", msg.Offset, "error", err)
				}
			}
		}()
	}
	return r, nil
}

func (r *notificationsReader) close() error {
	for _, pc := range r.parts {
		pc.AsyncClose()
	}
	r.wg.Wait()
	if err := r.consumer.Close(); err != nil && !errors.Is(err, sarama.ErrClosedClient) {
		return fmt.Errorf("close notifications reader: %w", err)
	}
	return nil
}
