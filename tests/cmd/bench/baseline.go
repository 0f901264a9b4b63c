package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
	bbolt "go.etcd.io/bbolt"
)

// kafkaBaseline is the strongest plain use of the same broker: sarama's
// asynchronous, batching, idempotent producer (acks=all) sending n records
// of an order event's size over 1000 keys, while a consumer group reads
// them. It returns records per second, until the last one is read.
func kafkaBaseline(brokers []string, topic string, partitions int32, n int) (float64, error) {
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V2_8_0_0
	if err := ensureTopic(brokers, cfg, topic, partitions); err != nil {
		return 0, err
	}
	cfg.Producer.Idempotent = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Return.Successes = true
	cfg.Net.MaxOpenRequests = 1
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	prod, err := sarama.NewAsyncProducer(brokers, cfg)
	if err != nil {
		return 0, err
	}
	group, err := sarama.NewConsumerGroup(brokers, fmt.Sprintf("baseline-%d", time.Now().UnixNano()), cfg)
	if err != nil {
		prod.Close()
		return 0, err
	}
	defer group.Close()
	h := &counter{want: int64(n), done: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		for ctx.Err() == nil {
			_ = group.Consume(ctx, []string{topic}, h)
		}
	}()
	var acked atomic.Int64
	var failed error
	var wg sync.WaitGroup
	wg.Go(func() {
		for range prod.Successes() {
			acked.Add(1)
		}
	})
	wg.Go(func() {
		for e := range prod.Errors() {
			if failed == nil {
				failed = e.Err
			}
		}
	})
	value := make([]byte, 600) // about a structured order event
	start := time.Now()
	for i := range n {
		prod.Input() <- &sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(fmt.Sprintf("o-%d", i%1000)), Value: sarama.ByteEncoder(value)}
	}
	select {
	case <-h.done:
	case <-time.After(2 * time.Minute):
		return 0, fmt.Errorf("the baseline consumer read %d of %d", h.n.Load(), n)
	}
	took := time.Since(start)
	prod.AsyncClose()
	wg.Wait()
	if failed != nil {
		return 0, fmt.Errorf("baseline producer: %w", failed)
	}
	return float64(n) / took.Seconds(), nil
}

type counter struct {
	n    atomic.Int64
	want int64
	done chan struct{}
	once sync.Once
}

func (c *counter) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (c *counter) Cleanup(sarama.ConsumerGroupSession) error { return nil }
func (c *counter) ConsumeClaim(s sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	for m := range claim.Messages() {
		s.MarkMessage(m, "")
		if c.n.Add(1) == c.want {
			c.once.Do(func() { close(c.done) })
		}
	}
	return nil
}

// boltBaseline is bbolt's own group commit on the same disk: writers
// goroutines each putting a record of an order's size through DB.Batch for
// d. It returns the units of work committed per second, each durable when
// its call returns: the ceiling for a store that writes through bbolt.
func boltBaseline(dir string, writers int, d time.Duration) (float64, error) {
	path := filepath.Join(dir, "baseline.db")
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{NoFreelistSync: true, FreelistType: bbolt.FreelistMapType})
	if err != nil {
		return 0, err
	}
	defer os.Remove(path)
	defer db.Close()
	if err := db.Update(func(tx *bbolt.Tx) error { _, err := tx.CreateBucket([]byte("b")); return err }); err != nil {
		return 0, err
	}
	value := make([]byte, 2000) // about an order with its history
	var done atomic.Int64
	var failed atomic.Value
	start := time.Now()
	stop := start.Add(d)
	var wg sync.WaitGroup
	for range writers {
		wg.Go(func() {
			key := make([]byte, 16)
			for time.Now().Before(stop) {
				_, _ = rand.Read(key)
				err := db.Batch(func(tx *bbolt.Tx) error { return tx.Bucket([]byte("b")).Put(key, value) })
				if err != nil {
					failed.Store(err)
					return
				}
				done.Add(1)
			}
		})
	}
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		return 0, err
	}
	return float64(done.Load()) / time.Since(start).Seconds(), nil
}

// ensureTopic creates topic on a broker that creates none by itself (Apache
// Kafka as the tests run it), and waits until its partitions have leaders.
func ensureTopic(brokers []string, cfg *sarama.Config, topic string, partitions int32) error {
	admin, err := sarama.NewClusterAdmin(brokers, cfg)
	if err != nil {
		return err
	}
	defer admin.Close()
	err = admin.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: partitions, ReplicationFactor: 1}, false)
	if err != nil && !errors.Is(err, sarama.ErrTopicAlreadyExists) {
		return fmt.Errorf("create topic %s: %w", topic, err)
	}
	client, err := sarama.NewClient(brokers, cfg)
	if err != nil {
		return err
	}
	defer client.Close()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		_ = client.RefreshMetadata(topic)
		ps, err := client.Partitions(topic)
		ready := err == nil && len(ps) > 0
		for _, p := range ps {
			if _, err := client.Leader(topic, p); err != nil {
				ready = false
			}
		}
		if ready {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("topic %s has no leaders after 30 s: %v", topic, err)
		}
	}
}
