package kafka

import (
	"testing"

	"github.com/IBM/sarama"
)

// The Java client's own test vectors (UtilsTest.testMurmur2).
func TestMurmur2MatchesTheJavaClient(t *testing.T) {
	tests := []struct {
		in   string
		want int32
	}{
		{"21", -973932308},
		{"foobar", -790332482},
		{"a-little-bit-long-string", -985981536},
		{"a-little-bit-longer-string", -1486304829},
		{"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971},
		{"abc", 479470107},
	}
	for _, tt := range tests {
		if got := murmur2([]byte(tt.in)); got != tt.want {
			t.Errorf("murmur2(%q) = %d, want %d", tt.in, got, tt.want)
		}
	}
}

func TestKafkaPartitionerPutsOneKeyInOnePartition(t *testing.T) {
	p := NewKafkaPartitioner("t")
	tests := []struct {
		key        string
		partitions int32
		want       int32
	}{
		// (murmur2 & 0x7fffffff) % n, from the vectors above
		{"21", 3, (-973932308 & 0x7fffffff) % 3},
		{"foobar", 8, (-790332482 & 0x7fffffff) % 8},
		{"abc", 5, 479470107 % 5},
	}
	for _, tt := range tests {
		for range 3 {
			got, err := p.Partition(&sarama.ProducerMessage{Key: sarama.StringEncoder(tt.key)}, tt.partitions)
			if err != nil || got != tt.want {
				t.Errorf("Partition(%q, %d) = %d, %v; want %d", tt.key, tt.partitions, got, err, tt.want)
			}
		}
	}
	if got, err := p.Partition(&sarama.ProducerMessage{}, 4); err != nil || got < 0 || got >= 4 {
		t.Errorf("unkeyed record: %d, %v", got, err)
	}
}
