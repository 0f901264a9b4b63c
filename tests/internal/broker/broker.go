// Package broker starts a real Kafka broker for tests, with the contract's
// topics, on loopback: Apache Kafka itself (a single KRaft node run from
// Maven Central's jars, see apache.go), or kfake from franz-go, a
// Kafka-protocol broker in the test process that starts in milliseconds.
// KAFKA_BROKER=kfake chooses kfake for quick runs; Apache Kafka is the
// default and what `make test` runs. The system under test connects to
// either with sarama like to any Kafka.
package broker

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/cupcake-factory/cupcake-factory/events"
)

// Topics are the contract's topics.
var Topics = []string{
	events.TopicOrderRequests, events.TopicOrderValidations, events.TopicReadyToBake,
	events.TopicReadyToDecorate, events.TopicReadyToPackage, events.TopicReadyToShip,
	events.TopicOrderUpdates, events.TopicDeadLetters,
}

// Kind is the broker Start runs: "apache" (the default) or "kfake", from
// KAFKA_BROKER.
func Kind() string {
	if os.Getenv("KAFKA_BROKER") == "kfake" {
		return "kfake"
	}
	return "apache"
}

// Start runs a one-broker cluster of Kind with every contract topic in
// partitions partitions, returns its bootstrap address once every
// partition answers, and stops it when the test ends.
func Start(tb testing.TB, partitions int32) string {
	tb.Helper()
	if Kind() == "kfake" {
		return StartKfake(tb, partitions)
	}
	return StartApache(tb, partitions).Addr
}

// StartKfake runs kfake in the test process with every contract topic in
// partitions partitions, and returns its bootstrap address. It stops with
// the test.
func StartKfake(tb testing.TB, partitions int32) string {
	tb.Helper()
	c, err := kfake.NewCluster(
		kfake.NumBrokers(1),
		kfake.SeedTopics(partitions, Topics...),
		kfake.DefaultNumPartitions(int(partitions)),
		kfake.AllowAutoTopicCreation(),
	)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(c.Close)
	return strings.Join(c.ListenAddrs(), ",")
}

// Config is a plain sarama client configuration, as any Kafka user would have.
func Config() *sarama.Config {
	c := sarama.NewConfig()
	c.Version = sarama.V2_8_0_0
	c.Producer.Return.Successes = true
	c.Producer.RequiredAcks = sarama.WaitForAll
	c.Consumer.Offsets.Initial = sarama.OffsetOldest
	return c
}

// Produce sends records with a plain sarama producer.
func Produce(tb testing.TB, addr string, msgs ...*sarama.ProducerMessage) {
	tb.Helper()
	p, err := sarama.NewSyncProducer([]string{addr}, Config())
	if err != nil {
		tb.Fatal(err)
	}
	defer p.Close()
	if err := p.SendMessages(msgs); err != nil {
		tb.Fatal(err)
	}
}

// ReadAll reads every record of topic, across partitions, until none has
// come for quiet or until want records have come.
func ReadAll(tb testing.TB, addr, topic string, want int, quiet time.Duration) []*sarama.ConsumerMessage {
	tb.Helper()
	c, err := sarama.NewConsumer([]string{addr}, Config())
	if err != nil {
		tb.Fatal(err)
	}
	defer c.Close()
	parts, err := c.Partitions(topic)
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := make(chan *sarama.ConsumerMessage)
	for _, p := range parts {
		pc, err := c.ConsumePartition(topic, p, sarama.OffsetOldest)
		if err != nil {
			tb.Fatal(err)
		}
		defer pc.Close()
		go func() {
			for {
				select {
				case m := <-pc.Messages():
					select {
					case out <- m:
					case <-ctx.Done():
						return
					}
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	var got []*sarama.ConsumerMessage
	for len(got) < want || want == 0 {
		select {
		case m := <-out:
			got = append(got, m)
		case <-time.After(quiet):
			return got
		}
	}
	return got
}

// Header returns the value of a record header.
func Header(m *sarama.ConsumerMessage, key string) string {
	for _, h := range m.Headers {
		if string(h.Key) == key {
			return string(h.Value)
		}
	}
	return ""
}

// CreateTopics creates topics beyond the contract's on the broker at addr
// and waits until every partition answers.
func CreateTopics(tb testing.TB, addr string, partitions int32, names ...string) {
	tb.Helper()
	if err := createTopics(addr, partitions, names...); err != nil {
		tb.Fatal(err)
	}
}
