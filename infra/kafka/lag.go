package kafka

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/IBM/sarama"
)

// Lag is how far one consumer group is behind on one partition: the
// records after its committed offset.
type Lag struct {
	Group, Topic string
	Partition    int32
	Records      int64
}

// lagReader asks the brokers, when asked, for each consumer group of this
// process how far its committed offsets are behind its topic's newest.
type lagReader struct {
	brokers []string
	mu      sync.Mutex
	client  sarama.Client
	admin   sarama.ClusterAdmin
}

func (r *lagReader) connect() (sarama.Client, sarama.ClusterAdmin, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.client == nil {
		c, err := sarama.NewClient(r.brokers, SaramaConfig("cupcake-factory-lag"))
		if err != nil {
			return nil, nil, fmt.Errorf("connect to %v to read consumer lag: %w", r.brokers, err)
		}
		a, err := sarama.NewClusterAdminFromClient(c)
		if err != nil {
			_ = c.Close()
			return nil, nil, fmt.Errorf("connect to %v to read consumer lag: %w", r.brokers, err)
		}
		r.client, r.admin = c, a
	}
	return r.client, r.admin, nil
}

func (r *lagReader) close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.admin == nil {
		return nil
	}
	err := r.admin.Close() // closes the client it was made from
	r.client, r.admin = nil, nil
	if err != nil && !errors.Is(err, sarama.ErrClosedClient) {
		return fmt.Errorf("close the consumer lag reader: %w", err)
	}
	return nil
}

// Lag reads the lag of every consumer group this process runs, partition by
// partition. A group that has committed nothing on a partition is behind
// by everything the partition holds.
func (t *Transport) Lag(ctx context.Context) ([]Lag, error) {
	client, admin, err := t.lag.connect()
	if err != nil {
		return nil, err
	}
	var out []Lag
	for _, b := range t.opts.Bindings {
		if ctx.Err() != nil {
			return out, ctx.Err()
		}
		group := t.opts.GroupPrefix + "-" + b.Function
		parts, err := client.Partitions(b.Topic)
		if err != nil {
			return out, fmt.Errorf("partitions of %s: %w", b.Topic, err)
		}
		committed, err := admin.ListConsumerGroupOffsets(group, map[string][]int32{b.Topic: parts})
		switch {
		case errors.Is(err, sarama.ErrGroupIDNotFound):
			// Some brokers (kfake) answer so for a group that never
			// committed; Apache Kafka answers with no offsets. Either way it
			// is behind by everything.
			committed = &sarama.OffsetFetchResponse{}
		case err != nil:
			return out, fmt.Errorf("offsets of group %s: %w", group, err)
		}
		for _, p := range parts {
			newest, err := client.GetOffset(b.Topic, p, sarama.OffsetNewest)
			if err != nil {
				return out, fmt.Errorf("newest offset of %s/%d: %w", b.Topic, p, err)
			}
			from := int64(-1)
			if blk := committed.GetBlock(b.Topic, p); blk != nil {
				from = blk.Offset
			}
			if from < 0 {
				if from, err = client.GetOffset(b.Topic, p, sarama.OffsetOldest); err != nil {
					return out, fmt.Errorf("oldest offset of %s/%d: %w", b.Topic, p, err)
				}
			}
			out = append(out, Lag{Group: group, Topic: b.Topic, Partition: p, Records: max(newest-from, 0)})
		}
	}
	return out, nil
}
