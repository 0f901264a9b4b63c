package kafka

import (
	"fmt"

	"github.com/IBM/sarama"
)

// NewKafkaPartitioner places a keyed record where the Java client's default
// partitioner does (murmur2 of the key, made positive, modulo the partition
// count), so that records of one order land in one partition whoever
// produces them: this process, a KafkaSink, or kafka-console-producer.
// Records without a key go to a random partition.
func NewKafkaPartitioner(topic string) sarama.Partitioner {
	return &kafkaPartitioner{random: sarama.NewRandomPartitioner(topic)}
}

type kafkaPartitioner struct {
	random sarama.Partitioner
}

func (p *kafkaPartitioner) Partition(msg *sarama.ProducerMessage, partitions int32) (int32, error) {
	if msg.Key == nil {
		return p.random.Partition(msg, partitions)
	}
	key, err := msg.Key.Encode()
	if err != nil {
		return -1, fmt.Errorf("encode record key: %w", err)
	}
	return (murmur2(key) & 0x7fffffff) % partitions, nil
}

func (p *kafkaPartitioner) RequiresConsistency() bool { return true }

// murmur2 is the hash of org.apache.kafka.common.utils.Utils.murmur2.
func murmur2(data []byte) int32 {
	const (
		seed uint32 = 0x9747b28c
		m    uint32 = 0x5bd1e995
		r           = 24
	)
	n := len(data)
	h := seed ^ uint32(n)
	for i := 0; i+4 <= n; i += 4 {
		k := uint32(data[i]) | uint32(data[i+1])<<8 | uint32(data[i+2])<<16 | uint32(data[i+3])<<24
		k *= m
		k ^= k >> r
		k *= m
		h *= m
		h ^= k
	}
	tail := n &^ 3
	switch n % 4 {
	case 3:
		h ^= uint32(data[tail+2]) << 16
		fallthrough
	case 2:
		h ^= uint32(data[tail+1]) << 8
		fallthrough
	case 1:
		h ^= uint32(data[tail])
		h *= m
	}
	h ^= h >> 13
	h *= m
	h ^= h >> 15
	return int32(h)
}
